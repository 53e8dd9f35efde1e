"""The simulator's WeChat: builds the member's push, signs it (encrypted when the server has an AES key),
posts it to this same app's /wechat in-process and opens the reply, exactly as WeChat's servers would."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from bot.settings import Settings
from bot.simulator import bubbles
from bot.simulator.wechatside import WeChatSide
from storage.clock import Clock


class WebhookRefused(Exception):
    """The webhook answered something other than 200: the status and its detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


def wechat_side(settings: Settings, clock: Clock) -> WeChatSide:
    return WeChatSide(settings.wechat_token, appid=settings.oa_appid, aes_key=settings.wechat_aes_key,
                      now=lambda: clock.now().timestamp())


async def deliver(app: FastAPI, fields: dict[str, Any]) -> bubbles.Bubble:
    """One signed push to /wechat through the whole app (its routes, middleware and pipeline)."""
    settings: Settings = app.state.settings
    side = wechat_side(settings, app.state.clock)
    push = side.sign(fields, encrypted=settings.safe_mode)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://simulator.local", timeout=30) as client:
        response = await client.post("/wechat", params=push.params, content=push.body,
                                     headers={"Content-Type": "text/xml"})
    if response.status_code != 200:
        raise WebhookRefused(response.status_code, response.text[:200])
    return bubbles.from_reply(side.open_reply(response.content))
