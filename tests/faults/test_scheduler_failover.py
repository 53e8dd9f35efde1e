"""Issue 12, finding 4: the scheduler leader is a real OS process killed with SIGKILL, mid-batch and
across a job's due time; a standby process finishes the work. Checked exactly once against a fake
WeChat API server process: every push delivered once (none lost, none doubled), every outbox row
final, balance == sum of the ledger, the missed job run once.

Processes share the database and Redis, so this runs on PostgreSQL + Redis only (memory:// lives
inside one process)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from scheduler.jobs import JobContext, birthday
from scheduler.main import LEADER_KEY
from storage import outbox
from storage.db import Database
from storage.kv import KV
from storage.ledger import Ledger
from storage.models import LedgerEntry, Member, Outbox
from storage.rules import Rules
from tests.faults.fleet import Fleet, fleet
from tests.support.factories import TZ, local
from tests.support.push_support import TEMPLATE, bulk_members, openid_for

DAY = (2026, 5, 20)
BIRTHDAYS = 16
LEASE, RENEW, SENDER_LEASE = 2.0, 0.5, 3.0
PROCESS = {"lease": LEASE, "renew": RENEW, "sender_lease": SENDER_LEASE}


@pytest.fixture
def shared(backend: str, urls: tuple[str, str]) -> tuple[str, str]:
    if backend != "postgres":
        pytest.skip("separate processes share PostgreSQL and Redis; memory:// lives inside one process")
    return urls


async def wait_for(predicate: Callable[[], Any], what: str, within: float) -> float:
    """Poll until predicate() (plain or async) is true; seconds taken. Fails naming `what`."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within} s: {what}")


async def birthday_members(db: Database) -> list[int]:
    return await bulk_members(db, [{
        "openid": openid_for(f"F{i}"), "joined_at": local(2026, 1, 1), "last_interaction_at": local(*DAY, 8),
        "birthday_month": DAY[1], "birthday_day": DAY[2],
    } for i in range(BIRTHDAYS)])


async def rows(db: Database) -> list[Outbox]:
    async with db.sessions() as session:
        return list((await session.scalars(select(Outbox).order_by(Outbox.id))).all())


async def all_final(db: Database) -> bool:
    found = await rows(db)
    return bool(found) and all(r.status in outbox.FINAL for r in found)


def sends(group: Fleet) -> list[dict[str, Any]]:
    return [c for c in group.calls() if c["path"] == TEMPLATE]


def deliveries(group: Fleet) -> Counter[str]:
    """client_msg_id -> how many times the fake delivered it (a deduped repeat is not a delivery)."""
    return Counter(c["body"]["client_msg_id"] for c in sends(group) if c["errcode"] == 0 and not c.get("duplicate"))


async def assert_ledger_consistent(db: Database, members: list[int]) -> None:
    async with db.sessions() as session:
        balances = dict((await session.execute(select(Member.id, Member.balance).where(Member.id.in_(members)))).all())  # type: ignore[union-attr]
        sums = dict((await session.execute(
            select(LedgerEntry.member_id, func.sum(LedgerEntry.delta)).group_by(LedgerEntry.member_id)
        )).all())
        greetings = await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "birthday")
        )
    assert greetings == len(members)  # each birthday credited once
    for member_id in members:
        assert balances[member_id] == sums[member_id] == Rules().birthday_points, member_id


async def leader(kv: KV) -> str | None:
    return await kv.get(LEADER_KEY)


async def leads(kv: KV, instance: str) -> bool:
    return await leader(kv) == instance


async def test_leader_killed_mid_batch_standby_sends_each_push_once(
    shared: tuple[str, str], tmp_path: Path,
) -> None:
    db, kv = Database(shared[0]), KV(shared[1])
    try:
        members = await birthday_members(db)
        # The birthday run queued its greetings (and credited the points); a redemption code waits too.
        await birthday(JobContext(db, Ledger(Rules(), TZ)), local(*DAY, 9))
        async with db.unit_of_work() as session:
            await outbox.enqueue(session, dedupe_key="redeem:1", openid=openid_for("F0"), kind="notice",
                                 member_id=members[0], now=local(*DAY, 9), payload={"params": {"code": "A1"}})
        keys = {r.dedupe_key for r in await rows(db)}
        assert len(keys) == BIRTHDAYS + 1

        with fleet(*shared, tmp_path, local(*DAY, 9, 0, 5)) as group:
            group.slow(TEMPLATE, 1.0)  # each send takes a while: the kill lands mid-send, mid-batch
            first = group.start_scheduler("a", **PROCESS)
            await wait_for(lambda: leader(kv), "a leader", 10)
            assert await leader(kv) == first
            second = group.start_scheduler("b", **PROCESS)  # the standby, with its own sender
            await wait_for(lambda: len(sends(group)) >= 2, "the leader sending", 20)
            await asyncio.sleep(0.4)
            assert len(sends(group)) < len(keys)
            group.kill("a")
            killed = time.monotonic()
            group.slow(TEMPLATE, 0)
            assert any(r.status == outbox.SENDING for r in await rows(db))  # the dead leader's batch

            await wait_for(lambda: all_final(db), "every outbox row final", 30)
            took = time.monotonic() - killed
            await wait_for(lambda: leads(kv, second), "the standby leading", 10)
            delivered = deliveries(group)

        final = await rows(db)
        assert Counter(r.status for r in final) == {"sent": len(keys)}, [(r.dedupe_key, r.status) for r in final]
        assert set(delivered) == keys  # none lost
        assert set(delivered.values()) == {1}  # none doubled
        assert took < 60  # the dead sender's claim was taken over within its short lease
        await assert_ledger_consistent(db, members)
    finally:
        await kv.close()
        await db.dispose()


async def test_leader_killed_across_a_due_time_the_standby_runs_the_job_once(
    shared: tuple[str, str], tmp_path: Path,
) -> None:
    db, kv = Database(shared[0]), KV(shared[1])
    due = local(*DAY, 9)
    try:
        members = await birthday_members(db)
        with fleet(*shared, tmp_path, due - timedelta(minutes=5)) as group:
            first = group.start_scheduler("a", **PROCESS)
            await wait_for(lambda: leader(kv), "a leader", 10)
            assert await leader(kv) == first
            second = group.start_scheduler("b", **PROCESS)
            await asyncio.sleep(2 * RENEW)  # the standby has looked at the lease
            # Kill the leader just before 09:00: its lease outlives it, so nobody leads at 09:00.
            group.set_time(due - timedelta(seconds=1))
            await asyncio.sleep(0.5)
            group.kill("a")
            assert group.now() < due

            await wait_for(lambda: leads(kv, second), "the standby leading", 10)
            assert group.now() > due  # the standby took over after the due time
            await wait_for(lambda: sum(deliveries(group).values()) >= BIRTHDAYS, "the missed birthday greetings", 30)
            await wait_for(lambda: all_final(db), "every outbox row final", 20)
            delivered = deliveries(group)
            runs = [line for name in ("a", "b") for line in group.log(name).splitlines()
                    if line.startswith("wxbot.scheduler INFO job birthday as of")]

        assert runs == [f"wxbot.scheduler INFO job birthday as of {due.isoformat()}: {BIRTHDAYS}"]  # once, as of 09:00
        final = await rows(db)
        assert Counter(r.status for r in final) == {"sent": BIRTHDAYS}
        assert set(delivered) == {r.dedupe_key for r in final}
        assert set(delivered.values()) == {1}
        await assert_ledger_consistent(db, members)
    finally:
        await kv.close()
        await db.dispose()

