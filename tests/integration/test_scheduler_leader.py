"""Several push processes together (issue 6, "One active scheduler"): two PushSchedulers, each with its
own sender, and a third sender, sharing one database and one KV as separate processes would. On
PostgreSQL + Redis this is the case that matters (SKIP LOCKED claims, a Redis lease); SQLite + memory://
runs it too.

Checked against the fake WeChat API: every push is sent at most once (template sends carry the outbox
dedupe key as client_msg_id), every row ends final, one leader at a time, the standby takes over once
the dead leader's lease runs out, and re-running a job changes nothing."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from scheduler.jobs import JOBS
from scheduler.main import LEADER_KEY, PushScheduler
from storage import cswindow, outbox
from storage.models import LedgerEntry, Member, Outbox, WinbackOffer
from tests.support.factories import local
from tests.support.push_support import (
    TEMPLATE,
    TEMPLATES,
    LotSpec,
    PushWorld,
    bulk_lots,
    bulk_members,
    eventually,
    openid_for,
    push_world,
)

pytestmark = pytest.mark.kv_cluster  # also on a Redis Cluster (issue 20)

NOW = local(2026, 5, 20, 10, 0)  # 10:00 local, a Wednesday: outside quiet hours
LEASE, RENEW = 1.0, 0.2


@pytest.fixture
async def world(urls: tuple[str, str]) -> AsyncIterator[PushWorld]:
    async with push_world(urls, at=NOW, wechat_template_ids=TEMPLATES) as w:
        yield w


def scheduler(world: PushWorld, *, with_sender: bool = True) -> PushScheduler:
    """One push process: its own KV client, its own sender, the shared database."""
    kv = world.new_kv()
    return PushScheduler(
        world.ctx, kv, world.clock, world.new_sender(kv=kv) if with_sender else None, lease=LEASE, renew_every=RENEW,
    )


async def members(world: PushWorld, n: int, start: int = 0) -> list[int]:
    return await bulk_members(world.db, [{
        "openid": openid_for(f"L{start + i}"), "joined_at": NOW, "last_interaction_at": NOW,
    } for i in range(n)])


async def openids(world: PushWorld, ids: list[int]) -> dict[int, str]:
    async with world.db.sessions() as session:
        rows = (await session.execute(select(Member.id, Member.openid).where(Member.id.in_(ids)))).all()  # type: ignore[union-attr]
    return {int(r[0]): str(r[1]) for r in rows}


async def queue_wave(world: PushWorld, ids: list[int], wave: str) -> set[str]:
    """Per member: one marketing push and one transactional push."""
    keys = set()
    for member_id, openid in (await openids(world, ids)).items():
        for kind, category in (("birthday", outbox.MARKETING), ("notice", outbox.TRANSACTIONAL)):
            key = f"{wave}:{kind}:{member_id}"
            await world.queue(key, member_id=member_id, openid=openid, kind=kind, category=category)
            keys.add(key)
    return keys


async def all_final(world: PushWorld) -> bool:
    async with world.db.sessions() as session:
        open_rows = await session.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.status.not_in(outbox.FINAL))  # type: ignore[attr-defined]
        )
    return not open_rows


async def test_two_schedulers_and_three_senders_send_each_push_once(world: PushWorld) -> None:
    ids = await members(world, 40)
    for openid in list((await openids(world, ids)).values())[::4]:  # they wrote recently: customer service
        await cswindow.opened_by_message(world.kv, "oa", openid)
    first_wave = await queue_wave(world, ids, "w1")

    stop = asyncio.Event()
    one, two = scheduler(world), scheduler(world)
    third = world.new_sender(kv=world.new_kv())
    tasks = {
        "one": asyncio.create_task(one.run(stop)),
        "two": asyncio.create_task(two.run(stop)),
        "third": asyncio.create_task(third.run_forever(stop, idle=0.05)),
    }
    leaders_seen: list[int] = []

    async def watch() -> None:
        while not stop.is_set():
            leaders_seen.append(sum(s.is_leader for s in (one, two)))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        await eventually(lambda: one.is_leader or two.is_leader)
        await eventually(lambda: all_final(world), within=30, every=0.1)
        second_wave = await queue_wave(world, ids, "w2")
        await eventually(lambda: all_final(world), within=30, every=0.1)
        await asyncio.sleep(3 * RENEW)  # a few renewals with everyone idle
    finally:
        stop.set()
        done, pending = await asyncio.wait([*tasks.values(), watcher], timeout=10)
    assert not pending, "a push process did not stop"
    for task in done:
        assert task.exception() is None

    assert max(leaders_seen) == 1, "two leaders at once"
    assert await world.kv.get(LEADER_KEY) is None  # released on exit

    rows = await world.rows()
    assert {r.dedupe_key for r in rows} == first_wave | second_wave
    assert Counter(r.status for r in rows) == {"sent": len(rows)}
    sends = await world.delivered()
    assert len(sends) == len(rows)  # one call per push, none twice
    by_key = Counter(c["body"]["client_msg_id"] for c in sends if c["path"] == TEMPLATE)
    assert set(by_key.values()) == {1}
    cs_rows = [r for r in rows if r.channel == "cs"]
    assert Counter(c["path"] for c in sends)["/cgi-bin/message/custom/send"] == len(cs_rows) > 0
    assert {r.dedupe_key for r in rows if r.channel == "template"} == set(by_key)
    for row in rows:  # one attempt each: nobody claimed a row another sender held
        assert row.attempts == 1, row.dedupe_key


async def test_the_standby_takes_over_when_the_leader_dies(world: PushWorld) -> None:
    ids = await members(world, 20)
    stop = asyncio.Event()
    leader = scheduler(world)
    leader_task = asyncio.create_task(leader.run(stop))
    await eventually(lambda: leader.is_leader)
    standby = scheduler(world)
    spare = world.new_sender(kv=world.new_kv())
    tasks = [asyncio.create_task(standby.run(stop)), asyncio.create_task(spare.run_forever(stop, idle=0.05))]
    try:
        first_wave = await queue_wave(world, ids, "before")
        await eventually(lambda: all_final(world), within=30, every=0.1)
        await asyncio.sleep(2 * LEASE)
        assert leader.is_leader  # the lease is renewed, not lost
        assert not standby.is_leader

        # Kill the leader: the process dies without letting go of its lease.
        async def no_release(*args: Any) -> bool:
            return False

        leader.kv.delete_if = no_release  # type: ignore[method-assign]
        leader_task.cancel()
        killed = time.monotonic()
        left = await world.kv.ttl(LEADER_KEY)  # what is left of the dead leader's last renewal
        await asyncio.wait([leader_task], timeout=5)
        assert leader_task.done()
        assert left is not None
        assert await world.kv.get(LEADER_KEY) == leader.instance  # still held by the dead leader

        await eventually(lambda: standby.is_leader, within=5 * LEASE, every=0.01)
        took = time.monotonic() - killed
        # Not before the dead leader's lease ran out; then at the standby's next check (every RENEW s).
        assert left - 0.05 <= took <= left + RENEW + 0.3, (left, took)
        assert took <= LEASE + RENEW + 0.3  # within the lease time
        assert await world.kv.get(LEADER_KEY) == standby.instance
        assert standby._aps is not None  # its cron jobs are scheduled
        assert standby._aps.running

        second_wave = await queue_wave(world, ids, "after")  # the survivors carry on sending
        await eventually(lambda: all_final(world), within=30, every=0.1)
    finally:
        stop.set()
        await asyncio.wait([leader_task, *tasks], timeout=10)
    rows = await world.rows()
    assert {r.dedupe_key for r in rows} == first_wave | second_wave
    assert Counter(r.status for r in rows) == {"sent": len(rows)}
    by_key = Counter(c["body"]["client_msg_id"] for c in await world.delivered())
    assert set(by_key) == first_wave | second_wave
    assert set(by_key.values()) == {1}


async def test_a_leader_that_stops_hands_over_at_once(world: PushWorld) -> None:
    leader, standby = scheduler(world, with_sender=False), scheduler(world, with_sender=False)
    stop_leader, stop = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(leader.run(stop_leader))
    await eventually(lambda: leader.is_leader)
    second = asyncio.create_task(standby.run(stop))
    await asyncio.sleep(2 * RENEW)
    assert not standby.is_leader
    stop_leader.set()  # a clean exit releases the lease
    await asyncio.wait([first], timeout=3)
    assert await eventually(lambda: standby.is_leader, within=LEASE) <= 2 * RENEW + 0.2
    stop.set()
    await asyncio.wait([second], timeout=3)


async def test_a_leader_that_loses_its_lease_stands_down(world: PushWorld) -> None:
    leader = scheduler(world, with_sender=False)
    stop = asyncio.Event()
    task = asyncio.create_task(leader.run(stop))
    try:
        await eventually(lambda: leader.is_leader)
        await world.kv.set(LEADER_KEY, "someone-else", ex=30)  # e.g. it stalled past its lease
        await eventually(lambda: not leader.is_leader, within=3 * RENEW + 0.5)
        assert leader._aps is None  # its cron jobs are stopped
        assert await world.kv.get(LEADER_KEY) == "someone-else"
    finally:
        stop.set()
        await asyncio.wait([task], timeout=3)


# --- jobs: dedupe keys make re-runs (and two schedulers running one job) harmless --------------------


async def seed_due_work(world: PushWorld) -> None:
    """Members for every job as of NOW: birthdays today, points expiring this month, quiet members."""
    long_ago = local(2026, 3, 1, 12, 0)
    rows = [{
        "openid": openid_for(f"J{i}"), "joined_at": long_ago,
        "last_interaction_at": long_ago if i % 3 == 0 else NOW,
        "birthday_month": 5 if i % 2 == 0 else 6, "birthday_day": 20,
    } for i in range(30)]
    ids = await bulk_members(world.db, rows)
    await bulk_lots(world.db, world.ledger, [
        LotSpec(member_id, 100, local(2025, 5 if i % 2 else 4, 15, 12)) for i, member_id in enumerate(ids)
    ])  # lots earned in April 2025 expired on 1 May; May's expire on 1 June


async def snapshot(world: PushWorld) -> dict[str, Any]:
    async with world.db.sessions() as session:
        return {
            "entries": sorted((await session.scalars(select(LedgerEntry.idempotency_key))).all()),
            "outbox": sorted((await session.scalars(select(Outbox.dedupe_key))).all()),
            "offers": int(await session.scalar(select(func.count()).select_from(WinbackOffer)) or 0),
        }


async def test_running_each_job_twice_changes_nothing(world: PushWorld) -> None:
    await seed_due_work(world)
    one = scheduler(world, with_sender=False)
    firsts = {name: await one.run_job(name, NOW) for name in ("expire_points", "birthday", "expiry_reminders",
                                                             "winback", "tier_review")}
    assert (firsts["birthday"], firsts["winback"], firsts["expiry_reminders"]) == (15, 10, 15)
    assert firsts["expire_points"] == 15 * 100
    after_first = await snapshot(world)
    for name in firsts:
        assert await one.run_job(name, NOW) == 0, name
    assert await snapshot(world) == after_first
    # Later the same day (a re-run of a missed day, or an operator retrying): still nothing new.
    for name in firsts:
        await one.run_job(name, local(2026, 5, 20, 18, 0))
    assert await snapshot(world) == after_first


async def test_two_schedulers_running_the_same_jobs_at_once_do_everything_once(world: PushWorld) -> None:
    """Even without the lease (a split brain), the dedupe keys keep every effect single."""
    await seed_due_work(world)
    one, two = scheduler(world, with_sender=False), scheduler(world, with_sender=False)
    for name in ("expire_points", "birthday", "expiry_reminders", "winback"):
        results = await asyncio.gather(one.run_job(name, NOW), two.run_job(name, NOW))
        if name != "expire_points":
            assert sum(results) == {"birthday": 15, "expiry_reminders": 15, "winback": 10}[name], name
    state = await snapshot(world)
    assert sum(k.startswith("birthday:") for k in state["entries"]) == 15
    assert sum(k.startswith("expire:") for k in state["entries"]) == 15
    assert sum(k.startswith("birthday:") for k in state["outbox"]) == 15
    # The first stage of a win-back is the warning (its push, no offer yet): each of the 10 once.
    assert sum(k.startswith("winback:") and ":warn:" in k for k in state["outbox"]) == 10
    assert state["offers"] == 0


def test_every_job_is_scheduled() -> None:
    from scheduler.jobs import SCHEDULE

    assert set(SCHEDULE) == set(JOBS)
