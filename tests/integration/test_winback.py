"""The win-back offer (PRODUCT.md "Programme rules"): a member with no interaction for 30 days gets one
win-back push (not again within 30 days) offering 50 points on the next check-in within 7 days; the
check-in honours it once (`winback:<offer id>`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from scheduler.jobs import winback
from storage import checkins
from storage.models import WinbackOffer
from tests.support.factories import add_member, entry_by_key, local
from tests.support.fakes import WeChat
from tests.support.push_support import TEMPLATE, TEMPLATES, PushWorld, push_world

NOW = local(2026, 6, 1, 11, 0)  # the job's hour
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


async def test_a_quiet_member_gets_one_push_and_not_again_within_30_days(world: PushWorld) -> None:
    member = await quiet_member(world)
    assert await winback(world.ctx, NOW) == 1
    assert await winback(world.ctx, NOW) == 0  # a re-run the same day
    await world.drain()
    [call] = await world.delivered()
    assert (call["path"], call["body"]["touser"]) == (TEMPLATE, QUIET)
    assert call["body"]["template_id"] == TEMPLATES["winback"]
    assert call["body"]["data"]["number2"]["value"] == "50"
    [offer] = await offers(world, member)
    assert (offer.points, offer.offered_at, offer.valid_until) == (50, NOW, NOW + timedelta(days=7))

    for day in range(1, 30):  # still quiet every day of the next 30: nothing
        world.clock.set(NOW + timedelta(days=day))
        assert await winback(world.ctx, world.clock.now()) == 0, day
        await world.drain()
    assert len(await world.delivered()) == 1

    world.clock.set(NOW + timedelta(days=30))  # 30 days on and still quiet: the next one
    assert await winback(world.ctx, world.clock.now()) == 1
    await world.drain()
    assert len(await world.delivered()) == 2
    assert len(await offers(world, member)) == 2


async def test_only_members_quiet_for_30_days_who_may_be_marketed_to(world: PushWorld) -> None:
    due = await quiet_member(world, "oDUE00000000000000000000001", days=31)
    await quiet_member(world, "oRECENT000000000000000000001", days=29)
    await quiet_member(world, "oOPTOUT000000000000000000001", opt_out=True)
    await quiet_member(world, "oUNFOLLOWED0000000000000001", status="unsubscribed")
    await quiet_member(world, "oDELETED00000000000000000001", status="deleted")
    assert await winback(world.ctx, NOW) == 1
    await world.drain()
    assert [c["body"]["touser"] for c in await world.delivered()] == ["oDUE00000000000000000000001"]
    assert len(await offers(world, due)) == 1


async def test_a_check_in_within_7_days_earns_the_bonus_once(world: PushWorld) -> None:
    member = await quiet_member(world)
    await winback(world.ctx, NOW)
    [offer] = await offers(world, member)
    later = NOW + timedelta(days=6, hours=23)
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
    await winback(world.ctx, NOW)
    [offer] = await offers(world, member)
    async with world.db.unit_of_work() as session:
        result = await checkins.check_in(session, world.ledger, member, NOW + timedelta(days=7, minutes=1))
    assert (result.points, result.winback, result.balance) == (5, 0, 5)
    assert await entry_by_key(world.db, f"winback:{offer.id}") is None


async def test_a_check_in_honours_the_offer_through_the_chat(urls: tuple[str, str], wechat: WeChat) -> None:
    now = wechat.side.now()
    async with push_world(urls, at=local(2026, 11, 22, 11, 0), wechat_template_ids=TEMPLATES) as world:
        assert abs(world.clock.now().timestamp() - now) <= 3600  # the app's clock: 10:00 the same day
        member = await add_member(world.db, world.clock.now() - timedelta(days=400), openid=QUIET,
                                  last_interaction_at=world.clock.now() - timedelta(days=45))
        assert await winback(world.ctx, world.clock.now() - timedelta(hours=1)) == 1
        reply = await wechat.say(QUIET, "签到")
        assert "回归礼 +50" in reply
        [offer] = await offers(world, member)
        assert await entry_by_key(world.db, f"winback:{offer.id}") is not None
        assert "回归礼" not in await wechat.say(QUIET, "签到")  # the same day again: already checked in
