"""A clerk (staff role `clerk`, bound to a store) verifies a coupon in the chat: `核销 CODE` shows the
coupon and its owner (phone masked) and asks 是; 是 verifies it once, recording the clerk's store; 否
leaves it unused; used, cancelled, expired and unknown codes are refused clearly; anyone else saying
`核销` gets no verification; two clerks confirming one code at once: one wins (both backends)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from handlers import texts
from storage import staff
from storage.clock import FrozenClock
from storage.models import AuditEntry, Redemption
from tests.support.console_support import ConsoleWorld, audit_entries, console_world
from tests.support.ledgerviews_support import FULL_PHONE, coupon, member

pytestmark = pytest.mark.kv_cluster  # also on a Redis Cluster (issue 20)

CLERK, OTHER_CLERK = "oCLERK0000000000000000000001", "oCLERK0000000000000000000002"
MANAGER = "oMANAGER0000000000000000001"


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        async with found.db.unit_of_work() as session:
            await staff.add(session, CLERK, "clerk", "test", clock.now(), store="S001")
            await staff.add(session, OTHER_CLERK, "clerk", "test", clock.now(), store="S002")
            await staff.add(session, MANAGER, "manager", "test", clock.now())
        yield found


async def a_coupon(world: ConsoleWorld, clock: FrozenClock, n: int, **reward: object) -> str:
    owner = await member(world, f"oCLERKowner{n:04d}", f"1380000{n:04d}")
    return (await coupon(world, owner, clock.now(), name="拿铁券", key=f"r-clerk-{n}", **reward)).code


async def redemption(world: ConsoleWorld, code: str) -> Redemption:
    async with world.db.sessions() as session:
        found = await session.scalar(select(Redemption).where(Redemption.code == code))
    assert found is not None
    return found


async def uses(world: ConsoleWorld) -> list[AuditEntry]:
    return await audit_entries(world.db, action="coupon.use")


async def test_a_clerk_sees_the_coupon_confirms_and_it_is_used_once(world: ConsoleWorld, clock: FrozenClock) -> None:
    code = await a_coupon(world, clock, 1)
    asked = await world.wechat.say(CLERK, f"核销 {code.lower()}")
    assert asked.startswith(f"券码 {code}：拿铁券"), asked
    assert "138****0001" in asked
    assert "门店 S001" in asked
    assert not FULL_PHONE.search(asked)
    assert (await redemption(world, code)).status == "issued"  # nothing before 是

    done = await world.wechat.say(CLERK, "是")
    assert done == texts.CLERK_DONE.format(code=code, reward="拿铁券", store="S001")
    row = await redemption(world, code)
    assert (row.status, row.store, row.used_by, row.used_at) == ("used", "S001", f"clerk:{CLERK}", clock.now())
    [entry] = await uses(world)
    assert (entry.actor, entry.actor_role) == (f"clerk:{CLERK}", "staff")

    again = await world.wechat.say(CLERK, "是")  # the flow is over: 是 verifies nothing more
    assert "已核销" not in again
    twice = await world.wechat.say(OTHER_CLERK, f"核销 {code}")
    assert twice.startswith(f"券码 {code} 已于 ")
    assert "在门店 S001 核销" in twice
    assert len(await uses(world)) == 1


async def test_no_leaves_it_unused_and_a_stray_answer_asks_again(world: ConsoleWorld, clock: FrozenClock) -> None:
    code = await a_coupon(world, clock, 2)
    await world.wechat.say(CLERK, f"核销 {code}")
    assert await world.wechat.say(CLERK, "也许") == texts.CLERK_CONFIRM_AGAIN
    assert await world.wechat.say(CLERK, "否") == texts.CLERK_DECLINED
    assert (await redemption(world, code)).status == "issued"
    assert await uses(world) == []


async def test_unknown_cancelled_and_expired_codes_are_refused(world: ConsoleWorld, clock: FrozenClock) -> None:
    assert await world.wechat.say(CLERK, "核销 NOSUCH1") == texts.CLERK_UNKNOWN.format(code="NOSUCH1")
    cancelled = await a_coupon(world, clock, 3)
    async with world.db.unit_of_work() as session:
        await world.wechat.services.rewards.cancel(session, (await redemption(world, cancelled)).id or 0, clock.now())
    assert await world.wechat.say(CLERK, f"核销 {cancelled}") == texts.CLERK_CANCELLED.format(code=cancelled)
    late = await a_coupon(world, clock, 4, validity_days=1)
    clock.advance(days=3)
    expired = await world.wechat.say(CLERK, f"核销 {late}")
    assert expired.startswith(f"券码 {late} 已于 ")
    assert expired.endswith("过期，不能核销。")
    assert (await redemption(world, late)).status == "issued"
    assert await uses(world) == []


@pytest.mark.parametrize("who", [MANAGER, "oCLERKowner0005"])
async def test_only_clerks_verify_in_the_chat(world: ConsoleWorld, clock: FrozenClock, who: str) -> None:
    code = await a_coupon(world, clock, 5)
    answer = await world.wechat.say(who, f"核销 {code}")
    assert answer == await world.wechat.say(who, "随便说点什么")  # not a command for them
    assert await world.wechat.say(who, "是") == await world.wechat.say(who, "随便说点什么")
    assert (await redemption(world, code)).status == "issued"
    assert await uses(world) == []


async def test_two_clerks_confirm_one_code_at_once_and_one_wins(world: ConsoleWorld, clock: FrozenClock) -> None:
    code = await a_coupon(world, clock, 6)
    for clerk in (CLERK, OTHER_CLERK):
        assert (await world.wechat.say(clerk, f"核销 {code}")).startswith(f"券码 {code}：")
    answers = await asyncio.gather(world.wechat.say(CLERK, "是"), world.wechat.say(OTHER_CLERK, "是"))
    won = [a for a in answers if a.startswith("已核销")]
    lost = [a for a in answers if "不能重复使用" in a]
    assert (len(won), len(lost)) == (1, 1), answers
    row = await redemption(world, code)
    assert row.store is not None
    assert f"门店 {row.store}" in won[0]
    assert f"在门店 {row.store} 核销" in lost[0]
    assert len(await uses(world)) == 1
