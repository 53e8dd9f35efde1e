"""New anomalies announced to the operations WeCom robot (OPS_WECOM_ROBOT): the job `announce_anomalies`
queues one outbox row per anomaly (`anomaly:<id>`, source wecom, paced by the sender like a campaign
robot), never twice; the sender posts the Chinese text (kind, member, console path, detail, phones masked);
with no robot set nothing is queued, and setting one later does not post the past."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from bot.console import texts
from bot.runtime import make_api, make_sender
from bot.wechat.pushtexts import MAX_ROBOT_BYTES, anomaly_announcement
from scheduler.jobs import JOBS, SCHEDULE, JobContext, announce_anomalies
from scheduler.main import COALESCE
from scheduler.sender import Sender
from storage import anomalies
from storage.clock import FrozenClock
from storage.db import Database
from storage.kv import KV
from storage.ledger import Ledger
from storage.models import Anomaly, Outbox
from tests.integration.test_announcements import KEY_A, NOW, Robot, http_for, live_settings
from tests.support.factories import add_member, make_ledger


@dataclass
class World:
    db: Database
    ledger: Ledger
    clock: FrozenClock
    sender: Sender
    robot: Robot

    def ctx(self, robot_key: str) -> JobContext:
        return JobContext(self.db, self.ledger, robot_key)


@pytest.fixture
async def world(urls: tuple[str, str]) -> AsyncIterator[World]:
    settings = live_settings(urls)
    db, kv = Database(settings.database_url), KV(settings.redis_url)
    clock, ledger, robot = FrozenClock(NOW), make_ledger(), Robot()
    async with http_for(robot) as http:
        api = make_api(settings, http, kv, db, clock)
        yield World(db, ledger, clock, make_sender(settings, db, kv, ledger, api, clock), robot)
    await kv.close()
    await db.dispose()


async def robot_rows(db: Database) -> list[Outbox]:
    async with db.sessions() as session:
        return list((await session.scalars(select(Outbox).where(Outbox.kind == "anomaly").order_by(Outbox.id))).all())


async def cap_anomaly(world: World, member: int) -> None:
    """The daily cap, raised the real way: a capped earning past 500 in a day."""
    async with world.db.unit_of_work() as session:
        for n in range(3):
            await world.ledger.earn(session, member, 200, key=f"bonus:{member}:{n}", kind="birthday", now=NOW)


async def test_each_new_anomaly_is_announced_once_and_delivered(world: World) -> None:
    member = await add_member(world.db, NOW)
    await cap_anomaly(world, member)
    async with world.db.unit_of_work() as session:
        await anomalies.record(session, kind="refund_shortfall", member_id=member, now=NOW,
                               detail="refund:R9: 30 of 50 points were already spent",
                               dedupe_key="shortfall:refund:R9")
    assert await robot_rows(world.db) == []  # recording wrote the anomaly alone
    assert await announce_anomalies(world.ctx(KEY_A), NOW) == 2
    assert await announce_anomalies(world.ctx(KEY_A), NOW) == 0  # never twice
    async with world.db.sessions() as session:
        found = list((await session.scalars(select(Anomaly).order_by(Anomaly.id))).all())
    rows = await robot_rows(world.db)
    assert [r.dedupe_key for r in rows] == [f"anomaly:{a.id}" for a in found]
    assert {(r.source, r.openid, r.status) for r in rows} == {("wecom", "", "pending")}
    assert {json.loads(r.payload)["robot_key"] for r in rows} == {KEY_A}
    assert all(a.announced_at == NOW for a in found)

    assert await world.sender.run_once() == 2
    cap, shortfall = world.robot.texts_for(KEY_A)
    assert cap.startswith(f"【运营异常】{texts.ANOMALY_KINDS['daily_cap']}\n会员：#{member}\n")
    assert f"处理：/admin/anomalies/{found[0].id}" in cap
    assert "non-purchase earning over 500" in cap
    assert texts.ANOMALY_KINDS["refund_shortfall"] in shortfall
    assert shortfall.endswith("详情：refund:R9: 30 of 50 points were already spent")
    assert [r.status for r in await robot_rows(world.db)] == ["sent", "sent"]
    assert await world.sender.run_once() == 0


async def test_a_repeat_after_a_lost_mark_still_queues_once(world: World) -> None:
    async with world.db.unit_of_work() as session:
        await anomalies.record(session, kind="job_skipped", detail="定时任务 birthday 未补跑", now=NOW,
                               dedupe_key="job_skipped:birthday:x")
    assert await announce_anomalies(world.ctx(KEY_A), NOW) == 1
    async with world.db.unit_of_work() as session:  # as if the mark had been lost (a second leader's view)
        for anomaly in (await session.scalars(select(Anomaly))).all():
            anomaly.announced_at = None
    assert await announce_anomalies(world.ctx(KEY_A), NOW) == 0
    assert len(await robot_rows(world.db)) == 1


async def test_no_robot_no_announcement_and_the_past_stays_quiet(world: World) -> None:
    member = await add_member(world.db, NOW)
    await cap_anomaly(world, member)
    assert await announce_anomalies(world.ctx(""), NOW) == 0
    assert await robot_rows(world.db) == []
    assert await world.sender.run_once() == 0
    assert world.robot.posts == []
    assert await announce_anomalies(world.ctx(KEY_A), NOW) == 0  # a robot set later: only new ones
    async with world.db.unit_of_work() as session:
        await anomalies.record(session, kind="redeem_spree", member_id=member, now=NOW, detail="11 redemptions",
                               dedupe_key="spree:x")
    assert await announce_anomalies(world.ctx(KEY_A), NOW) == 1
    async with world.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Outbox)) == 1


def test_the_text_masks_phones_and_fits_the_robot() -> None:
    said = anomaly_announcement({"params": {"id": 7, "kind": "new_kind", "member_id": None,
                                            "detail": "call 13812345678 " + "长" * 1000}})
    assert said.startswith("【运营异常】new_kind\n会员：无\n处理：/admin/anomalies/7\n详情：call 138****5678 ")
    assert "13812345678" not in said
    assert len(said.encode()) <= MAX_ROBOT_BYTES


def test_the_job_runs_every_minute_and_coalesces() -> None:
    assert JOBS["announce_anomalies"] is announce_anomalies
    assert SCHEDULE["announce_anomalies"] == {"minute": "*"}
    assert "announce_anomalies" in COALESCE
