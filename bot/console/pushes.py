"""The pushes screen: outbox rows by state and kind with counts per state, and one row's attempts; and the
push report (storage/pushreport.py) per month and kind, the numbers GET /api/admin/push-report returns.
Read only; a push's text is rendered as the member would read it, with any phone number in it masked."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from bot.api.validation import INT4_MAX, PathId
from bot.console import texts
from bot.console.auth import ConsoleError, ConsoleSession, needs
from bot.console.dates import formatter, parse_month
from bot.console.forms import read_field
from bot.console.pages import render
from bot.wechat import pushtexts
from storage import outbox, pushreport
from storage.audit import mask_phones
from storage.models import Outbox

router = APIRouter()
PAGE = 50
Reader = Annotated[ConsoleSession, Depends(needs("pushes.read"))]


def text_of(row: Outbox) -> str:
    """What the member reads (or a robot's group reads), phones masked."""
    try:
        payload = json.loads(row.payload)
    except ValueError:
        return ""
    if not isinstance(payload, dict):
        return ""
    return mask_phones(pushtexts.text_for(row.kind, payload))


@router.get("/admin/pushes", response_class=HTMLResponse)
async def pushes(
    request: Request, console: Reader, status: Annotated[str, Query(max_length=16)] = "",
    kind: Annotated[str, Query(max_length=32)] = "", before_id: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
    broadcast: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
) -> HTMLResponse:
    if status and status not in outbox.STATES:
        raise ConsoleError(400, texts.BAD_REQUEST.format(detail=texts.PUSH_STATE))
    async with console.services.db.sessions() as session:
        rows = await outbox.page(session, status=status or None, kind=kind.strip() or None, before_id=before_id,
                                 limit=PAGE + 1, broadcast_id=broadcast)
        counts = await outbox.counts(session)
    older = rows[PAGE - 1].id if len(rows) > PAGE else None
    return render(request, "pushes.html", console, active="pushes", rows=rows[:PAGE], counts=counts,
                  states=outbox.STATES, state=status, kind=kind, older=older, broadcast=broadcast,
                  paged=before_id is not None, mask=mask_phones, when=formatter(console.services.tz))


@router.get("/admin/pushes/report", response_class=HTMLResponse)
async def report(
    request: Request, console: Reader, first: Annotated[str, Query(alias="from", max_length=10)] = "",
    last: Annotated[str, Query(alias="to", max_length=10)] = "",
) -> HTMLResponse:
    """The months asked (default: the last six), one table row per month and kind, and a bar chart."""
    services = console.services
    errors: dict[str, str] = {}
    bad = texts.PUSH_REPORT_BAD_MONTH
    asked = read_field(parse_month, first, "from", errors, bad), read_field(parse_month, last, "to", errors, bad)
    today = services.clock.now().astimezone(services.tz).date()
    try:
        start, end = pushreport.window(*asked, today)
    except pushreport.RangeError as exc:
        start, end = pushreport.window(None, None, today)  # the form's blanks
        if not errors:
            errors["from"] = texts.PUSH_REPORT_ORDER if exc.problem == "order" else texts.PUSH_REPORT_TOO_LONG
    items: list[pushreport.KindMonth] = []
    if not errors:
        async with services.db.sessions() as session:
            items = await pushreport.report(session, start, end, services.tz)
    form = {"from": first.strip() or f"{start:%Y-%m}", "to": last.strip() or f"{end:%Y-%m}"}
    chart = {
        "months": sorted({item.month for item in items}),
        "kinds": {kind: texts.PUSH_KIND_NAMES.get(kind, kind) for kind in pushreport.kinds(items)},
        "sent": {f"{item.month}|{item.kind}": item.sent_total for item in items},
    }
    return render(request, "push_report.html", console, status=422 if errors else 200, active="pushes",
                  items=items, form=form, errors=errors, channels=outbox.CHANNELS, chart=chart)


@router.get("/admin/pushes/{outbox_id}", response_class=HTMLResponse)
async def push(request: Request, console: Reader, outbox_id: PathId) -> HTMLResponse:
    async with console.services.db.sessions() as session:
        row = await outbox.by_id(session, outbox_id)
        if row is None:
            raise ConsoleError(404, texts.NOT_FOUND)
        attempts = await outbox.attempts_of(session, outbox_id)
    return render(request, "push.html", console, active="pushes", row=row, attempts=attempts,
                  text=text_of(row), mask=mask_phones, when=formatter(console.services.tz))
