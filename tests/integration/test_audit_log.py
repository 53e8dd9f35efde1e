"""The audit table is append-only on both backends: its triggers refuse every UPDATE and DELETE, so not
even a raw statement (or a console bug) can change or remove an entry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from storage import audit
from storage.db import Database
from storage.models import AuditEntry

AT = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


async def one_entry(db: Database) -> AuditEntry:
    async with db.unit_of_work() as session:
        await audit.record(session, audit.Actor("admin", "admin"), "points.adjust", "member:1", now=AT,
                           before={"balance": 10}, after={"balance": 20}, client="127.0.0.1")
    async with db.sessions() as session:
        [entry] = (await session.scalars(select(AuditEntry))).all()
    return entry


@pytest.mark.parametrize("statement", [
    "UPDATE audit SET actor = 'someone else'",
    "UPDATE audit SET after = NULL WHERE id > 0",
    "DELETE FROM audit",
])
async def test_an_entry_cannot_be_changed_or_removed(db: Database, statement: str) -> None:
    entry = await one_entry(db)
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.unit_of_work() as session:
            await session.execute(text(statement))
    async with db.sessions() as session:
        [still] = (await session.scalars(select(AuditEntry))).all()
    assert (still.id, still.actor, still.after) == (entry.id, "admin", '{"balance": 20}')


async def test_appending_still_works(db: Database) -> None:
    await one_entry(db)
    async with db.unit_of_work() as session:
        await audit.record(session, audit.TOKEN, "coupon.use", "redemption:1", now=AT)
    async with db.sessions() as session:
        rows = await audit.entries(session, audit.AuditFilter())
    assert [r.action for r in rows] == ["coupon.use", "points.adjust"]
