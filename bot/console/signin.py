"""Sign-in, sign-out and the landing page. Sign-in answers in the same time for unknown and known names
(storage/operators.py) and locks a name after five failures (auth.Lockout)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.api.deps import ServicesDep, SettingsDep
from bot.console import dashboard, texts
from bot.console.auth import COOKIE, LOGIN_COOKIE, Checked, Console, Lockout, client_of, sessions_of
from bot.console.pages import render
from bot.crypto import secret_equals
from storage import audit, operators

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a console path: never another host (`//evil`, `https://...`)."""
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return "/admin"


def _login_form(request: Request, *, status: int = 200, **context: Any) -> HTMLResponse:
    """The sign-in form with a fresh CSRF token, also set as a cookie: the post must bring both (there is
    no session yet to hold the token), so no other site can sign a browser in to an account of its own."""
    token = secrets.token_urlsafe(18)
    response = render(request, "login.html", status=status, csrf=token, **context)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/admin/login",
                        secure=not request.app.state.settings.demo)
    return response


@router.get("/admin/login", response_class=HTMLResponse)
async def sign_in_page(request: Request, next: str | None = None, out: bool = False) -> HTMLResponse:
    return _login_form(request, next=_safe_next(next), notice=texts.SIGNED_OUT if out else None)


@router.post("/admin/login", response_model=None)
async def sign_in(
    request: Request, services: ServicesDep, config: SettingsDep,
    name: Annotated[str, Form(max_length=80)] = "", password: Annotated[str, Form(max_length=400)] = "",
    next: Annotated[str, Form(max_length=400)] = "/admin", csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    if not secret_equals(request.cookies.get(LOGIN_COOKIE, ""), csrf):
        return _login_form(request, status=403, error=texts.CSRF_FAILED, name=name, next=_safe_next(next))
    lockout = Lockout(services.kv)
    name = name.strip()
    locked = await lockout.locked(name)
    async with services.db.unit_of_work() as session:
        # Checked even when locked, so a locked name takes as long to refuse as any other.
        operator = await operators.authenticate(session, name, password, services.clock.now())
        if operator is not None and not locked:
            await audit.record(session, operators.actor_of(operator), "sign_in", f"operator:{operator.name}",
                               now=services.clock.now(), client=client_of(request))
    if operator is None or locked:
        if not locked:
            await lockout.failed(name)
        message = texts.SIGN_IN_LOCKED if locked or await lockout.locked(name) else texts.SIGN_IN_FAILED
        return _login_form(request, status=401, error=message, name=name, next=_safe_next(next))
    await lockout.clear(name)
    assert operator.id is not None
    cookie, _ = await sessions_of(request).open(operator.id)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path="/admin/login")
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", secure=not config.demo, path="/")
    return response


@router.post("/admin/logout")
async def sign_out(request: Request, console: Checked) -> RedirectResponse:
    await sessions_of(request).close(console.sid)
    response = RedirectResponse("/admin/login?out=1", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/admin", response_class=HTMLResponse)
async def home(
    request: Request, console: Console, days: Annotated[int, Query()] = dashboard.DEFAULT_RANGE,
) -> HTMLResponse:
    """The dashboard for the roles that may read it (`dashboard.read`); the plain landing page otherwise."""
    if console.may("dashboard.read"):
        return await dashboard.page(request, console, days)
    return render(request, "home.html", console, active="home")
