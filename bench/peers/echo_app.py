"""FastAPI + wechatpy, no state: check the signature, parse the XML, reply with the text it was sent.
What the framework and the wire format cost without any of wxbot's rules. Serve it with
`uvicorn bench.peers.echo_app:app`; the token comes from WECHAT_TOKEN."""

from __future__ import annotations

import os

from fastapi import FastAPI, Request, Response
from wechatpy import create_reply, parse_message
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

TOKEN = os.environ.get("WECHAT_TOKEN", "wxbot-dev-token")
app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/wechat")
async def wechat(request: Request, signature: str = "", timestamp: str = "", nonce: str = "") -> Response:
    try:
        check_signature(TOKEN, signature, timestamp, nonce)
    except InvalidSignatureException:
        return Response("invalid signature", status_code=403)
    message = parse_message(await request.body())
    reply = create_reply(getattr(message, "content", "") or "你好", message)
    return Response(reply.render(), media_type="application/xml")
