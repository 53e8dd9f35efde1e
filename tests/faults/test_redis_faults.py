"""Redis stalled past the reply deadline, and Redis killed and restarted: the member gets the answer or
an honest "try again", a retry of the same MsgId processes what was not processed, and every check-in
lands once (balance == ledger)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from handlers import texts
from storage.clock import FrozenClock
from storage.models import LedgerEntry, Outbox
from tests.conftest import SERVER, START
from tests.faults.servers import REDIS_SERVER, RedisServer
from tests.support.factories import add_member
from tests.support.fakes import WeChat, make_app, make_settings, serving
from tests.support.helpers import count_rows, post_signed
from tests.support.invariants import consistent_points

pytestmark = pytest.mark.skipif(SERVER is None or REDIS_SERVER is None, reason="needs PostgreSQL and redis-server")
DEADLINE = 2.0
LEASE = 0.6  # WeChat's retries come ~5 s apart; scaled down with the deadline
OPENIDS = ["oFAULTredisAAAAAAAAAAAAAAAA", "oFAULTredisBBBBBBBBBBBBBBBB", "oFAULTredisCCCCCCCCCCCCCCCC"]


@pytest.fixture
async def wechat_on(pg: str, redis_server: RedisServer) -> AsyncIterator[WeChat]:
    settings = make_settings(pg, redis_server.url, reply_deadline=DEADLINE, delivery_lease=LEASE)
    clock = FrozenClock(START)
    async with serving(make_app(settings, clock), clock) as harness:
        yield harness


async def checkins(wechat: WeChat, member_id: int) -> int:
    async with wechat.services.db.sessions() as session:
        query = select(func.count()).select_from(LedgerEntry).where(
            col(LedgerEntry.member_id) == member_id, col(LedgerEntry.kind) == "checkin")
        return int((await session.execute(query)).scalar_one())


async def outbox_count(wechat: WeChat) -> int:
    return await count_rows(wechat.app, Outbox)


async def test_a_stall_past_the_deadline_asks_to_retry_and_the_retry_checks_in(
    wechat_on: WeChat, redis_server: RedisServer
) -> None:
    wechat = wechat_on
    member_id = await add_member(wechat.services.db, START, openid=OPENIDS[0])
    push = wechat.side.sign(wechat.side.text(OPENIDS[0], "签到", msg_id=8812001))
    redis_server.stall()
    try:
        started = time.monotonic()
        first = await asyncio.wait_for(post_signed(wechat, push), DEADLINE + 2)  # hung forever before the fix
        elapsed = time.monotonic() - started
    finally:
        redis_server.resume()  # Redis now runs the claim the first attempt gave up on
    assert first.status_code == 200
    assert elapsed < DEADLINE + 0.5, elapsed
    assert (wechat.side.open_reply(first.content) or {})["Content"] == texts.RETRY_LATER

    # WeChat's retry (same MsgId): the abandoned claim lapses, so this copy processes the message
    second = await asyncio.wait_for(post_signed(wechat, push), DEADLINE + 2)
    reply = wechat.side.open_reply(second.content)
    assert reply is not None, "the retry was answered `success`: the check-in was lost"
    assert reply["Content"].startswith("签到成功"), reply["Content"]
    third = await asyncio.wait_for(post_signed(wechat, push), DEADLINE + 2)
    assert wechat.side.open_reply(third.content) == reply
    assert await checkins(wechat, member_id) == 1
    assert (await consistent_points(wechat.services.db, member_id)).balance == 5
    assert await outbox_count(wechat) == 0


async def test_after_a_restart_pooled_connections_heal_at_once(wechat_on: WeChat, redis_server: RedisServer) -> None:
    wechat = wechat_on
    members = [await add_member(wechat.services.db, START, openid=o) for o in OPENIDS]
    # several messages at once fill the pool with connections that the restart will leave dead
    warm = await asyncio.gather(*(wechat.say(o, "积分") for o in OPENIDS))
    # the exact balance reply, not merely some text (RETRY_LATER is text too)
    zero_balance = texts.BALANCE.format(
        balance=0, tier="普通", progress=texts.BALANCE_PROGRESS.format(gap=1000, next="银卡"),
        expiring=texts.BALANCE_NO_EXPIRING)
    assert warm == [zero_balance] * len(OPENIDS), warm
    redis_server.restart()
    back = time.monotonic()

    async def ready_within_two_seconds() -> None:
        while (ready := await wechat.client.get("/readyz")).status_code != 200:
            assert time.monotonic() - back < 2, ready.json()
            await asyncio.sleep(0.05)

    checking_in = asyncio.gather(*(wechat.say(o, "签到") for o in OPENIDS))
    answers, _ = await asyncio.wait_for(asyncio.gather(checking_in, ready_within_two_seconds()), DEADLINE + 3)
    assert all(a.startswith("签到成功") for a in answers), answers
    # the conversation locks were let go: the next message of each member is answered, not "busy"
    again = await asyncio.gather(*(wechat.say(o, "签到") for o in OPENIDS))
    assert all(a.startswith("今天已经签过到啦") for a in again), again
    for member_id in members:
        assert await checkins(wechat, member_id) == 1
        assert (await consistent_points(wechat.services.db, member_id)).balance == 5
    assert await outbox_count(wechat) == 0
