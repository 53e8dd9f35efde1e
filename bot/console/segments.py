"""The 会员分层 screen: the RFM classes today (members, share of the 12 months' net sales) and the moves
between classes over a chosen range of local days. Thin over storage/segments.py, as the JSON API is."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from bot.console import texts
from bot.console.auth import ConsoleSession, needs
from bot.console.dates import parse_day
from bot.console.forms import read_field
from bot.console.pages import render
from storage import segments
from storage.audiences import SEGMENTS

router = APIRouter()
Reader = Annotated[ConsoleSession, Depends(needs("segments.read"))]
Day = Annotated[str, Query(max_length=20)]
DEFAULT_DAYS = 30
MAX_DAYS = 366


@router.get("/admin/segments", response_class=HTMLResponse)
async def segment_page(request: Request, console: Reader, since: Day = "", until: Day = "") -> HTMLResponse:
    now = console.services.clock.now()
    today = now.astimezone(console.services.tz).date()
    errors: dict[str, str] = {}
    last = read_field(parse_day, until, "until", errors) or today
    first = read_field(parse_day, since, "since", errors) or last - timedelta(days=DEFAULT_DAYS - 1)
    if not errors and (first > last or (last - first).days + 1 > MAX_DAYS):
        errors["since"] = texts.SEGMENTS_BAD_RANGE.format(days=MAX_DAYS)
    async with console.services.db.sessions() as session:
        classes = await segments.classes(session, now)
        flows = {} if errors else await segments.flows(session, first, last)
    origins = [None, *SEGMENTS]
    return render(request, "segments.html", console, status=422 if errors else 200, active="segments",
                  classes=classes, flows=flows, origins=origins, targets=SEGMENTS, errors=errors,
                  form={"since": since or first.isoformat(), "until": until or last.isoformat()},
                  moved=sum(flows.values()))
