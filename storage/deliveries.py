"""Late deliveries, durably: recorded before WeChat is told `success`, completed in the transaction that
puts their replies in the outbox, and handed to a sweep once their worker stops renewing the lease.

It stores the message as opaque JSON and knows nothing of WeChat or handlers; the caller re-runs it.
Running a message twice is safe because every side effect is keyed (ledger, flow, outbox dedupe keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.db import dialect_insert
from storage.models import LateDelivery
from storage.rows import affected

PENDING = "pending"
DONE = "done"
FAILED = "failed"  # run MAX_ATTEMPTS times by sweeps and never completed: left for an operator
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Abandoned:
    id: int
    dedupe_key: str
    inbound: str


async def record(session: AsyncSession, *, dedupe_key: str, inbound: str, now: datetime, lease: float) -> int:
    """Hold a late delivery (idempotent on dedupe_key: a second record of the same delivery takes the
    existing row's lease again) and return its id."""
    until = now + timedelta(seconds=lease)
    stmt = dialect_insert(session)(LateDelivery).values(
        dedupe_key=dedupe_key, inbound=inbound, status=PENDING, attempts=0, lease_until=until, created_at=now,
    ).on_conflict_do_nothing(index_elements=["dedupe_key"])
    await session.execute(stmt)
    found = (await session.execute(
        select(col(LateDelivery.id)).where(col(LateDelivery.dedupe_key) == dedupe_key)
    )).scalar_one()
    assert found is not None  # the id of a stored row
    await session.execute(
        update(LateDelivery).where(col(LateDelivery.id) == found, col(LateDelivery.status) == PENDING)
        .values(lease_until=until)
    )
    return found


async def renew(session: AsyncSession, row_id: int, *, now: datetime, lease: float) -> bool:
    """Extend the lease of a delivery still pending (its worker is alive)."""
    stmt = update(LateDelivery).where(col(LateDelivery.id) == row_id, col(LateDelivery.status) == PENDING).values(
        lease_until=now + timedelta(seconds=lease)
    )
    return bool(affected(await session.execute(stmt)))


async def complete(session: AsyncSession, row_id: int, *, now: datetime) -> bool:
    """Mark the delivery done, in the transaction that wrote its replies to the outbox. False: someone
    else completed it first, and the caller must roll back so its replies are not queued twice."""
    stmt = update(LateDelivery).where(col(LateDelivery.id) == row_id, col(LateDelivery.status) == PENDING).values(
        status=DONE, done_at=now
    )
    return bool(affected(await session.execute(stmt)))


async def claim_abandoned(session: AsyncSession, *, now: datetime, lease: float, limit: int = 20) -> list[Abandoned]:
    """Take over pending deliveries whose lease lapsed (their worker died), each by a conditional update on
    the lease it had, so two sweepers never take the same row; one run too many marks a row failed."""
    due = (col(LateDelivery.status) == PENDING) & (col(LateDelivery.lease_until) < now)
    rows = (await session.execute(
        select(col(LateDelivery.id), col(LateDelivery.dedupe_key), col(LateDelivery.inbound),
               col(LateDelivery.attempts), col(LateDelivery.lease_until))
        .where(due).order_by(col(LateDelivery.id)).limit(limit)
    )).all()
    taken: list[Abandoned] = []
    for row in rows:
        exhausted = row.attempts >= MAX_ATTEMPTS
        values = {"status": FAILED} if exhausted else {
            "lease_until": now + timedelta(seconds=lease), "attempts": row.attempts + 1,
        }
        stmt = update(LateDelivery).where(
            col(LateDelivery.id) == row.id, col(LateDelivery.status) == PENDING,
            col(LateDelivery.lease_until) == row.lease_until,
        ).values(**values)
        if affected(await session.execute(stmt)) and not exhausted:
            taken.append(Abandoned(int(row.id), str(row.dedupe_key), str(row.inbound)))
    return taken
