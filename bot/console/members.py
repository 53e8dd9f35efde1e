"""Member 360 in the console: search, the member page, the audited phone reveal, points adjustment and the
tier hold. Thin views: storage/member_search.py, member360.py, adjustments.py and tiers.py hold the rules;
the rights are checked here, at the edge."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.api.validation import INT4_MAX, PathId
from bot.console import texts
from bot.console.auth import ConsoleError, ConsoleSession, needs, needs_checked
from bot.console.pages import render
from handlers.texts import KIND_LABELS, ledger_reason
from storage import adjustments, grants, member360, member_search, surveys, ticketviews, tiers
from storage.errors import DomainError, NotFoundError
from storage.members import normalise_phone
from storage.rewards import LimitReachedError, NotMemberError, OutOfStockError, RewardEndedError, is_live

router = APIRouter()

Reader = Annotated[ConsoleSession, Depends(needs("members.read"))]
Searcher = Annotated[ConsoleSession, Depends(needs_checked("members.read"))]
Writer = Annotated[ConsoleSession, Depends(needs_checked("members.write"))]
Revealer = Annotated[ConsoleSession, Depends(needs_checked("phone.reveal"))]
Before = Annotated[int | None, Query(ge=1, le=INT4_MAX)]
FormText = Annotated[str, Form(max_length=2000)]


@router.get("/admin/members", response_class=HTMLResponse, response_model=None)
async def search_page(request: Request, console: Reader, q: Annotated[str, Query(max_length=200)] = "") -> Response:
    """A search by link (`?q=`). The page's own form posts instead, so that a phone typed into it never
    lands in a URL: browser history, a proxy's access log, a Referer."""
    return await _search(request, console, q)


@router.post("/admin/members", response_class=HTMLResponse, response_model=None)
async def search_form(request: Request, console: Searcher, q: FormText = "") -> Response:
    return await _search(request, console, q[:200])


async def _search(request: Request, console: ConsoleSession, q: str) -> Response:
    query = q.replace("\x00", "").strip()
    found: list[member_search.Found] = []
    if query:
        async with console.services.db.sessions() as session:
            found = await member_search.search(session, console.services.pii, query)
        if len(found) == 1:
            return RedirectResponse(f"/admin/members/{found[0].id}", status_code=303)
    # A phone is not echoed back into the page either: the result says what kind of thing was asked for.
    by_phone = normalise_phone(query) is not None
    return render(request, "members.html", console, active="members", q="" if by_phone else query,
                  searched=bool(query), by_phone=by_phone, found=found)


@router.get("/admin/members/{member_id}", response_class=HTMLResponse)
async def member_page(
    request: Request, member_id: PathId, console: Reader, before: Before = None, done: str | None = None,
) -> HTMLResponse:
    return await page(request, console, member_id, before=before, flash=texts.DONE.get(done or ""))


