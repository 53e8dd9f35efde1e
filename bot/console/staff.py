"""The staff screen: who may run campaigns, answer tickets or verify coupons (a clerk, bound to a store)
from the chat; adding, changing the role and removing go through bot/staffing.py (the row, its audit
entry and the WeChat staff tag), as the admin API does."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from bot import staffing
from bot.api.deps import WeChatDep
from bot.console import texts
from bot.console.auth import ConsoleError, ConsoleSession, needs, needs_checked
from bot.console.forms import field_errors, local_time
from bot.console.pages import render
from storage import staff, stores
from storage.errors import NotFoundError

router = APIRouter(prefix="/admin/staff")
Reader = Annotated[ConsoleSession, Depends(needs("staff.read"))]
Posting = Annotated[ConsoleSession, Depends(needs_checked("staff.write"))]


@router.get("", response_class=HTMLResponse)
async def list_staff(request: Request, console: Reader, done: str = "") -> HTMLResponse:
    return await _page(request, console, flash=texts.STAFF_DONE.get(done))


@router.post("", response_class=HTMLResponse, response_model=None)
async def add_staff(request: Request, console: Posting, api: WeChatDep) -> Response:
    typed = await _typed(request)
    try:
        body = staffing.StaffIn.model_validate(typed)
    except ValidationError as exc:
        return await _page(request, console, values=typed, errors=field_errors(exc, whole="openid"), status=422)
    try:
        new = await staffing.appoint(console.services.db, api, _who(console), body.openid, body.role, body.store)
    except NotFoundError:
        return await _page(request, console, values=typed, errors={"store": texts.STAFF_STORE_UNKNOWN}, status=422)
    return RedirectResponse(f"/admin/staff?done={'added' if new else 'changed'}", 303)


@router.post("/role", response_model=None)
async def change_role(request: Request, console: Posting, api: WeChatDep) -> Response:
    typed = await _typed(request)
    try:
        body = staffing.StaffIn.model_validate(typed)
    except ValidationError as exc:
        return await _page(request, console, errors=field_errors(exc, whole="openid"), status=422)
    async with console.services.db.sessions() as session:
        before = await staff.by_openid(session, body.openid)
    if before is None:
        raise ConsoleError(404, texts.STAFF_NOT_FOUND)
    if (before.role, before.store) == (body.role, body.store):
        return RedirectResponse("/admin/staff?done=same", 303)
    try:
        await staffing.appoint(console.services.db, api, _who(console), body.openid, body.role, body.store)
    except NotFoundError:
        return await _page(request, console, errors={"store": texts.STAFF_STORE_UNKNOWN}, status=422)
    return RedirectResponse("/admin/staff?done=changed", 303)


@router.post("/remove", response_model=None)
async def remove_staff(request: Request, console: Posting, api: WeChatDep) -> Response:
    openid = (await _typed(request)).get("openid", "")
    if not openid or not await staffing.dismiss(console.services.db, api, _who(console), openid):
        raise ConsoleError(404, texts.STAFF_NOT_FOUND)
    return RedirectResponse("/admin/staff?done=removed", 303)


async def _typed(request: Request) -> dict[str, str]:
    form = await request.form()
    typed = {key: value.strip() for key in ("openid", "role", "store") if isinstance(value := form.get(key), str)}
    if not typed.get("store"):
        typed.pop("store", None)  # the form's blank choice: no store
    return typed


def _who(console: ConsoleSession) -> staffing.Who:
    return staffing.Who(console.actor, console.services.clock.now(), console.client)


async def _page(request: Request, console: ConsoleSession, *, flash: str | None = None,
                values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                status: int = 200) -> HTMLResponse:
    async with console.services.db.sessions() as session:
        rows = await staff.all_staff(session)
        shops = await stores.all_stores(session)
    return render(request, "staff.html", console, status=status, active="staff", rows=rows, flash=flash,
                  stores=[(shop.code, shop.name) for shop in shops],
                  values=values or {}, errors=errors or {}, local=local_time(console.services.tz))
