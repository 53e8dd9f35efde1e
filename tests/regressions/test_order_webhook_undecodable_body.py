"""Regression: a signed order body that was not UTF-8, or JSON nested deeper than the parser's
recursion limit, escaped as UnicodeDecodeError / RecursionError and answered 500. Only
json.JSONDecodeError was caught. Both are malformed bodies: 422, and nothing changes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage.clock import FrozenClock
from tests.support.fakes import WeChat
from tests.support.member_support import app_with_order_secret, post_order, sign_up, snapshot


@pytest.fixture
async def wechat(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[WeChat]:
    async with app_with_order_secret(urls, clock) as harness:
        yield harness


@pytest.mark.parametrize(
    "body",
    [
        b'{"order_id": "P-1", "status": "paid", "amount_fen": 100, "openid": "\xff\xfe"}',
        b'{"order_id": "P-1", "status": "paid", "amount_fen": 100, "openid": "\xe4\xb8"}',
        b"[" * 30_000 + b"]" * 30_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    ],
    ids=["latin-1 bytes", "truncated utf-8", "deep array", "deep object"],
)
async def test_undecodable_body_is_422(wechat: WeChat, body: bytes) -> None:
    await sign_up(wechat, "oREGRESSION_BYTES")
    before = await snapshot(wechat)
    response = await post_order(wechat, body)
    assert response.status_code == 422, response.text
    assert response.json() == {"error": "invalid", "message": "body is not valid JSON"}
    assert await snapshot(wechat) == before
