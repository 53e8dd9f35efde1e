"""A new leader catches up what fell due while nobody led (job_run), as of each due time; a due time
past the catch-up limit is not run late but raised as a job_skipped anomaly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from scheduler.main import PushScheduler
from storage import jobruns
from storage.models import Anomaly, LedgerEntry
from tests.support.factories import add_member, local
from tests.support.push_support import PushWorld, eventually, push_world

NOW = local(2026, 5, 20, 10, 0)


@pytest.fixture
async def world(urls: tuple[str, str]) -> AsyncIterator[PushWorld]:
    async with push_world(urls, at=NOW) as w:
        yield w


async def test_missed_days_are_caught_up_or_reported(world: PushWorld) -> None:
    members = {day: await add_member(world.db, NOW, birthday=(5, day)) for day in (18, 19, 20)}
    async with world.db.unit_of_work() as session:  # the last leader ran birthday on the 17th, then died
        await jobruns.start_tracking(session, "birthday", local(2026, 5, 17, 9))
    scheduler = PushScheduler(world.ctx, world.new_kv(), world.clock, None, lease=1.0, renew_every=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))

    async def caught_up() -> bool:  # the missed birthdays run, and the untracked job has begun its record
        async with world.db.sessions() as session:
            birthday = await jobruns.done_through(session, "birthday")
            expiry = await jobruns.done_through(session, "expire_points")
            return birthday == local(2026, 5, 20, 9) and expiry is not None

    try:
        await eventually(caught_up, within=20, every=0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    async with world.db.sessions() as session:
        credited = set((await session.scalars(
            select(LedgerEntry.member_id).where(LedgerEntry.kind == "birthday"))).all())
        skipped = list((await session.scalars(select(Anomaly).where(Anomaly.kind == "job_skipped"))).all())
        tracked = await jobruns.done_through(session, "expire_points")
    assert credited == {members[20]}  # today's run, 1 h late, as of 09:00; not days late
    assert sorted(a.dedupe_key for a in skipped) == [
        f"job_skipped:birthday:{local(2026, 5, d, 9).isoformat()}" for d in (18, 19)]
    assert all("wxbot jobs run birthday --at" in a.detail for a in skipped)
    assert tracked == NOW  # a job never tracked begins its record: no history invented


@pytest.mark.parametrize("job", ["campaigns", "announce_anomalies", "ticket_sla"])
async def test_a_minute_job_missed_for_days_runs_once_and_reports_nothing(world: PushWorld, job: str) -> None:
    """Each run of these jobs settles everything due by then, so days of missed minutes are one run as of now,
    not 2,880 runs nor 2,880 job_skipped anomalies (each of which the operations robot would post)."""
    async with world.db.unit_of_work() as session:
        await jobruns.start_tracking(session, job, local(2026, 5, 18, 10))
    scheduler = PushScheduler(world.ctx, world.new_kv(), world.clock, None, lease=1.0, renew_every=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))

    async def caught_up() -> bool:
        async with world.db.sessions() as session:
            return await jobruns.done_through(session, job) == NOW

    try:
        await eventually(caught_up, within=20, every=0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    async with world.db.sessions() as session:
        skipped = (await session.scalars(
            select(Anomaly).where(Anomaly.kind == "job_skipped").where(Anomaly.dedupe_key.contains(job)))).all()
    assert list(skipped) == []
