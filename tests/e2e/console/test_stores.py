"""The stores screen: an admin adds a store and sees its credential once (kept only as a hash), rotates
and revokes it (the old secret stops working at the API at once), closes and reopens the store, each
audited; bad input is the form again with nothing written; operators and analysts read; clerks do not."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.console import texts
from storage import stores
from storage.clock import FrozenClock
from storage.models import AuditEntry, Store
from tests.support.console_support import ConsoleWorld, Operator, audit_entries, console_world
from tests.support.ledgerviews_support import EVIL, coupon, member

SECRET = re.compile(r'<code id="secret">([^<]+)</code>')


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def stored(world: ConsoleWorld) -> list[Store]:
    async with world.db.sessions() as session:
        return list(await stores.all_stores(session))


async def actions(world: ConsoleWorld) -> list[tuple[str, str, str]]:
    rows = await audit_entries(world.db, prefix="store.")
    return [(r.action, r.target, r.actor) for r in rows]


def secret_on(html: str) -> str:
    found = SECRET.search(html)
    assert found, "the page shows no credential"
    return found.group(1)


async def till_status(world: ConsoleWorld, code: str, bearer: str) -> int:
    response = await world.browser().client.post(f"/api/store/coupons/{code}/use",
                                                 headers={"Authorization": f"Bearer {bearer}"})
    return response.status_code


async def add(admin: Operator, code: str, name: str = "人民广场店", city: str = "上海") -> str:
    page = await admin.post("/admin/stores", {"code": code, "name": name, "city": city})
    assert page.status_code == 200, page.text
    return secret_on(page.text)


async def test_an_admin_adds_a_store_and_its_credential_works_once_shown(
    world: ConsoleWorld, clock: FrozenClock,
) -> None:
    admin = await world.as_role("admin")
    secret = await add(admin, "s001", name=EVIL)
    [row] = await stored(world)
    assert (row.code, row.name, row.city, row.active) == ("S001", EVIL, "上海", True)
    assert row.secret_hash == stores.hashed(secret)
    assert secret not in (row.secret_hash or "")
    listed = await admin.get("/admin/stores")
    assert EVIL not in listed.text  # escaped
    assert "&lt;script&gt;" in listed.text
    assert secret not in listed.text  # shown once, on the answer to the creation only
    assert await actions(world) == [("store.add", "store:S001", "admin")]
    async with world.db.sessions() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "store.add"))
    assert entry is not None
    assert secret not in (entry.after or "")
    owner = await member(world, "oSTORESowner", "13900003333")
    code = (await coupon(world, owner, clock.now(), key="r-stores")).code
    assert await till_status(world, code, f"S001:{secret}") == 200


async def test_rotate_and_revoke_stop_the_old_secret_at_once(world: ConsoleWorld, clock: FrozenClock) -> None:
    admin = await world.as_role("admin")
    old = await add(admin, "S002")
    rotated = await admin.post("/admin/stores/S002/rotate", {})
    assert rotated.status_code == 200
    new = secret_on(rotated.text)
    assert new != old
    owner = await member(world, "oSTORESrot", "13900004444")
    first = (await coupon(world, owner, clock.now(), key="r-rot-1")).code
    assert await till_status(world, first, f"S002:{old}") == 401
    assert await till_status(world, first, f"S002:{new}") == 200
    revoked = await admin.post("/admin/stores/S002/revoke", {})
    assert revoked.status_code == 303
    second = (await coupon(world, owner, clock.now(), key="r-rot-2")).code
    assert await till_status(world, second, f"S002:{new}") == 401
    assert "无凭证" in (await admin.get("/admin/stores")).text
    closed = await admin.post("/admin/stores/S002/active", {"active": "0"})
    assert closed.status_code == 303
    assert (await stored(world))[0].active is False
    reopened = await admin.post("/admin/stores/S002/active", {"active": "1"})
    assert reopened.status_code == 303
    assert (await stored(world))[0].active is True
    assert [a for a, _, _ in await actions(world)] == [
        "store.add", "store.rotate", "store.revoke", "store.disable", "store.enable",
    ]
    assert (await admin.post("/admin/stores/NOPE/rotate", {})).status_code == 404


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"code": "S 1", "name": "店"}, "code", texts.STORES_CODE_INVALID),
    ({"code": "", "name": "店"}, "code", texts.STORES_CODE_INVALID),
    ({"code": "S1", "name": ""}, "name", texts.STORES_NAME_REQUIRED),
    ({"code": "S1", "name": "店", "city": "市" * 41}, "city", texts.STORES_CITY_INVALID),
])
async def test_bad_input_is_the_form_again_and_nothing_is_written(
    world: ConsoleWorld, form: dict[str, str], field: str, message: str,
) -> None:
    admin = await world.as_role("admin")
    page = await admin.post("/admin/stores", form)
    assert page.status_code == 422
    assert f'data-error="{field}">{message}' in page.text
    assert await stored(world) == []
    assert await actions(world) == []


async def test_a_taken_code_and_a_missing_csrf_change_nothing(world: ConsoleWorld) -> None:
    admin = await world.as_role("admin")
    secret = await add(admin, "S003")
    again = await admin.post("/admin/stores", {"code": "s003", "name": "另一家"})
    assert again.status_code == 409
    assert texts.STORES_CODE_TAKEN in again.text
    forged = await admin.post("/admin/stores/S003/rotate", {}, csrf="")
    assert forged.status_code == 403
    [row] = await stored(world)
    assert (row.name, row.secret_hash) == ("人民广场店", stores.hashed(secret))
    assert len(await actions(world)) == 1


@pytest.mark.parametrize("role", ["operator", "analyst"])
async def test_operators_and_analysts_read_but_cannot_write(world: ConsoleWorld, role: str) -> None:
    await add(await world.as_role("admin"), "S004")
    reader = await world.as_role(role)
    page = await reader.get("/admin/stores")
    assert page.status_code == 200
    assert "S004" in page.text
    assert 'id="add-store"' not in page.text
    assert "/rotate" not in page.text
    refused = await reader.post("/admin/stores/S004/rotate", {})
    assert refused.status_code == 403
    assert "管理员" in refused.text
    assert (await reader.post("/admin/stores", {"code": "S005", "name": "店"})).status_code == 403
    assert [s.code for s in await stored(world)] == ["S004"]


async def test_a_clerk_does_not_see_the_stores(world: ConsoleWorld) -> None:
    clerk = await world.as_role("clerk")
    assert (await clerk.get("/admin/stores")).status_code == 403
    counter = await clerk.get("/admin/verify")
    assert counter.status_code == 200
    assert 'href="/admin/verify"' in counter.text  # the menu is there, without the stores
    assert 'href="/admin/stores"' not in counter.text
