"""Regression: the expire_points job asked for "members with lapsed lots" from the first member on every
page, moving on only because handling a member zeroed their lots. Each page then read again past every
lot expired before (quadratic at a million members: 15.9 s against 0.66 s paged), and a member whose
expiry failed was selected again and again, so the job never ended. It now pages by member id and
handles each member in a transaction of its own, like the other jobs."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from scheduler import jobs
from scheduler.jobs import JobContext
from storage.db import Database
from storage.ledger import Ledger
from tests.support.factories import local
from tests.support.invariants import consistent_points
from tests.support.redeem_support import add_members


async def test_every_member_is_expired_once_across_pages_even_when_one_fails(
    db: Database, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    earned = local(2025, 11, 5, 10)
    ids = await add_members(db, ledger, earned, 5, points=40)
    monkeypatch.setattr(jobs, "BATCH", 2)
    broken = ids[1]
    original = ledger.expire_member

    async def expire_member(session, member_id: int, now: datetime) -> int:  # type: ignore[no-untyped-def]
        if member_id == broken:
            raise RuntimeError("a bad member")
        return await original(session, member_id, now)

    monkeypatch.setattr(ledger, "expire_member", expire_member)
    ctx = JobContext(db, ledger)
    after = local(2026, 12, 1, 0, 10)  # the November 2026 month end has passed
    expired = await asyncio.wait_for(jobs.expire_points(ctx, after), timeout=30)
    assert expired == 4 * 40
    for member_id in ids:
        points = await consistent_points(db, member_id)
        assert points.balance == (40 if member_id == broken else 0)
    monkeypatch.setattr(ledger, "expire_member", original)  # the bad member is mended
    again = await asyncio.wait_for(jobs.expire_points(ctx, after + timedelta(hours=1)), timeout=30)
    assert again == 40  # the next run expires the member that failed, and nobody twice
    for member_id in ids:
        assert (await consistent_points(db, member_id)).balance == 0
