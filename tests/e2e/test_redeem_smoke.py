"""Redeeming a coupon inside the chat, seen from the member's side and in the database."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import Member, Redemption, Reward
from tests.support.fakes import WeChat
from tests.support.member_support import sign_up

BOB = "oBOB0000000000000000000001"


async def test_redeem_a_coupon_and_see_it_in_my_coupons(wechat: WeChat) -> None:
    async with wechat.services.db.unit_of_work() as session:
        session.add(Reward(name="5元券", description="全场通用", cost=50, kind="coupon", stock=5,
                           created_at=wechat.services.clock.now()))
    await sign_up(wechat, BOB)
    listing = await wechat.say(BOB, "兑换")
    assert "1. 5元券  50 积分" in listing
    quote = await wechat.say(BOB, "1")
    assert "兑换后剩余 50 积分" in quote
    done = await wechat.say(BOB, "是")
    assert "兑换成功" in done
    async with wechat.services.db.sessions() as session:
        redemption = await session.scalar(select(Redemption))
        member = await session.scalar(select(Member).where(Member.openid == BOB))
        reward = await session.scalar(select(Reward))
    assert redemption is not None
    assert redemption.code in done
    assert member is not None
    assert member.balance == 50
    assert reward is not None
    assert reward.stock == 4
    assert redemption.code in await wechat.say(BOB, "我的券")
    # a second 是 after the flow ended spends nothing more
    await wechat.say(BOB, "是")
    async with wechat.services.db.sessions() as session:
        again = await session.scalar(select(Member).where(Member.openid == BOB))
    assert again is not None
    assert again.balance == 50
