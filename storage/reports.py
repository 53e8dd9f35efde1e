"""The programme's daily figures (growth, spending, value, experience), computed in SQL over the tables
into one `kpi_snapshot` row per local day, and read back as series. Pages never scan members: they read
snapshots. Windows are programme-local days [start, end); "30d" is the 30 local days ending with the day.

State that has no history (a lot's remaining points, a member's current status, subscribe credits) is
read as it is when the job runs, so a rebuilt past day sees those as of now; counts of dated events
(sign-ups, deletions, orders, ledger entries, pushes, interaction days, check-ins) are exact.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, delete, distinct, false, func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import surveys, ticketsla
from storage.db import plus_days
from storage.enums import MemberStatus
from storage.ledger import QUALIFYING_KINDS
from storage.models import (
    Anomaly,
    Checkin,
    InteractionDay,
    KpiSnapshot,
    LedgerEntry,
    Member,
    Outbox,
    PointsLot,
    PurchaseOrder,
    Redemption,
    SubscribeCredit,
)
from storage.rules import Rules

DIMENSIONS: dict[str, tuple[str, ...]] = {
    "growth": ("followers", "members", "signups", "deletions", "net_growth", "referral_share_30d", "yoy_growth"),
    "spending": ("orders", "sales_yuan", "aov_yuan", "repeat_rate_90d", "top1_share_365d"),
    "value": (
        "points_issued", "points_redeemed", "points_expired", "redemption_rate_12m", "coupon_use_rate_12m",
        "liability_points", "liability_yuan", "expiring_30d", "expiring_60d", "expiring_90d",
        "expiring_30d_yuan", "expiring_60d_yuan", "expiring_90d_yuan",
    ),
    "experience": (
        "active_members", "interactions_per_active", "touches_share_3_5", "touches_share_0", "touches_mean",
        "push_reach", "push_conversion_7d", "undeliverable", "open_anomalies", "checkin_participation",
        "nps_30d", "nps_answers_30d", "tickets_30d", "tickets_answer_sla_share", "tickets_resolve_sla_share",
        "ticket_rating_30d",
    ),
}
FIGURES = tuple(name for names in DIMENSIONS.values() for name in names)
# The seeds' targets: (low, high); None for an open side. Rates are fractions.
TARGETS: dict[str, tuple[float | None, float | None]] = {
    "redemption_rate_12m": (0.50, None),  # industry average 0.35 (AVERAGES)
    "interactions_per_active": (3, None),
    "touches_mean": (3, 5),
    "push_conversion_7d": (0.15, None),
    "top1_share_365d": (0.55, None),
    "push_reach": (0.60, None),
    "yoy_growth": (0.25, None),
}
AVERAGES: dict[str, float] = {"redemption_rate_12m": 0.35}
# The headline figures staff read in the chat (`数据概览`) and the weekly digest posts: the targeted ones,
# in the seeds' order, after the size of the programme.
HEADLINES = (
    "members", "signups", "active_members", "redemption_rate_12m", "touches_mean", "push_conversion_7d",
    "top1_share_365d", "push_reach", "interactions_per_active", "yoy_growth",
)
_PERCENT = ("rate", "share", "reach", "conversion", "participation", "yoy")


@cache  # fixed by the name; the dashboard's 365-day table asks per cell
def unit(name: str) -> str:
    """How a figure reads: a fraction shown as a percent, yuan, or a plain number."""
    if any(part in name for part in _PERCENT):
        return "percent"
    if name.endswith("yuan"):
        return "yuan"
    return "number"


def shown(name: str, value: Any) -> str:
    """A figure as people read it: 24.5%, ¥1,234.50, 1,234 or 2.25; — when unknown (the dashboard, the chat)."""
    if value is None:
        return "—"
    kind = unit(name)
    if kind == "percent":
        return f"{value * 100:.1f}%"
    if kind == "yuan":
        return f"¥{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def change_text(name: str, now: Any, before: Any, points: str) -> str | None:
    """The change of a figure between two days (`points`: the word for percentage points); None unknown."""
    if now is None or before is None:
        return None
    delta = now - before
    if unit(name) == "percent":
        return f"{delta * 100:+.1f} {points}"
    if unit(name) == "yuan":
        return f"{'+' if delta >= 0 else '-'}¥{abs(delta):,.2f}"
    return f"{delta:+,}" if isinstance(delta, int) else f"{delta:+,.2f}"


def target_text(name: str, show: Callable[[str, Any], str] = shown) -> str | None:
    """The seeds' target of a figure, "≥ 50.0%" or "3–5"; None when the seeds give none."""
    low, high = TARGETS.get(name, (None, None))
    if low is None and high is None:
        return None
    if low is not None and high is not None:
        return f"{show(name, low)}–{show(name, high)}"
    return f"≥ {show(name, low)}" if low is not None else f"≤ {show(name, high)}"


