"""The 流失预警 screen: each win-back stage's results over chosen local days (reached, recalled within 7 days,
reactivated within 30), how many stand in each stage now, and who they are, newest first. Thin over
storage/winback.py, as GET /api/admin/winback is."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from bot.api.validation import INT4_MAX
from bot.console import texts
from bot.console.auth import ConsoleError, ConsoleSession, needs
from bot.console.dates import end_of, formatter, parse_day, start_of
from bot.console.forms import read_field
from bot.console.pages import render
from storage import winback

router = APIRouter()
Reader = Annotated[ConsoleSession, Depends(needs("segments.read"))]
Day = Annotated[str, Query(max_length=20)]
PAGE = 50
DEFAULT_DAYS = 30
MAX_DAYS = 366


@router.get("/admin/winback", response_class=HTMLResponse)
async def winback_page(
    request: Request, console: Reader, since: Day = "", until: Day = "",
    stage: Annotated[str, Query(max_length=12)] = "",
    before_id: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
) -> HTMLResponse:
    if stage and stage not in winback.STAGES:
        raise ConsoleError(400, texts.BAD_REQUEST.format(detail=texts.WINBACK_FIELDS["stage"]))
    services = console.services
    today = services.clock.now().astimezone(services.tz).date()
    errors: dict[str, str] = {}
    last = read_field(parse_day, until, "until", errors) or today
    first = read_field(parse_day, since, "since", errors) or last - timedelta(days=DEFAULT_DAYS - 1)
    if not errors and (first > last or (last - first).days + 1 > MAX_DAYS):
        errors["since"] = texts.WINBACK_BAD_RANGE.format(days=MAX_DAYS)
    async with services.db.sessions() as session:
        figures = [] if errors else await winback.stage_report(session, start_of(first, services.tz),
                                                                end_of(last, services.tz), services.tz)
        standing = await winback.stage_counts(session)
        members = await winback.in_stage(session, stage=stage or None, before_id=before_id, limit=PAGE + 1)
    older = members[PAGE - 1].id if len(members) > PAGE else None
    return render(request, "winback.html", console, status=422 if errors else 200, active="winback",
                  figures=figures, standing=standing, members=members[:PAGE], stages=winback.STAGES, stage=stage,
                  errors=errors, form={"since": since or first.isoformat(), "until": until or last.isoformat()},
                  older=older, paged=before_id is not None, when=formatter(services.tz))
