"""Exports: the form, and the masked CSV of members, ledger entries or redemptions for a local date range,
streamed page by page from storage/exports.py (UTF-8 with a BOM so Excel reads the Chinese), each export
audited before its first byte is sent. Openids stay in: they are WeChat's pseudonymous ids, needed to
match rows with other systems, and name no one by themselves."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from bot.console import texts
from bot.console.auth import ConsoleError, ConsoleSession, needs
from bot.console.dates import end_of, local, parse_day, start_of
from bot.console.pages import render
from bot.crypto import CryptoError
from storage import audit, exports
from storage.clock import local_date

router = APIRouter()
MAX_DAYS = 366
DEFAULT_DAYS = 30
KINDS = ("members", "ledger", "redemptions")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a cell Excel would run as a formula
Exporter = Callable[[ConsoleSession, datetime, datetime], AsyncIterator[list[exports.Row]]]
Exporting = Annotated[ConsoleSession, Depends(needs("exports"))]
Day = Annotated[str, Query(max_length=20)]


def check_range(since: str, until: str) -> tuple[date | None, date | None, dict[str, str]]:
    """The two local days of a range, and each field's error (empty when the range is good)."""
    errors: dict[str, str] = {}
    days: dict[str, date | None] = {}
    for field, raw in (("since", since), ("until", until)):
        try:
            days[field] = parse_day(raw)
        except ValueError:
            days[field] = None
            errors[field] = texts.BAD_DATE
            continue
        if days[field] is None:
            errors[field] = texts.EXPORT_RANGE_REQUIRED
    first, last = days["since"], days["until"]
    if first and last and first > last:
        errors["until"] = texts.EXPORT_RANGE_ORDER
    elif first and last and (last - first).days + 1 > MAX_DAYS:
        errors["until"] = texts.EXPORT_RANGE_TOO_LONG
    return first, last, errors


def cell(value: Any, tz: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return texts.YES if value else texts.NO
    if isinstance(value, datetime):
        return local(value, tz)
    text = str(value)
    return "'" + text if isinstance(value, str) and text.startswith(_FORMULA) else text


def _members(console: ConsoleSession, since: datetime, until: datetime) -> AsyncIterator[list[exports.Row]]:
    pii = console.services.pii

    def decrypt(token: str) -> str:
        try:
            return pii.decrypt(token)
        except CryptoError:
            return ""

    return exports.members(console.services.db, since, until, decrypt)


EXPORTERS: dict[str, Exporter] = {
    "members": _members,
    "ledger": lambda console, since, until: exports.ledger(console.services.db, since, until),
    "redemptions": lambda console, since, until: exports.redemptions(console.services.db, since, until),
}


async def csv_bytes(header: tuple[str, ...], pages: AsyncIterator[list[exports.Row]], tz: Any) -> AsyncIterator[bytes]:
    """The file, one chunk per page: the BOM and header first, then each page's rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(header)
    yield buffer.getvalue().encode()
    async for rows in pages:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([cell(value, tz) for value in row] for row in rows)
        yield buffer.getvalue().encode()


def _form(request: Request, console: ConsoleSession, *, since: str, until: str, kind: str = "",
          errors: dict[str, str] | None = None) -> HTMLResponse:
    return render(request, "exports.html", console, status=422 if errors else 200, active="exports",
                  kinds=KINDS, since=since, until=until, kind=kind, errors=errors or {})


@router.get("/admin/exports", response_class=HTMLResponse)
async def export_form(request: Request, console: Exporting) -> HTMLResponse:
    today = local_date(console.services.clock.now(), console.services.tz)
    start = today - timedelta(days=DEFAULT_DAYS - 1)
    return _form(request, console, since=start.isoformat(), until=today.isoformat())


@router.get("/admin/exports/{kind}.csv", response_model=None)
async def export(request: Request, console: Exporting, kind: str, since: Day = "", until: Day = "") -> Response:
    if kind not in EXPORTERS:
        raise ConsoleError(404, texts.NOT_FOUND)
    first, last, errors = check_range(since, until)
    if errors or first is None or last is None:
        return _form(request, console, since=since, until=until, kind=kind, errors=errors)
    services, tz = console.services, console.services.tz
    async with services.db.unit_of_work() as session:
        await audit.record(session, console.actor, f"export.{kind}", f"{first}..{last}", now=services.clock.now(),
                           after={"since": first.isoformat(), "until": last.isoformat()}, client=console.client)
    pages = EXPORTERS[kind](console, start_of(first, tz), end_of(last, tz))
    filename = f"{kind}-{first}-{last}.csv"
    return StreamingResponse(csv_bytes(texts.EXPORT_HEADERS[kind], pages, tz), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