def met(name: str, value: float) -> bool:
    low, high = TARGETS[name]
    return (low is None or value >= low) and (high is None or value <= high)


@dataclass(frozen=True)
class Window:
    day: date
    start: datetime  # the local day's first instant
    end: datetime  # the next local day's first instant

    @classmethod
    def of(cls, day: date, tz: ZoneInfo) -> Window:
        start = datetime.combine(day, time(0), tzinfo=tz)
        return cls(day, start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz))

    def days_back(self, days: int) -> datetime:
        """The first instant of the window of `days` local days ending with this one."""
        return datetime.combine(self.day - timedelta(days=days - 1), self.start.timetz())


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def ratio(part: Any, whole: Any, digits: int = 4) -> float | None:
    return round(float(part or 0) / float(whole), digits) if whole else None


def _yuan(fen: Any) -> float:
    return round(float(fen or 0) / 100, 2)


async def _one(session: AsyncSession, query: Any) -> Any:
    return (await session.execute(query)).one()


def members_at(end: datetime) -> Any:
    """Members (signed up) who had not left by `end`."""
    return and_(
        col(Member.joined_at) < end,
        or_(
            and_(col(Member.deleted_at).is_(None), col(Member.status) != MemberStatus.DELETED),
            col(Member.deleted_at) >= end,
        ),
    )


def _year_before(day: date) -> date:
    return day.replace(year=day.year - 1, day=28) if (day.month, day.day) == (2, 29) else day.replace(year=day.year - 1)


# A sign-up "came by referral" when the member names a referrer (a ref_ scan, a typed code, a campaign invite).
REFERRED = col(Member.referrer_id).is_not(None)


async def growth(session: AsyncSession, w: Window, tz: ZoneInfo) -> dict[str, Any]:
    in_day = and_(col(Member.joined_at) >= w.start, col(Member.joined_at) < w.end)
    in_30 = and_(col(Member.joined_at) >= w.days_back(30), col(Member.joined_at) < w.end)
    row = await _one(session, select(
        func.count().filter(col(Member.created_at) < w.end, col(Member.status) == MemberStatus.ACTIVE),
        func.count().filter(members_at(w.end)),
        func.count().filter(in_day),
        func.count().filter(col(Member.deleted_at) >= w.start, col(Member.deleted_at) < w.end),
        func.count().filter(in_30), func.count().filter(in_30, REFERRED),
        func.count().filter(members_at(Window.of(_year_before(w.day), tz).end)),
    ))
    followers, members, signups, deletions, joined_30, referred_30, year_ago = (int(v or 0) for v in row)
    return {
        "followers": followers, "members": members, "signups": signups, "deletions": deletions,
        "net_growth": signups - deletions, "referral_share_30d": ratio(referred_30, joined_30),
        "yoy_growth": round(members / year_ago - 1, 4) if year_ago else None,
    }


NET_FEN = col(PurchaseOrder.amount_fen) - col(PurchaseOrder.refunded_fen)
PAID = NET_FEN > 0  # a fully refunded order is no paid order


async def spending(session: AsyncSession, w: Window) -> dict[str, Any]:
    orders, sales = await _one(session, select(func.count(), func.coalesce(func.sum(NET_FEN), 0)).where(
        PAID, col(PurchaseOrder.created_at) >= w.start, col(PurchaseOrder.created_at) < w.end,
    ))
    per_member = (
        select(func.count().label("n")).where(
            PAID, col(PurchaseOrder.created_at) >= w.days_back(90), col(PurchaseOrder.created_at) < w.end,
        ).group_by(col(PurchaseOrder.member_id)).subquery()
    )
    buyers, repeat = await _one(session, select(func.count(), func.count().filter(per_member.c.n >= 2)))
    return {
        "orders": int(orders), "sales_yuan": _yuan(sales), "aov_yuan": _yuan(sales / orders) if orders else None,
        "repeat_rate_90d": ratio(repeat, buyers), "top1_share_365d": await _top1_share(session, w),
    }


