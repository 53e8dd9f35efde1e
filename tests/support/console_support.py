"""The console driven as an operator's browser would, over HTTP: sign in, read the CSRF token off the
page, post forms with it. Shared by the console's HTTP-level tests and the browser tests' seeding."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from storage import operators
from storage.clock import FrozenClock
from storage.db import Database
from storage.models import AuditEntry
from tests.support.fakes import WeChat, make_app, make_settings, serving

PASSWORD = "a-long-test-password"
ROLES = ("admin", "operator", "analyst", "clerk")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_REQUEST_ID = re.compile(r'name="request_id" value="([^"]+)"')


async def add_operator(db: Database, name: str, role: str, now: Any, *, password: str = PASSWORD,
                       store: str | None = None) -> None:
    async with db.unit_of_work() as session:
        await operators.add(session, name, role, password, now, store=store or ("S001" if role == "clerk" else None))


class Operator:
    """One signed-in browser: its cookies, and the CSRF token of its session."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.csrf = ""

    async def sign_in(self, name: str, password: str = PASSWORD, **form: str) -> httpx.Response:
        """The sign-in form read (its CSRF token and cookie), filled in and posted."""
        page = await self.client.get("/admin/login")
        data = {"name": name, "password": password, "csrf": csrf_of(page.text), **form}
        response = await self.client.post("/admin/login", data=data)
        if response.status_code == 303:
            page = await self.client.get("/admin")
            self.csrf = csrf_of(page.text)
        return response

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, **kwargs)

    async def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: str | None = None,
                   **kwargs: Any) -> httpx.Response:
        """A form post carrying the session's CSRF token (or `csrf`, to test a stale or missing one)."""
        form = dict(data or {})
        form.setdefault("csrf", self.csrf if csrf is None else csrf)
        return await self.client.post(path, data=form, **kwargs)


async def audit_entries(
    db: Database, *, action: str | None = None, prefix: str | None = None, target: str | None = None,
) -> list[AuditEntry]:
    """The audit trail oldest first, narrowed to one action, an action prefix ("staff.") or one target;
    without the console's sign-ins unless those are asked for."""
    stmt = select(AuditEntry).order_by(AuditEntry.id)  # type: ignore[arg-type]
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    else:
        stmt = stmt.where(AuditEntry.action != "sign_in")
    if prefix is not None:
        stmt = stmt.where(AuditEntry.action.startswith(prefix))  # type: ignore[attr-defined]
    if target is not None:
        stmt = stmt.where(AuditEntry.target == target)
    async with db.sessions() as session:
        return list((await session.scalars(stmt)).all())


def row_of(html: str, attribute: str, value: object) -> str:
    """The table row `<tr data-ATTRIBUTE="VALUE">...</tr>` of a page, so an assertion looks at that row only
    (a label may also stand in the page's filter choices)."""
    found = re.search(rf'<tr {attribute}="{re.escape(str(value))}">.*?</tr>', html, flags=re.S)
    assert found, f"no row {attribute}={value!r} on the page"
    return found.group(0)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def request_id_of(html: str) -> str:
    found = _REQUEST_ID.search(html)
    assert found, "the form has no request_id field"
    return found.group(1)


@asynccontextmanager
async def console(app: FastAPI) -> AsyncIterator[Any]:
    """A factory of fresh browsers (own cookie jars) against the running `app`."""
    clients: list[httpx.AsyncClient] = []

    def browser() -> Operator:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wxbot.test")
        clients.append(client)
        return Operator(client)

    try:
        yield browser
    finally:
        for client in clients:
            await client.aclose()


class ConsoleWorld:
    """The whole app with one operator of each role (named by role), and the chat beside it."""

    def __init__(self, wechat: WeChat, browser: Any) -> None:
        self.wechat = wechat
        self.browser = browser
        self.db: Database = wechat.services.db

    async def as_role(self, role: str) -> Operator:
        signed = self.browser()
        response = await signed.sign_in(role)
        assert response.status_code == 303, response.text
        return signed


@asynccontextmanager
async def console_world(urls: tuple[str, str], clock: FrozenClock, **settings: Any) -> AsyncIterator[ConsoleWorld]:
    app = make_app(make_settings(*urls, **settings), clock)
    async with serving(app, clock) as wechat:
        for role in ROLES:
            await add_operator(wechat.services.db, role, role, clock.now())
        async with console(app) as browser:
            yield ConsoleWorld(wechat, browser)
