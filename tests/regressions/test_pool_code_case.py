"""Regression: a pool code imported with lower-case letters could never be verified (核销), because the
store lookup upper-cased what the clerk typed and then matched it exactly against the stored code."""

from __future__ import annotations

from storage.rewards import Rewards
from tests.support.fakes import WeChat
from tests.support.redeem_support import add_members, add_reward, redeem, use_coupon


async def test_a_lower_case_pool_code_can_be_verified(wechat: WeChat) -> None:
    services = wechat.services
    now = services.clock.now()
    (member,) = await add_members(services.db, services.ledger, now, 1, points=100)
    reward_id = await add_reward(services.db, now, name="电影券", cost=50, kind="code_pool")
    rewards = Rewards(services.ledger)
    async with services.db.unit_of_work() as session:
        await rewards.import_codes(session, reward_id, ["film-7x9q"])
    issued = await redeem(services.db, rewards, member, reward_id, "pool-case", now)
    assert issued.redemption.code == "film-7x9q"  # handed out exactly as the POS issued it

    used = await use_coupon(wechat, "film-7x9q")
    assert used.status_code == 200, used.text
    assert used.json()["code"] == "film-7x9q"
    again = await use_coupon(wechat, "film-7x9q")
    assert again.status_code == 409, again.text


async def test_generated_codes_still_match_in_any_case(wechat: WeChat) -> None:
    services = wechat.services
    now = services.clock.now()
    (member,) = await add_members(services.db, services.ledger, now, 1, points=100)
    reward_id = await add_reward(services.db, now, cost=50)
    issued = await redeem(services.db, Rewards(services.ledger), member, reward_id, "gen-case", now)
    code = issued.redemption.code
    assert (await use_coupon(wechat, code.lower())).status_code == 200
    assert (await use_coupon(wechat, code)).status_code == 409
