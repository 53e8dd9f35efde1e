"""The ticket queue's pages: the list (filters), one ticket (its whole thread, audit trail, answer /
resolve / assign forms) and the figures. Thin over storage/tickets.py, which owns the moves and audits
them, and storage/ticketsla.py (figures)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.api.validation import PathId
from bot.console import texts
from bot.console.auth import RIGHTS, ConsoleError, ConsoleSession, needs, needs_checked
from bot.console.dates import end_of, parse_day, start_of
from bot.console.pages import render
from storage import audit, operators, ticketsla, ticketviews
from storage.audit import AuditFilter
from storage.models import Ticket
from storage.sla import CATEGORIES
from storage.tickets import STATES, TicketResolvedError, TicketTextError
from storage.ticketviews import TicketFilter

router = APIRouter()
Reader = Annotated[ConsoleSession, Depends(needs("tickets.read"))]
Writer = Annotated[ConsoleSession, Depends(needs_checked("tickets.write"))]


@router.get("/admin/tickets", response_class=HTMLResponse)
async def queue(
    request: Request, console: Reader, state: str = "", category: str = "", kind: str = "", mine: str = "",
    late: str = "",
) -> HTMLResponse:
    where = TicketFilter(
        state=state if state in STATES else None, category=category if category in CATEGORIES else None,
        kind=kind if kind in texts.TICKET_KINDS else None, assigned_to=console.operator.name if mine else None,
        late=bool(late),
    )
    now = console.services.clock.now()
    async with console.services.db.sessions() as session:
        rows = await ticketviews.page(session, where, now)
    filters = {"state": where.state or "", "category": where.category or "", "kind": where.kind or "",
               "mine": bool(mine), "late": bool(late)}
    return render(request, "tickets.html", console, active="tickets", rows=rows, filters=filters,
                  categories=CATEGORIES, tz=console.services.tz, now=now)


def _day(raw: str, fallback: date) -> date:
    try:
        return parse_day(raw) or fallback
    except ValueError:
        raise ConsoleError(400, texts.TICKET_BAD_DATE) from None


@router.get("/admin/tickets/figures", response_class=HTMLResponse)
async def figures(request: Request, console: Reader, since: str = "", until: str = "") -> HTMLResponse:
    tz, now = console.services.tz, console.services.clock.now()
    today = now.astimezone(tz).date()
    first, last = _day(since, today - timedelta(days=29)), _day(until, today)
    async with console.services.db.sessions() as session:
        found = await ticketsla.figures(session, start_of(first, tz), end_of(last, tz), now)
    return render(request, "ticket_figures.html", console, active="tickets", fig=found, states=STATES,
                  since=first.isoformat(), until=last.isoformat())


async def _show(request: Request, console: ConsoleSession, ticket_id: int, *, status: int = 200,
                **context: Any) -> HTMLResponse:
    async with console.services.db.sessions() as session:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            raise ConsoleError(404, texts.NOT_FOUND)
        thread = await console.services.tickets.thread(session, ticket_id)
        trail = await audit.entries(session, AuditFilter(target=f"ticket:{ticket.code}"), limit=50)
        people = [o.name for o in await operators.all_operators(session)
                  if o.active and o.role in RIGHTS["tickets.write"]]
    return render(request, "ticket.html", console, status=status, active="tickets", ticket=ticket, thread=thread,
                  trail=trail, people=people, tz=console.services.tz, **context)


@router.get("/admin/tickets/{ticket_id}", response_class=HTMLResponse)
async def detail(request: Request, console: Reader, ticket_id: PathId, done: str = "") -> HTMLResponse:
    return await _show(request, console, ticket_id, flash=texts.TICKET_DONE.get(done))


async def _code(console: ConsoleSession, ticket_id: int) -> str:
    async with console.services.db.sessions() as session:
        ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise ConsoleError(404, texts.NOT_FOUND)
    return ticket.code


async def _move(request: Request, console: ConsoleSession, ticket_id: int, action: str, text: str) -> Response:
    code, services = await _code(console, ticket_id), console.services
    try:
        async with services.db.unit_of_work() as session:
            move = services.tickets.answer if action == "answer" else services.tickets.resolve
            await move(session, console.actor, code, text, services.clock.now(), client=console.client)
    except TicketTextError:
        return await _show(request, console, ticket_id, status=422, text_error=texts.TICKET_TEXT_INVALID,
                           typed=text, form=action)
    except TicketResolvedError:
        return await _show(request, console, ticket_id, status=409, error=texts.TICKET_WAS_RESOLVED)
    return RedirectResponse(f"/admin/tickets/{ticket_id}?done={action}", status_code=303)


@router.post("/admin/tickets/{ticket_id}/answer", response_model=None)
async def answer(request: Request, console: Writer, ticket_id: PathId,
                 text: Annotated[str, Form(max_length=8000)] = "") -> Response:
    return await _move(request, console, ticket_id, "answer", text)


@router.post("/admin/tickets/{ticket_id}/resolve", response_model=None)
async def resolve(request: Request, console: Writer, ticket_id: PathId,
                  note: Annotated[str, Form(max_length=4000)] = "") -> Response:
    return await _move(request, console, ticket_id, "resolve", note)


@router.post("/admin/tickets/{ticket_id}/assign", response_model=None)
async def assign(request: Request, console: Writer, ticket_id: PathId,
                 to: Annotated[str, Form(max_length=64)] = "") -> Response:
    services = console.services
    await _code(console, ticket_id)
    async with services.db.sessions() as session:
        person = await operators.by_name(session, to) if to else None
    if to and (person is None or not person.active or person.role not in RIGHTS["tickets.write"]):
        return await _show(request, console, ticket_id, status=422, assign_error=texts.TICKET_ASSIGNEE_INVALID)
    async with services.db.unit_of_work() as session:
        await services.tickets.assign(session, console.actor, ticket_id, to or None, services.clock.now(),
                                      client=console.client)
    return RedirectResponse(f"/admin/tickets/{ticket_id}?done=assign", status_code=303)
