"""The KPI API (bearer ADMIN_TOKEN): the daily snapshots of storage/reports.py as series, the same
numbers the console's dashboard draws. It reads snapshots only, never the member tables."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Query

from bot.api.deps import AdminDep
from bot.api.errors import ApiError
from storage import reports

router = APIRouter(prefix="/api/admin", tags=["admin"])
MAX_DAYS = 366
DEFAULT_DAYS = 30


def _day(name: str, value: str | None) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(422, "bad_date", f"`{name}` must be a date as YYYY-MM-DD, got {value[:40]!r}") from None


def window(first: str | None, last: str | None, latest: date | None, today: date) -> tuple[date, date]:
    """The asked range: `to` defaults to the latest snapshot (else today), `from` to 30 days before `to`;
    at most MAX_DAYS days, `from` not after `to`."""
    end = _day("to", last) or latest or today
    start = _day("from", first) or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ApiError(422, "bad_range", f"`from` ({start}) is after `to` ({end})")
    if (end - start).days + 1 > MAX_DAYS:
        raise ApiError(422, "bad_range", f"at most {MAX_DAYS} days per request, asked {(end - start).days + 1}")
    return start, end


@router.get("/kpis", summary="KPI series from the daily snapshots")
async def kpis(
    services: AdminDep,
    first: str | None = Query(None, alias="from", description="first local day, YYYY-MM-DD"),
    last: str | None = Query(None, alias="to", description="last local day, YYYY-MM-DD (default: latest)"),
) -> dict[str, Any]:
    """Every figure per day from `from` to `to` (both included): `days`, `series` (one list per figure,
    aligned with `days`; a day without a snapshot is absent), `targets` ([low, high], null for an open side)."""
    async with services.db.sessions() as session:
        latest = await reports.latest_day(session)
        start, end = window(first, last, latest, services.clock.now().astimezone(services.tz).date())
        rows = await reports.series(session, start, end)
    return {"from": start.isoformat(), "to": end.isoformat(), **reports.as_series(rows)}
