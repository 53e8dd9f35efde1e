"""Rendering: the Jinja2 environment (autoescaped), the page shell's context (who is signed in, the
menu their role may see), and the console's answers to refusals (a page, never JSON, never a 500)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from bot.console import texts
from bot.console.auth import ConsoleError, ConsoleSession, may

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(t=texts, role_name=lambda role: texts.ROLE_NAMES.get(role, role))

# The menu: (key, path, the right that shows it).
MENU = (
    ("home", "/admin", None),
    ("members", "/admin/members", "members.read"),
    ("anomalies", "/admin/anomalies", "anomalies.read"),
    ("tickets", "/admin/tickets", "tickets.read"),
    ("surveys", "/admin/surveys", "surveys.read"),
    ("rewards", "/admin/rewards", "rewards.read"),
    ("campaigns", "/admin/campaigns", "campaigns.read"),
    ("pushes", "/admin/pushes", "pushes.read"),
    ("staff", "/admin/staff", "staff.read"),
    ("audit", "/admin/audit", "audit.read"),
    ("exports", "/admin/exports", "exports"),
    ("verify", "/admin/verify", "coupons.verify"),
    ("stores", "/admin/stores", "stores.read"),
    ("sharing", "/admin/sharing", "sharing.read"),
    ("segments", "/admin/segments", "segments.read"),
    ("experiments", "/admin/experiments", "experiments.read"),
    ("broadcasts", "/admin/broadcasts", "broadcasts.read"),
    ("winback", "/admin/winback", "segments.read"),
    ("grants", "/admin/grants", "members.write"),
)


def menu_for(role: str) -> list[tuple[str, str, str]]:
    return [(key, path, texts.NAV[key]) for key, path, right in MENU if right is None or may(role, right)]


def request_id() -> str:
    """A fresh id for a form: it becomes the idempotency key of what the form does, so a double submit
    (or a replayed post) applies once."""
    return secrets.token_urlsafe(12)


def render(
    request: Request, template: str, console: ConsoleSession | None = None, *, status: int = 200, **context: Any,
) -> HTMLResponse:
    values: dict[str, Any] = {"console": console, "request_id": request_id(), **context}
    if console is not None:
        values.update(csrf=console.csrf, menu=menu_for(console.role), me=console.operator)
    return templates.TemplateResponse(request, template, values, status_code=status)


def refusal(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", None, status=status, status_code=status,
                  title=texts.ERROR_TITLE.get(status, "错误"), message=message)


def to_sign_in(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.headers.get("hx-request"):
        response = Response(status_code=204)
        response.headers["HX-Redirect"] = "/admin/login"
        return response
    if request.method != "GET":
        return RedirectResponse("/admin/login", 303)
    return RedirectResponse(f"/admin/login?next={quote(target, safe='/')}", 303)


def console_error(request: Request, exc: ConsoleError) -> HTMLResponse:
    return refusal(request, exc.status, exc.message)
