"""The KPI API (bearer ADMIN_TOKEN): the daily snapshots of storage/reports.py as series, the same
numbers the console's dashboard draws (it reads snapshots only, never the member tables); and the push
report of storage/pushreport.py, the numbers of the console's push report page."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Query

from bot.api.deps import AdminDep
from bot.api.errors import ERROR_SCHEMA, ApiError
from bot.api.validation import INT4_MAX
from bot.console import texts
from bot.console.dates import end_of, parse_month, start_of
from storage import outbox, pushreport, reports, segments, winback

router = APIRouter(prefix="/api/admin", tags=["admin"])
MAX_DAYS = 366
DEFAULT_DAYS = 30
WINBACK_PAGE = 50


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


# --- the push report ---------------------------------------------------------------------------------
PUSH_REPORT_EXAMPLE = {
    "from": "2026-10", "to": "2026-11",
    "channels": {"cs": "客服消息", "template": "模板消息", "subscribe": "订阅消息"},
    "reasons": {"no_channel": "没有可用渠道（48 小时客服窗口外、无模板、无订阅额度）", "other": "其他原因"},
    "rows": [{
        "month": "2026-11", "kind": "birthday", "label": "生日祝福", "queued": 5,
        "sent": {"cs": 1, "template": 2, "subscribe": 0}, "sent_total": 3, "undeliverable": 1,
        "undeliverable_reasons": {"no_channel": 1}, "held_by_cap": 1, "converted_7d": 1, "conversion_7d": 0.3333,
    }],
}


def _month(name: str, value: str | None) -> date | None:
    try:
        return parse_month(value)
    except ValueError:
        raise ApiError(422, "bad_month", f"`{name}` must be a month as YYYY-MM, got {(value or '')[:40]!r}") from None


def month_window(first: str | None, last: str | None, today: date) -> tuple[date, date]:
    """The asked months (pushreport.window); a bad month or range is a 422 naming it."""
    try:
        return pushreport.window(_month("from", first), _month("to", last), today)
    except pushreport.RangeError as exc:
        raise ApiError(422, "bad_range", str(exc)) from None


def push_report_json(start: date, end: date, items: list[pushreport.KindMonth]) -> dict[str, Any]:
    return {
        "from": f"{start:%Y-%m}", "to": f"{end:%Y-%m}",
        "channels": {name: texts.PUSH_CHANNEL_NAMES[name] for name in outbox.CHANNELS},
        "reasons": texts.PUSH_CAUSE_NAMES,
        "rows": [{**item.as_json(), "label": texts.PUSH_KIND_NAMES.get(item.kind, item.kind)} for item in items],
    }


@router.get(
    "/push-report", summary="Pushes per kind and month: queued, sent per channel, undeliverable, held, converted",
    responses={200: {"content": {"application/json": {"example": PUSH_REPORT_EXAMPLE}}}, 422: ERROR_SCHEMA},
)
async def push_report(
    services: AdminDep,
    first: str | None = Query(None, alias="from", description="first local month, YYYY-MM (default: 5 before `to`)"),
    last: str | None = Query(None, alias="to", description="last local month, YYYY-MM (default: this month)"),
) -> dict[str, Any]:
    """One row per (month, kind) with a push queued that local month (each push counts in the month it was
    queued): `queued`, `sent` per channel, `undeliverable` and its `undeliverable_reasons` (cause codes,
    labelled in `reasons`), `held_by_cap` (waiting for the monthly cap, or dropped for it), `converted_7d`
    (the recipient checked in, redeemed or ordered within 7 days after the send) and `conversion_7d`."""
    start, end = month_window(first, last, services.clock.now().astimezone(services.tz).date())
    async with services.db.sessions() as session:
        items = await pushreport.report(session, start, end, services.tz)
    return push_report_json(start, end, items)


# --- segments ------------------------------------------------------------------------------------------
@router.get("/segments", summary="RFM classes: sizes, share of sales, and the moves between them")
async def segment_report(
    services: AdminDep,
    first: str | None = Query(None, alias="from", description="first local day of the moves, YYYY-MM-DD"),
    last: str | None = Query(None, alias="to", description="last local day of the moves, YYYY-MM-DD (default: today)"),
) -> dict[str, Any]:
    """`classes`: each RFM class's members today and its share of the 12 months' net sales; `flows`: the
    moves between classes on the days `from` to `to` (30 days by default, at most 366; `from` null: a
    member's first layering)."""
    now = services.clock.now()
    start, end = window(first, last, None, now.astimezone(services.tz).date())
    async with services.db.sessions() as session:
        classes = await segments.classes(session, now)
        moves = await segments.flows(session, start, end)
    return {
        "from": start.isoformat(), "to": end.isoformat(),
        "classes": [{"name": c.name, "members": c.members, "sales_yuan": c.sales_fen / 100, "share": c.share}
                    for c in classes],
        "flows": [{"from": origin, "to": to, "members": n} for (origin, to), n in sorted(
            moves.items(), key=lambda item: (item[0][0] or "", item[0][1]))],
    }


# --- win-back --------------------------------------------------------------------------------------------
@router.get("/winback", summary="The staged win-back: each stage's results, and who stands in a stage now")
async def winback_report(
    services: AdminDep,
    first: str | None = Query(None, alias="from", description="first local day of the steps, YYYY-MM-DD"),
    last: str | None = Query(None, alias="to", description="last local day of the steps, YYYY-MM-DD (default: today)"),
    stage: str | None = Query(None, description="only members in this stage: warn, recall1, recall2 or dormant"),
    before_id: int | None = Query(None, ge=1, le=INT4_MAX, description="the next page: members older than this id"),
) -> dict[str, Any]:
    """`stages`: per stage, the members who reached it on the days `from` to `to` (30 days by default), how
    many wrote within 7 days (recalled) and paid within 30 (reactivated), with the rates; `now`: how many
    stand in each stage today; `members`: up to 50 of them, newest first (`next_before_id` pages on)."""
    if stage is not None and stage not in winback.STAGES:
        raise ApiError(422, "bad_stage", f"`stage` must be one of {', '.join(winback.STAGES)}, got {stage[:20]!r}")
    now = services.clock.now()
    start, end = window(first, last, None, now.astimezone(services.tz).date())
    async with services.db.sessions() as session:
        figures = await winback.stage_report(session, start_of(start, services.tz), end_of(end, services.tz),
                                             services.tz)
        standing = await winback.stage_counts(session)
        found = await winback.in_stage(session, stage=stage, before_id=before_id, limit=WINBACK_PAGE + 1)
    return {
        "from": start.isoformat(), "to": end.isoformat(),
        "stages": [{"stage": f.stage, "reached": f.reached, "recalled": f.recalled, "reactivated": f.reactivated,
                    "recall_rate": f.recall_rate, "reactivation_rate": f.reactivation_rate} for f in figures],
        "now": {s: standing.get(s, 0) for s in winback.STAGES},
        "members": [{"id": m.id, "stage": m.stage, "since": m.since.isoformat() if m.since else None,
                     "tier": m.tier, "rfm_class": m.segment,
                     "last_interaction_at": m.last_interaction_at.isoformat() if m.last_interaction_at else None}
                    for m in found[:WINBACK_PAGE]],
        "next_before_id": found[WINBACK_PAGE - 1].id if len(found) > WINBACK_PAGE else None,
    }
