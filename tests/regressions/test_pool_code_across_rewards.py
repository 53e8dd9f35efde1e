"""Regression: the same code imported into two code-pool rewards (or a code already issued) was accepted,
and the second issue of it then broke the redemption on the UNIQUE redemption code (an IntegrityError:
an apology in the chat, a 500 in the Mini Program). Such codes are now skipped at import."""

from __future__ import annotations

import pytest

from storage.rewards import OutOfStockError, Rewards
from tests.support.fakes import ADMIN, WeChat
from tests.support.redeem_support import add_members, add_reward, redeem


async def test_a_code_in_another_pool_is_skipped(wechat: WeChat) -> None:
    services = wechat.services
    now = services.clock.now()
    first, second = await add_members(services.db, services.ledger, now, 2, points=100)
    pool_a = await add_reward(services.db, now, name="电影券A", cost=10, kind="code_pool")
    pool_b = await add_reward(services.db, now, name="电影券B", cost=10, kind="code_pool")
    a = await wechat.client.post(f"/api/admin/rewards/{pool_a}/codes", content=b"SAME-1\nA-2\n", headers=ADMIN)
    b = await wechat.client.post(f"/api/admin/rewards/{pool_b}/codes", content=b"SAME-1\nB-2\n", headers=ADMIN)
    assert a.json() == {"received": 2, "added": 2, "refused": []}
    assert b.json() == {"received": 2, "added": 1, "refused": [{"line": 1, "code": "SAME-1", "reason": "taken"}]}

    rewards = Rewards(services.ledger)
    assert (await redeem(services.db, rewards, first, pool_a, "a1", now)).redemption.code == "SAME-1"
    assert (await redeem(services.db, rewards, second, pool_b, "b1", now)).redemption.code == "B-2"
    with pytest.raises(OutOfStockError):
        await redeem(services.db, rewards, second, pool_b, "b2", now)


async def test_an_issued_coupon_code_is_skipped(wechat: WeChat) -> None:
    services = wechat.services
    now = services.clock.now()
    (member,) = await add_members(services.db, services.ledger, now, 1, points=100)
    coupon = await add_reward(services.db, now, cost=10)
    issued = await redeem(services.db, Rewards(services.ledger), member, coupon, "c1", now)
    pool = await add_reward(services.db, now, cost=10, kind="code_pool")
    body = f"code\n{issued.redemption.code}\nNEW-1\n".encode()
    response = await wechat.client.post(f"/api/admin/rewards/{pool}/codes", content=body, headers=ADMIN)
    assert response.json() == {"received": 2, "added": 1,
                               "refused": [{"line": 2, "code": issued.redemption.code, "reason": "taken"}]}
