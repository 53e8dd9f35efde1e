"""JSON errors for the HTTP APIs: {"error": code, "message": text} with a precise status; an outage of
the database or the KV is a 503, and any other failure a counted 500 in the same shape, never a trace."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import redis.exceptions
import sqlalchemy.exc
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import metrics
from storage.errors import InvalidFieldError

log = logging.getLogger("wxbot.api")

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "payload_too_large", 422: "invalid", 429: "rate_limited", 503: "unavailable"}
# What a database or KV that is down, restarting or unreachable raises (a closed port is an OSError).
OUTAGES: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.DisconnectionError,
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError, TimeoutError,
)


class ApiError(HTTPException):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status_code=status, detail=message)
        self.code = code


def invalid(exc: InvalidFieldError, *, field: str | None = None) -> ApiError:
    """A storage refusal as the 422 that names the field (as the body calls it, when that differs) and any
    figures it carries: `reward_id: out_of_stock; remaining=0`."""
    figures = "".join(f"; {k}={v}" for k, v in sorted(exc.details.items()))
    return ApiError(422, "invalid", f"{field or exc.field}: {exc.problem}{figures}")


ERROR_SCHEMA = {
    "description": "An error",
    "content": {"application/json": {"example": {"error": "not_member", "message": "您还不是会员哦。"}}},
}


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


HtmlRefusal = Callable[[Request, int, str], Response | None]


def install_error_handlers(app: FastAPI, html: HtmlRefusal | None = None) -> None:
    """Every refusal is JSON {"error": code, "message": text} with a precise status; on the paths `html`
    answers for (the console), the page it renders instead."""

    def answer(request: Request, status: int, code: str, message: str) -> Response:
        page = html(request, status, message) if html is not None else None
        return page if page is not None else error(status, code, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = exc.code if isinstance(exc, ApiError) else CODES.get(exc.status_code, "error")
        return answer(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # A console path's bad id (`/admin/members/abc`) names no record: the console's page says "not found"
        # (bot/console/routes.py refusal_page).
        return answer(request, 422, "invalid", problems_of(list(exc.errors())))

    async def outage(request: Request, exc: Exception) -> Response:
        log.warning("storage unavailable on %s: %s", route_of(request.scope), type(exc).__name__)
        return answer(request, 503, "unavailable",
                      "the database or the KV store is unavailable; nothing was applied, retry")

    for kind in OUTAGES:
        app.add_exception_handler(kind, outage)
    app.add_middleware(ServerErrorShield)


def route_of(scope: Scope) -> str:
    """The route's template (`/api/admin/rewards/{reward_id}`), so ids do not become label values."""
    return str(getattr(scope.get("route"), "path", "unmatched"))


class ServerErrorShield:
    """Counts every 500 by route (wxbot_http_server_errors_total) and answers an unhandled exception
    with the JSON shape. Logged by type and stack only: an exception's text can carry SQL parameters."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if message["status"] == 500:
                    metrics.SERVER_ERRORS.labels(route_of(scope)).inc()
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            log.error("unhandled %s on %s\n%s", type(exc).__name__, route_of(scope),
                      "".join(traceback.format_tb(exc.__traceback__)))
            if started:
                raise
            await error(500, "internal", "internal error; it has been logged")(scope, receive, watch)


def problems_of(errors: list[Any]) -> str:
    """Pydantic errors as one line naming each field: `amount_fen: Input should be ...; openid: ...`."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors)