async def _top1_share(session: AsyncSession, w: Window) -> float | None:
    """The share of member sales in 365 days that the top 1 % of buyers (at least one) made."""
    per_member = (
        select(func.sum(NET_FEN).label("fen")).where(
            PAID, col(PurchaseOrder.created_at) >= w.days_back(365), col(PurchaseOrder.created_at) < w.end,
        ).group_by(col(PurchaseOrder.member_id)).subquery()
    )
    ranked = select(
        per_member.c.fen, func.row_number().over(order_by=per_member.c.fen.desc()).label("rank"),
        func.count().over().label("buyers"),
    ).subquery()
    top, total = await _one(session, select(
        func.sum(case((ranked.c.rank <= (ranked.c.buyers + 99) // 100, ranked.c.fen), else_=0)),
        func.sum(ranked.c.fen),
    ))
    return ratio(top, total)


def _points(kinds: tuple[str, ...], start: datetime, end: datetime) -> Any:
    return func.coalesce(func.sum(col(LedgerEntry.delta)).filter(
        col(LedgerEntry.kind).in_(kinds), col(LedgerEntry.created_at) >= start, col(LedgerEntry.created_at) < end,
    ), 0)


async def value(session: AsyncSession, w: Window, rules: Rules) -> dict[str, Any]:
    year = w.days_back(365)
    issued, redeemed, expired, issued_12m, redeemed_12m, liability = (int(v) for v in await _one(session, select(
        _points(QUALIFYING_KINDS, w.start, w.end), _points(("redeem", "cancel"), w.start, w.end),
        _points(("expire",), w.start, w.end), _points(QUALIFYING_KINDS, year, w.end),
        _points(("redeem", "cancel"), year, w.end),
        func.coalesce(func.sum(col(LedgerEntry.delta)).filter(col(LedgerEntry.created_at) < w.end), 0),
    ).where(col(LedgerEntry.created_at) < w.end)))
    coupons, used = await _one(session, select(
        func.count().filter(col(Redemption.status) != "cancelled"), func.count(col(Redemption.used_at)),
    ).where(col(Redemption.created_at) >= year, col(Redemption.created_at) < w.end))
    expiring = await _one(session, select(*(
        func.coalesce(func.sum(col(PointsLot.remaining)).filter(
            col(PointsLot.expires_at) < w.end + timedelta(days=days)), 0)
        for days in (30, 60, 90)
    )).where(col(PointsLot.expires_at) >= w.end, col(PointsLot.remaining) > 0))
    fen = rules.point_value_fen
    figures: dict[str, Any] = {
        "points_issued": issued, "points_redeemed": -redeemed, "points_expired": -expired,
        "redemption_rate_12m": ratio(-redeemed_12m, issued_12m), "coupon_use_rate_12m": ratio(used, coupons),
        "liability_points": liability, "liability_yuan": _yuan(liability * fen),
    }
    for days, points in zip((30, 60, 90), expiring, strict=True):
        figures[f"expiring_{days}d"] = int(points)
        figures[f"expiring_{days}d_yuan"] = _yuan(int(points) * fen)
    return figures


async def experience(session: AsyncSession, w: Window, templates: bool = False) -> dict[str, Any]:
    month = w.days_back(30)
    first_day = w.day - timedelta(days=29)
    days = (
        select(col(InteractionDay.member_id), func.count().label("n"))
        .where(col(InteractionDay.day) >= first_day, col(InteractionDay.day) <= w.day)
        .group_by(col(InteractionDay.member_id)).subquery()
    )
    active, interactions, checked_in = await _one(session, select(
        func.count(days.c.member_id), func.coalesce(func.sum(days.c.n), 0),
        func.count(distinct(col(Checkin.member_id))),
    ).select_from(Member).join(days, days.c.member_id == Member.id).outerjoin(
        Checkin, and_(col(Checkin.member_id) == Member.id, col(Checkin.day) == w.day),
    ).where(members_at(w.end)))
    figures = {
        "active_members": int(active), "interactions_per_active": ratio(interactions, active, 2),
        "checkin_participation": ratio(checked_in, active),
    }
    figures.update(await _touches(session, w, month))
    nps = await surveys.nps_between(session, month, w.end)  # NPS answers given in the 30 days (storage/surveys.py)
    figures.update(nps_30d=nps.nps, nps_answers_30d=nps.answers)
    service = await ticketsla.figures(session, month, w.end, w.end)  # opened in the 30 days, as at the end
    figures.update(
        tickets_30d=service.total, tickets_answer_sla_share=_rounded(service.answer_within_sla),
        tickets_resolve_sla_share=_rounded(service.resolve_within_sla),
        ticket_rating_30d=_rounded(service.rating_mean, 2),
    )
    figures.update(await _pushes(session, w, templates))
    figures["open_anomalies"] = int((await _one(session, select(func.count()).where(
        col(Anomaly.created_at) < w.end,
        or_(col(Anomaly.resolved_at) >= w.end,
            and_(col(Anomaly.resolved_at).is_(None), col(Anomaly.state) != "resolved")),
    )))[0])
    return figures


async def _touches(session: AsyncSession, w: Window, since: datetime) -> dict[str, Any]:
    """Marketing pushes sent to each member in the 30 days: mean, share at 0, share within 3-5, histogram."""
    sent = (
        select(col(Outbox.member_id), func.count().label("n")).where(
            col(Outbox.category) == "marketing", col(Outbox.status) == "sent",
            col(Outbox.sent_at) >= since, col(Outbox.sent_at) < w.end,
        ).group_by(col(Outbox.member_id)).subquery()
    )
    n = func.coalesce(sent.c.n, 0)
    bucket = case((n >= 6, 6), else_=n)
    rows = (await session.execute(  # one pass: the histogram and each bucket's touches (6+ is not 6 each)
        select(bucket, func.count(), func.coalesce(func.sum(n), 0)).select_from(Member)
        .outerjoin(sent, sent.c.member_id == Member.id).where(members_at(w.end)).group_by(bucket)
    )).all()
    hist = {("6+" if int(b) == 6 else str(int(b))): int(c) for b, c, _ in rows}
    total = sum(hist.values())
    touches = sum(int(t) for _, _, t in rows)
    return {
        "touches_mean": ratio(touches, total, 2), "touches_share_0": ratio(hist.get("0", 0), total),
        "touches_share_3_5": ratio(sum(hist.get(k, 0) for k in ("3", "4", "5")), total), "touches_hist": hist,
    }


async def _pushes(session: AsyncSession, w: Window, templates: bool) -> dict[str, Any]:
    opted_in = and_(
        members_at(w.end), col(Member.status) == MemberStatus.ACTIVE, col(Member.marketing_opt_out).is_(False),
    )
    credit = select(col(SubscribeCredit.id)).where(
        col(SubscribeCredit.openid) == Member.mp_openid, col(SubscribeCredit.credits) > 0,
    ).exists()
    # A legal channel (PRODUCT.md "How a push reaches a member"): the 48 h customer-service window (its
    # send quota lives in the KV and is not counted), a template message, a subscribe credit.
    oa = col(Member.openid).is_not(None)
    window = and_(oa, col(Member.last_interaction_at) >= w.end - timedelta(hours=48))
    eligible, reachable = await _one(session, select(
        func.count(), func.count().filter(or_(window, credit, oa if templates else false())),
    ).where(opted_in))
    reason = func.coalesce(func.substr(col(Outbox.last_error), 1, 60), "").label("reason")
    reasons = (await session.execute(
        select(reason, func.count()).where(
            col(Outbox.status) == "undeliverable", col(Outbox.created_at) >= w.start, col(Outbox.created_at) < w.end,
        ).group_by(reason)
    )).all()
    return {
        "push_reach": ratio(reachable, eligible), "push_conversion_7d": await _conversion(session, w),
        "undeliverable": sum(int(c) for _, c in reasons), "undeliverable_reasons": {r: int(c) for r, c in reasons},
    }


def converted_within_7d(session: AsyncSession, since: datetime, until: datetime | None = None) -> Any:
    """True for an outbox row (in the statement's FROM) whose recipient checked in, redeemed or ordered
    within 7 days after its send (sent_at < act <= sent_at + 7 days); the push report uses it too.

    The caller promises every row it asks about was sent at or after `since` (and before `until`, when
    given): the acts are cut to those weeks, one UNION ALL of the three kinds under a single EXISTS, which
    PostgreSQL runs as a hash semi join over the acts of those weeks, where an OR of three EXISTS is three
    index probes per push (at 1,000,000 members, 2 million pushes)."""
    after = plus_days(session, col(Outbox.sent_at), 7)

    def of(model: Any) -> Any:
        cut = [col(model.created_at) > since]
        if until is not None:  # created_at > sent_at >= since, and created_at <= after < until + 7 days
            cut.append(col(model.created_at) <= until + timedelta(days=7))
        return select(col(model.member_id).label("member_id"), col(model.created_at).label("created_at")).where(*cut)

    acts = union_all(*(of(model) for model in (Checkin, Redemption, PurchaseOrder))).subquery("acts")
    return select(acts.c.member_id).where(
        acts.c.member_id == Outbox.member_id, acts.c.created_at > Outbox.sent_at, acts.c.created_at <= after,
    ).exists()


async def _conversion(session: AsyncSession, w: Window) -> float | None:
    """Marketing pushes sent in the 30 days ending a week before the day's end, whose recipient checked in,
    redeemed or ordered within 7 days after; each count in a subquery of its own."""
    end = w.end - timedelta(days=7)
    first = end - timedelta(days=30)
    pushed = (
        col(Outbox.category) == "marketing", col(Outbox.status) == "sent",
        col(Outbox.sent_at) >= first, col(Outbox.sent_at) < end,
    )
    sent, converted = await _one(session, select(
        select(func.count()).select_from(Outbox).where(*pushed).scalar_subquery(),
        select(func.count()).select_from(Outbox).where(*pushed, converted_within_7d(session, first, end))
        .scalar_subquery(),
    ))
    return ratio(converted, sent)


async def compute(
    session: AsyncSession, day: date, tz: ZoneInfo, rules: Rules, *, templates: bool = False,
) -> dict[str, Any]:
    """Every figure of one local day (see DIMENSIONS), read-only. `templates`: a template message is
    configured, so every opted-in member with an Official Account openid can be reached by one."""
    w = Window.of(day, tz)
    figures: dict[str, Any] = {}
    figures.update(await growth(session, w, tz))
    figures.update(await spending(session, w))
    figures.update(await value(session, w, rules))
    figures.update(await experience(session, w, templates))
    return figures


async def snapshot(
    session: AsyncSession, day: date, tz: ZoneInfo, rules: Rules, now: datetime, *, templates: bool = False,
) -> dict[str, Any]:
    """Compute the day and store it, replacing any earlier row for that day (idempotent)."""
    figures = await compute(session, day, tz, rules, templates=templates)
    await session.execute(delete(KpiSnapshot).where(col(KpiSnapshot.day) == day))
    session.add(KpiSnapshot(day=day, figures=json.dumps(figures, sort_keys=True), computed_at=now))
    await session.flush()
    return figures


async def series(session: AsyncSession, first: date, last: date) -> list[tuple[date, dict[str, Any]]]:
    """The stored snapshots from `first` to `last` (local days, both included), oldest first."""
    rows = (await session.execute(
        select(col(KpiSnapshot.day), col(KpiSnapshot.figures))
        .where(col(KpiSnapshot.day) >= first, col(KpiSnapshot.day) <= last).order_by(col(KpiSnapshot.day))
    )).all()
    return [(day, json.loads(text)) for day, text in rows]


def as_series(rows: list[tuple[date, dict[str, Any]]]) -> dict[str, Any]:
    """Snapshots as the KPI API and the dashboard hand them out: the days, one list per figure aligned
    with them (None where a day lacks it), and the seeds' targets."""
    names = [*FIGURES, "touches_hist", "undeliverable_reasons"]
    return {
        "days": [day.isoformat() for day, _ in rows],
        "series": {name: [figures.get(name) for _, figures in rows] for name in names},
        "targets": {name: list(bounds) for name, bounds in TARGETS.items()},
        "averages": AVERAGES,
    }


async def latest_day(session: AsyncSession) -> date | None:
    return await session.scalar(select(func.max(col(KpiSnapshot.day))))


async def latest(session: AsyncSession) -> tuple[date, dict[str, Any]] | None:
    """The newest snapshot's day and figures, in one read; None before the first."""
    row = (await session.execute(select(col(KpiSnapshot.day), col(KpiSnapshot.figures))
                                 .order_by(col(KpiSnapshot.day).desc()).limit(1))).first()
    return None if row is None else (row[0], json.loads(row[1]))
