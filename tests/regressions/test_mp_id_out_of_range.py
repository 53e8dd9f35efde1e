"""Regression: an id the database cannot hold was a 500 from the member API. The schemathesis fuzz
sent `{"reward_id": 238391693263024455040368640}` to POST /api/mp/redeem: SQLite raised
OverflowError and PostgreSQL (32-bit `integer` ids) refuses anything past 2**31 - 1, both uncaught.
The same held for GET /api/mp/history?cursor=. Ids are now bounded to 1..2**31 - 1 in the schema,
so such input is a 422 before it reaches the database."""

from __future__ import annotations

import pytest

from tests.support.mp_support import MiniProgram

INT32_MAX = 2**31 - 1


@pytest.mark.parametrize("reward_id", [INT32_MAX + 1, 2**63, 238391693263024455040368640, -(2**63) - 1, 0, -1])
async def test_reward_id_out_of_range_is_422(mp: MiniProgram, reward_id: int) -> None:
    token = await mp.member_for("oMPuser000000000000000000001", None, phone="13700001111")
    response = await mp.post(token, "/redeem", {"reward_id": reward_id, "request_id": "req-out-of-range"})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid"


async def test_largest_reward_id_is_an_unknown_reward(mp: MiniProgram) -> None:
    token = await mp.member_for("oMPuser000000000000000000001", None, phone="13700001111")
    response = await mp.post(token, "/redeem", {"reward_id": INT32_MAX, "request_id": "req-largest-id"})
    assert response.status_code == 404, response.text


@pytest.mark.parametrize("cursor", [INT32_MAX + 1, 2**63, 10**30])
async def test_history_cursor_out_of_range_is_422(mp: MiniProgram, cursor: int) -> None:
    token = await mp.member_for("oMPuser000000000000000000001", None, phone="13700001111")
    response = await mp.get(token, "/history", cursor=cursor)
    assert response.status_code == 422, response.text
    largest = await mp.get(token, "/history", cursor=INT32_MAX)
    assert largest.status_code == 200
    assert len(largest.json()["items"]) == 1  # the sign-up bonus
