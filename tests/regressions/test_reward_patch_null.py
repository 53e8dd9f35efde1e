"""Regression: PATCH /api/admin/rewards/{id} with null for a required field ({"cost": null}) reached the
database and failed there (NOT NULL), an unhandled 500. Now it is a 422 and the reward is unchanged."""

from __future__ import annotations

from tests.support.fakes import ADMIN, WeChat
from tests.support.redeem_support import add_reward, reward_row


async def test_null_for_a_required_field_is_422(wechat: WeChat) -> None:
    reward_id = await add_reward(wechat.services.db, wechat.services.clock.now(), name="5元券", cost=50)
    for field in ("name", "description", "cost", "validity_days", "active"):
        response = await wechat.client.patch(f"/api/admin/rewards/{reward_id}", json={field: None}, headers=ADMIN)
        assert response.status_code == 422, (field, response.text)
        assert field in response.json()["message"]
    row = await reward_row(wechat.services.db, reward_id)
    assert (row.name, row.cost, row.validity_days, row.active) == ("5元券", 50, 30, True)


async def test_null_still_clears_an_optional_field(wechat: WeChat) -> None:
    reward_id = await add_reward(wechat.services.db, wechat.services.clock.now(), stock=5, min_tier="银卡")
    response = await wechat.client.patch(
        f"/api/admin/rewards/{reward_id}", json={"stock": None, "min_tier": None}, headers=ADMIN,
    )
    assert response.status_code == 200, response.text
    assert (response.json()["stock"], response.json()["min_tier"]) == (None, None)
