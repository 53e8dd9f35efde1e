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
MAX_TEXT_BYTES = 2048  # WeChat's passive text reply limit


def show(name: str, value: Any) -> str:
    if value is None:
        return "—"
    if reports.unit(name) == "percent":
        return f"{value * 100:+.1f}%" if name == "yoy_growth" else f"{value * 100:.1f}%"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _change(name: str, now: Any, before: Any) -> str:
    if now is None or before is None:
        return ""
    delta = now - before
    if reports.unit(name) == "percent":
        shown = f"{delta * 100:+.1f} {texts.OVERVIEW_POINTS}"
    else:
        shown = f"{delta:+,}" if isinstance(delta, int) else f"{delta:+,.2f}"
    return texts.OVERVIEW_CHANGE.format(delta=shown)


def _target(name: str) -> str:
    low, high = reports.TARGETS[name]
    if low is not None and high is not None:
        return f"{show(name, low)}–{show(name, high)}"
    return f"≥ {show(name, low)}" if low is not None else f"≤ {show(name, high)}"


def _met(name: str, value: float) -> bool:
    low, high = reports.TARGETS[name]
    return (low is None or value >= low) and (high is None or value <= high)


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
            label=texts.OVERVIEW_LABELS[name], value=show(name, value), target=_target(name),
            verdict=texts.OVERVIEW_MET if _met(name, value) else texts.OVERVIEW_MISSED,
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
        day = await reports.latest_day(session)
        rows = await reports.series(session, day, day) if day is not None else []
    if day is None or not rows:
        return Text(texts.OVERVIEW_NONE)
    yesterday = local_date(ctx.clock.now(), ctx.tz) - timedelta(days=1)
    return Text(overview_text(day, rows[0][1], stale=day < yesterday))
