"""Anomalies for operators: recorded once per dedupe key, never raised at the member."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.db import dialect_insert
from storage.models import Anomaly
from storage.rows import affected


async def record(
    session: AsyncSession, *, kind: str, detail: str, dedupe_key: str, now: datetime,
    member_id: int | None = None,
) -> bool:
    """Idempotent on dedupe_key; returns False when it was already recorded."""
    stmt = (
        dialect_insert(session)(Anomaly)
        .values(member_id=member_id, kind=kind, detail=detail, dedupe_key=dedupe_key, created_at=now)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    return bool(affected(await session.execute(stmt)))


async def for_member(session: AsyncSession, member_id: int) -> Sequence[Anomaly]:
    result = await session.execute(
        select(Anomaly).where(col(Anomaly.member_id) == member_id).order_by(col(Anomaly.id))
    )
    return result.scalars().all()
