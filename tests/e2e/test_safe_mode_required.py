"""Safe mode can be required: with an EncodingAESKey in production, a plaintext push is refused (403,
counted) before its body is read, since its `signature` covers only timestamp and nonce
(wechat-protocol.md §3.2). Demo mode keeps taking plaintext; WECHAT_REQUIRE_SAFE_MODE and
MINIPROGRAM_REQUIRE_SAFE_MODE override either way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client import REGISTRY

from handlers import texts
from storage.clock import FrozenClock
from tests.support.fakes import WeChat, make_app, make_settings, serving
from tests.support.mp_support import mini_program

OPENID = "oSAFE00000000000000000000001"
LIVE = {"wechat_appsecret": "oa-live-secret", "wechat_api_base": "http://fake.wechat"}


@asynccontextmanager
async def oa(urls: tuple[str, str], clock: FrozenClock, **overrides: Any) -> AsyncIterator[WeChat]:
    """The app as configured: unset (None) means the shipped default."""
    values: dict[str, Any] = {"wechat_require_safe_mode": None, **overrides}
    async with serving(make_app(make_settings(*urls, **values), clock), clock) as wechat:
        yield wechat


def refused(endpoint: str) -> float:
    """The 403 refusals of `endpoint` as /metrics reports them to an operator (0 before the first)."""
    value = REGISTRY.get_sample_value("wxbot_rejected_requests_total", {"endpoint": endpoint, "status": "403"})
    return value or 0.0


async def test_production_with_a_key_refuses_plaintext_and_takes_safe_mode(
    urls: tuple[str, str], clock: FrozenClock
) -> None:
    async with oa(urls, clock, **LIVE) as wechat:
        before = refused("wechat")
        response = await wechat.post(wechat.side.text(OPENID, "帮助"))
        assert response.status_code == 403
        assert "safe mode is required" in response.json()["message"]
        assert refused("wechat") == before + 1
        assert await wechat.say(OPENID, "帮助", encrypted=True) == texts.HELP_VISITOR


async def test_a_plaintext_push_dressed_as_compatible_mode_without_aes_is_refused(
    urls: tuple[str, str], clock: FrozenClock
) -> None:
    """Plain fields next to an `Encrypt` do not help: without encrypt_type=aes nothing is verified."""
    async with oa(urls, clock, **LIVE) as wechat:
        fields = {**wechat.side.text(OPENID, "帮助"), "Encrypt": "bm90IGNoZWNrZWQ="}
        assert (await wechat.post(fields, encrypt_type="raw")).status_code == 403


async def test_demo_mode_with_a_key_still_takes_plaintext(urls: tuple[str, str], clock: FrozenClock) -> None:
    async with oa(urls, clock) as wechat:
        assert await wechat.say(OPENID, "帮助") == texts.HELP_VISITOR
        assert await wechat.say(OPENID, "帮助", encrypted=True) == texts.HELP_VISITOR


@pytest.mark.parametrize(("overrides", "status"), [
    ({**LIVE, "wechat_require_safe_mode": False}, 200),  # production that opted out
    ({"wechat_require_safe_mode": True}, 403),  # demo that opted in
])
async def test_the_setting_overrides_the_default(
    urls: tuple[str, str], clock: FrozenClock, overrides: dict[str, Any], status: int
) -> None:
    async with oa(urls, clock, **overrides) as wechat:
        assert (await wechat.post(wechat.side.text(OPENID, "帮助"))).status_code == status


async def test_mini_program_in_production_refuses_plaintext_json_and_xml(
    urls: tuple[str, str], clock: FrozenClock
) -> None:
    async with mini_program(urls, clock, miniprogram_require_safe_mode=None) as mp:
        before = refused("miniprogram")
        text = mp.text("oMPSAFE0000000000000000001", "帮助")
        for fmt in ("json", "xml"):
            response = await mp.push(text, fmt=fmt)
            assert response.status_code == 403
            assert "safe mode is required" in response.json()["message"]
        assert refused("miniprogram") == before + 2
        await mp.acked(mp.event("oMPSAFE0000000000000000001", "user_enter_tempsession"), encrypted=True)
