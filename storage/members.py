"""Member identity and status: who someone is across the two doors. No points here; the ledger owns those."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member

ACTIVE = "active"
UNSUBSCRIBED = "unsubscribed"
DELETED = "deleted"

# The last-interaction time is read in days (win-back) and hours (the 48 h service window
# is tracked in the KV), so one write a minute per member is plenty.
TOUCH_GRANULARITY = timedelta(minutes=1)


def _openid_column(source: str):  # type: ignore[no-untyped-def]
    return Member.mp_openid if source == "mp" else Member.openid


async def by_openid(session: AsyncSession, openid: str, source: str = "oa") -> Member | None:
    result = await session.execute(select(Member).where(_openid_column(source) == openid))
    return result.scalar_one_or_none()


async def touch(session: AsyncSession, openid: str, now: datetime, source: str = "oa") -> None:
    """Record an interaction: creates the visitor row on first contact, else moves
    last_interaction_at forward. Idempotent and safe under concurrency (insert or nothing)."""
    column = "mp_openid" if source == "mp" else "openid"
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(Member)
        .values({column: openid, "created_at": now, "last_interaction_at": now})
        .on_conflict_do_nothing(index_elements=[column])
    )
    created = (await session.execute(stmt)).rowcount  # type: ignore[attr-defined]
    if created:
        return
    await session.execute(
        update(Member)
        .where(_openid_column(source) == openid)
        .where(Member.last_interaction_at < now - TOUCH_GRANULARITY)
        .values(last_interaction_at=now)
    )


async def set_status(session: AsyncSession, openid: str, status: str, source: str = "oa") -> bool:
    """Mark a follower (un)subscribed. Returns False when nobody has that openid."""
    result = await session.execute(
        update(Member)
        .where(_openid_column(source) == openid)
        .where(Member.status != DELETED)
        .values(status=status)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
