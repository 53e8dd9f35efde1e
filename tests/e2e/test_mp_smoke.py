"""A Mini Program page's journey against the fake WeChat API, and the same member in the OA chat."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.app import create_app
from devtools.fakewechat import create_fake_wechat
from tests.support.fakes import WeChat, make_settings, running, wechat_for

OA_OPENID = "oOAfollower000000000000001"


@pytest.fixture
async def both(urls: tuple[str, str], clock) -> AsyncIterator[tuple[WeChat, httpx.AsyncClient]]:  # type: ignore[no-untyped-def]
    fake = create_fake_wechat(clock=lambda: clock.now().timestamp())
    fake_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="http://fake")
    settings = make_settings(*urls, wechat_appsecret="oa-secret", miniprogram_appid="wxmp0000000000001",
                             miniprogram_secret="mp-secret", wechat_api_base="http://fake")
    app = create_app(settings, clock=clock, http=fake_http)
    async with running(app):
        harness = wechat_for(app, clock)
        async with harness.client, fake_http:
            yield harness, fake_http


async def test_login_signup_checkin_once_across_doors(both: tuple[WeChat, httpx.AsyncClient]) -> None:
    wechat, fake = both
    await fake.post("/_fake/users", json={"openid": OA_OPENID, "unionid": "UNION1"})
    await fake.post("/_fake/codes", json={"code": "c1", "openid": "oMP1", "unionid": "UNION1"})
    # the follower writes first: the OA side learns the unionid in the background
    assert "欢迎" in await wechat.say(OA_OPENID, "帮助")
    await wechat.pipeline.drain()
    login = await wechat.client.post("/api/mp/login", json={"code": "c1"})
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert (await wechat.client.get("/api/mp/me", headers=auth)).status_code == 403
    signup = await wechat.client.post("/api/mp/signup", headers=auth,
                                      json={"phone": "13700001111", "birthday": "05-20", "consent": True})
    assert signup.status_code == 200, signup.text
    assert signup.json()["balance"] == 100
    first = await wechat.client.post("/api/mp/checkin", headers=auth)
    assert first.status_code == 200, first.text
    assert "今天已经签过到啦" in await wechat.say(OA_OPENID, "签到")
    assert "您的积分：105" in await wechat.say(OA_OPENID, "积分")
    again = await wechat.client.post("/api/mp/checkin", headers=auth)
    assert again.status_code == 409
    assert again.json()["error"] == "already_checked_in"
    bad = await wechat.client.post("/api/mp/login", json={"code": "nope"})
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_code"
