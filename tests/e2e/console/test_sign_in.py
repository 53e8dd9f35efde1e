"""Signing in to the console: sessions (HttpOnly, SameSite, idle expiry, sign-out), CSRF on every form,
the lockout after five failures (in the KV, so every worker sees it), disabled accounts, and the answer
to an unknown name taking as long as to a known one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.console import texts
from bot.console.auth import COOKIE, Lockout
from storage import operators
from storage.clock import FrozenClock
from storage.models import AuditEntry
from tests.support.console_support import PASSWORD, ConsoleWorld, console_world


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def test_signing_in_opens_the_console_and_signing_out_closes_it(world: ConsoleWorld) -> None:
    me = world.browser()
    first = await me.get("/admin")
    assert first.status_code == 303
    assert first.headers["location"] == "/admin/login?next=/admin"
    signed = await me.sign_in("operator")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/admin"
    cookie = next(v for k, v in signed.headers.multi_items() if k == "set-cookie" and v.startswith(f"{COOKIE}="))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    home = await me.get("/admin")
    assert home.status_code == 200
    assert "欢迎，operator（运营）" in home.text
    out = await me.post("/admin/logout")
    assert out.status_code == 303
    assert out.headers["location"] == "/admin/login?out=1"
    again = await me.get("/admin")
    assert again.status_code == 303  # the session is gone from the KV, not only the cookie


async def test_a_stolen_cookie_stops_working_after_sign_out(world: ConsoleWorld) -> None:
    me = world.browser()
    await me.sign_in("admin")
    stolen = me.client.cookies.get(COOKIE)
    await me.post("/admin/logout")
    thief = world.browser()
    thief.client.cookies.set(COOKIE, stolen)
    assert (await thief.get("/admin")).status_code == 303


async def test_a_forged_cookie_is_not_a_session(world: ConsoleWorld) -> None:
    me = world.browser()
    me.client.cookies.set(COOKIE, "made-up.value")
    assert (await me.get("/admin")).status_code == 303


async def test_a_wrong_password_is_refused_with_the_form_again(world: ConsoleWorld) -> None:
    me = world.browser()
    response = await me.sign_in("admin", "not-the-password")
    assert response.status_code == 401
    assert texts.SIGN_IN_FAILED in response.text
    assert 'value="admin"' in response.text
    assert f"{COOKIE}=" not in response.headers.get("set-cookie", "")


async def test_five_failures_lock_the_name_for_every_worker_even_with_the_right_password(
    world: ConsoleWorld,
) -> None:
    me = world.browser()
    for _ in range(4):
        assert texts.SIGN_IN_FAILED in (await me.sign_in("analyst", "wrong-password")).text
    fifth = await me.sign_in("analyst", "wrong-password")
    assert fifth.status_code == 401
    assert texts.SIGN_IN_LOCKED in fifth.text
    other_worker = world.browser()
    right = await other_worker.sign_in("analyst", PASSWORD)
    assert right.status_code == 401
    assert texts.SIGN_IN_LOCKED in right.text
    ttl = await world.wechat.services.kv.ttl(Lockout._key("analyst"))
    assert ttl is not None
    assert 14 * 60 < ttl <= 15 * 60
    assert (await world.browser().sign_in("operator")).status_code == 303  # other names are not locked


async def test_the_sign_in_form_needs_its_own_csrf_token(world: ConsoleWorld) -> None:
    me = world.browser()
    await me.get("/admin/login")  # the cookie half
    forged = await me.client.post("/admin/login", data={"name": "admin", "password": PASSWORD, "csrf": "forged"})
    assert forged.status_code == 403
    assert texts.CSRF_FAILED in forged.text
    assert f"{COOKIE}=" not in forged.headers.get("set-cookie", "")
    bare = await world.browser().client.post("/admin/login", data={"name": "admin", "password": PASSWORD})
    assert bare.status_code == 403


async def test_a_form_without_its_csrf_token_changes_nothing(world: ConsoleWorld) -> None:
    me = world.browser()
    await me.sign_in("admin")
    for token in ("", "stale-token-from-another-session"):
        refused = await me.post("/admin/logout", csrf=token)
        assert refused.status_code == 403
        assert texts.CSRF_FAILED in refused.text
    assert (await me.get("/admin")).status_code == 200  # still signed in: the sign-out did not happen


async def test_a_disabled_operator_is_signed_out_at_once_and_cannot_sign_in(world: ConsoleWorld) -> None:
    me = world.browser()
    await me.sign_in("operator")
    async with world.db.unit_of_work() as session:
        await operators.disable(session, "operator")
    assert (await me.get("/admin")).status_code == 303
    assert (await world.browser().sign_in("operator")).status_code == 401


async def test_idle_sessions_expire(urls: tuple[str, str], clock: FrozenClock) -> None:
    async with console_world(urls, clock) as world:
        me = world.browser()
        await me.sign_in("admin")
        sessions = world.wechat.app.state.console_sessions
        sid = sessions.signer.unsign(me.client.cookies.get(COOKIE)).decode()
        ttl = await world.wechat.services.kv.ttl(sessions._key(sid))
        assert ttl is not None
        assert 29 * 60 < ttl <= 30 * 60
        await world.wechat.services.kv.expire(sessions._key(sid), 0.05)
        await asyncio.sleep(0.2)
        expired = await me.get("/admin?tab=1")
        assert expired.status_code == 303
        assert expired.headers["location"] == "/admin/login?next=/admin%3Ftab%3D1"


async def test_sign_in_goes_only_to_console_pages(world: ConsoleWorld) -> None:
    me = world.browser()
    for target in ("https://evil.example/", "//evil.example/admin", "/admin\\..\\x"):
        response = await me.sign_in("admin", next=target)
        assert response.headers["location"] == "/admin"


async def test_each_sign_in_is_audited(world: ConsoleWorld) -> None:
    await (world.browser()).sign_in("analyst")
    async with world.db.sessions() as session:
        rows = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "sign_in"))).all()
    assert [(r.actor, r.actor_role, r.target, r.client) for r in rows] == [
        ("analyst", "analyst", "operator:analyst", "127.0.0.1")]


class _CountingHasher:
    """The argon2 hasher, counting the checks and the cost parameters of the hash each was made against."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.checked: list[str] = []

    def hash(self, password: str) -> str:
        return self.real.hash(password)  # type: ignore[attr-defined]

    def verify(self, hashed: str, password: str) -> bool:
        self.checked.append(hashed.rsplit("$", 2)[0])  # $argon2id$v=19$m=...,t=...,p=...: the cost, not the salt
        return self.real.verify(hashed, password)  # type: ignore[attr-defined]


async def test_an_unknown_name_costs_the_same_argon2_check_as_a_known_one(
    world: ConsoleWorld, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Constant time, deterministically: either answer is exactly one argon2 check at the same cost."""
    spy = _CountingHasher(operators._HASHER)
    monkeypatch.setattr(operators, "_HASHER", spy)
    assert (await world.browser().sign_in("admin", "wrong-password")).status_code == 401
    assert (await world.browser().sign_in("nobody-at-all", "wrong-password")).status_code == 401
    known, unknown = spy.checked
    assert unknown == known


async def test_outside_demo_mode_the_session_cookie_is_secure(urls: tuple[str, str], clock: FrozenClock) -> None:
    async with console_world(urls, clock, wechat_appsecret="a-real-secret") as world:
        me = world.browser()
        me.client.base_url = "https://wxbot.test"  # a browser sends Secure cookies back over HTTPS only
        signed = await me.sign_in("admin")
        cookie = next(v for k, v in signed.headers.multi_items() if k == "set-cookie" and v.startswith(f"{COOKIE}="))
        assert "Secure" in cookie
