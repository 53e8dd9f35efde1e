"""Plays WeChat's side of the webhook: builds, signs and encrypts pushes, and opens the replies.

In the product because /simulator speaks it; `wxbot chat` (devtools.simclient re-exports it), the
benchmarks and the tests use the same code, so all of them speak the wire format one way."""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.crypto import Envelope, sha1_signature
from bot.inbound.parse import parse_xml

_MSG_IDS = itertools.count(int(time.time() * 1000) * 1000)


def xml_message(fields: Mapping[str, Any]) -> str:
    """A push body: strings in CDATA, ints bare, nested dicts/lists as elements."""
    return "<xml>" + _xml_fields(fields) + "</xml>"


def _xml_fields(fields: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for name, value in fields.items():
        if isinstance(value, list):
            parts.extend(f"<{name}>{_xml_fields(item)}</{name}>" for item in value)
        elif isinstance(value, dict):
            parts.append(f"<{name}>{_xml_fields(value)}</{name}>")
        elif isinstance(value, int):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            text = str(value).replace("]]>", "]]]]><![CDATA[>")
            parts.append(f"<{name}><![CDATA[{text}]]></{name}>")
    return "".join(parts)


@dataclass
class SignedPush:
    params: dict[str, str]
    body: bytes


@dataclass
class WeChatSide:
    token: str
    account: str = "gh_wxbotdemo0001"
    appid: str = ""
    aes_key: str = ""
    now: Callable[[], float] = time.time
    random: Callable[[int], bytes] = os.urandom
    _envelope: Envelope | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.aes_key:
            self._envelope = Envelope([self.aes_key], self.appid, random=self.random)

    def text(self, openid: str, content: str, msg_id: int | None = None) -> dict[str, Any]:
        return {
            "ToUserName": self.account, "FromUserName": openid, "CreateTime": int(self.now()),
            "MsgType": "text", "Content": content, "MsgId": msg_id or next(_MSG_IDS),
        }

    def image(self, openid: str, pic_url: str, media_id: str = "") -> dict[str, Any]:
        msg_id = next(_MSG_IDS)
        return {
            "ToUserName": self.account, "FromUserName": openid, "CreateTime": int(self.now()),
            "MsgType": "image", "PicUrl": pic_url, "MediaId": media_id or f"media{msg_id}", "MsgId": msg_id,
        }

    def location(self, openid: str, latitude: float, longitude: float, label: str = "") -> dict[str, Any]:
        return {
            "ToUserName": self.account, "FromUserName": openid, "CreateTime": int(self.now()),
            "MsgType": "location", "Location_X": str(latitude), "Location_Y": str(longitude), "Scale": 15,
            "Label": label, "MsgId": next(_MSG_IDS),
        }

    def event(self, openid: str, event: str, key: str | None = None, **extra: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "ToUserName": self.account, "FromUserName": openid, "CreateTime": int(self.now()),
            "MsgType": "event", "Event": event,
        }
        if key is not None:
            fields["EventKey"] = key
        fields.update(extra)
        return fields

    def sign(self, fields: Mapping[str, Any] | str, *, encrypted: bool = False) -> SignedPush:
        """Query parameters and body as WeChat would send them (safe mode when encrypted)."""
        body = fields if isinstance(fields, str) else xml_message(fields)
        timestamp, nonce = str(int(self.now())), str(secrets.randbelow(10**9))
        params = {
            "signature": sha1_signature(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        if encrypted:
            if self._envelope is None:
                raise ValueError("safe mode needs WECHAT_AES_KEY and WECHAT_APPID")
            encrypt = self._envelope.encrypt(body.encode())
            params["encrypt_type"] = "aes"
            params["msg_signature"] = sha1_signature(self.token, timestamp, nonce, encrypt)
            body = xml_message({"ToUserName": self.account, "Encrypt": encrypt})
        return SignedPush(params, body.encode())

    def open_reply(self, body: bytes | str) -> dict[str, Any] | None:
        """The reply's fields (decrypted and signature-checked in safe mode); None for `success`/empty."""
        raw = body.decode() if isinstance(body, bytes) else body
        if raw in ("", "success"):
            return None
        fields = parse_xml(raw.encode())
        if "Encrypt" in fields:
            if self._envelope is None:
                raise ValueError("encrypted reply but no AES key")
            expected = sha1_signature(
                self.token, str(fields["TimeStamp"]), str(fields["Nonce"]), fields["Encrypt"]
            )
            if expected != fields["MsgSignature"]:
                raise ValueError("reply MsgSignature does not match")
            fields = parse_xml(self._envelope.decrypt(fields["Encrypt"]).message)
        return fields
