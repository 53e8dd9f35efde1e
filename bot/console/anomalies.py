"""The anomaly queue's pages: the list (filters, keyset pages), one anomaly, and its acknowledge/resolve
forms. Thin over storage/anomalies.py, which owns the states and audits each move."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.api.validation import INT4_MAX, PathId
from bot.console import texts
from bot.console.auth import ConsoleError, ConsoleSession, needs, needs_checked
from bot.console.dates import end_of, parse_day, start_of
from bot.console.pages import render
from storage import anomalies
from storage.anomalies import AnomalyFilter, AnomalyStateError, AnomalyUnknownError, NoteInvalidError
from storage.models import Anomaly

router = APIRouter()
PAGE = 50
Reader = Annotated[ConsoleSession, Depends(needs("anomalies.read"))]
Writer = Annotated[ConsoleSession, Depends(needs_checked("anomalies.write"))]


def _day(raw: str | None) -> date | None:
    try:
        return parse_day(raw)
    except ValueError:
        raise ConsoleError(400, texts.ANOMALY_BAD_DATE) from None


@router.get("/admin/anomalies", response_class=HTMLResponse)
async def queue(
    request: Request, console: Reader, kind: str = "", state: str = "", since: str = "", until: str = "",
    before: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
) -> HTMLResponse:
    state = state if state in anomalies.STATES else ""
    first, last, tz = _day(since), _day(until), console.services.tz
    where = AnomalyFilter(kind=kind or None, state=state or None,
                          since=None if first is None else start_of(first, tz),
                          until=None if last is None else end_of(last, tz))
    async with console.services.db.sessions() as session:
        rows = await anomalies.page(session, where, limit=PAGE + 1, before_id=before)
        known = await anomalies.kinds(session)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    filters = {"kind": kind, "state": state, "since": since, "until": until}
    return render(request, "anomalies.html", console, active="anomalies", rows=rows, filters=filters,
                  kinds=sorted(set(known) | set(texts.ANOMALY_KINDS)), more=more,
                  next_before=rows[-1].id if more and rows else None, paged=before is not None,
                  tz=console.services.tz)


def merge_pair(anomaly: Anomaly) -> tuple[int, int] | None:
    """The two members of a duplicate-membership anomaly (its key `duplicate:<low>:<high>`), lower id first."""
    parts = anomaly.dedupe_key.split(":")
    if anomaly.kind != "duplicate_membership" or len(parts) != 3 or not all(p.isdigit() for p in parts[1:]):
        return None
    return int(parts[1]), int(parts[2])


async def _show(
    request: Request, console: ConsoleSession, anomaly_id: int, *, status: int = 200, **context: Any,
) -> HTMLResponse:
    async with console.services.db.sessions() as session:
        anomaly = await anomalies.by_id(session, anomaly_id)
    if anomaly is None:
        raise ConsoleError(404, texts.NOT_FOUND)
    return render(request, "anomaly.html", console, status=status, active="anomalies", anomaly=anomaly,
                  pair=merge_pair(anomaly), tz=console.services.tz, **context)


@router.get("/admin/anomalies/{anomaly_id}", response_class=HTMLResponse)
async def detail(request: Request, console: Reader, anomaly_id: PathId, done: str = "") -> HTMLResponse:
    flash = {"acknowledge": texts.ANOMALY_ACKNOWLEDGED, "resolve": texts.ANOMALY_RESOLVED}.get(done)
    return await _show(request, console, anomaly_id, flash=flash)


async def _move(request: Request, console: ConsoleSession, anomaly_id: int, to: str, note: str) -> Response:
    action = "acknowledge" if to == anomalies.ACKNOWLEDGED else "resolve"
    try:
        async with console.services.db.unit_of_work() as session:
            await anomalies.transition(session, console.actor, anomaly_id, to, note=note,
                                       now=console.services.clock.now(), client=console.client)
    except AnomalyUnknownError:
        raise ConsoleError(404, texts.NOT_FOUND) from None
    except NoteInvalidError:
        return await _show(request, console, anomaly_id, status=422, note_error=texts.ANOMALY_NOTE_INVALID,
                           typed=note, form=action)
    except AnomalyStateError as exc:
        label = {"acknowledge": texts.ANOMALY_ACKNOWLEDGE, "resolve": texts.ANOMALY_RESOLVE}[action]
        state = texts.ANOMALY_STATES.get(str(exc.details.get("state")), "")
        return await _show(request, console, anomaly_id, status=409,
                           error=texts.ANOMALY_WRONG_STATE.format(state=state, action=label))
    return RedirectResponse(f"/admin/anomalies/{anomaly_id}?done={action}", status_code=303)


@router.post("/admin/anomalies/{anomaly_id}/acknowledge", response_model=None)
async def acknowledge(
    request: Request, console: Writer, anomaly_id: PathId, note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    return await _move(request, console, anomaly_id, anomalies.ACKNOWLEDGED, note)


@router.post("/admin/anomalies/{anomaly_id}/resolve", response_model=None)
async def resolve(
    request: Request, console: Writer, anomaly_id: PathId, note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    return await _move(request, console, anomaly_id, anomalies.RESOLVED, note)
