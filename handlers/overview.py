"""`数据概览` for campaign staff (managers, admins): the latest KPI snapshot's headline figures against the
seeds' targets, in one short message. The same words make the weekly digest the operations robot gets
(bot/wechat/pushtexts.py renders the `kpi_digest` outbox row with `overview_text`, adding the week's change)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Click, Command, is_staff
from handlers.core.message import Inbound
from handlers.core.reply import Reply, Text
from handlers.core.router import Router
from storage import reports
from storage.clock import local_date

router = Router("overview")


def show(name: str, value: Any) -> str:
    """As the dashboard shows it, but a growth carries its sign (+25.0%)."""
    if name == "yoy_growth" and value is not None:
        return f"{value * 100:+.1f}%"
    return reports.shown(name, value)


def _change(name: str, now: Any, before: Any) -> str:
    shown = reports.change_text(name, now, before, texts.OVERVIEW_POINTS)
    return "" if shown is None else texts.OVERVIEW_CHANGE.format(delta=shown)


def overview_lines(figures: dict[str, Any], previous: dict[str, Any] | None = None) -> list[str]:
    """The programme's size, then one line per targeted headline figure that has a value (year-on-year
    growth only once a year of data exists), each with the week's change when `previous` is given."""
    before = previous or {}
    size = texts.OVERVIEW_SIZE.format(
        members=show("members", figures.get("members")), signups=show("signups", figures.get("signups")),
        active=show("active_members", figures.get("active_members")),
    )
    lines = [size + (_change("members", figures.get("members"), before.get("members")) if previous is not None else "")]
    for name in reports.HEADLINES:
        value = figures.get(name)
        if name not in reports.TARGETS or value is None:
            continue
        line = texts.OVERVIEW_LINE.format(
            label=texts.OVERVIEW_LABELS[name], value=show(name, value), target=reports.target_text(name, show),
            verdict=texts.OVERVIEW_MET if reports.met(name, value) else texts.OVERVIEW_MISSED,
        )
        lines.append(line + (_change(name, value, before.get(name)) if previous is not None else ""))
    return lines


def overview_text(day: date, figures: dict[str, Any], *, stale: bool = False) -> str:
    lines = [texts.OVERVIEW_HEAD.format(day=day.isoformat()), *overview_lines(figures)]
    if stale:
        lines.append(texts.OVERVIEW_STALE)
    return "\n".join([*lines, texts.OVERVIEW_FOOT])


def digest_text(day: date, figures: dict[str, Any], previous: dict[str, Any]) -> str:
    """The weekly digest: the same figures with their change against the same day a week before."""
    lines = [texts.OVERVIEW_DIGEST_HEAD.format(day=day.isoformat()), *overview_lines(figures, previous)]
    return "\n".join([*lines, texts.OVERVIEW_FOOT])


@router.on(Command("数据概览", "overview"), is_staff, name="kpi_overview")
@router.on(Click("STAFF_OVERVIEW"), is_staff, name="kpi_overview")
async def overview(msg: Inbound, ctx: ChatContext) -> Reply:
    async with ctx.db.sessions() as session:
        found = await reports.latest(session)
    if found is None:
        return Text(texts.OVERVIEW_NONE)
    day, figures = found
    yesterday = local_date(ctx.clock.now(), ctx.tz) - timedelta(days=1)
    return Text(overview_text(day, figures, stale=day < yesterday))
