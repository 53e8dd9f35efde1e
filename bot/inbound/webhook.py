"""GET|POST /wechat and /miniprogram/push: size, signature, decrypt, parse, pipeline, encrypt.

Bad signature 403, oversized 413, malformed or undecryptable 400; nothing past the edge runs for those."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot import metrics
from bot.api.validation import nul_field, unix_seconds
from bot.crypto import CryptoError, Envelope, sha1_signature, signature_matches
from bot.inbound.parse import MalformedError, build_inbound, parse_json, parse_xml
from bot.inbound.pipeline import ChatPipeline
from bot.inbound.render import SUCCESS
from handlers.core.message import OFFICIAL_ACCOUNT
from storage.clock import Clock

log = logging.getLogger("wxbot.webhook")


@dataclass(frozen=True)
class Endpoint:
    """What one WeChat door needs at the edge: its token, its envelope (safe mode) and limits."""

    name: str
    source: str
    token: str
    envelope: Envelope | None
    max_body: int
    max_age: int
    require_safe_mode: bool = False  # plaintext pushes refused (WECHAT_/MINIPROGRAM_REQUIRE_SAFE_MODE)


class Refused(HTTPException):
    def __init__(self, endpoint: Endpoint, status: int, detail: str) -> None:
        metrics.REJECTED.labels(endpoint.name, str(status)).inc()
        super().__init__(status_code=status, detail=detail)


def check_signature(endpoint: Endpoint, clock: Clock, params: Any) -> None:
    timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")
    expected = sha1_signature(endpoint.token, timestamp, nonce)
    if not signature_matches(expected, params.get("signature")):
        raise Refused(endpoint, 403, "invalid signature")
    if endpoint.max_age:
        seconds = unix_seconds(timestamp)
        if seconds is None:
            raise Refused(endpoint, 403, "invalid timestamp")
        if abs(clock.now().timestamp() - seconds) > endpoint.max_age:
            raise Refused(endpoint, 403, "signature timestamp too old")


async def read_body(endpoint: Endpoint, request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > endpoint.max_body:
        raise Refused(endpoint, 413, f"body larger than {endpoint.max_body} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > endpoint.max_body:
            raise Refused(endpoint, 413, f"body larger than {endpoint.max_body} bytes")
    if not body:
        raise Refused(endpoint, 400, "empty body")
    return bytes(body)


def open_body(endpoint: Endpoint, params: Any, body: bytes) -> tuple[dict[str, Any], bool, int]:
    """The message fields, whether they were JSON, and which AES key decrypted them (-1: plaintext)."""
    is_json = body.lstrip()[:1] == b"{"
    if endpoint.require_safe_mode and params.get("encrypt_type", "raw").lower() != "aes":
        # Refused unread: the plain signature covers timestamp and nonce, nothing vouches for the body.
        raise Refused(endpoint, 403, "plaintext push refused: safe mode is required (EncodingAESKey is set)")
    try:
        fields = parse_json(body) if is_json else parse_xml(body)
        if params.get("encrypt_type", "raw").lower() != "aes":
            return fields, is_json, -1
        if endpoint.envelope is None:
            raise Refused(endpoint, 400, "encrypted message but no EncodingAESKey is configured")
        encrypted = fields.get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise Refused(endpoint, 400, "Encrypt is missing")
        expected = sha1_signature(
            endpoint.token, params.get("timestamp", ""), params.get("nonce", ""), encrypted
        )
        if not signature_matches(expected, params.get("msg_signature")):
            raise Refused(endpoint, 403, "invalid msg_signature")
        opened = endpoint.envelope.decrypt(encrypted)
        inner = parse_json(opened.message) if is_json else parse_xml(opened.message)
        return inner, is_json, opened.key_index
    except MalformedError as exc:
        raise Refused(endpoint, 400, str(exc)) from None
    except CryptoError as exc:
        raise Refused(endpoint, 400, f"cannot decrypt: {exc}") from None


def seal(endpoint: Endpoint, plain: str, nonce: str, key_index: int, now: int, is_json: bool) -> Response:
    """The reply: plain, or the encrypted envelope in safe mode (`success` is never encrypted)."""
    if is_json and plain.startswith("<"):  # a Mini Program in JSON mode gets its reply as JSON
        fields = parse_xml(plain.encode())
        if str(fields.get("CreateTime", "")).isdigit():  # XML text is a string; the JSON reply has a number
            fields["CreateTime"] = int(fields["CreateTime"])
        plain = json.dumps(fields, ensure_ascii=False)
    if key_index < 0 or plain == SUCCESS or endpoint.envelope is None:
        media = "application/xml" if plain.startswith("<") else "application/json" if is_json and plain != SUCCESS \
            else "text/plain"
        return Response(plain, media_type=media)
    encrypted = endpoint.envelope.encrypt(plain.encode(), key_index)
    signature = sha1_signature(endpoint.token, str(now), nonce, encrypted)
    if is_json:
        payload = {"Encrypt": encrypted, "MsgSignature": signature, "TimeStamp": now, "Nonce": nonce}
        return Response(json.dumps(payload), media_type="application/json")
    xml = (
        f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
        f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
        f"<TimeStamp>{now}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
    )
    return Response(xml, media_type="application/xml")


def make_router(path: str, endpoint_attr: str) -> APIRouter:
    router = APIRouter()

    @router.get(path, response_class=PlainTextResponse, include_in_schema=False)
    async def verify(request: Request) -> PlainTextResponse:
        endpoint: Endpoint = getattr(request.app.state, endpoint_attr)
        check_signature(endpoint, request.app.state.clock, request.query_params)
        echostr = request.query_params.get("echostr")
        if not echostr:
            raise Refused(endpoint, 400, "echostr is missing")
        return PlainTextResponse(echostr)

    async def receive(request: Request) -> Response:
        started = time.monotonic()
        endpoint: Endpoint = getattr(request.app.state, endpoint_attr)
        clock: Clock = request.app.state.clock
        params = request.query_params
        body = await read_body(endpoint, request)
        check_signature(endpoint, clock, params)
        fields, is_json, key_index = open_body(endpoint, params, body)
        if (field := nul_field(fields)) is not None:  # JSON may carry \u0000; PostgreSQL text refuses it
            raise Refused(endpoint, 400, f"{field} contains a NUL character")
        try:
            msg = build_inbound(endpoint.source, fields, clock.now())
        except MalformedError as exc:
            raise Refused(endpoint, 400, str(exc)) from None
        pipeline: ChatPipeline = request.app.state.pipeline
        plain = await pipeline.process(msg, started)
        now = int(clock.now().timestamp())
        return seal(endpoint, plain, params.get("nonce", ""), key_index, now, is_json)

    # A plain Starlette route: it takes the Request and nothing else, and FastAPI's dependency machinery
    # around an APIRoute cost about as much CPU as the signature check, XML parse and reply together.
    router.add_route(path, receive, methods=["POST"], include_in_schema=False)
    return router


class WebhookDoors:
    """ASGI middleware: a POST to a WeChat door (/wechat, /miniprogram/push) goes straight to its handler,
    past the exception middleware and the router's walk through every route of the console and the APIs,
    which cost more CPU than the signature check and the XML parse together (bench/instructions.py). What
    the handler raises is answered by the app's own exception handlers, as the router would have it
    answered; anything they do not take goes up to ServerErrorShield, which sits outside this."""

    def __init__(self, app: ASGIApp, routers: tuple[APIRouter, ...]) -> None:
        self.app = app
        self.doors: dict[str, Route] = {
            route.path: route for router in routers for route in router.routes
            if isinstance(route, Route) and "POST" in (route.methods or ())
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        door = self.doors.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if door is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = door  # the route's template labels metrics and logs, as after routing
        request = Request(scope, receive)
        try:
            response = await door.endpoint(request)
        except Exception as exc:
            answer = _handler_for(request.app.exception_handlers, exc)
            if answer is None:
                raise
            response = await answer(request, exc)
        await response(scope, receive, send)


def _handler_for(handlers: dict[Any, Any], exc: Exception) -> Any:
    """The app's exception handler for `exc`, looked up along its classes as Starlette does."""
    for kind in type(exc).__mro__:
        if kind in handlers:
            return handlers[kind]
    return None


official_account = make_router("/wechat", "oa_endpoint")
mini_program = make_router("/miniprogram/push", "mp_endpoint")
__all__ = ["Endpoint", "official_account", "make_router", "OFFICIAL_ACCOUNT", "WebhookDoors"]
