"""The SLA watch over tickets: a live ticket past its first-answer or resolution due time is escalated
once (escalated_at, the breach it missed, a service-robot message keyed `ticket_sla:<id>`), and the
figures over tickets: counts by category and state, answer/resolution times, share within SLA, ratings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import outbox
from storage.clock import as_utc
from storage.models import Ticket

LIVE = ("open", "answered")
BATCH = 500


def _overdue(now: datetime) -> Any:
    return and_(
        col(Ticket.state).in_(LIVE), col(Ticket.escalated_at).is_(None),
        or_(and_(col(Ticket.first_answer_at).is_(None), col(Ticket.answer_due_at) < now),
            col(Ticket.resolve_due_at) < now),
    )


async def escalate_due(session: AsyncSession, now: datetime, *, robot: str = "") -> int:
    """Mark every overdue live ticket escalated (never twice: escalated_at is set in the same UPDATE's
    condition), with the breach it missed first, and tell the service robot when one is set."""
    due = (await session.scalars(select(Ticket).where(_overdue(now)).order_by(col(Ticket.id)).limit(BATCH))).all()
    done = 0
    for ticket in due:
        breach = "answer" if ticket.first_answer_at is None and as_utc(ticket.answer_due_at) < now else "resolve"
        moved = await session.execute(
            update(Ticket).where(col(Ticket.id) == ticket.id).where(col(Ticket.escalated_at).is_(None))
            .values(escalated_at=now, breach=breach)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            continue
        done += 1
        if robot:
            await outbox.enqueue(session, dedupe_key=f"ticket_sla:{ticket.id}", openid="", source="wecom",
                                 kind="ticket", now=now, payload={"robot_key": robot, "params": {
                                     "stage": f"sla_{breach}", "code": ticket.code, "category": ticket.category,
                                     "kind": ticket.kind, "id": ticket.id}})
    return done


# --- figures -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Times:
    """Hours from opening: how many, median and 90th percentile (nearest rank)."""

    count: int = 0
    median: float | None = None
    p90: float | None = None


@dataclass(frozen=True)
class Figures:
    total: int
    by_category: dict[str, dict[str, int]]  # category -> state -> count
    first_answer: Times
    resolution: Times
    answer_within_sla: float | None  # share of answered (or overdue) tickets answered in time
    resolve_within_sla: float | None
    escalated: int
    ratings: dict[int, int] = field(default_factory=dict)
    rating_mean: float | None = None


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `share` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-int(share * 100) * len(ordered) // 100))
    return ordered[min(rank, len(ordered)) - 1]


def _times(hours: list[float]) -> Times:
    return Times(len(hours), percentile(hours, 0.5), percentile(hours, 0.9))


def _share(hits: int, of: int) -> float | None:
    return None if of == 0 else hits / of


async def figures(session: AsyncSession, since: datetime, until: datetime, now: datetime) -> Figures:
    """Over tickets opened in [since, until): the queue's figures (hand-offs included)."""
    rows = (await session.scalars(select(Ticket).where(col(Ticket.created_at) >= since)
                                  .where(col(Ticket.created_at) < until))).all()
    by: dict[str, Counter[str]] = {}
    answer_h, resolve_h = [], []
    answer_hits = answer_of = resolve_hits = resolve_of = 0
    for t in rows:
        by.setdefault(t.category, Counter())[t.state] += 1
        opened, answer_due, resolve_due = as_utc(t.created_at), as_utc(t.answer_due_at), as_utc(t.resolve_due_at)
        if t.first_answer_at is not None:
            answer_h.append((as_utc(t.first_answer_at) - opened).total_seconds() / 3600)
        if t.first_answer_at is not None or answer_due < now:
            answer_of += 1
            answer_hits += t.first_answer_at is not None and as_utc(t.first_answer_at) <= answer_due
        if t.resolved_at is not None:
            resolve_h.append((as_utc(t.resolved_at) - opened).total_seconds() / 3600)
        if t.resolved_at is not None or resolve_due < now:
            resolve_of += 1
            resolve_hits += t.resolved_at is not None and as_utc(t.resolved_at) <= resolve_due
    ratings = Counter(t.rating for t in rows if t.rating is not None)
    rated = sum(ratings.values())
    return Figures(
        total=len(rows), by_category={c: dict(s) for c, s in sorted(by.items())},
        first_answer=_times(answer_h), resolution=_times(resolve_h),
        answer_within_sla=_share(answer_hits, answer_of), resolve_within_sla=_share(resolve_hits, resolve_of),
        escalated=sum(t.escalated_at is not None for t in rows), ratings=dict(sorted(ratings.items())),
        rating_mean=None if not rated else sum(k * v for k, v in ratings.items()) / rated,
    )
