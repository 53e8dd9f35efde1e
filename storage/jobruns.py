"""How far each scheduler job has run (job_run): what lets a new leader catch up a due time nobody ran."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.clock import as_utc
from storage.db import dialect_insert
from storage.models import JobRun


async def done_through(session: AsyncSession, name: str) -> datetime | None:
    """Every due time of `name` up to this instant is handled (run, or reported skipped); None if never tracked."""
    value = await session.scalar(select(col(JobRun.done_through)).where(col(JobRun.name) == name))
    return as_utc(value) if value is not None else None


async def start_tracking(session: AsyncSession, name: str, at: datetime) -> None:
    """The first leader ever: due times before `at` are history, not missed runs (a no-op if tracked already)."""
    stmt = dialect_insert(session)(JobRun).values(name=name, done_through=at, finished_at=at)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))


async def advance(session: AsyncSession, name: str, due: datetime, now: datetime) -> None:
    """Record that `name`'s run due at `due` is handled; never moves backwards (a late, slower leader).
    The row exists: catch_up() starts tracking before it advances."""
    row = await session.get_one(JobRun, name, with_for_update=True)
    if as_utc(row.done_through) < due:
        row.done_through, row.finished_at = due, now
