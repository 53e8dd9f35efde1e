"""The stores screen: the shops, their API credentials (created, rotated and revoked here; the secret is
shown once) and whether they are open. Every write goes through storage/stores.py and is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.console import texts
from bot.console.auth import ConsoleError, ConsoleSession, needs, needs_checked
from bot.console.forms import local_time
from bot.console.pages import render
from storage import audit, stores
from storage.errors import ConflictError, NotFoundError
from storage.models import Store

router = APIRouter(prefix="/admin/stores")
Reader = Annotated[ConsoleSession, Depends(needs("stores.read"))]
Posting = Annotated[ConsoleSession, Depends(needs_checked("stores.write"))]
Field = Annotated[str, Form(max_length=200)]


def _shown(store: Store) -> dict[str, object]:
    """What the audit log keeps of a store: never its secret, only whether it has one."""
    return {"code": store.code, "name": store.name, "city": store.city, "active": store.active,
            "credential": store.secret_hash is not None}


@router.get("", response_class=HTMLResponse)
async def list_stores(request: Request, console: Reader, done: str = "") -> HTMLResponse:
    return await _page(request, console, flash=texts.STORES_DONE.get(done))


def _check(code: str, name: str, city: str) -> dict[str, str]:
    errors = {}
    if not stores.CODE.match(code):
        errors["code"] = texts.STORES_CODE_INVALID
    if not name or len(name) > 60:
        errors["name"] = texts.STORES_NAME_REQUIRED
    if len(city) > 40:
        errors["city"] = texts.STORES_CITY_INVALID
    return errors


@router.post("", response_class=HTMLResponse)
async def add_store(
    request: Request, console: Posting, code: Field = "", name: Field = "", city: Field = "",
) -> HTMLResponse:
    values = {"code": code.strip().upper(), "name": name.strip(), "city": city.strip()}
    errors = _check(**values)
    if errors:
        return await _page(request, console, values=values, errors=errors, status=422)
    now = console.services.clock.now()
    try:
        async with console.services.db.unit_of_work() as session:
            store, credential = await stores.add(session, values["code"], values["name"], values["city"], now)
            await audit.record(session, console.actor, "store.add", f"store:{store.code}", now=now,
                               after=_shown(store), client=console.client)
    except ConflictError:
        return await _page(request, console, values=values, errors={"code": texts.STORES_CODE_TAKEN}, status=409)
    return await _page(request, console, credential=credential)


@router.post("/{code}/rotate", response_class=HTMLResponse)
async def rotate(request: Request, code: str, console: Posting) -> HTMLResponse:
    now = console.services.clock.now()
    try:
        async with console.services.db.unit_of_work() as session:
            credential = await stores.rotate(session, code, now)
            await audit.record(session, console.actor, "store.rotate", f"store:{credential.code}", now=now,
                               after={"credential": "rotated"}, client=console.client)
    except NotFoundError:
        raise ConsoleError(404, texts.STORES_NOT_FOUND) from None
    return await _page(request, console, credential=credential)


@router.post("/{code}/revoke", response_model=None)
async def revoke(code: str, console: Posting) -> Response:
    return await _change(console, code, "revoke", "revoked")


@router.post("/{code}/active", response_model=None)
async def set_active(code: str, console: Posting, active: Field = "") -> Response:
    on = active == "1"
    return await _change(console, code, "enable" if on else "disable", "enabled" if on else "disabled")


async def _change(console: ConsoleSession, code: str, action: str, done: str) -> Response:
    now = console.services.clock.now()
    try:
        async with console.services.db.unit_of_work() as session:
            before = _shown(await stores.by_code(session, code, lock=True))
            if action == "revoke":
                store = await stores.revoke(session, code, now)
            else:
                store = await stores.set_active(session, code, action == "enable")
            await audit.record(session, console.actor, f"store.{action}", f"store:{store.code}", now=now,
                               before=before, after=_shown(store), client=console.client)
    except NotFoundError:
        raise ConsoleError(404, texts.STORES_NOT_FOUND) from None
    return RedirectResponse(f"/admin/stores?done={done}", 303)


async def _page(
    request: Request, console: ConsoleSession, *, flash: str | None = None, values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None, status: int = 200, credential: stores.Credential | None = None,
) -> HTMLResponse:
    async with console.services.db.sessions() as session:
        rows = await stores.all_stores(session)
    return render(request, "stores.html", console, status=status, active="stores", rows=rows, flash=flash,
                  values=values or {}, errors=errors or {}, credential=credential,
                  local=local_time(console.services.tz))
