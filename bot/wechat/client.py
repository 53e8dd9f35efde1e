"""WeChat's server API over async httpx: one shared stable_token per app (cached in the KV behind a
lock, refreshed once on 40001/40014/42001), message sends, QR codes, code2session, phone numbers.

In demo mode (no secret) nothing leaves the machine: each call is recorded in `outbound_call`
and answered like WeChat would. Also the PushSender the outbox sender is given."""

from __future__ import annotations

import itertools
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from bot.wechat import pushtexts
from storage.clock import Clock
from storage.db import Database
from storage.kv import KV
from storage.models import OutboundCall, Outbox
from storage.outbox import SendResult

log = logging.getLogger("wxbot.wechat_api")
TOKEN_ERRORS = {40001, 40014, 42001}
DEMO_TAG_ID = 100  # the user tag demo mode answers tags/create with
NETWORK_ERROR = -2  # our own code for "no answer": retried like WeChat's -1


class WeChatError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass(frozen=True)
class App:
    """One set of credentials: the Official Account or the Mini Program."""

    name: str
    appid: str
    secret: str

    @property
    def live(self) -> bool:
        return bool(self.appid and self.secret)


class WeChatAPI:
    def __init__(
        self, http: httpx.AsyncClient, kv: KV, db: Database, clock: Clock, *, base_url: str,
        oa: App, mp: App, wecom_base: str = "https://qyapi.weixin.qq.com",
    ) -> None:
        self.http = http
        self.kv = kv
        self.db = db
        self.clock = clock
        self.base = base_url.rstrip("/")
        self.wecom_base = wecom_base.rstrip("/")
        self.apps = {"oa": oa, "mp": mp}
        self._demo_ids = itertools.count(1)

    # --- tokens ------------------------------------------------------------------------------
    async def access_token(self, app: App) -> str:
        """The app's token, fetched by one process at a time for every process (stable_token)."""
        key = f"wxbot:token:{app.appid}"
        token = await self.kv.get(key)
        if token:
            return token
        async with self.kv.lock(f"wxbot:lock:token:{app.appid}", ttl=15, wait=15):
            token = await self.kv.get(key)
            if token:
                return token
            data = await self._post_json(
                "/cgi-bin/stable_token",
                {"grant_type": "client_credential", "appid": app.appid, "secret": app.secret,
                 "force_refresh": False},
            )
            token = str(data["access_token"])
            lifetime = max(int(data.get("expires_in", 7200)) - 300, 60)
            await self.kv.set(key, token, ex=lifetime)
            return token

    async def _forget_token(self, app: App, token: str) -> None:
        key = f"wxbot:token:{app.appid}"
        if await self.kv.get(key) == token:
            await self.kv.delete(key)

    # --- calls ---------------------------------------------------------------------------------
    async def call(
        self, app_name: str, path: str, body: dict[str, Any], *, query: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """POST (GET when `query` is given) with the access token; one token refresh and retry on
        40001/40014/42001."""
        app = self.apps[app_name]
        if not app.live:
            return await self._record(app_name, path, body or dict(query or {}))
        for attempt in (1, 2):
            token = await self.access_token(app)
            try:
                if query is not None:
                    return await self._get_json(path, {**query, "access_token": token})
                return await self._post_json(path, body, params={"access_token": token})
            except WeChatError as exc:
                if exc.errcode in TOKEN_ERRORS and attempt == 1:
                    await self._forget_token(app, token)
                    continue
                raise
        raise AssertionError("unreachable")

    async def _post_json(self, path: str, body: dict[str, Any], params: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            response = await self.http.post(
                self.base + path, params=params,
                content=json.dumps(body, ensure_ascii=False).encode(),
                headers={"Content-Type": "application/json"},
            )
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise WeChatError(NETWORK_ERROR, f"{type(exc).__name__} calling {path}") from None
        return _checked(data)

    async def _get_json(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self.http.get(self.base + path, params=params)
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise WeChatError(NETWORK_ERROR, f"{type(exc).__name__} calling {path}") from None
        return _checked(data)

    async def _record(self, app_name: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Demo mode: keep the call for the simulator and console, answer like WeChat."""
        async with self.db.unit_of_work() as session:
            session.add(OutboundCall(
                api=f"{app_name}:{path}", payload=json.dumps(body, ensure_ascii=False),
                created_at=self.clock.now(),
            ))
        log.info("demo mode: recorded %s %s (nothing sent)", app_name, path)
        if path.endswith("/user/info"):
            return {"subscribe": 1, "openid": body.get("openid", "")}
        if path.endswith("/qrcode/create"):
            ticket = "demo-" + secrets.token_urlsafe(12)
            return {"ticket": ticket, "expire_seconds": body.get("expire_seconds", 0), "url": f"demo://qr/{ticket}"}
        if path.endswith("/tags/create"):
            return {"tag": {"id": DEMO_TAG_ID, "name": body.get("tag", {}).get("name", "")}}
        if path.endswith("/menu/get"):
            return {"menu": {"button": []}}
        return {"errcode": 0, "errmsg": "ok", "msgid": next(self._demo_ids)}

    # --- the APIs the product uses -------------------------------------------------------------
    async def send_custom(self, app_name: str, openid: str, message: dict[str, Any]) -> dict[str, Any]:
        return await self.call(app_name, "/cgi-bin/message/custom/send", {"touser": openid, **message})

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, Any], *, url: str | None = None,
        client_msg_id: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": data}
        if url:
            body["url"] = url
        if client_msg_id:
            body["client_msg_id"] = client_msg_id[:64]
        return await self.call("oa", "/cgi-bin/message/template/send", body)

    async def send_subscribe(
        self, openid: str, template_id: str, data: dict[str, Any], page: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": data, "lang": "zh_CN"}
        if page:
            body["page"] = page
        return await self.call("mp", "/cgi-bin/message/subscribe/send", body)

    async def create_qr(self, scene: str, *, expire_seconds: int | None = None) -> dict[str, Any]:
        """A parametric QR code: temporary when expire_seconds is given, else permanent."""
        if expire_seconds:
            body: dict[str, Any] = {"expire_seconds": min(expire_seconds, 2_592_000), "action_name": "QR_STR_SCENE"}
        else:
            body = {"action_name": "QR_LIMIT_STR_SCENE"}
        body["action_info"] = {"scene": {"scene_str": scene[:64]}}
        return await self.call("oa", "/cgi-bin/qrcode/create", body)

    async def post_robot(self, robot_key: str, text: str) -> dict[str, Any]:
        """A WeCom group-robot text message. Demo mode (no OA secret) records it instead."""
        body = {"msgtype": "text", "text": {"content": text}}
        if not self.apps["oa"].live:
            return await self._record("wecom", "/cgi-bin/webhook/send", body)
        try:
            response = await self.http.post(f"{self.wecom_base}/cgi-bin/webhook/send", params={"key": robot_key},
                                            json=body)
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise WeChatError(NETWORK_ERROR, f"{type(exc).__name__} calling the group robot") from None
        return _checked(data)

    async def user_info(self, openid: str) -> dict[str, Any]:
        """An OA follower's info; `unionid` when the account is bound to an Open Platform account."""
        return await self.call("oa", "/cgi-bin/user/info", {}, query={"openid": openid, "lang": "zh_CN"})

    async def code2session(self, js_code: str) -> dict[str, Any]:
        app = self.apps["mp"]
        if not app.live:
            raise WeChatError(40029, "Mini Program credentials are not configured (demo mode)")
        try:
            response = await self.http.get(self.base + "/sns/jscode2session", params={
                "appid": app.appid, "secret": app.secret, "js_code": js_code,
                "grant_type": "authorization_code",
            })
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise WeChatError(NETWORK_ERROR, f"{type(exc).__name__} calling code2session") from None
        return _checked(data)

    async def phone_number(self, code: str) -> str:
        data = await self.call("mp", "/wxa/business/getuserphonenumber", {"code": code})
        info = data.get("phone_info") or {}
        phone = info.get("purePhoneNumber") or info.get("phoneNumber")
        if not phone:
            raise WeChatError(40029, "no phone number for this code")
        return str(phone)


def _checked(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise WeChatError(NETWORK_ERROR, "answer is not a JSON object")
    code = int(data.get("errcode", 0) or 0)
    if code:
        raise WeChatError(code, str(data.get("errmsg", "")))
    return data


class WeChatPushSender:
    """PushSender over WeChatAPI: one channel per call; the outbox sender chooses the channel."""

    def __init__(self, api: WeChatAPI) -> None:
        self.api = api

    async def send(self, channel: str, row: Outbox, *, openid: str, template_id: str | None) -> SendResult:
        payload = json.loads(row.payload)
        try:
            if channel == "robot":
                await self.api.post_robot(payload["robot_key"], pushtexts.robot_text(row.kind, payload))
                return SendResult(channel, 0)
            if channel == "cs":
                message = payload.get("custom") or {
                    "msgtype": "text", "text": {"content": pushtexts.text_for(row.kind, payload)}
                }
                await self.api.send_custom(row.source, openid, message)
                return SendResult(channel, 0)
            data = pushtexts.data_for(row.kind, payload)
            if channel == "template":
                answer = await self.api.send_template(
                    openid, template_id or "", data, url=payload.get("url"), client_msg_id=row.dedupe_key
                )
                return SendResult(channel, 0, msgid=str(answer.get("msgid", "")) or None)
            if channel == "subscribe":
                await self.api.send_subscribe(openid, template_id or "", data, payload.get("page"))
                return SendResult(channel, 0)
        except WeChatError as exc:
            return SendResult(channel, exc.errcode, exc.errmsg[:200])
        return SendResult(channel, -3, f"unknown channel {channel}")


class WeChatQr:
    """QrMaker over WeChatAPI: a permanent string-scene QR code and the link to its image."""

    SHOW = "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket="

    def __init__(self, api: WeChatAPI) -> None:
        self.api = api

    async def make(self, scene: str) -> tuple[str, bool]:
        try:
            answer = await self.api.create_qr(scene)
        except WeChatError as exc:
            log.warning("QR code for a campaign could not be made: %s", exc.errcode)
            return "", False
        ticket = str(answer.get("ticket", ""))
        demo = not self.api.apps["oa"].live
        return (str(answer.get("url")) if demo else self.SHOW + quote(ticket, safe="")), demo

    @property
    def live(self) -> bool:
        return self.api.apps["oa"].live

    async def temporary(self, scene: str, seconds: int) -> tuple[str, int]:
        try:
            answer = await self.api.create_qr(scene, expire_seconds=seconds)
        except WeChatError as exc:
            log.warning("a temporary QR code could not be made: %s", exc.errcode)
            return "", 0
        ticket = str(answer.get("ticket", ""))
        return self.SHOW + quote(ticket, safe=""), int(answer.get("expire_seconds") or seconds)
