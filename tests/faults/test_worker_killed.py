"""`wxbot serve` killed (kill -9) with a check-in in flight, before and after the reply deadline, then
started again: WeChat's retries (same MsgId) or the sweep of durable late deliveries finish the check-in,
exactly once (one ledger entry, balance == ledger, at most one reply in the outbox).

The message is made slow deterministically: the test holds the member's row lock in PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlmodel import col

from devtools.simclient import SignedPush, WeChatSide
from storage.db import Database
from storage.models import LedgerEntry, Outbox
from tests.conftest import SERVER
from tests.faults.servers import REDIS_SERVER, RedisServer, Served, serve_env
from tests.support.factories import add_member
from tests.support.invariants import consistent_points

pytestmark = pytest.mark.skipif(SERVER is None or REDIS_SERVER is None, reason="needs PostgreSQL and redis-server")
TOKEN = "fault-test-token"
DEADLINE = 1.5
OPENID = "oFAULTworkerAAAAAAAAAAAAAAA"


@pytest.fixture
async def db(pg: str) -> AsyncIterator[Database]:
    database = Database(pg)
    yield database
    await database.dispose()


@pytest.fixture
def served(pg: str, redis_server: RedisServer, tmp_path: Path) -> Served:
    env = serve_env(pg, redis_server.url, TOKEN, reply_deadline=str(DEADLINE), delivery_lease="1.0",
                    late_lease="1.0", late_sweep_interval="0.3")
    return Served(env, tmp_path)


@asynccontextmanager
async def member_row_locked(db: Database, member_id: int) -> AsyncIterator[None]:
    """Hold the member's row lock: the check-in's update waits on it until the block ends."""
    async with db.engine.connect() as conn:
        transaction = await conn.begin()
        await conn.execute(text("SELECT id FROM member WHERE id = :id FOR UPDATE"), {"id": member_id})
        try:
            yield
        finally:
            await transaction.rollback()


async def wait_for_lock_waiter(db: Database) -> None:
    """Until a backend of this database waits on a lock (the worker is inside the check-in)."""
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND wait_event_type = 'Lock'")
    deadline = time.monotonic() + 10
    while True:
        async with db.engine.connect() as conn:
            if (await conn.execute(query)).scalar_one():
                return
        assert time.monotonic() < deadline, "the message never reached the member's row"
        await asyncio.sleep(0.02)


def post(base: str, push: SignedPush) -> httpx.Response:
    return httpx.post(f"{base}/wechat", params=push.params, content=push.body, timeout=10)


async def post_soon(base: str, push: SignedPush) -> asyncio.Task[Any]:
    return asyncio.create_task(asyncio.to_thread(post, base, push))


async def ledger_checkins(db: Database, member_id: int) -> int:
    async with db.sessions() as session:
        query = select(func.count()).select_from(LedgerEntry).where(
            col(LedgerEntry.member_id) == member_id, col(LedgerEntry.kind) == "checkin")
        return int((await session.execute(query)).scalar_one())


async def late_replies(db: Database, msg_id: int) -> list[Any]:
    async with db.sessions() as session:
        key = col(Outbox.dedupe_key)
        query = select(key, col(Outbox.payload)).where(key.like(f"late:oa:msg:{msg_id}:%"))
        return list((await session.execute(query)).all())


async def checkin_push(db: Database, msg_id: int) -> tuple[int, WeChatSide, SignedPush]:
    """A fresh member, the WeChat side and its signed 签到 push with this MsgId (each test its own MsgId)."""
    member_id = await add_member(db, datetime.now(UTC), openid=OPENID)
    side = WeChatSide(TOKEN)
    return member_id, side, side.sign(side.text(OPENID, "签到", msg_id=msg_id))


async def test_killed_before_the_deadline_the_retry_checks_in(db: Database, served: Served) -> None:
    member_id, side, push = await checkin_push(db, 8813001)
    base = served.start()
    try:
        async with member_row_locked(db, member_id):
            first = await post_soon(base, push)
            await wait_for_lock_waiter(db)
            served.kill()  # inside the deadline: WeChat gets no answer and will retry
            with pytest.raises(httpx.TransportError):
                await asyncio.wait_for(first, 10)
        base = served.start()
        second = await asyncio.to_thread(post, base, push)  # WeChat's retry, same MsgId
        assert second.status_code == 200
        reply = side.open_reply(second.content)
        assert reply is not None, "the retry was answered `success`: the check-in was lost"
        assert reply["Content"].startswith("签到成功"), reply["Content"]
        third = await asyncio.to_thread(post, base, push)
        assert side.open_reply(third.content) == reply
    finally:
        served.kill()
    assert await ledger_checkins(db, member_id) == 1
    assert (await consistent_points(db, member_id)).balance == 5
    assert await late_replies(db, 8813001) == []


async def test_killed_after_the_deadline_the_late_reply_is_recovered(db: Database, served: Served) -> None:
    member_id, side, push = await checkin_push(db, 8813002)
    base = served.start()
    try:
        async with member_row_locked(db, member_id):
            first = await asyncio.wait_for(await post_soon(base, push), 10)
            assert first.status_code == 200
            assert first.text == "success"  # past the deadline: the reply is to follow through the outbox
            served.kill()  # the late task dies with the process
        base = served.start()
        retries = [await asyncio.to_thread(post, base, push) for _ in range(2)]  # WeChat's retries
        assert all(r.status_code == 200 for r in retries)
        deadline = time.monotonic() + 15
        while not (rows := await late_replies(db, 8813002)):
            assert time.monotonic() < deadline, "the abandoned late delivery was never recovered"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # a second run, if there were one, would have written by now
        rows = await late_replies(db, 8813002)
    finally:
        served.kill()
    assert len(rows) == 1, rows
    assert "签到成功" in rows[0].payload
    assert await ledger_checkins(db, member_id) == 1
    assert (await consistent_points(db, member_id)).balance == 5
    async with db.sessions() as session:
        status = (await session.execute(text("SELECT status FROM late_delivery"))).scalars().all()
    assert list(status) == ["done"]
