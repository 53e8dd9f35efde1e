"""The one dependency module of the HTTP APIs: the services, settings and WeChat client, the admin
bearer check, the order webhook's signature check, and the deadline a call may spend on storage.
Routes take these as parameters; nothing else in bot/api reads `request.app.state`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.api.errors import ApiError
from bot.api.validation import unix_seconds
from bot.crypto import secret_equals, signature_matches
from bot.settings import Settings
from bot.wechat.client import WeChatAPI
from handlers.core.context import Services

T = TypeVar("T")
ORDER_MAX_AGE = 300
ORDER_MAX_BODY = 64 * 1024


def services(request: Request) -> Services:
    return request.app.state.services


def settings(request: Request) -> Settings:
    return request.app.state.settings


def wechat_api(request: Request) -> WeChatAPI:
    return request.app.state.wechat


def client_of(request: Request) -> str | None:
    """The caller's address, as the audit log records it."""
    return request.client.host if request.client else None


ServicesDep = Annotated[Services, Depends(services)]
SettingsDep = Annotated[Settings, Depends(settings)]
WeChatDep = Annotated[WeChatAPI, Depends(wechat_api)]

# auto_error=False: a missing or malformed header reaches our check, which answers 401 in our JSON shape.
admin_bearer = HTTPBearer(scheme_name="AdminToken", auto_error=False, description="ADMIN_TOKEN")
session_bearer = HTTPBearer(scheme_name="SessionToken", auto_error=False,
                            description="the session token of POST /api/mp/login")
SessionBearer = Annotated[HTTPAuthorizationCredentials | None, Depends(session_bearer)]


def require_admin(
    config: SettingsDep, found: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)],
) -> Services:
    if credentials is None or not secret_equals(config.admin_token, credentials.credentials):
        raise ApiError(401, "unauthorized", "a valid `Authorization: Bearer <ADMIN_TOKEN>` header is required")
    return found


AdminDep = Annotated[Services, Depends(require_admin)]


async def signed_order_body(
    request: Request, config: SettingsDep, found: ServicesDep,
    timestamp: Annotated[str | None, Header(alias="X-Wxbot-Timestamp", description="Unix seconds")] = None,
    signature: Annotated[str | None, Header(
        alias="X-Wxbot-Signature", description='hex HMAC-SHA256 of `timestamp + "." + body`, "sha256=" optional',
    )] = None,
) -> bytes:
    """The raw body of an order webhook call, once its size, timestamp and HMAC have been checked."""
    body = await request.body()
    if len(body) > ORDER_MAX_BODY:
        raise ApiError(413, "payload_too_large", f"body larger than {ORDER_MAX_BODY} bytes")
    verify_order(config.order_webhook_secret, timestamp, signature, body, found.clock.now().timestamp())
    return body


def verify_order(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float) -> None:
    if not secret:
        raise ApiError(503, "unavailable", "order webhook is disabled: ORDER_WEBHOOK_SECRET is not set")
    if not timestamp or not signature:
        raise ApiError(401, "unauthorized", "X-Wxbot-Timestamp and X-Wxbot-Signature are required")
    seconds = unix_seconds(timestamp)
    if seconds is None:
        raise ApiError(401, "unauthorized", "X-Wxbot-Timestamp must be Unix seconds")
    if abs(now - seconds) > ORDER_MAX_AGE:
        raise ApiError(401, "unauthorized", "X-Wxbot-Timestamp is more than 5 minutes away from now")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not signature_matches(expected, signature.removeprefix("sha256=")):
        raise ApiError(401, "unauthorized", "invalid X-Wxbot-Signature")


SignedOrder = Annotated[bytes, Depends(signed_order_body)]

_ABANDONED: set[asyncio.Task[Any]] = set()  # cancelled work still rolling back; kept from the collector


async def within_deadline(seconds: float, work: Coroutine[Any, Any, T]) -> T:
    """Run a unit of work for at most `seconds`; past it, a 503 the caller retries. The work is cancelled,
    so its transaction never commits: nothing is half-applied. It runs as its own task because its
    rollback may have to wait for the very lock it was stuck behind (SQLite's thread), and the answer
    must not."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        _ABANDONED.add(task)
        task.add_done_callback(_forget)
        raise ApiError(503, "unavailable", f"storage did not answer within {seconds:g} s; nothing was applied, retry")
    return task.result()


def _forget(task: asyncio.Task[Any]) -> None:
    _ABANDONED.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as lost; the caller already had its 503


SETTLE_WAIT = 35.0  # past SQLite's 30 s busy timeout, the longest a cancelled rollback can be held up


async def settle_abandoned() -> None:
    """Let cancelled units of work finish rolling back before the engine is disposed under them (a
    connection closed mid-rollback would leave its task waiting forever)."""
    if _ABANDONED:
        await asyncio.wait(set(_ABANDONED), timeout=SETTLE_WAIT)
