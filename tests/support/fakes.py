"""Test doubles at the ports: a running app, and WeChat's side of the webhook (signed, optionally
encrypted pushes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from bot.app import create_app
from bot.settings import Settings
from devtools.simclient import WeChatSide
from storage.clock import FrozenClock

TOKEN = "testtoken"
ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}  # the headers of an operator's admin API call
APPID = "wx0000000000000001"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ACCOUNT = "gh_000000000001"


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def serving(app: FastAPI, clock: FrozenClock, **side: Any) -> AsyncIterator[WeChat]:
    """The app started (its lifespan) and a WeChat playing against it; both closed on the way out."""
    async with running(app):
        harness = wechat_for(app, clock, **side)
        async with harness.client:
            yield harness


class AppHandles:
    """What a test reaches in the running app: its services and its message pipeline."""

    app: FastAPI

    @property
    def services(self) -> Any:
        return self.app.state.services

    @property
    def pipeline(self) -> Any:
        return self.app.state.pipeline


@dataclass
class WeChat(AppHandles):
    """Plays WeChat against one app: posts signed pushes and reads the replies."""

    app: FastAPI
    client: httpx.AsyncClient
    side: WeChatSide
    path: str = "/wechat"

    async def post(
        self, fields: dict[str, Any] | str, *, encrypted: bool = False, **params: str
    ) -> httpx.Response:
        push = self.side.sign(fields, encrypted=encrypted)
        return await self.client.post(self.path, params={**push.params, **params}, content=push.body)

    async def send(self, fields: dict[str, Any], *, encrypted: bool = False) -> dict[str, Any] | None:
        response = await self.post(fields, encrypted=encrypted)
        assert response.status_code == 200, response.text
        return self.side.open_reply(response.content)

    async def say(self, openid: str, text: str, *, encrypted: bool = False) -> str:
        """Send a text; return the reply's Content ('' for success)."""
        reply = await self.send(self.side.text(openid, text), encrypted=encrypted)
        return "" if reply is None else str(reply.get("Content", reply.get("MsgType")))

    async def event(
        self, openid: str, event: str, key: str | None = None, **extra: Any
    ) -> dict[str, Any] | None:
        return await self.send(self.side.event(openid, event, key, **extra))



def make_settings(database_url: str, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "wechat_token": TOKEN,
        "wechat_appid": APPID,
        "wechat_aes_key": AES_KEY,
        "database_url": database_url,
        "redis_url": redis_url,
        "admin_token": ADMIN_TOKEN,
        "pii_key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        # The suite posts plaintext and safe mode to one app, also with live secrets; the production
        # default (plaintext refused) is tested in tests/e2e/test_safe_mode_required.py.
        "wechat_require_safe_mode": False,
        "miniprogram_require_safe_mode": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_app(settings: Settings, clock: FrozenClock) -> FastAPI:
    return create_app(settings, clock=clock)


def wechat_for(app: FastAPI, clock: FrozenClock, **side: Any) -> WeChat:
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="http://wxbot.test", timeout=30)
    ws = WeChatSide(TOKEN, account=ACCOUNT, appid=APPID, aes_key=AES_KEY,
                    now=lambda: clock.now().timestamp(), **side)
    return WeChat(app, client, ws)
