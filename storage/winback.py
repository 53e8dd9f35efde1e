"""Churn risk from each member's own rhythm, and the staged win-back it leads to.

At risk (as of `now`):
- a buyer whose days since the last paid order exceed twice their own median gap between paid orders, or
  `winback.one_order_days` (60) after a single one;
- a member without a paid order who has been quiet `winback_after_days` (30), the programme's older rule;
- anyone whose interaction days fell by more than half month on month: the last 30 local days against the
  30 before them (with at least 2 days before, so one day's visit does not make a trend).

Stages, one at a time, `winback.stage_gap_days` (7) apart, each a winback_step row (key
`winback:{member}:{stage}:{local day}`) and at most one push: warn (a light reminder; the member is on the
operators' list), recall1 (the points offer honoured by the next check-in: a WinbackOffer), recall2 (a coupon
granted when the rules name `winback.recall_reward`, else the points offer again), dormant (no marketing until
the member writes again: outbox.may_market refuses, audiences leave them out). A message from the member
clears the stage (storage/members.touch), and so does a paid order or the risk passing; a new episode starts
no sooner than `winback_after_days` after the last step. The reports count each stage's members, who wrote
within 7 days (recalled) and who paid within 30 (reactivated)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.clock import as_utc
from storage.db import dialect_insert, plus_days, plus_seconds
from storage.models import InteractionDay, Member, MemberSegment, PurchaseOrder, WinbackStep
from storage.reports import PAID
from storage.rows import affected
from storage.rules import Rules

WARN, RECALL1, RECALL2, DORMANT = "warn", "recall1", "recall2", "dormant"
LEAVE = "leave"  # not a stage: the episode ends
STAGES = (WARN, RECALL1, RECALL2, DORMANT)
NEXT = {None: WARN, WARN: RECALL1, RECALL1: RECALL2, RECALL2: DORMANT}
MONTH = 30
MIN_DAYS_BEFORE = 2


@dataclass(frozen=True)
class Rhythm:
    """What the risk is judged on, for one member."""

    orders: tuple[datetime, ...]  # paid orders, oldest first
    days_recent: int  # interaction days in the last 30 local days
    days_before: int  # ... in the 30 before those
    last_interaction_at: datetime | None
    stage: str | None = None  # the member's win-back stage when the page was read, and since when
    stage_at: datetime | None = None


def median_gap_days(orders: Sequence[datetime]) -> float | None:
    """The median of the days between consecutive orders (None with fewer than two)."""
    if len(orders) < 2:
        return None
    return statistics.median((b - a).total_seconds() / 86400 for a, b in zip(orders, orders[1:], strict=False))


def at_risk(rhythm: Rhythm, now: datetime, rules: Rules) -> bool:
    if rhythm.days_before >= MIN_DAYS_BEFORE and rhythm.days_recent * 2 < rhythm.days_before:
        return True
    if rhythm.orders:
        since = (now - rhythm.orders[-1]).total_seconds() / 86400
        gap = median_gap_days(rhythm.orders)
        return since > (rules.winback.one_order_days if gap is None else 2 * gap)
    quiet_since = now - timedelta(days=rules.winback_after_days)
    return rhythm.last_interaction_at is not None and as_utc(rhythm.last_interaction_at) < quiet_since


async def rhythms(session: AsyncSession, member_ids: Sequence[int], now: datetime, today: date) -> dict[int, Rhythm]:
    """The rhythm of each member in one page: two queries, whatever the page's size."""
    orders: dict[int, list[datetime]] = defaultdict(list)
    for member_id, at in (await session.execute(
        select(col(PurchaseOrder.member_id), col(PurchaseOrder.created_at))
        .where(col(PurchaseOrder.member_id).in_(member_ids), PAID, col(PurchaseOrder.created_at) <= now)
        .order_by(col(PurchaseOrder.member_id), col(PurchaseOrder.created_at))
    )).all():
        orders[int(member_id)].append(as_utc(at))
    recent_from, before_from = today - timedelta(days=MONTH - 1), today - timedelta(days=2 * MONTH - 1)
    days = dict.fromkeys(member_ids, (0, 0))
    for member_id, recent, before in (await session.execute(
        select(col(InteractionDay.member_id), func.count().filter(col(InteractionDay.day) >= recent_from),
               func.count().filter(col(InteractionDay.day) < recent_from))
        .where(col(InteractionDay.member_id).in_(member_ids), col(InteractionDay.day) >= before_from,
               col(InteractionDay.day) <= today)
        .group_by(col(InteractionDay.member_id))
    )).all():
        days[int(member_id)] = (int(recent), int(before))
    rows = {int(m or 0): (last, stage, at) for m, last, stage, at in (await session.execute(
        select(col(Member.id), col(Member.last_interaction_at), col(Member.churn_stage), col(Member.churn_stage_at))
        .where(col(Member.id).in_(member_ids))
    )).all()}
    return {m: Rhythm(tuple(orders.get(m, ())), days[m][0], days[m][1], *rows.get(m, (None, None, None)))
            for m in member_ids}


