"""Regression: the quote did not bind the price. An operator raising a reward's cost between the quote
and `是` got the member charged the new cost (quoted 50, charged 90). Now `是` after a price change
quotes afresh and spends nothing until the member confirms the new price."""

from __future__ import annotations

import pytest

from handlers import texts
from storage.rewards import PriceChangedError, Rewards
from tests.e2e.test_redeem_chat import ALICE, balance, join, nothing_spent, quote, redemptions
from tests.support.fakes import ADMIN, WeChat
from tests.support.redeem_support import add_reward


async def reprice(wechat: WeChat, reward_id: int, cost: int) -> None:
    response = await wechat.client.patch(f"/api/admin/rewards/{reward_id}", json={"cost": cost}, headers=ADMIN)
    assert response.status_code == 200, response.text


async def test_a_price_rise_after_the_quote_is_quoted_again(wechat: WeChat) -> None:
    member = await join(wechat)
    reward_id = await add_reward(wechat.services.db, wechat.services.clock.now(), name="5元券", cost=50)
    assert await wechat.say(ALICE, "兑换 1") == quote("5元券", 50, 50)
    await reprice(wechat, reward_id, 90)

    changed = texts.REDEEM_PRICE_CHANGED.format(cost=90)
    assert await wechat.say(ALICE, "是") == changed + "\n\n" + quote("5元券", 90, 10)
    await nothing_spent(wechat, member)
    done = await wechat.say(ALICE, "是")
    assert "已扣除 90 积分，剩余 10 积分" in done
    assert [r.cost for r in await redemptions(wechat, member)] == [90]
    assert await balance(wechat, member) == 10


async def test_a_price_rise_beyond_the_balance_refuses(wechat: WeChat) -> None:
    member = await join(wechat)
    reward_id = await add_reward(wechat.services.db, wechat.services.clock.now(), name="5元券", cost=50)
    await wechat.say(ALICE, "兑换 1")
    await reprice(wechat, reward_id, 150)
    assert await wechat.say(ALICE, "是") == texts.REDEEM_PRICE_CHANGED.format(cost=150) + "\n\n" + (
        texts.insufficient_points_redeem.format(needed=150, balance=100, missing=50, checkin=5, referral=50)
        + "\n" + texts.REDEEM_CHOOSE_AGAIN.format(count=1)  # still choosing (issue 21)
    )
    await nothing_spent(wechat, member)


async def test_redeem_refuses_a_stale_quoted_cost(wechat: WeChat) -> None:
    member = await join(wechat)
    services = wechat.services
    reward_id = await add_reward(services.db, services.clock.now(), cost=50)
    with pytest.raises(PriceChangedError):
        async with services.db.unit_of_work() as session:
            await Rewards(services.ledger).redeem(
                session, member, reward_id, request_key="stale", now=services.clock.now(), quoted_cost=40,
            )
    await nothing_spent(wechat, member)
