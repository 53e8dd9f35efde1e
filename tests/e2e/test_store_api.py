"""POST /api/store/coupons/{code}/use with a store's own credential: it verifies once and records the
store on the redemption; used twice → 409 with when and where; another store's credential → 403; an
unknown, missing or revoked one → 401; expired or cancelled → 409 with the state; two tills racing on one
code: exactly one wins (both backends)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from storage import stores
from storage.clock import FrozenClock
from storage.models import AuditEntry, Redemption
from tests.support.console_support import ConsoleWorld, audit_entries, console_world
from tests.support.ledgerviews_support import FULL_PHONE, coupon, member


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def open_store(world: ConsoleWorld, code: str, clock: FrozenClock) -> stores.Credential:
    async with world.db.unit_of_work() as session:
        _, credential = await stores.add(session, code, f"{code} 店", "上海", clock.now())
    return credential


async def a_coupon(world: ConsoleWorld, clock: FrozenClock, n: int, **reward: object) -> str:
    owner = await member(world, f"oSTOREowner{n:04d}", f"1390000{n:04d}")
    return (await coupon(world, owner, clock.now(), key=f"r-store-{n}", **reward)).code


async def use(world: ConsoleWorld, code: str, bearer: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return await world.browser().client.post(f"/api/store/coupons/{code}/use", headers=headers)


async def redemption(world: ConsoleWorld, code: str) -> Redemption:
    async with world.db.sessions() as session:
        found = await session.scalar(select(Redemption).where(Redemption.code == code))
    assert found is not None
    return found


async def audited(world: ConsoleWorld) -> list[AuditEntry]:
    return await audit_entries(world.db, action="coupon.use")


async def test_a_store_verifies_once_and_a_second_use_says_when_and_where(
    world: ConsoleWorld, clock: FrozenClock,
) -> None:
    s001 = await open_store(world, "S001", clock)
    code = await a_coupon(world, clock, 1)
    first = await use(world, code, s001.bearer)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["code"], body["status"], body["store"]) == (code, "used", "S001")
    assert body["owner"] == "139****0001"
    assert not FULL_PHONE.search(first.text)
    row = await redemption(world, code)
    assert (row.status, row.store, row.used_by, row.used_at) == ("used", "S001", "store:S001", clock.now())
    [entry] = await audited(world)
    assert (entry.actor, entry.actor_role, entry.target) == ("store:S001", "store", f"redemption:{row.id}")

    clock.advance(minutes=5)
    again = await use(world, code.lower(), s001.bearer)
    assert again.status_code == 409
    refused = again.json()
    assert (refused["error"], refused["state"], refused["store"]) == ("already_used", "used", "S001")
    assert row.used_at is not None
    assert refused["used_at"] == row.used_at.isoformat()
    assert len(await audited(world)) == 1


async def test_credentials_unknown_missing_other_stores_and_revoked_are_refused(
    world: ConsoleWorld, clock: FrozenClock,
) -> None:
    s001, s002 = await open_store(world, "S001", clock), await open_store(world, "S002", clock)
    code = await a_coupon(world, clock, 2)
    assert (await use(world, code, None)).status_code == 401
    assert (await use(world, code, "S001")).status_code == 401  # no secret
    assert (await use(world, code, f"S001:{s002.secret}x")).status_code == 401
    wrong = await use(world, code, f"S001:{s002.secret}")  # S002's secret presented as S001's
    assert wrong.status_code == 403
    assert wrong.json()["error"] == "forbidden"
    async with world.db.unit_of_work() as session:
        await stores.revoke(session, "S001", clock.now())
    assert (await use(world, code, s001.bearer)).status_code == 401
    async with world.db.unit_of_work() as session:
        await stores.set_active(session, "S002", False)
    assert (await use(world, code, s002.bearer)).status_code == 403  # a closed store
    assert (await redemption(world, code)).status == "issued"
    assert await audited(world) == []


async def test_expired_cancelled_and_unknown_coupons_are_refused_with_their_state(
    world: ConsoleWorld, clock: FrozenClock,
) -> None:
    s001 = await open_store(world, "S001", clock)
    cancelled = await a_coupon(world, clock, 3)
    async with world.db.unit_of_work() as session:
        await world.wechat.services.rewards.cancel(session, (await redemption(world, cancelled)).id or 0, clock.now())
    answer = await use(world, cancelled, s001.bearer)
    assert answer.status_code == 409
    assert (answer.json()["error"], answer.json()["state"]) == ("conflict", "cancelled")

    late = await a_coupon(world, clock, 4, validity_days=1)
    clock.advance(days=3)
    answer = await use(world, late, s001.bearer)
    assert answer.status_code == 409
    assert answer.json()["state"] == "expired"
    assert (await redemption(world, late)).status == "issued"

    assert (await use(world, "NOSUCHCODE", s001.bearer)).status_code == 404
    assert await audited(world) == []


async def test_two_tills_race_for_one_code_and_exactly_one_wins(world: ConsoleWorld, clock: FrozenClock) -> None:
    s001, s002 = await open_store(world, "S001", clock), await open_store(world, "S002", clock)
    code = await a_coupon(world, clock, 5)
    answers = await asyncio.gather(*(use(world, code, who.bearer) for who in (s001, s002, s001, s002)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 409, 409, 409], [a.text for a in answers]
    [won] = [a for a in answers if a.status_code == 200]
    row = await redemption(world, code)
    assert row.store == won.json()["store"]
    assert {a.json()["store"] for a in answers if a.status_code == 409} == {row.store}
    assert len(await audited(world)) == 1
