"""Campaign announcements to a WeCom group robot: the start, each 25% of progress and the end are queued
once each (outbox rows `announce:<id>:<stage>`, source "wecom"); the sender posts them to the robot's
webhook over httpx; failures are retried with backoff and never block the chat; each robot gets at most
20 messages a minute (a token bucket shared by every sender).

The fake WeChat API has no group robot, so a small stand-in here records the posts and can answer
an error, fail, or hang."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import func, select

from bot.app import create_app
from bot.runtime import make_api, make_sender
from bot.settings import Settings
from bot.wechat.pushtexts import announcement
from devtools.fakewechat import create_fake_wechat
from handlers import texts
from scheduler.sender import ROBOT_PER_SECOND, Sender
from storage.campaigns import Campaigns
from storage.clock import FrozenClock
from storage.db import Database
from storage.kv import KV
from storage.members import sign_up as sign_up_in_storage
from storage.models import Outbox, OutboxAttempt
from tests.support.campaign_support import (
    MANAGER,
    add_members,
    create_campaign,
    make_staff,
    new_campaign,
    openid,
    outbox_rows,
    phone,
)
from tests.support.factories import make_ledger
from tests.support.fakes import WeChat, make_settings, serving

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
ROBOT_BASE = "http://robot.test"
FAKE = "http://fake.wechat"
KEY_A = "693a91f6-7b2c-4bc4-97a0-0ec2f1a5aaa1"
KEY_B = "0b7e5c1d-3f2a-4e8b-9c6d-5a4f3e2d1c0b"


@dataclass
class Robot:
    """A WeCom group robot: POST /cgi-bin/webhook/send?key=... with a text message."""

    mode: str = "ok"  # ok | quota (45009) | down (502, not JSON) | hang (until `gate` is set)
    posts: list[dict[str, Any]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    app: FastAPI = field(init=False)

    def __post_init__(self) -> None:
        self.app = FastAPI()

        @self.app.post("/cgi-bin/webhook/send")
        async def send(request: Request, key: str = "") -> Response:
            self.posts.append({"key": key, "body": await request.json(), "at": time.monotonic(), "mode": self.mode})
            if self.mode == "hang":
                await self.gate.wait()
            if self.mode == "quota":
                return JSONResponse({"errcode": 45009, "errmsg": "api freq out of limit"})
            if self.mode == "down":
                return PlainTextResponse("Bad Gateway", status_code=502)
            return JSONResponse({"errcode": 0, "errmsg": "ok"})

    def texts_for(self, key: str) -> list[str]:
        return [p["body"]["text"]["content"] for p in self.posts if p["key"] == key]


def live_settings(urls: tuple[str, str]) -> Settings:
    return make_settings(*urls, wechat_appsecret="x", wechat_api_base=FAKE, wecom_api_base=ROBOT_BASE)


def http_for(robot: Robot) -> httpx.AsyncClient:
    return httpx.AsyncClient(mounts={
        ROBOT_BASE: httpx.ASGITransport(app=robot.app),
        FAKE: httpx.ASGITransport(app=create_fake_wechat()),
    })


def pace_key(robot_key: str) -> str:
    return f"wxbot:pace:robot:{hashlib.sha256(robot_key.encode()).hexdigest()[:16]}"


@dataclass
class World:
    db: Database
    kv: KV
    clock: FrozenClock
    campaigns: Campaigns
    sender: Sender
    robot: Robot


@pytest.fixture
async def world(urls: tuple[str, str]) -> AsyncIterator[World]:
    settings = live_settings(urls)
    db, kv = Database(settings.database_url), KV(settings.redis_url)
    clock = FrozenClock(NOW)
    campaigns = Campaigns(make_ledger())
    robot = Robot()
    async with http_for(robot) as http:
        api = make_api(settings, http, kv, db, clock)
        sender = make_sender(settings, db, kv, campaigns.ledger, api, clock)
        yield World(db, kv, clock, campaigns, sender, robot)
    await kv.close()
    await db.dispose()


async def join_all(world: World, code: str, people: list[Any]) -> None:
    for member in people:
        async with world.db.unit_of_work() as session:
            await world.campaigns.join(session, code, member, world.clock.now())


async def announce_keys(db: Database) -> list[str]:
    return [r.dedupe_key for r in await outbox_rows(db, kind="announce")]


# --- what is queued ------------------------------------------------------------------------------

async def test_start_each_quarter_and_end_are_queued_once_each(world: World) -> None:
    db, campaigns = world.db, world.campaigns
    people = await add_members(db, NOW, 10)
    c = await new_campaign(db, campaigns, NOW, kind="join_bonus", points=5, cap=8, ends_at=NOW + timedelta(days=1),
                           robot_key=KEY_A, title="播报活动")
    assert await announce_keys(db) == [f"announce:{c.id}:start"]
    # join one by one (cap 8) and watch each stage appear when its quarter is crossed
    seen: list[str] = []
    for member in people[:8]:
        await join_all(world, c.code, [member])
        seen.append(",".join(k.rsplit(":", 1)[1] for k in await announce_keys(db)))
    assert seen == [
        "start", "start,25", "start,25", "start,25,50", "start,25,50", "start,25,50,75", "start,25,50,75",
        "start,25,50,75,100",
    ]
    assert await campaigns.finalize_due(db, NOW + timedelta(days=1)) == 1
    assert await campaigns.finalize_due(db, NOW + timedelta(days=2)) == 0
    keys = await announce_keys(db)
    assert keys == [f"announce:{c.id}:{stage}" for stage in ("start", "25", "50", "75", "100", "end")]

    rows = await outbox_rows(db, kind="announce")
    assert {(r.source, r.openid, r.member_id, r.category, r.status) for r in rows} == {
        ("wecom", "", None, "transactional", "pending")
    }
    payloads = [json.loads(r.payload) for r in rows]
    assert {p["robot_key"] for p in payloads} == {KEY_A}
    assert [p["params"]["count"] for p in payloads] == [0, 2, 4, 6, 8, 8]
    assert payloads[-1]["params"]["paid_out"] == 40
    said = [announcement(p) for p in payloads]  # what the sender posts for each
    assert said[0].startswith(f"【播报活动】开始啦！回复公众号「参加 {c.code}」加入")
    assert said[1] == texts.ANNOUNCE["progress"].format(title="播报活动", count=2, stage="25", code=c.code)
    assert "进度 100%" in said[4]
    assert said[5] == texts.ANNOUNCE["end"].format(title="播报活动", count=8, paid_out=40)


async def test_group_buy_progress_is_measured_against_n(world: World) -> None:
    db, campaigns = world.db, world.campaigns
    people = await add_members(db, NOW, 6)
    c = await new_campaign(db, campaigns, NOW, kind="group_buy", points=5, goal=4, cap=10,
                           ends_at=NOW + timedelta(days=1), robot_key=KEY_A)
    await join_all(world, c.code, people)  # 6 of N=4: 25, 50, 75 and 100 once, nothing after
    assert await announce_keys(db) == [f"announce:{c.id}:{s}" for s in ("start", "25", "50", "75", "100")]


async def test_no_robot_key_no_announcements(world: World) -> None:
    db, campaigns = world.db, world.campaigns
    people = await add_members(db, NOW, 4)
    c = await new_campaign(db, campaigns, NOW, kind="join_bonus", cap=4, ends_at=NOW + timedelta(days=1))
    await join_all(world, c.code, people)
    await campaigns.finalize_due(db, NOW + timedelta(days=1))
    assert await announce_keys(db) == []


async def test_the_key_given_in_the_chat_is_used(wechat: WeChat) -> None:
    await make_staff(wechat)
    made = await create_campaign(wechat, kind="join_bonus", title="群播报", cap=4, robot=KEY_B)
    assert "群播报：已设置" in made.summary
    assert made.campaign.robot_key == KEY_B
    (row,) = await outbox_rows(wechat.services.db, kind="announce")
    assert row.dedupe_key == f"announce:{made.campaign.id}:start"
    assert json.loads(row.payload)["robot_key"] == KEY_B


# --- delivery -------------------------------------------------------------------------------------

async def test_the_sender_posts_to_the_robot_webhook(world: World) -> None:
    db = world.db
    c = await new_campaign(db, world.campaigns, NOW, kind="group_buy", points=30, goal=3, cap=9,
                           ends_at=NOW + timedelta(days=1), robot_key=KEY_A, title="周末拼团")
    assert await world.sender.run_once() == 1
    (post,) = world.robot.posts
    assert post["key"] == KEY_A
    pitch = texts.CAMPAIGN_PITCH["group_buy"].format(points=30, goal=3)
    assert post["body"] == {
        "msgtype": "text",
        "text": {"content": texts.ANNOUNCE["start"].format(title="周末拼团", code=c.code, pitch=pitch)},
    }
    (row,) = await outbox_rows(db, kind="announce")
    assert (row.status, row.channel, row.attempts) == ("sent", "robot", 1)
    assert row.sent_at == NOW
    assert await world.sender.run_once() == 0  # sent once


async def test_failures_are_retried_with_backoff_then_sent(world: World) -> None:
    db, clock, robot = world.db, world.clock, world.robot
    await new_campaign(db, world.campaigns, NOW, kind="join_bonus", cap=5, ends_at=NOW + timedelta(days=1),
                       robot_key=KEY_A)
    robot.mode = "down"
    assert await world.sender.run_once() == 1
    (row,) = await outbox_rows(db, kind="announce")
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == NOW + timedelta(seconds=30)
    assert "robot answered -2" in (row.last_error or "")
    assert await world.sender.run_once() == 0  # not due before the backoff

    clock.advance(seconds=31)
    await world.kv.delete(pace_key(KEY_A))  # the half minute the clock moved has refilled the bucket
    assert await world.sender.run_once() == 1  # still down: the next wait doubles
    (row,) = await outbox_rows(db, kind="announce")
    assert (row.status, row.attempts) == ("pending", 2)
    assert row.next_attempt_at == clock.now() + timedelta(seconds=60)

    clock.advance(seconds=61)
    await world.kv.delete(pace_key(KEY_A))
    robot.mode = "ok"
    assert await world.sender.run_once() == 1
    (row,) = await outbox_rows(db, kind="announce")
    assert (row.status, row.channel, row.attempts) == ("sent", "robot", 3)
    assert [p["mode"] for p in robot.posts] == ["down", "down", "ok"]
    async with db.sessions() as session:
        tried = (await session.scalars(select(OutboxAttempt.errcode).where(OutboxAttempt.outbox_id == row.id)
                                       .order_by(OutboxAttempt.id))).all()
    assert list(tried) == [-2, -2, 0]


async def test_a_robot_over_its_limit_is_retried_later(world: World) -> None:
    db, robot = world.db, world.robot
    await new_campaign(db, world.campaigns, NOW, kind="join_bonus", cap=5, ends_at=NOW + timedelta(days=1),
                       robot_key=KEY_A)
    robot.mode = "quota"
    assert await world.sender.run_once() == 1
    (row,) = await outbox_rows(db, kind="announce")
    assert row.status == "pending"
    assert row.next_attempt_at > NOW
    assert "45009" in (row.last_error or "")
    assert await world.sender.run_once() == 0


async def test_a_robot_that_is_down_never_blocks_the_chat(urls: tuple[str, str], clock: FrozenClock) -> None:
    robot = Robot(mode="hang")
    settings = live_settings(urls)
    async with http_for(robot) as http:
        app = create_app(settings, clock=clock, http=http)
        async with serving(app, clock) as wechat:
            services = wechat.services
            await make_staff(wechat)
            made = await create_campaign(wechat, kind="join_bonus", title="机器人故障", points=5, cap=4,
                                         robot=KEY_A)
            sender = make_sender(settings, services.db, services.kv, services.ledger, app.state.wechat, clock)
            sending = asyncio.create_task(sender.run_once())
            for _ in range(200):  # the start announcement reaches the robot, which never answers
                if robot.posts:
                    break
                await asyncio.sleep(0.01)
            assert len(robot.posts) == 1
            assert not sending.done()

            for n in range(4):
                async with services.db.unit_of_work() as session:
                    await sign_up_in_storage(session, services.ledger, services.pii, openid=openid(n),
                                             source="oa", phone=phone(n), birthday=None, now=clock.now())
                # answered in time (a reply held up past WeChat's deadline would be "success")
                reply = await wechat.say(openid(n), f"参加 {made.campaign.code}")
                assert f"已有 {n + 1}/4 人参加" in reply
            assert not sending.done()
            assert "参加人数：4/4" in await wechat.say(MANAGER, f"活动数据 {made.campaign.code}")

            robot.mode = "ok"
            robot.gate.set()
            assert await asyncio.wait_for(sending, 10) == 1
            keys = await announce_keys(services.db)
            assert keys == [f"announce:{made.campaign.id}:{s}" for s in ("start", "25", "50", "75", "100")]
            rows = {r.dedupe_key: r.status for r in await outbox_rows(services.db, kind="announce")}
            assert rows[f"announce:{made.campaign.id}:start"] == "sent"


# --- pacing: at most 20 a minute per robot --------------------------------------------------------

class SimulatedTime:
    """Stands in for `time` and `asyncio` inside scheduler.sender: sleeping moves a simulated clock,
    so two minutes of pacing take no real time. The KV bucket itself is the real one."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_the_bucket_allows_twenty_a_minute_per_robot(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scheduler.sender as sender_module

    sim = SimulatedTime(1_800_000_000.0)
    monkeypatch.setattr(sender_module, "time", sim)
    monkeypatch.setattr(sender_module, "asyncio", sim)
    pace = world.sender._pace

    await pace(pace_key(KEY_A), ROBOT_PER_SECOND)
    first = sim.now
    await pace(pace_key(KEY_B), ROBOT_PER_SECOND)  # another robot: its own bucket, no wait
    assert sim.now == first
    await pace(pace_key(KEY_A), ROBOT_PER_SECOND)
    assert 2.9 <= sim.now - first <= 3.05  # the same robot's 2nd message waits about 3 s

    # a sender that sends to one robot whenever it is let through, for two simulated minutes
    key = pace_key("robot-burst-0001")
    start = sim.now
    sent: list[float] = []
    while sim.now < start + 120:
        await pace(key, ROBOT_PER_SECOND)
        sent.append(sim.now)
    for at in sent:
        assert sum(1 for t in sent if at <= t < at + 60) <= 20
    assert 40 <= len(sent) <= 41  # and it does let 20 a minute through