def next_step(stage: str | None, at: datetime | None, risk: bool, now: datetime, rules: Rules) -> str | None:
    """What the job does for a member in `stage` since `at`: LEAVE (the risk passed mid-episode), the stage to
    enter now, or None (nothing: not at risk, too soon after the last step, or dormant already)."""
    if not risk:
        return LEAVE if stage is not None else None
    if stage == DORMANT:
        return None
    if stage is None:
        fresh = at is None or now - as_utc(at) >= timedelta(days=rules.winback_after_days)
        return WARN if fresh else None
    if now - as_utc(at or now) < timedelta(days=rules.winback.stage_gap_days):
        return None
    return NEXT[stage]


async def enter(session: AsyncSession, member: Member, stage: str, now: datetime, day: date, *,
                held_out: bool = False) -> bool:
    """Record the member's step into `stage` (once per member, stage and day); False when it was already
    recorded, so the caller queues nothing again."""
    key = f"winback:{member.id}:{stage}:{day.isoformat()}"
    inserted = affected(await session.execute(
        dialect_insert(session)(WinbackStep).values(key=key, member_id=member.id, stage=stage, at=now,
                                                    held_out=held_out)
        .on_conflict_do_nothing(index_elements=["key"])
    ))
    if inserted:
        member.churn_stage, member.churn_stage_at, member.churn_risk = stage, now, True
    return bool(inserted)


def leave(member: Member) -> None:
    """The risk passed (an order, the rhythm back): the episode ends; churn_stage_at keeps its last step."""
    member.churn_stage, member.churn_risk = None, False


# --- reports -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StageFigures:
    stage: str
    reached: int  # members who entered the stage in the period (held-out ones apart)
    recalled: int  # ... with an interaction day within 7 days after
    reactivated: int  # ... with a paid order within 30 days after

    @property
    def recall_rate(self) -> float | None:
        return round(self.recalled / self.reached, 4) if self.reached else None

    @property
    def reactivation_rate(self) -> float | None:
        return round(self.reactivated / self.reached, 4) if self.reached else None


async def stage_report(session: AsyncSession, since: datetime, until: datetime, tz: ZoneInfo) -> list[StageFigures]:
    """Per stage, the steps taken in [since, until): reached, recalled (a local interaction day after the
    step's local day and within the 7 after it) and reactivated (a paid order in the 30 days after the step).
    The step's local day is its instant shifted by the zone's offset at `since` (exact for a zone without
    daylight saving, as the programme's; elsewhere an hour off around a change)."""
    step = WinbackStep
    offset = int((since.astimezone(tz).utcoffset() or timedelta(0)).total_seconds())
    recalled = select(col(InteractionDay.member_id)).where(
        col(InteractionDay.member_id) == step.member_id,
        col(InteractionDay.day) > func.date(plus_seconds(session, col(step.at), offset)),
        col(InteractionDay.day) <= func.date(plus_seconds(session, col(step.at), offset + 7 * 86_400)),
    ).exists()
    reactivated = select(col(PurchaseOrder.id)).where(
        col(PurchaseOrder.member_id) == step.member_id, PAID, col(PurchaseOrder.created_at) > step.at,
        col(PurchaseOrder.created_at) <= plus_days(session, col(step.at), 30),
    ).exists()
    rows = dict((s, (int(a), int(b), int(c))) for s, a, b, c in (await session.execute(
        select(col(step.stage), func.count(), func.count().filter(recalled), func.count().filter(reactivated))
        .where(and_(col(step.at) >= since, col(step.at) < until), col(step.held_out).is_(False))
        .group_by(col(step.stage))
    )).all())
    return [StageFigures(stage, *rows.get(stage, (0, 0, 0))) for stage in STAGES]


@dataclass(frozen=True)
class StageMember:
    """One line of the operators' list."""

    id: int
    stage: str
    since: datetime | None
    tier: str
    segment: str | None  # the RFM class (member_segment), None before the member's first layering
    last_interaction_at: datetime | None


async def in_stage(
    session: AsyncSession, *, stage: str | None = None, before_id: int | None = None, limit: int = 50,
) -> list[StageMember]:
    """The operators' list: members in a win-back stage now (one stage, or any), newest id first, a keyset
    page older than `before_id` (over ix_member_churn_stage)."""
    stmt = (
        select(col(Member.id), col(Member.churn_stage), col(Member.churn_stage_at), col(Member.tier),
               col(MemberSegment.segment), col(Member.last_interaction_at))
        .outerjoin(MemberSegment, col(MemberSegment.member_id) == Member.id)
        .where(col(Member.churn_stage).is_not(None)).order_by(col(Member.id).desc()).limit(limit)
    )
    if stage is not None:
        stmt = stmt.where(col(Member.churn_stage) == stage)
    if before_id is not None:
        stmt = stmt.where(col(Member.id) < before_id)
    return [StageMember(int(member_id or 0), str(stage_now), since, tier, segment, last)
            for member_id, stage_now, since, tier, segment, last in (await session.execute(stmt)).all()]


async def stage_counts(session: AsyncSession) -> dict[str, int]:
    """How many members stand in each stage now."""
    rows = await session.execute(
        select(col(Member.churn_stage), func.count()).where(col(Member.churn_stage).is_not(None))
        .group_by(col(Member.churn_stage))
    )
    return {str(stage): int(n) for stage, n in rows.all()}
