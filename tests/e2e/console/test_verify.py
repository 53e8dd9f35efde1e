"""Coupon verification at the counter: a clerk looks a code up, sees the coupon, confirms once (through
Rewards.use, audited with the store); refusals change nothing; a clerk sees their own store's
verifications and no other console page (every GET route, every role, against the RIGHTS map)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from bot.console import texts
from bot.console.auth import RIGHTS
from storage.clock import FrozenClock
from storage.models import AuditEntry, Redemption
from tests.support.console_support import ROLES, ConsoleWorld, add_operator, audit_entries, console_world
from tests.support.ledgerviews_support import EVIL, FULL_PHONE, coupon, member

# Console pages any signed-in operator may open: they declare no right.
OPEN_PAGES = {"/admin", "/admin/login"}


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


@pytest.fixture
async def code(world: ConsoleWorld, clock: FrozenClock) -> str:
    owner = await member(world, "oVERIFYowner", "13900001111")
    return (await coupon(world, owner, clock.now(), name=EVIL, key="r-verify")).code


async def redemption(world: ConsoleWorld, code: str) -> Redemption:
    async with world.db.sessions() as session:
        found = await session.scalar(select(Redemption).where(Redemption.code == code))
    assert found is not None
    return found


async def uses(world: ConsoleWorld) -> list[AuditEntry]:
    return await audit_entries(world.db, action="coupon.use")


async def test_a_clerk_looks_up_and_confirms_a_coupon(world: ConsoleWorld, code: str) -> None:
    clerk = await world.as_role("clerk")
    shown = await clerk.get("/admin/verify", params={"code": code.lower()})
    assert shown.status_code == 200
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in shown.text
    assert EVIL not in shown.text
    assert "139****1111" in shown.text
    assert texts.VERIFY_STATES["issued"] in shown.text
    assert 'id="confirm"' in shown.text
    assert not FULL_PHONE.search(shown.text)
    assert (await redemption(world, code)).status == "issued"  # looking changes nothing
    done = await clerk.post("/admin/verify", {"code": code})
    assert done.status_code == 303
    after = await clerk.get(done.headers["location"])
    assert texts.VERIFY_DONE.format(code=code, reward="&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") in after.text
    used = await redemption(world, code)
    assert used.status == "used"
    [entry] = await uses(world)
    assert (entry.actor, entry.actor_role, entry.target, entry.client) == (
        "clerk", "clerk", f"redemption:{used.id}", "127.0.0.1")
    assert '"store": "S001"' in (entry.after or "")
    assert f'"code": "{code}"' in (entry.after or "")
    assert re.search(rf"<td>{code}</td><td>S001</td><td>clerk</td>", after.text)


async def test_a_used_coupon_is_refused_clearly_and_nothing_changes(world: ConsoleWorld, code: str) -> None:
    clerk = await world.as_role("clerk")
    assert (await clerk.post("/admin/verify", {"code": code})).status_code == 303
    first = await redemption(world, code)
    again = await clerk.post("/admin/verify", {"code": code})
    assert again.status_code == 409
    assert "该券已于 2026-11-22 10:00:00 核销，不能再次使用。" in again.text
    assert (await redemption(world, code)).used_at == first.used_at
    assert len(await uses(world)) == 1
    looked = await clerk.get("/admin/verify", params={"code": code})
    assert 'id="verify-blocked"' in looked.text
    assert 'id="confirm"' not in looked.text


async def test_expired_and_cancelled_coupons_are_refused(world: ConsoleWorld, code: str, clock: FrozenClock) -> None:
    admin = await world.as_role("admin")
    cancelled_id = (await redemption(world, code)).id
    async with world.db.unit_of_work() as session:
        await world.wechat.services.rewards.cancel(session, cancelled_id, clock.now())
    refused = await admin.post("/admin/verify", {"code": code})
    assert refused.status_code == 409
    assert texts.VERIFY_CANCELLED in refused.text
    owner = await member(world, "oVERIFYlate", "13700002222")
    late = (await coupon(world, owner, clock.now(), key="r-late", validity_days=1)).code
    clock.advance(days=3)
    expired = await admin.post("/admin/verify", {"code": late})
    assert expired.status_code == 409
    assert "该券已于" in expired.text
    assert "过期" in expired.text
    assert (await redemption(world, late)).status == "issued"
    assert await uses(world) == []


async def test_unknown_empty_and_unchecked_posts_change_nothing(world: ConsoleWorld, code: str) -> None:
    clerk = await world.as_role("clerk")
    unknown = await clerk.get("/admin/verify", params={"code": "NOSUCHCODE"})
    assert unknown.status_code == 404
    assert texts.VERIFY_UNKNOWN in unknown.text
    assert 'name="code" value="NOSUCHCODE"' in unknown.text
    assert (await clerk.post("/admin/verify", {"code": "NOSUCHCODE"})).status_code == 404
    empty = await clerk.post("/admin/verify", {"code": "  "})
    assert empty.status_code == 422
    assert texts.VERIFY_CODE_REQUIRED in empty.text
    for token in ("", "stale"):
        forged = await clerk.post("/admin/verify", {"code": code}, csrf=token)
        assert forged.status_code == 403
        assert texts.CSRF_FAILED in forged.text
    assert (await redemption(world, code)).status == "issued"
    assert await uses(world) == []


async def test_a_clerk_sees_only_their_own_stores_verifications(
    world: ConsoleWorld, code: str, clock: FrozenClock,
) -> None:
    await add_operator(world.db, "clerk2", "clerk", clock.now(), store="S002")
    owner = await member(world, "oVERIFYother", "13700002222")
    other = (await coupon(world, owner, clock.now(), key="r-other")).code
    mine, theirs = await world.as_role("clerk"), world.browser()
    assert (await theirs.sign_in("clerk2")).status_code == 303
    assert (await mine.post("/admin/verify", {"code": code})).status_code == 303
    assert (await theirs.post("/admin/verify", {"code": other})).status_code == 303
    page = await mine.get("/admin/verify")
    assert f"<td>{code}</td>" in page.text
    assert f"<td>{other}</td>" not in page.text
    their_page = await theirs.get("/admin/verify")
    assert f"<td>{other}</td><td>S002</td>" in their_page.text
    assert f"<td>{code}</td>" not in their_page.text
    everyone = await (await world.as_role("admin")).get("/admin/verify")
    assert f"<td>{code}</td>" in everyone.text
    assert f"<td>{other}</td>" in everyone.text


@pytest.mark.parametrize("role", ["operator", "analyst"])
async def test_roles_without_the_right_cannot_verify(world: ConsoleWorld, code: str, role: str) -> None:
    me = await world.as_role(role)
    assert (await me.get("/admin/verify")).status_code == 403
    refused = await me.post("/admin/verify", {"code": code})
    assert refused.status_code == 403
    assert "管理员、店员" in refused.text
    assert (await redemption(world, code)).status == "issued"


def right_of(route: APIRoute) -> str | None:
    """The right a route's `needs(...)`/`needs_checked(...)` dependency demands (None: it declares none)."""
    pending: list[Any] = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        for cell in getattr(dependency.call, "__closure__", None) or ():
            if isinstance(cell.cell_contents, str) and cell.cell_contents in RIGHTS:
                return cell.cell_contents
        pending += dependency.dependencies
    return None


def routes_of(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI keeps those as wrappers of the original;
    the console's routers have no prefix, so each route's path is its full path)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += routes_of(route.original_router.routes)
    return found


def console_pages(app: Any) -> list[tuple[str, str | None]]:
    """Every console GET page without a path parameter, with the right it needs."""
    return sorted({
        (route.path, right_of(route)) for route in routes_of(app.routes)
        if route.path.startswith("/admin") and "GET" in route.methods and "{" not in route.path
    })


async def test_every_console_page_answers_each_role_as_rights_says(world: ConsoleWorld) -> None:
    pages = console_pages(world.wechat.app)
    assert ("/admin/audit", "audit.read") in pages
    assert ("/admin/verify", "coupons.verify") in pages
    for path, right in pages:
        assert right is not None or path in OPEN_PAGES, f"{path} declares no right"
    clerk_may = set()
    for role in ROLES:
        me = await world.as_role(role)
        for path, right in pages:
            expected = 200 if right is None or role in RIGHTS[right] else 403
            got = (await me.get(path)).status_code
            assert got == expected, f"{role} {path}: {got}, expected {expected}"
            if role == "clerk" and got == 200:
                clerk_may.add(path)
    assert clerk_may == {"/admin", "/admin/login", "/admin/verify"}
