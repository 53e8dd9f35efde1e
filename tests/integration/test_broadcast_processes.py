"""Issue 16: a broadcast to 10,000 members sent by two real sender processes (each a `wxbot scheduler` push
process, tests/faults/push_process.py) against a fake WeChat API server process, on a simulated clock every
process reads: expanded at 22:00 local (quiet hours, nothing goes out), sent from 09:00; every eligible member
gets exactly one push, the opted-out and the capped none.

Processes share the database and Redis, so this runs on PostgreSQL + Redis only."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from scheduler.jobs import JOBS, JobContext
from storage import audit, broadcasts
from storage.audiences import Audience
from storage.db import Database
from storage.ledger import Ledger
from storage.models import Broadcast, Outbox
from storage.rules import Rules
from tests.faults.fleet import Fleet, fleet
from tests.support.factories import TZ, local
from tests.support.push_support import TEMPLATE, bulk_members, capped_members, openid_for

EXPAND_AT = local(2026, 12, 2, 22, 0)
SEND_AT = local(2026, 12, 3, 9, 0)
ELIGIBLE, OPTED_OUT, CAPPED = 9_700, 150, 150


@pytest.fixture
def shared(backend: str, urls: tuple[str, str]) -> tuple[str, str]:
    if backend != "postgres":
        pytest.skip("separate processes share PostgreSQL and Redis; memory:// lives inside one process")
    return urls


async def people(db: Database, prefix: str, n: int, **extra: object) -> list[int]:
    return await bulk_members(db, [{
        "openid": openid_for(f"{prefix}{i}"), "joined_at": EXPAND_AT - timedelta(days=60),
        "last_interaction_at": EXPAND_AT - timedelta(days=3), **extra,
    } for i in range(n)])


async def states(db: Database, broadcast_id: int) -> dict[str, int]:
    async with db.sessions() as session:
        return {str(s): int(n) for s, n in (await session.execute(
            select(Outbox.status, func.count()).where(Outbox.broadcast_id == broadcast_id).group_by(Outbox.status)
        )).all()}


def template_sends(group: Fleet) -> Counter[str]:
    return Counter(str(c["body"]["touser"]) for c in group.calls() if c["path"] == TEMPLATE)


async def test_two_sender_processes_send_each_eligible_member_one_push(
    shared: tuple[str, str], tmp_path: Path,
) -> None:
    db_url, redis_url = shared
    db = Database(db_url)
    ctx = JobContext(db, Ledger(Rules(), TZ))
    try:
        await people(db, "e", ELIGIBLE)
        await people(db, "o", OPTED_OUT, marketing_opt_out=True)
        await capped_members(db, await people(db, "c", CAPPED), EXPAND_AT)
        draft = broadcasts.checked(
            name="双十二", kind="campaign", audience=Audience(), content={"text": "双十二全场八折"}, send_at=None,
            deadline=None, request_id="req-fleet", tiers=[t.name for t in Rules().tiers], now=EXPAND_AT,
        )
        async with db.unit_of_work() as session:
            made, _ = await broadcasts.create(session, draft, actor=audit.Actor("ops", "operator"), now=EXPAND_AT)
        broadcast_id = int(made.id or 0)
        # The scheduler's every-minute job at 22:00 local: one row per reachable member, all waiting for 09:00.
        assert await JOBS["broadcasts"](ctx, EXPAND_AT) == ELIGIBLE + CAPPED
        assert await JOBS["broadcasts"](ctx, EXPAND_AT) == 0  # a re-run adds nothing

        with fleet(db_url, redis_url, tmp_path, EXPAND_AT + timedelta(minutes=1)) as group:
            group.start_scheduler("a")
            group.start_scheduler("b")
            await asyncio.sleep(3)  # both senders poll through quiet hours
            assert template_sends(group) == Counter()
            assert await states(db, broadcast_id) == {"pending": ELIGIBLE + CAPPED}

            group.set_time(SEND_AT)
            started = time.monotonic()
            while (now := await states(db, broadcast_id)).get("pending", 0) + now.get("sending", 0):
                assert time.monotonic() - started < 600, f"not sent within 600 s: {now}"
                for name in ("a", "b"):
                    assert group.procs[name].poll() is None, group.log(name)
                await asyncio.sleep(0.5)
            got = template_sends(group)
            senders = {name: group.log(name) for name in ("a", "b")}

        assert set(got.values()) == {1}  # nobody twice
        assert set(got) == {openid_for(f"e{i}") for i in range(ELIGIBLE)}  # every eligible member, nobody else
        assert await states(db, broadcast_id) == {"sent": ELIGIBLE, "dropped": CAPPED}
        async with db.sessions() as session:
            stored = await session.get(Broadcast, broadcast_id)
            claimed_by = {str(b) for b in (await session.scalars(
                select(Outbox.claimed_by).where(Outbox.broadcast_id == broadcast_id).distinct()
            )).all()}
        assert stored is not None
        assert (stored.status, stored.queued) == ("sent", ELIGIBLE + CAPPED)
        assert len(claimed_by) == 2, (claimed_by, senders)  # both processes sent a share
    finally:
        await db.dispose()
