"""The baseline for bench/webhook.py: a raw ASGI callable that checks the WeChat signature and
answers a fixed text reply. No framework, no dedupe, no storage: what uvicorn alone costs.

Serve it with `uvicorn --app-dir bench bare_app:app --lifespan off`; the token comes from
WECHAT_TOKEN, as for the real server.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from typing import Any
from urllib.parse import parse_qsl

TOKEN = os.environ.get("WECHAT_TOKEN", "wxbot-dev-token")
MAX_AGE = 600
REPLY = (
    "<xml><ToUserName><![CDATA[member]]></ToUserName>"
    "<FromUserName><![CDATA[gh_wxbotdemo0001]]></FromUserName>"
    "<CreateTime>0</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[欢迎来到会员俱乐部！]]></Content></xml>"
).encode()


def signature_ok(query: bytes) -> bool:
    params = dict(parse_qsl(query.decode("latin-1")))
    timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")
    expected = hashlib.sha1("".join(sorted((TOKEN, timestamp, nonce))).encode()).hexdigest()
    if not hmac.compare_digest(expected, params.get("signature", "").lower()):
        return False
    return timestamp.isdigit() and abs(time.time() - int(timestamp)) <= MAX_AGE


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the body; the reply does not depend on it
        message = await receive()
        more = message.get("more_body", False)
    if scope["path"] == "/healthz":
        status, body, kind = 200, b'{"status":"ok"}', b"application/json"
    elif scope["method"] != "POST" or scope["path"] != "/wechat":
        status, body, kind = 404, b"not found", b"text/plain"
    elif not signature_ok(scope["query_string"]):
        status, body, kind = 403, b"invalid signature", b"text/plain"
    else:
        status, body, kind = 200, REPLY, b"application/xml"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
