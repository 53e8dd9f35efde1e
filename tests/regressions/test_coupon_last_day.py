"""Regression: a coupon shown to the member as valid until day D (有效期至 D) was refused by the store
later on day D, because it expired at the time of day it was redeemed rather than at the end of D."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from storage.clock import FrozenClock
from storage.models import Member
from storage.rewards import Rewards
from tests.support.factories import TZ
from tests.support.fakes import WeChat
from tests.support.redeem_support import add_members, add_reward, redeem, use_coupon


async def coupon(wechat: WeChat, clock: FrozenClock, at: datetime, validity_days: int, request: str) -> tuple[int, str]:
    """As of `at`, a member with 100 points redeems a 5元券 valid for validity_days: (the member, its code)."""
    services = wechat.services
    clock.set(at)
    now = clock.now()
    (member,) = await add_members(services.db, services.ledger, now, 1, points=100)
    reward_id = await add_reward(services.db, now, name="5元券", cost=50, validity_days=validity_days)
    issued = await redeem(services.db, Rewards(services.ledger), member, reward_id, request, now)
    return member, issued.redemption.code


async def test_a_coupon_is_good_until_the_end_of_its_last_day(wechat: WeChat, clock: FrozenClock) -> None:
    member, code = await coupon(wechat, clock, datetime(2026, 11, 22, 10, 0, tzinfo=TZ), 30, "last-day")
    async with wechat.services.db.sessions() as session:
        openid = await session.scalar(select(Member.openid).where(Member.id == member))
    assert openid is not None
    assert "有效期至 2026-12-22" in await wechat.say(openid, "我的券")

    clock.set(datetime(2026, 12, 22, 20, 0, tzinfo=TZ))  # the evening of the last day shown
    assert "有效期至 2026-12-22" in await wechat.say(openid, "我的券")
    assert (await use_coupon(wechat, code)).status_code == 200


async def test_a_coupon_has_expired_the_day_after(wechat: WeChat, clock: FrozenClock) -> None:
    _, code = await coupon(wechat, clock, datetime(2026, 11, 22, 23, 30, tzinfo=TZ), 1, "day-after")

    clock.set(datetime(2026, 11, 24, 0, 0, tzinfo=TZ))
    response = await use_coupon(wechat, code)
    assert response.status_code == 409
    assert "expired" in response.json()["message"]
