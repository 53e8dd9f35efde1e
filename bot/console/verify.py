"""Coupon verification at the store counter (核销): a clerk types a code, sees the coupon, confirms; the use
goes through Rewards.use (which records the store on the redemption) and is audited `coupon.use`. The
page lists the store's own verifications, read from the redemptions."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.console import texts
from bot.console.auth import ConsoleSession, needs, needs_checked
from bot.console.dates import formatter, local
from bot.console.pages import render
from storage import audit, coupons
from storage.errors import ConflictError, NotFoundError
from storage.members import masked_phone

router = APIRouter()
ACTION = "coupon.use"
RECENT = 50
Clerk = Annotated[ConsoleSession, Depends(needs("coupons.verify"))]
CheckedClerk = Annotated[ConsoleSession, Depends(needs_checked("coupons.verify"))]
Code = Annotated[str, Query(max_length=64)]


def refusal(coupon: coupons.Coupon, console: ConsoleSession) -> str | None:
    """Why this coupon cannot be used now (None when it can)."""
    found, tz = coupon.redemption, console.services.tz
    if found.status == "used":
        return texts.VERIFY_USED.format(at=local(found.used_at, tz))
    if found.status == "cancelled":
        return texts.VERIFY_CANCELLED
    if found.expires_at <= console.services.clock.now():
        return texts.VERIFY_EXPIRED.format(at=local(found.expires_at, tz))
    return None


async def _page(
    request: Request, console: ConsoleSession, *, status: int = 200, code: str = "",
    coupon: coupons.Coupon | None = None, error: str | None = None, flash: str | None = None,
) -> HTMLResponse:
    async with console.services.db.sessions() as session:
        mine = console.role == "clerk"
        recent = await coupons.verified(session, console.actor.store if mine else None, limit=RECENT)
    extra: dict[str, Any] = {}
    if coupon is not None:
        extra = {"blocked": refusal(coupon, console), "phone": masked_phone(console.services.pii, coupon.owner) or ""}
    return render(request, "verify.html", console, status=status, active="verify", code=code, coupon=coupon,
                  error=error, flash=flash, recent=recent, mine=mine, when=formatter(console.services.tz), **extra)


async def _find(console: ConsoleSession, code: str) -> coupons.Coupon | None:
    async with console.services.db.sessions() as session:
        return await coupons.find(session, code)


@router.get("/admin/verify", response_class=HTMLResponse)
async def verify_page(request: Request, console: Clerk, code: Code = "", done: Code = "") -> HTMLResponse:
    if done:
        found = await _find(console, done)
        flash = texts.VERIFY_DONE.format(code=found.redemption.code, reward=found.reward.name) if found else None
        return await _page(request, console, flash=flash)
    if not code.strip():
        return await _page(request, console)
    found = await _find(console, code)
    if found is None:
        return await _page(request, console, status=404, code=code, error=texts.VERIFY_UNKNOWN)
    return await _page(request, console, code=code, coupon=found)


@router.post("/admin/verify", response_model=None)
async def verify(request: Request, console: CheckedClerk, code: Annotated[str, Form(max_length=64)] = "") -> Response:
    if not code.strip():
        return await _page(request, console, status=422, error=texts.VERIFY_CODE_REQUIRED)
    services, now = console.services, console.services.clock.now()
    try:
        async with services.db.unit_of_work() as session:
            used = await services.rewards.use(session, code, now, store=console.actor.store,
                                              by=console.actor.name)
            await audit.record(session, console.actor, ACTION, f"redemption:{used.id}", now=now,
                               before={"status": "issued"},
                               after={"code": used.code, "status": used.status, "store": console.actor.store,
                                      "member_id": used.member_id, "reward_id": used.reward_id},
                               client=console.client)
    except NotFoundError:
        return await _page(request, console, status=404, code=code, error=texts.VERIFY_UNKNOWN)
    except ConflictError:
        found = await _find(console, code)
        message = refusal(found, console) if found else None
        return await _page(request, console, status=409, code=code, coupon=found, error=message or texts.VERIFY_UNKNOWN)
    return RedirectResponse(f"/admin/verify?{urlencode({'done': used.code})}", status_code=303)
