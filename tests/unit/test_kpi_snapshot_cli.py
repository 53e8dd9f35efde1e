"""`wxbot jobs run kpi_snapshot --at ISO-TIME` (issue 15): snapshots the local day before that time, so a
missed night is rebuilt later; a re-run replaces the day's row with the same figures."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime

from sqlalchemy import select

from bot.cli import main
from storage.db import Database
from storage.models import KpiSnapshot
from tests.unit.test_jobs_cli import add_members, database  # noqa: F401  (the fixture)


def snapshots(url: str) -> dict[date, tuple[dict[str, object], datetime]]:
    async def run() -> dict[date, tuple[dict[str, object], datetime]]:
        db = Database(url)
        try:
            async with db.sessions() as session:
                rows = (await session.execute(
                    select(KpiSnapshot.day, KpiSnapshot.figures, KpiSnapshot.computed_at))).all()
            return {day: (json.loads(figures), at) for day, figures, at in rows}
        finally:
            await db.dispose()

    return asyncio.run(run())


def test_a_missed_day_is_rebuilt_and_a_rerun_replaces_it(database: str, capsys) -> None:  # noqa: F811
    add_members(database, [(1, 1), (2, 2)])  # joined 2025-03-01
    assert main(["jobs", "run", "kpi_snapshot", "--at", "2026-06-02T00:30:00+08:00"]) == 0
    assert "kpi_snapshot: 1" in capsys.readouterr().out
    first = snapshots(database)
    assert list(first) == [date(2026, 6, 1)]
    assert first[date(2026, 6, 1)][0]["members"] == 2
    assert first[date(2026, 6, 1)][0]["yoy_growth"] == 0.0  # both were members a year before too
    assert main(["jobs", "run", "kpi_snapshot", "--at", "2026-05-20T08:00:00+08:00"]) == 0  # a missed night
    assert main(["jobs", "run", "kpi_snapshot", "--at", "2026-06-02T09:00:00+08:00"]) == 0  # a re-run
    again = snapshots(database)
    assert sorted(again) == [date(2026, 5, 19), date(2026, 6, 1)]
    assert again[date(2026, 6, 1)][0] == first[date(2026, 6, 1)][0]
    assert again[date(2026, 6, 1)][1] == datetime(2026, 6, 2, 1, 0, tzinfo=UTC)
    assert again[date(2026, 5, 19)][0]["members"] == 2
