"""Shared by the campaign tests: a manager driving the 发起活动 flow through signed XML, members signed up
in the chat or straight in storage, and the database reads the assertions need."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from flows.store import FlowState, FlowStore
from handlers import texts
from storage import staff
from storage.campaigns import Campaigns
from storage.db import Database
from storage.models import Campaign, CampaignMember, LedgerEntry, Member, Outbox
from tests.support.fakes import WeChat

MANAGER = "oMANAGER00000000000000000001"
KIND_NUMBER = {"join_bonus": "1", "group_buy": "2", "checkin_challenge": "3", "lucky_draw": "4"}


def openid(n: int, prefix: str = "oMEMBER") -> str:
    return f"{prefix}{n:020d}"


def phone(n: int) -> str:
    return f"139{n:08d}"


async def make_staff(wechat: WeChat, who: str = MANAGER, role: str = "manager") -> None:
    async with wechat.services.db.unit_of_work() as session:
        await staff.add(session, who, role, "test", wechat.services.clock.now())


@dataclass(frozen=True)
class Created:
    reply: str
    summary: str
    campaign: Campaign


async def create_campaign(
    wechat: WeChat, *, kind: str, title: str = "社群活动", points: int = 20, goal: int | None = None,
    cap: int = 10, end: str = "3天", robot: str = "跳过", who: str = MANAGER, reward_id: int | None = None,
) -> Created:
    """The 发起活动 flow's happy path, every prompt checked; returns the creation reply and the row. A lucky
    draw's prize is points, or with `reward_id` that coupon (`points` is then its fallback, 0 for none)."""
    assert await wechat.say(who, "发起活动") == texts.CAMPAIGN_ASK_KIND
    assert await wechat.say(who, KIND_NUMBER[kind]) == texts.CAMPAIGN_ASK_TITLE
    got = await wechat.say(who, title)
    if kind == "lucky_draw":
        assert got.startswith(texts.CAMPAIGN_ASK_PRIZE.split("{")[0]), got
        got = await wechat.say(who, "积分" if reward_id is None else str(reward_id))
    if reward_id is not None:
        assert got.startswith("奖品：「"), got
    else:
        assert got == texts.CAMPAIGN_ASK_POINTS, got
    after_points = await wechat.say(who, str(points))
    if kind == "join_bonus":
        assert after_points == texts.CAMPAIGN_ASK_CAP.format(low=1)
    else:
        assert after_points == texts.CAMPAIGN_ASK_GOAL[kind]
        assert goal is not None
        least = goal if kind in ("group_buy", "lucky_draw") else 1
        assert await wechat.say(who, str(goal)) == texts.CAMPAIGN_ASK_CAP.format(low=least)
    assert await wechat.say(who, str(cap)) == texts.CAMPAIGN_ASK_END
    assert await wechat.say(who, end) == texts.CAMPAIGN_ASK_ROBOT
    summary = await wechat.say(who, robot)
    assert summary.startswith("请确认活动"), summary
    before = {c.id for c in await all_campaigns(wechat.services.db)}
    reply = await wechat.say(who, "是")
    made = [c for c in await all_campaigns(wechat.services.db) if c.id not in before]
    assert len(made) == 1, reply
    return Created(reply, summary, made[0])


async def all_campaigns(db: Database) -> list[Campaign]:
    async with db.sessions() as session:
        return list((await session.scalars(select(Campaign).order_by(Campaign.id))).all())


async def campaign_row(db: Database, campaign_id: int) -> Campaign:
    async with db.sessions() as session:
        found = await session.get(Campaign, campaign_id)
    assert found is not None
    return found


async def member_by_openid(db: Database, who: str) -> Member | None:
    async with db.sessions() as session:
        return await session.scalar(select(Member).where(Member.openid == who))


async def member_id(db: Database, who: str) -> int:
    found = await member_by_openid(db, who)
    assert found is not None
    assert found.id is not None
    return found.id


async def balance(db: Database, who: str) -> int:
    found = await member_by_openid(db, who)
    assert found is not None
    return found.balance


async def participants(db: Database, campaign_id: int) -> list[int]:
    async with db.sessions() as session:
        return list((await session.scalars(
            select(CampaignMember.member_id).where(CampaignMember.campaign_id == campaign_id)
            .order_by(CampaignMember.member_id)
        )).all())


async def payouts(db: Database, campaign_id: int) -> dict[int, list[int]]:
    """member id -> the deltas of their `campaign:<id>:<member>` ledger entries."""
    async with db.sessions() as session:
        rows = (await session.execute(
            select(LedgerEntry.member_id, LedgerEntry.delta, LedgerEntry.idempotency_key)
            .where(LedgerEntry.kind == "campaign")
            .where(LedgerEntry.idempotency_key.like(f"campaign:{campaign_id}:%"))  # type: ignore[attr-defined]
            .order_by(LedgerEntry.id)
        )).all()
    found: dict[int, list[int]] = {}
    for member, delta, key in rows:
        assert key == f"campaign:{campaign_id}:{member}"
        found.setdefault(member, []).append(delta)
    return found


async def outbox_rows(db: Database, *, kind: str | None = None, prefix: str | None = None) -> list[Outbox]:
    async with db.sessions() as session:
        stmt = select(Outbox).order_by(Outbox.id)
        if kind is not None:
            stmt = stmt.where(Outbox.kind == kind)
        if prefix is not None:
            stmt = stmt.where(Outbox.dedupe_key.like(prefix + "%"))  # type: ignore[attr-defined]
        return list((await session.scalars(stmt)).all())


async def flow_state(wechat: WeChat, who: str) -> FlowState | None:
    return await FlowStore(wechat.services.kv).load("oa", who)


def draw_record(campaign: Campaign) -> dict[str, Any]:
    assert campaign.draw_record, "the draw was not recorded"
    record: dict[str, Any] = json.loads(campaign.draw_record)
    return record


# --- straight in storage (the race and announcement tests) --------------------------------------


async def add_members(db: Database, now: datetime, count: int, *, start: int = 0) -> list[Member]:
    """`count` members, inserted in one transaction as sign-up leaves them but with no points (the
    chat sign-up has its own tests; this keeps the rushes quick)."""
    wanted = [openid(n) for n in range(start, start + count)]
    async with db.unit_of_work() as session:
        session.add_all([
            Member(openid=who, referral_code=f"T{n:07d}", consent_at=now, consent_version="test",
                   joined_at=now, last_interaction_at=now, created_at=now)
            for n, who in enumerate(wanted, start=start)
        ])
    async with db.sessions() as session:
        found = {m.openid: m for m in (await session.scalars(select(Member).where(Member.openid.in_(wanted)))).all()}  # type: ignore[attr-defined]
    return [found[who] for who in wanted]


async def new_campaign(
    db: Database, campaigns: Campaigns, now: datetime, *, kind: str, points: int = 10, goal: int = 0,
    cap: int = 100, ends_at: datetime, robot_key: str | None = None, title: str = "测试活动",
) -> Campaign:
    async with db.unit_of_work() as session:
        return await campaigns.create(
            session, kind=kind, title=title, points=points, goal=goal, cap=cap, ends_at=ends_at,
            created_by=MANAGER, now=now, robot_key=robot_key,
        )
