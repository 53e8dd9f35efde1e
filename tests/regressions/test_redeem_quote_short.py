"""Regression: choosing a reward that costs more than the balance quoted it anyway, with a negative
"balance after" (兑换后剩余 -80 积分) and a request to confirm; the refusal only came after `是`.
Now the choice itself answers with how many points are missing and how to earn them, and the member stays
at the choice (issue 21)."""

from __future__ import annotations

from sqlalchemy import select

from handlers import texts
from storage.models import Redemption
from tests.support.fakes import WeChat
from tests.support.member_support import sign_up
from tests.support.redeem_support import add_reward

CAROL = "oCAROL00000000000000000short"


async def test_an_unaffordable_choice_is_refused_before_any_quote(wechat: WeChat) -> None:
    await add_reward(wechat.services.db, wechat.services.clock.now(), name="50元券", cost=180)
    await sign_up(wechat, CAROL)
    refusal = texts.insufficient_points_redeem.format(needed=180, balance=100, missing=80, checkin=5, referral=50)

    listing = await wechat.say(CAROL, "兑换")
    by_number = await wechat.say(CAROL, "1")
    directly = await wechat.say(CAROL, "兑换 1")

    assert by_number == refusal + "\n" + texts.REDEEM_CHOOSE_AGAIN.format(count=1)
    assert directly == refusal + "\n" + listing
    assert "-80" not in by_number
    assert await wechat.say(CAROL, "是") == texts.REDEEM_BAD_CHOICE.format(count=1)  # nothing to confirm
    async with wechat.services.db.sessions() as session:
        assert (await session.scalars(select(Redemption))).all() == []
