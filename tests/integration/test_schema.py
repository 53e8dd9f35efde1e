"""The schema the migrations build is the one the models describe; migration 0002 fills the ledger's member
columns from the rows that existed before it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (the tables register themselves on SQLModel.metadata)
from bot.migrate import upgrade
from storage.db import Database
from storage.models import Member


async def _differences(db: Database) -> list[object]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
        )


async def test_migrations_build_exactly_the_models(db: Database) -> None:
    assert await _differences(db) == []


async def test_revision_0002_fills_the_ledger_columns_from_the_old_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    await upgrade(url, "0001")
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO member (id, openid, tier, status, marketing_opt_out, balance, created_at)"
                " VALUES (1, 'oOLD', '普通', 'active', 0, 105, '2026-01-01 00:00:00')"
            ))
            for entry_id, delta, kind in ((1, 100, 'signup'), (2, 5, 'checkin'), (3, 40, 'adjust')):
                await conn.execute(text(
                    "INSERT INTO ledger_entry (id, member_id, delta, kind, idempotency_key, reason, balance_after,"
                    f" created_at) VALUES ({entry_id}, 1, {delta}, '{kind}', 'k{entry_id}', '', 0,"
                    " '2026-01-01 00:00:00')"
                ))
            await conn.execute(text(
                "INSERT INTO points_lot (member_id, entry_id, amount, remaining, earned_at, expires_at) VALUES"
                " (1, 1, 100, 60, '2026-01-01 00:00:00', '2027-01-31 16:00:00'),"
                " (1, 2, 5, 5, '2026-01-02 00:00:00', '2027-02-28 16:00:00'),"
                " (1, 3, 40, 0, '2026-01-03 00:00:00', '2026-12-31 16:00:00')"
            ))
            await conn.execute(text(
                "INSERT INTO checkin (member_id, day, streak, created_at) VALUES"
                " (1, '2026-01-01', 1, '2026-01-01 00:00:00'), (1, '2026-01-02', 2, '2026-01-02 00:00:00')"
            ))
            await conn.execute(text(
                "INSERT INTO winback_offer (member_id, points, offered_at, valid_until) VALUES"
                " (1, 50, '2026-01-01 00:00:00', '2026-01-08 00:00:00')"
            ))
        await upgrade(url)
        async with db.sessions() as session:
            member = await session.get(Member, 1)
        assert member is not None
        assert member.earned_total == 105  # sign-up and check-in qualify; the adjustment does not
        assert member.expiry_check_at == datetime(2027, 1, 31, 16, 0, tzinfo=UTC)  # the empty lot is ignored
        assert (member.checkin_day, member.checkin_streak) == (date(2026, 1, 2), 2)
        assert member.winback_until == datetime(2026, 1, 8, 0, 0, tzinfo=UTC)
        assert (member.cap_day, member.cap_earned) == (None, 0)
    finally:
        await db.dispose()

