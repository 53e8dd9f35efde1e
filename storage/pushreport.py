"""The push report: per local month (of the day a push was queued) and per push kind, computed in SQL over
the outbox. Each row counts once, in the month it was queued: how many were queued, sent per channel,
undeliverable (by cause), held by the monthly cap (waiting for it now, or dropped for it), and converted
(the recipient checked in, redeemed or ordered within 7 days after the send, as the KPI snapshot counts).
Kinds come from the data (every kind that went to members; WeCom robot posts are not pushes to members),
so a new kind (broadcasts) appears without a change here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import outbox
from storage.models import Outbox
from storage.reports import converted_within_7d

MAX_MONTHS = 24
OTHER = "other"  # an undeliverable row whose last_error names no known cause


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(first: date) -> date:
    return first.replace(year=first.year + 1, month=1) if first.month == 12 else first.replace(month=first.month + 1)


def months(first: date, last: date) -> list[date]:
    """The first day of every month from `first`'s to `last`'s, both included."""
    out, at = [], month_start(first)
    while at <= last:
        out.append(at)
        at = next_month(at)
    return out


def months_back(last: date, count: int) -> date:
    """The first day of the month `count - 1` months before `last`'s (the first of `count` months)."""
    index = last.year * 12 + last.month - 1 - (count - 1)
    return date(index // 12, index % 12 + 1, 1)


DEFAULT_MONTHS = 6


class RangeError(ValueError):
    """Months asked in the wrong order (`problem` "order") or more than MAX_MONTHS of them ("too_long")."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def window(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The months a report covers (their first days): `end` defaults to this month, `start` to the first of
    DEFAULT_MONTHS ending there; RangeError when `start` is after `end` or the span is over MAX_MONTHS."""
    end = end or month_start(today)
    start = start or months_back(end, DEFAULT_MONTHS)
    if start > end:
        raise RangeError("order", f"`from` ({start:%Y-%m}) is after `to` ({end:%Y-%m})")
    if (count := len(months(start, end))) > MAX_MONTHS:
        raise RangeError("too_long", f"at most {MAX_MONTHS} months per request, asked {count}")
    return start, end


@dataclass
class KindMonth:
    month: str  # YYYY-MM, programme-local
    kind: str
    queued: int = 0
    sent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(outbox.CHANNELS, 0))
    undeliverable: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # cause (UNDELIVERABLE_CAUSES key or OTHER) -> rows
    held_by_cap: int = 0
    converted_7d: int = 0

    @property
    def sent_total(self) -> int:
        return sum(self.sent.values())

    @property
    def conversion_7d(self) -> float | None:
        return round(self.converted_7d / self.sent_total, 4) if self.sent_total else None

    def as_json(self) -> dict[str, Any]:
        return {
            "month": self.month, "kind": self.kind, "queued": self.queued, "sent": self.sent,
            "sent_total": self.sent_total, "undeliverable": self.undeliverable,
            "undeliverable_reasons": self.reasons, "held_by_cap": self.held_by_cap,
            "converted_7d": self.converted_7d, "conversion_7d": self.conversion_7d,
        }


def _starts(value: Any, prefix: str) -> Any:
    return func.substr(value, 1, len(prefix)) == prefix


async def report(session: AsyncSession, first: date, last: date, tz: ZoneInfo) -> list[KindMonth]:
    """Every (month, kind) with a push queued from `first`'s month to `last`'s (local), month then kind.
    Two grouped queries: the counts, and the undeliverable rows by cause."""
    spans = [(m, datetime.combine(m, time(0), tz), datetime.combine(next_month(m), time(0), tz))
             for m in months(first, last)]
    if not spans:
        return []
    created = col(Outbox.created_at)
    month = case(*((created < end, literal(f"{m:%Y-%m}")) for m, _, end in spans)).label("month")
    error = col(Outbox.last_error)
    cause = case(
        *((_starts(error, prefix), literal(code)) for code, prefix in outbox.UNDELIVERABLE_CAUSES.items()),
        else_=literal(OTHER),
    ).label("cause")
    status, channel = col(Outbox.status), col(Outbox.channel)
    # One labelled row per push, then grouped by the labels (PostgreSQL would not match a CASE with
    # parameters in SELECT to the same CASE in GROUP BY).
    rows = select(
        month, col(Outbox.kind).label("kind"), status.label("status"), channel.label("channel"), cause,
        case((_starts(func.coalesce(error, ""), outbox.CAP_HELD), 1), else_=0).label("held"),
        case((converted_within_7d(session, spans[0][1]), 1), else_=0).label("converted"),
    ).where(
        created >= spans[0][1], created < spans[-1][2], col(Outbox.source) != "wecom",
    ).subquery()
    sent = rows.c.status == outbox.SENT
    counts = (await session.execute(
        select(
            rows.c.month, rows.c.kind, func.count(),
            *(func.count().filter(sent, rows.c.channel == name) for name in outbox.CHANNELS),
            func.count().filter(rows.c.status == outbox.UNDELIVERABLE),
            func.count().filter(rows.c.held == 1, or_(rows.c.status == outbox.PENDING,
                                                      rows.c.status == outbox.DROPPED)),
            func.count().filter(sent, rows.c.converted == 1),
        ).group_by(rows.c.month, rows.c.kind).order_by(rows.c.month, rows.c.kind)
    )).all()
    found: dict[tuple[str, str], KindMonth] = {}
    width = len(outbox.CHANNELS)
    for row in counts:
        label, kind, queued, *per_channel = row
        item = KindMonth(str(label), str(kind), queued=int(queued))
        item.sent = {name: int(n) for name, n in zip(outbox.CHANNELS, per_channel[:width], strict=True)}
        item.undeliverable, item.held_by_cap, item.converted_7d = (int(n) for n in per_channel[width:])
        found[(item.month, item.kind)] = item
    causes = (await session.execute(
        select(rows.c.month, rows.c.kind, rows.c.cause, func.count())
        .where(rows.c.status == outbox.UNDELIVERABLE).group_by(rows.c.month, rows.c.kind, rows.c.cause)
    )).all()
    for label, kind, code, n in causes:
        found[(str(label), str(kind))].reasons[str(code)] = int(n)
    return list(found.values())


def kinds(items: list[KindMonth]) -> list[str]:
    """The kinds present, the push policy's priority order first (expiry, birthday, ...), then by name."""
    return sorted({item.kind for item in items}, key=lambda k: (-outbox.PRIORITY.get(k, -1), k))