async def page(
    request: Request, console: ConsoleSession, member_id: int, *, before: int | None = None, status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    """The member page (404 page for an unknown id), with `extra` for the forms' errors and values."""
    services = console.services
    now = services.clock.now()
    async with services.db.sessions() as session:
        view = await member360.load(session, services.pii, services.ledger, member_id, now, before=before)
        member_tickets = await ticketviews.of_member(session, member_id)
        member_surveys = await surveys.of_member(session, member_id)
        grantable = [r for r in await services.rewards.all(session) if is_live(r, now)]
    if view is None:
        raise ConsoleError(404, texts.MEMBER_NOT_FOUND)

    def when(at: datetime | date | None) -> str:
        if at is None:
            return texts.NONE
        if isinstance(at, datetime):
            return f"{at.astimezone(services.tz):%Y-%m-%d %H:%M}"
        return at.isoformat()

    return render(
        request, "member.html", console, status=status, active="members", view=view, before=before,
        tiers=[t.name for t in services.rules.tiers], when=when, reason_text=ledger_reason, kinds=KIND_LABELS,
        today=now.astimezone(services.tz).date(), member_tickets=member_tickets,
        member_surveys=member_surveys, grant_rewards=grantable, **extra,
    )


@router.post("/admin/members/{member_id}/reveal", response_class=HTMLResponse)
async def reveal(request: Request, member_id: PathId, console: Revealer) -> HTMLResponse:
    services = console.services
    async with services.db.unit_of_work() as session:
        phone = await member360.reveal_phone(session, services.pii, member_id, actor=console.actor,
                                             now=services.clock.now(), client=console.client)
    return await page(request, console, member_id, revealed=phone)


@router.post("/admin/members/{member_id}/adjust", response_model=None)
async def adjust(
    request: Request, member_id: PathId, console: Writer,
    points: FormText = "", reason: FormText = "", request_id: FormText = "",
) -> Response:
    form = {"points": points, "reason": reason}
    try:
        amount = int(points.strip())
    except ValueError:
        return await _refused(request, console, member_id, 422, texts.ADJUST_ERRORS["not_number"], form)
    if adjustments.is_large(amount) and not console.may("points.large"):
        return await _refused(request, console, member_id, 403, texts.ADJUST_ERRORS["large"], form)
    services = console.services
    try:
        async with services.db.unit_of_work() as session:
            await adjustments.adjust(session, services.ledger, member_id, amount, reason, request_id.strip(),
                                     actor=console.actor, now=services.clock.now(), client=console.client)
    except NotFoundError:
        raise ConsoleError(404, texts.MEMBER_NOT_FOUND) from None
    except adjustments.InvalidAdjustmentError as exc:
        status = 409 if exc.problem in ("over_balance", "not_member") else 422
        message = texts.ADJUST_ERRORS[exc.problem].format(**exc.details)
        return await _refused(request, console, member_id, status, message, form, field=exc.field)
    return RedirectResponse(f"/admin/members/{member_id}?done=adjusted", status_code=303)


async def _refused(
    request: Request, console: ConsoleSession, member_id: int, status: int, message: str, form: dict[str, str],
    *, field: str = "points",
) -> HTMLResponse:
    return await page(request, console, member_id, status=status, adjust_error={field: message}, adjust_form=form)


@router.post("/admin/members/{member_id}/coupons", response_model=None)
async def grant(
    request: Request, member_id: PathId, console: Writer,
    reward_id: FormText = "", reason: FormText = "", request_id: FormText = "",
) -> Response:
    """An operator's gift of a coupon (right members.write, like a points adjustment; audited coupon.grant).
    The form's request id is the grant key's period: a double submit grants once."""
    form = {"reward_id": reward_id, "reason": reason}

    async def refused(status: int, field: str, problem: str, **details: int) -> HTMLResponse:
        message = texts.GRANT_ERRORS[problem].format(**details)
        return await page(request, console, member_id, status=status, grant_error={field: message}, grant_form=form)

    chosen = reward_id.strip()
    if not chosen.isascii() or not chosen.isdigit() or not 1 <= int(chosen) <= INT4_MAX:
        return await refused(422, "reward_id", "reward")
    services = console.services
    try:
        async with services.db.unit_of_work() as session:
            await grants.give(session, services.rewards, member_id, int(chosen), reason, request_id.strip(),
                              actor=console.actor, now=services.clock.now(), client=console.client)
    except grants.InvalidGrantError as exc:
        return await refused(422, exc.field, exc.problem, **exc.details)
    except NotFoundError as exc:
        if "reward" in str(exc):
            return await refused(422, "reward_id", "reward")
        raise ConsoleError(404, texts.MEMBER_NOT_FOUND) from None
    except (NotMemberError, OutOfStockError, LimitReachedError, RewardEndedError) as exc:
        return await refused(409, "member" if isinstance(exc, NotMemberError) else "reward_id", _problem(exc),
                             **{k: v for k, v in exc.details.items() if isinstance(v, int)})
    return RedirectResponse(f"/admin/members/{member_id}?done=granted", status_code=303)


def _problem(exc: DomainError) -> str:
    return "not_member" if isinstance(exc, NotMemberError) else exc.text_key


@router.post("/admin/members/{member_id}/tier-hold", response_model=None)
async def hold(
    request: Request, member_id: PathId, console: Writer,
    tier: FormText = "", until: FormText = "", clear: FormText = "",
) -> Response:
    form = {"tier": tier, "until": until}
    chosen: str | None = None
    day: date | None = None
    if not clear:
        chosen = tier.strip()
        try:
            day = date.fromisoformat(until.strip())
        except ValueError:
            return await page(request, console, member_id, status=422, hold_form=form,
                              hold_error={"until": texts.HOLD_ERRORS["until"]})
        if not chosen:
            return await page(request, console, member_id, status=422, hold_form=form,
                              hold_error={"tier": texts.HOLD_ERRORS["tier"]})
    services = console.services
    try:
        async with services.db.unit_of_work() as session:
            await tiers.hold_tier(session, services.ledger, member_id, chosen, day, actor=console.actor,
                                  now=services.clock.now(), client=console.client)
    except NotFoundError:
        raise ConsoleError(404, texts.MEMBER_NOT_FOUND) from None
    except tiers.InvalidHoldError as exc:
        return await page(request, console, member_id, status=422, hold_form=form,
                          hold_error={exc.field: texts.HOLD_ERRORS[exc.field]})
    return RedirectResponse(f"/admin/members/{member_id}?done={'cleared' if clear else 'held'}", status_code=303)
