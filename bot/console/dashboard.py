"""The console's dashboard (right `dashboard.read`): tiles, trend charts and a table over the daily KPI
snapshots of storage/reports.py. It reads snapshots only; the numbers are formatted here, once, for the
tiles and the table alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from bot.console import texts
from bot.console.auth import ConsoleError, ConsoleSession
from bot.console.pages import render
from storage import reports

RANGES = (7, 30, 90, 365)
DEFAULT_RANGE = 30
unit = reports.unit


show = reports.shown


def show_change(name: str, now: Any, before: Any) -> str | None:
    return reports.change_text(name, now, before, texts.DASHBOARD_POINTS)


@dataclass(frozen=True)
class Tile:
    name: str
    label: str
    value: str
    change: str
    unit: str
    target: str | None


def tiles(rows: list[tuple[date, dict[str, Any]]], days: int) -> dict[str, list[Tile]]:
    """Per dimension, each figure's latest value and its change against `days` days before."""
    by_day = dict(rows)
    last_day, latest = rows[-1]
    before = by_day.get(last_day - timedelta(days=days), {})
    out: dict[str, list[Tile]] = {}
    for dimension, names in reports.DIMENSIONS.items():
        out[dimension] = []
        for name in names:
            change = show_change(name, latest.get(name), before.get(name))
            out[dimension].append(Tile(
                name, texts.KPI_LABELS[name], show(name, latest.get(name)),
                texts.DASHBOARD_CHANGE.format(days=days, delta=change) if change is not None
                else texts.DASHBOARD_NO_CHANGE.format(days=days),
                unit(name), reports.target_text(name),
            ))
    return out


def table(rows: list[tuple[date, dict[str, Any]]]) -> dict[str, list[list[str]]]:
    """Per dimension, one row per day (newest first): the day, then each figure formatted."""
    return {
        dimension: [
            [day.isoformat(), *(show(name, figures.get(name)) for name in names)] for day, figures in reversed(rows)
        ]
        for dimension, names in reports.DIMENSIONS.items()
    }


async def page(request: Request, console: ConsoleSession, days: int) -> HTMLResponse:
    if days not in RANGES:
        raise ConsoleError(422, texts.DASHBOARD_BAD_RANGE.format(days=days))
    services = console.services
    async with services.db.sessions() as session:
        last = await reports.latest_day(session)
        rows = await reports.series(session, last - timedelta(days=days), last) if last is not None else []
    shown = [(day, figures) for day, figures in rows if last is not None and day > last - timedelta(days=days)]
    context: dict[str, Any] = {"active": "home", "days": days, "ranges": RANGES, "last": last}
    if shown:
        latest = shown[-1][1]
        context.update(
            tiles=tiles(rows, days), table=table(shown), data=reports.as_series(shown),
            units={name: unit(name) for name in reports.FIGURES},
            hist=latest.get("touches_hist") or {}, reasons=latest.get("undeliverable_reasons") or {},
            demo=request.app.state.settings.demo,
        )
    return render(request, "dashboard.html", console, **context)
