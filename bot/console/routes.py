"""The console's routes in one router, and its exception pages; create_app includes it once."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from bot.console import (
    anomalies,
    audience_grants,
    auditlog,
    broadcasts,
    campaigns,
    experiments,
    exports,
    members,
    merge,
    pushes,
    rewards,
    segments,
    sharing,
    signin,
    staff,
    stores,
    surveys,
    texts,
    tickets,
    verify,
    winback,
)
from bot.console.auth import ConsoleError, Sessions, SignInRequired
from bot.console.pages import HERE, console_error, refusal, to_sign_in
from bot.settings import Settings
from storage.kv import KV

router = APIRouter(include_in_schema=False)
router.include_router(signin.router)
# merge before members: `/admin/members/merge` is no member id.
for _module in (merge, members, anomalies, tickets, surveys, rewards, campaigns, staff, pushes, auditlog, exports,
                verify, stores, sharing, segments, experiments, broadcasts, winback,
                audience_grants):
    router.include_router(_module.router)


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the console: its routes, its vendored assets, and the pages its refusals render."""
    app.include_router(router)
    app.mount("/admin/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(ConsoleError)
    async def refused(request: Request, exc: ConsoleError) -> HTMLResponse:
        return console_error(request, exc)

    @app.exception_handler(SignInRequired)
    async def signed_out(request: Request, exc: SignInRequired) -> Response:
        return to_sign_in(request)


def start(app: FastAPI, settings: Settings, kv: KV) -> None:
    """At start-up (the lifespan): sessions live in the KV the app built."""
    app.state.console_sessions = Sessions(kv, settings)


def refusal_page(request: Request, status: int, message: str) -> Response | None:
    """The console's page for an HTTP error on a console path (None elsewhere: the APIs answer JSON)."""
    path = request.url.path
    if not (path == "/admin" or path.startswith("/admin/")):
        return None
    # 422: a value in the path or the query that names no record (`/admin/pushes/abc`, an id past the column)
    texts_for = {404: texts.NOT_FOUND, 422: texts.NOT_FOUND, 503: texts.UNAVAILABLE}
    return refusal(request, status, texts_for.get(status) or texts.BAD_REQUEST.format(detail=message))
