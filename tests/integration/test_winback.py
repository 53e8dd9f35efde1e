"""The staged win-back (storage/winback.py) for a member without orders who has been quiet 30 days: a light
reminder (warn), a week later the push offering 50 points on the next check-in within 7 days (recall 1: the
check-in honours it once, `winback:<offer id>`), a week later the offer again or the rules' coupon (recall 2),
then dormant: no marketing until the member writes again; one stage at a time, one push per stage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from scheduler.jobs import winback
from storage import checkins, members
from storage.models import Member, Outbox, WinbackOffer, WinbackStep
from tests.support.factories import add_member, entry_by_key, local
from tests.support.fakes import WeChat
from tests.support.push_support import TEMPLATE, TEMPLATES, PushWorld, push_world

NOW = local(2026, 6, 1, 11, 0)  # the job's hour
WEEK = timedelta(days=7)
QUIET = "oQUIET000000000000000000001"


@pytest.fixture
async def world(urls: tuple[str, str]) -> AsyncIterator[PushWorld]:
    async with push_world(urls, at=NOW, wechat_template_ids=TEMPLATES) as w:
        yield w


async def quiet_member(world: PushWorld, openid: str = QUIET, days: int = 40, **extra: object) -> int:
    return await add_member(world.db, NOW - timedelta(days=400), openid=openid,
                            last_interaction_at=NOW - timedelta(days=days), **extra)  # type: ignore[arg-type]


async def offers(world: PushWorld, member_id: int) -> list[WinbackOffer]:
    async with world.db.sessions() as session:
        return list((await session.scalars(
            select(WinbackOffer).where(WinbackOffer.member_id == member_id).order_by(WinbackOffer.id)
        )).all())


async def steps(world: PushWorld, member_id: int) -> list[str]:
    async with world.db.sessions() as session:
        return list((await session.scalars(
            select(WinbackStep.stage).where(WinbackStep.member_id == member_id).order_by(WinbackStep.id)
        )).all())


async def to_recall(world: PushWorld, member: int) -> datetime:
    """Warn today, recall 1 a week later (its offer open from then); returns when the offer was made."""
    assert await winback(world.ctx, NOW) == 1
    world.clock.set(NOW + WEEK)
    assert await winback(world.ctx, world.clock.now()) == 1
    assert await steps(world, member) == ["warn", "recall1"]
    return NOW + WEEK


async def test_a_quiet_member_is_chased_one_stage_a_week_then_left_alone(world: PushWorld) -> None:
    member = await quiet_member(world)
    assert await winback(world.ctx, NOW) == 1
    assert await winback(world.ctx, NOW) == 0  # a re-run the same day
    for day in range(1, 7):  # nothing more inside the week
        assert await winback(world.ctx, NOW + timedelta(days=day)) == 0, day
    world.clock.set(NOW + WEEK)
    assert await winback(world.ctx, world.clock.now()) == 1
    await world.drain()
    [call] = [c for c in await world.delivered() if c["path"] == TEMPLATE]
    assert (call["body"]["touser"], call["body"]["template_id"]) == (QUIET, TEMPLATES["winback"])
    assert call["body"]["data"]["number2"]["value"] == "50"
    [offer] = await offers(world, member)
    assert (offer.points, offer.offered_at, offer.valid_until) == (50, NOW + WEEK, NOW + 2 * WEEK)
    assert await winback(world.ctx, NOW + 2 * WEEK) == 1  # recall 2: no coupon in the rules, the offer again
    assert await winback(world.ctx, NOW + 3 * WEEK) == 1  # dormant: no push
    assert await steps(world, member) == ["warn", "recall1", "recall2", "dormant"]
    for day in range(22, 80, 3):  # dormant: nothing, however long the member stays quiet
        assert await winback(world.ctx, NOW + timedelta(days=day)) == 0, day
    async with world.db.sessions() as session:
        keys = (await session.scalars(select(Outbox.dedupe_key).where(Outbox.member_id == member)
                                      .order_by(Outbox.id))).all()
        dormant = await session.get(Member, member)
    assert keys == [f"winback:{member}:{stage}:{day}" for stage, day in (
        ("warn", "2026-06-01"), ("recall1", "2026-06-08"), ("recall2", "2026-06-15"))]
    assert dormant is not None
    assert (dormant.churn_stage, dormant.churn_risk) == ("dormant", True)


async def test_a_member_who_writes_leaves_dormant_and_a_new_episode_waits_30_days(world: PushWorld) -> None:
    member = await quiet_member(world)
    for week in range(4):
        await winback(world.ctx, NOW + week * WEEK)
    back = NOW + timedelta(days=30)
    async with world.db.unit_of_work() as session:
        await members.touch(session, QUIET, back)
    async with world.db.sessions() as session:
        row = await session.get(Member, member)
    assert row is not None
    assert row.churn_stage is None
    assert await winback(world.ctx, back + timedelta(days=29)) == 0  # quiet again, not yet 30 days
    assert await winback(world.ctx, back + timedelta(days=31)) == 1  # a new episode: warn
    assert (await steps(world, member))[-1] == "warn"


async def test_recall_2_grants_the_rules_coupon_once(urls: tuple[str, str]) -> None:
    from dataclasses import replace

    from storage.rules import Rules
    from storage.winbackrules import WinbackRules
    from tests.support.redeem_support import add_reward

    async with push_world(urls, at=NOW, wechat_template_ids=TEMPLATES) as world:
        reward = await add_reward(world.db, NOW, name="回归咖啡券", stock=5)
        world.ledger.rules = replace(Rules(), winback=WinbackRules(recall_reward=reward))
        member = await quiet_member(world)
        await to_recall(world, member)
        assert await winback(world.ctx, NOW + 2 * WEEK) == 1
        assert await winback(world.ctx, NOW + 2 * WEEK + timedelta(hours=1)) == 0
        async with world.db.sessions() as session:
            rows = (await session.scalars(select(Outbox).where(Outbox.member_id == member)
                                          .order_by(Outbox.id))).all()
        assert [r.kind for r in rows] == ["winback_warn", "winback", "winback_coupon"]
        assert "回归咖啡券" in rows[-1].payload
        assert len(await offers(world, member)) == 1  # the coupon instead of a second offer


async def test_only_quiet_members_who_may_be_marketed_to(world: PushWorld) -> None:
    due = await quiet_member(world, "oDUE00000000000000000000001", days=31)
    await quiet_member(world, "oRECENT000000000000000000001", days=29)
    await quiet_member(world, "oOPTOUT000000000000000000001", opt_out=True)
    await quiet_member(world, "oUNFOLLOWED0000000000000001", status="unsubscribed")
    await quiet_member(world, "oDELETED00000000000000000001", status="deleted")
    assert await winback(world.ctx, NOW) == 1
    assert await steps(world, due) == ["warn"]
    async with world.db.sessions() as session:
        assert (await session.scalars(select(Outbox.member_id))).all() == [due]


async def test_a_check_in_within_7_days_earns_the_bonus_once(world: PushWorld) -> None:
    member = await quiet_member(world)
    offered = await to_recall(world, member)
    [offer] = await offers(world, member)
    later = offered + timedelta(days=6, hours=23)
    async with world.db.unit_of_work() as session:
        result = await checkins.check_in(session, world.ledger, member, later)
    assert (result.points, result.winback, result.balance) == (5, 50, 55)
    bonus = await entry_by_key(world.db, f"winback:{offer.id}")
    assert bonus is not None
    assert (bonus.delta, bonus.kind) == (50, "winback")
    async with world.db.unit_of_work() as session:  # the next day's check-in: the offer is used
        result = await checkins.check_in(session, world.ledger, member, later + timedelta(days=1))
    assert (result.points, result.winback) == (5, 0)
    [offer] = await offers(world, member)
    assert offer.redeemed_at == later


async def test_a_check_in_after_7_days_earns_only_the_check_in(world: PushWorld) -> None:
    member = await quiet_member(world)
    offered = await to_recall(world, member)
    [offer] = await offers(world, member)
    async with world.db.unit_of_work() as session:
        result = await checkins.check_in(session, world.ledger, member, offered + timedelta(days=7, minutes=1))
    assert (result.points, result.winback, result.balance) == (5, 0, 5)
    assert await entry_by_key(world.db, f"winback:{offer.id}") is None


async def test_a_check_in_honours_the_offer_through_the_chat(urls: tuple[str, str], wechat: WeChat) -> None:
    now = wechat.side.now()
    async with push_world(urls, at=local(2026, 11, 22, 11, 0), wechat_template_ids=TEMPLATES) as world:
        assert abs(world.clock.now().timestamp() - now) <= 3600  # the app's clock: 10:00 the same day
        member = await add_member(world.db, world.clock.now() - timedelta(days=400), openid=QUIET,
                                  last_interaction_at=world.clock.now() - timedelta(days=45))
        assert await winback(world.ctx, world.clock.now() - WEEK - timedelta(hours=1)) == 1  # warn
        assert await winback(world.ctx, world.clock.now() - timedelta(hours=1)) == 1  # recall 1
        reply = await wechat.say(QUIET, "签到")
        assert "回归礼 +50" in reply
        [offer] = await offers(world, member)
        assert await entry_by_key(world.db, f"winback:{offer.id}") is not None
        assert "回归礼" not in await wechat.say(QUIET, "签到")  # the same day again: already checked in