async def test_a_burst_to_one_robot_is_paced_other_robots_are_not(world: World) -> None:
    db, campaigns, sender = world.db, world.campaigns, world.sender
    people = await add_members(db, NOW, 1)
    a = await new_campaign(db, campaigns, NOW, kind="join_bonus", cap=4, ends_at=NOW + timedelta(days=1),
                           robot_key=KEY_A)  # announce:a:start
    await new_campaign(db, campaigns, NOW, kind="join_bonus", cap=4, ends_at=NOW + timedelta(days=1),
                       robot_key=KEY_B)  # announce:b:start
    await join_all(world, a.code, people)  # announce:a:25

    paced: list[tuple[str, float, float]] = []  # (bucket, asked, let through), real monotonic time
    original = sender._pace

    async def watched(key: str, rate: float) -> None:
        asked = time.monotonic()
        await original(key, rate)
        paced.append((key, asked, time.monotonic()))

    sender._pace = watched  # type: ignore[method-assign]
    assert await sender.run_once() == 3
    assert [p["key"] for p in world.robot.posts] == [KEY_A, KEY_B, KEY_A]
    (a1, a1_asked, a1_through), (b1, b1_asked, b1_through), (a2, a2_asked, a2_through) = paced
    assert a1 == a2 == pace_key(KEY_A)
    assert b1 == pace_key(KEY_B)
    assert a1_through - a1_asked < 1  # a full bucket: no wait
    assert b1_through - b1_asked < 1  # another robot's bucket is its own
    assert a2_through - a1_through >= 2.8  # the same robot's 2nd message waited for its ~3 s
    async with db.sessions() as session:
        assert await session.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.kind == "announce").where(Outbox.status == "sent")
        ) == 3
