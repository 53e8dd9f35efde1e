"""The weekly KPI digest (issue 15 item 6): `kpi_digest` on Monday 09:00 queues one robot post per ISO week
to OPS_WECOM_ROBOT (outbox `kpi_digest:<week>`, source wecom) with the latest snapshot's headline figures
and their change against the same day a week before; the sender posts it to the robot once. A re-run, a
second scheduler after a restart, or `wxbot jobs run kpi_digest --at` the same week posts nothing more; the
next week posts again; with no robot configured nothing is queued or posted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.runtime import make_api, make_sender
from scheduler.jobs import JOBS, SCHEDULE, JobContext, kpi_digest
from scheduler.main import PushScheduler
from scheduler.sender import Sender
from storage import jobruns
from storage.clock import FrozenClock
from storage.db import Database
from storage.kv import KV
from storage.ledger import Ledger
from storage.models import KpiSnapshot, Outbox
from tests.integration.test_announcements import KEY_A, Robot, http_for, live_settings
from tests.support.factories import local, make_ledger
from tests.unit.test_jobs_cli import database  # noqa: F401  (the fixture)

MONDAY = local(2026, 11, 30, 9)  # a Monday, 09:00 local
WEEK_BEFORE = {"members": 100, "signups": 2, "active_members": 50, "redemption_rate_12m": 0.40,
               "touches_mean": 2.5, "push_conversion_7d": 0.2, "push_reach": 0.7, "interactions_per_active": 3.0}
LATEST = {"members": 130, "signups": 5, "active_members": 60, "redemption_rate_12m": 0.42,
          "touches_mean": 3.0, "push_conversion_7d": 0.14, "push_reach": 0.7, "interactions_per_active": 3.5}
EXPECTED = "\n".join([
    "【每周数据】截至 2026-11-29，较上周同日",
    "会员 130（当日新增 5）｜30 天活跃 60（较上周 +30）",
    "积分兑换率（12 个月）：42.0%｜目标 ≥ 50.0% ✗未达标（较上周 +2.0 个百分点）",
    "月均营销触达：3.00｜目标 3–5 ✓达标（较上周 +0.50）",
    "推送 7 日转化率：14.0%｜目标 ≥ 15.0% ✗未达标（较上周 -6.0 个百分点）",
    "推送可达率：70.0%｜目标 ≥ 60.0% ✓达标（较上周 +0.0 个百分点）",
    "活跃会员月互动天数：3.50｜目标 ≥ 3 ✓达标（较上周 +0.50）",
    "详见后台「运营数据看板」/admin",
])


@dataclass
class World:
    db: Database
    kv: KV
    ledger: Ledger
    clock: FrozenClock
    sender: Sender
    robot: Robot

    def ctx(self, robot_key: str = KEY_A) -> JobContext:
        return JobContext(self.db, self.ledger, robot_key)


@pytest.fixture
async def world(urls: tuple[str, str]) -> AsyncIterator[World]:
    settings = live_settings(urls)
    db, kv = Database(settings.database_url), KV(settings.redis_url)
    clock, ledger, robot = FrozenClock(MONDAY), make_ledger(), Robot()
    async with http_for(robot) as http:
        api = make_api(settings, http, kv, db, clock)
        yield World(db, kv, ledger, clock, make_sender(settings, db, kv, ledger, api, clock), robot)
    await kv.close()
    await db.dispose()


async def snapshot(db: Database, day: date, figures: dict[str, object]) -> None:
    async with db.unit_of_work() as session:
        session.add(KpiSnapshot(day=day, figures=json.dumps(figures), computed_at=MONDAY))


async def digests(db: Database) -> list[Outbox]:
    async with db.sessions() as session:
        return list((await session.scalars(
            select(Outbox).where(Outbox.kind == "kpi_digest").order_by(Outbox.id))).all())


async def test_posted_once_a_week_with_the_weeks_change(world: World) -> None:
    await snapshot(world.db, date(2026, 11, 22), WEEK_BEFORE)
    await snapshot(world.db, date(2026, 11, 29), LATEST)
    assert await kpi_digest(world.ctx(), MONDAY) == 1
    assert await kpi_digest(world.ctx(), MONDAY) == 0  # a re-run the same week
    rows = await digests(world.db)
    assert [(r.dedupe_key, r.source, r.openid) for r in rows] == [("kpi_digest:2026-W49", "wecom", "")]
    assert await world.sender.run_once() == 1
    assert world.robot.texts_for(KEY_A) == [EXPECTED]
    assert (await digests(world.db))[0].status == "sent"
    assert await world.sender.run_once() == 0
    # A scheduler started after the run (a restart) catches up nothing; a later run that Monday neither.
    async with world.db.unit_of_work() as session:
        await jobruns.start_tracking(session, "kpi_digest", local(2026, 11, 30, 8))
    first = PushScheduler(world.ctx(), world.kv, world.clock)
    world.clock.set(local(2026, 11, 30, 9, 5))
    assert await first.catch_up("kpi_digest") == 1  # the 09:00 due time, handled (its key was taken)
    restarted = PushScheduler(world.ctx(), world.kv, world.clock)
    assert await restarted.catch_up("kpi_digest") == 0
    assert len(await digests(world.db)) == 1
    # The next Monday: a new week, a new post, against 11-29 (a week before its latest snapshot, 12-06).
    await snapshot(world.db, date(2026, 12, 6), {**LATEST, "members": 140})
    world.clock.set(local(2026, 12, 7, 9))
    assert await restarted.catch_up("kpi_digest") == 1
    assert [r.dedupe_key for r in await digests(world.db)] == ["kpi_digest:2026-W49", "kpi_digest:2026-W50"]
    assert await world.sender.run_once() == 1
    second = world.robot.texts_for(KEY_A)[1]
    head = "【每周数据】截至 2026-12-06，较上周同日\n会员 140（当日新增 5）｜30 天活跃 60（较上周 +10）\n"
    assert second.startswith(head)


async def test_no_robot_no_digest(world: World) -> None:
    await snapshot(world.db, date(2026, 11, 29), LATEST)
    assert await kpi_digest(world.ctx(""), MONDAY) == 0
    assert await digests(world.db) == []
    assert await world.sender.run_once() == 0
    assert world.robot.posts == []


async def test_no_snapshot_in_the_week_no_digest(world: World) -> None:
    await snapshot(world.db, date(2026, 11, 20), LATEST)  # ten days old
    assert await kpi_digest(world.ctx(), MONDAY) == 0
    assert await digests(world.db) == []


def test_the_job_is_registered_for_monday_nine() -> None:
    assert JOBS["kpi_digest"] is kpi_digest
    assert SCHEDULE["kpi_digest"] == {"day_of_week": "mon", "hour": "9", "minute": "0"}


def test_jobs_run_kpi_digest_at_a_time(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],  # noqa: F811
) -> None:
    """`wxbot jobs run kpi_digest --at`: nothing with no robot; with one, the week's post once."""
    at = datetime(2026, 11, 30, 1, tzinfo=UTC).isoformat()  # 09:00 local
    assert main(["jobs", "run", "kpi_digest", "--at", at]) == 0  # migrates the database, no robot
    assert "kpi_digest: 0" in capsys.readouterr().out

    async def seed() -> None:
        db = Database(database)
        await snapshot(db, date(2026, 11, 29), LATEST)
        await db.dispose()

    asyncio.run(seed())
    monkeypatch.setenv("OPS_WECOM_ROBOT", KEY_A)
    assert main(["jobs", "run", "kpi_digest", "--at", at]) == 0
    assert "kpi_digest: 1" in capsys.readouterr().out
    assert main(["jobs", "run", "kpi_digest", "--at", at]) == 0
    assert "kpi_digest: 0" in capsys.readouterr().out
