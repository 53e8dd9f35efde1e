"""Shared wiring for the Mini Program tests: the whole app pointed at the in-process fake WeChat API
(the pattern of tests/e2e/test_mp_smoke.py), a Mini Program push signer for JSON and XML, plaintext
and safe mode, the member API's login and sign-up, and readers for the rows the assertions need.

Test modules wrap `mini_program()` in their own fixture, on the `urls` and `clock` fixtures of
tests/conftest.py, so each test runs on SQLite + memory:// and PostgreSQL + Redis."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from bot.app import create_app
from bot.crypto import Envelope, sha1_signature
from devtools.fakewechat import create_fake_wechat
from devtools.simclient import SignedPush, WeChatSide
from storage import subscriptions
from storage.clock import FrozenClock
from storage.models import Member, Outbox, SubscribeCredit
from tests.support.fakes import AppHandles, WeChat, make_settings, running, wechat_for

FAKE_BASE = "http://fake.wechat"
PUSH = "/miniprogram/push"
MP_APPID = "wxmp00000000000001"
MP_TOKEN = "mptoken0001"
MP_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
MP_ACCOUNT = "gh_mp0000000001"
UNSET: Any = object()  # "leave the unionid to the fake" (it derives one from the code)


@dataclass
class MiniProgram(AppHandles):
    """One running app, the fake WeChat API behind it, and WeChat's side of both doors."""

    app: FastAPI
    client: httpx.AsyncClient  # to the app (member API and pushes)
    fake: httpx.AsyncClient  # to the fake WeChat API and its /_fake control routes
    oa: WeChat  # the Official Account chat on the same app
    clock: FrozenClock
    token: str
    appid: str
    aes_key: str
    account: str = MP_ACCOUNT

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    # --- pushes ---------------------------------------------------------------------------------
    def text(self, openid: str, content: str, msg_id: int | str | None = None) -> dict[str, Any]:
        return {
            "ToUserName": self.account, "FromUserName": openid, "CreateTime": self.now(),
            "MsgType": "text", "Content": content, "MsgId": msg_id or secrets.randbelow(10**17) + 10**17,
        }

    def event(self, openid: str, event: str, **extra: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "ToUserName": self.account, "FromUserName": openid, "CreateTime": self.now(),
            "MsgType": "event", "Event": event,
        }
        fields.update(extra)
        return fields

    def sign(self, fields: Mapping[str, Any] | str, *, fmt: str = "json", encrypted: bool = False) -> SignedPush:
        """The query and body WeChat would send: JSON (the `{"ToUserName","Encrypt"}` envelope in safe
        mode) or XML (the `<xml><Encrypt>` envelope), signed with the Mini Program token."""
        if fmt == "xml":
            side = WeChatSide(self.token, account=self.account, appid=self.appid, aes_key=self.aes_key,
                              now=lambda: self.clock.now().timestamp())
            return side.sign(fields, encrypted=encrypted)
        body = fields if isinstance(fields, str) else json.dumps(fields, ensure_ascii=False)
        timestamp, nonce = str(self.now()), str(secrets.randbelow(10**9))
        params = {"signature": sha1_signature(self.token, timestamp, nonce), "timestamp": timestamp,
                  "nonce": nonce}
        if encrypted:
            encrypt = Envelope([self.aes_key], self.appid).encrypt(body.encode())
            params["encrypt_type"] = "aes"
            params["msg_signature"] = sha1_signature(self.token, timestamp, nonce, encrypt)
            body = json.dumps({"ToUserName": self.account, "Encrypt": encrypt})
        return SignedPush(params, body.encode())

    async def push(
        self, fields: Mapping[str, Any] | str, *, fmt: str = "json", encrypted: bool = False, **params: str
    ) -> httpx.Response:
        signed = self.sign(fields, fmt=fmt, encrypted=encrypted)
        if "openid" not in params and isinstance(fields, Mapping):
            params["openid"] = str(fields.get("FromUserName", ""))
        return await self.client.post(PUSH, params={**signed.params, **params}, content=signed.body)

    async def acked(self, fields: Mapping[str, Any], *, fmt: str = "json", encrypted: bool = False) -> None:
        """Post a push and insist on the only answer a Mini Program push gets: plain `success`."""
        response = await self.push(fields, fmt=fmt, encrypted=encrypted)
        assert response.status_code == 200, response.text
        assert response.content == b"success"

    def open_json_reply(self, response: httpx.Response, nonce: str) -> dict[str, Any]:
        """A JSON passive reply, decrypted and its MsgSignature checked when it is the safe-mode envelope."""
        data = response.json()
        if "Encrypt" not in data:
            return dict(data)
        assert data["Nonce"] == nonce
        expected = sha1_signature(self.token, str(data["TimeStamp"]), data["Nonce"], data["Encrypt"])
        assert data["MsgSignature"] == expected
        return dict(json.loads(Envelope([self.aes_key], self.appid).decrypt(data["Encrypt"]).message))

    # --- the fake WeChat API -----------------------------------------------------------------------
    async def add_code(self, code: str, openid: str, unionid: str | None = UNSET) -> dict[str, Any]:
        spec: dict[str, Any] = {"code": code, "openid": openid}
        if unionid is not UNSET:
            spec["unionid"] = unionid
        response = await self.fake.post("/_fake/codes", json=spec)
        response.raise_for_status()
        return dict(response.json())

    async def add_follower(self, openid: str, unionid: str | None) -> None:
        response = await self.fake.post("/_fake/users", json={"openid": openid, "unionid": unionid})
        response.raise_for_status()

    async def add_phone_code(self, code: str, phone: str) -> None:
        response = await self.fake.post("/_fake/phone_codes", json={"code": code, "phone": phone})
        response.raise_for_status()

    async def calls(self, path: str | None = None) -> list[dict[str, Any]]:
        response = await self.fake.get("/_fake/calls", params={"path": path} if path else None)
        response.raise_for_status()
        return list(response.json())

    # --- the member API ------------------------------------------------------------------------------
    async def login(self, openid: str, unionid: str | None = UNSET, *, code: str | None = None) -> str:
        """A fresh wx.login() code for this user, exchanged for our session token."""
        code = code or f"code-{secrets.token_hex(6)}"
        await self.add_code(code, openid, unionid)
        response = await self.client.post("/api/mp/login", json={"code": code})
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    async def signup(self, token: str, phone: str, **extra: Any) -> dict[str, Any]:
        response = await self.client.post("/api/mp/signup", headers=auth(token),
                                          json={"phone": phone, "consent": True, **extra})
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def member_for(self, openid: str, unionid: str | None = UNSET, *, phone: str) -> str:
        """Log in and sign up; returns the session token of the new member."""
        token = await self.login(openid, unionid)
        await self.signup(token, phone)
        return token

    async def get(self, token: str, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(f"/api/mp{path}", headers=auth(token), params=params or None)

    async def post(self, token: str, path: str, body: Any = None) -> httpx.Response:
        return await self.client.post(f"/api/mp{path}", headers=auth(token), json=body)

    # --- the database -----------------------------------------------------------------------------
    async def members(self) -> list[Member]:
        async with self.services.db.sessions() as session:
            return list((await session.scalars(select(Member).order_by(Member.id))).all())

    async def member(self, *, openid: str | None = None, mp_openid: str | None = None) -> Member | None:
        column, value = (Member.mp_openid, mp_openid) if mp_openid is not None else (Member.openid, openid)
        async with self.services.db.sessions() as session:
            return await session.scalar(select(Member).where(column == value))

    async def outbox(self, openid: str | None = None) -> list[Outbox]:
        stmt = select(Outbox).order_by(Outbox.id)
        if openid is not None:
            stmt = stmt.where(Outbox.openid == openid)
        async with self.services.db.sessions() as session:
            return list((await session.scalars(stmt)).all())

    async def credits(self, openid: str, template_id: str) -> int:
        async with self.services.db.sessions() as session:
            return await subscriptions.credits(session, openid, template_id)

    async def credit_row(self, openid: str, template_id: str) -> SubscribeCredit | None:
        async with self.services.db.sessions() as session:
            return await session.scalar(
                select(SubscribeCredit).where(SubscribeCredit.openid == openid)
                .where(SubscribeCredit.template_id == template_id)
            )


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def custom_text(row: Outbox) -> str:
    """The text of a customer-service message queued in the outbox."""
    custom = json.loads(row.payload)["custom"]
    assert custom["msgtype"] == "text", custom
    return str(custom["text"]["content"])


@asynccontextmanager
async def mini_program(
    urls: tuple[str, str], clock: FrozenClock, *, token: str = MP_TOKEN, appid: str = MP_APPID,
    aes_key: str = MP_AES_KEY, **overrides: Any,
) -> AsyncIterator[MiniProgram]:
    """The app with live credentials for both doors, all WeChat calls answered by the fake."""
    fake_app = create_fake_wechat(clock=lambda: clock.now().timestamp())
    fake = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake_app), base_url=FAKE_BASE)
    values: dict[str, Any] = {
        "wechat_appsecret": "oa-live-secret", "wechat_api_base": FAKE_BASE,
        "miniprogram_appid": appid, "miniprogram_secret": "mp-live-secret",
        "miniprogram_token": token, "miniprogram_aes_key": aes_key,
    }
    values.update(overrides)
    app = create_app(make_settings(*urls, **values), clock=clock, http=fake)
    async with running(app):
        oa = wechat_for(app, clock)
        async with oa.client, fake:
            yield MiniProgram(app=app, client=oa.client, fake=fake, oa=oa, clock=clock, token=token,
                              appid=appid, aes_key=aes_key)
