"""An experiment's outcomes per arm, computed in SQL from what members did after their assignment, with the
statistics an operator reads them by: a 95 % Wilson interval per rate, the difference to the control, and the
sample each arm still needs to read a 5-point difference. Read-only.

Every arm, the holdout included, is measured from the member's assignment time (t0), so the holdout (sent
nothing) is compared on the same clock:
- delivered: the member's row of this experiment was sent (never, for the holdout);
- interacted: a programme-local day with an interaction (interaction_day) from t0's local day through the second
  day after it, which covers the 48 hours after t0 at the calendar's grain (an interaction earlier on t0's day
  counts in every arm alike, so differences are unbiased);
- checked in, redeemed (points spent on a reward, not a gift), ordered (a paid order net of refunds): at least once
  in (t0, t0 + 7 days];
- opted out: the member has opted out of marketing by now (everyone assigned could be marketed to at t0)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.clock import as_utc, local_date
from storage.db import plus_days
from storage.experiments import HOLDOUT, arms_of
from storage.models import (
    Checkin,
    Experiment,
    ExperimentAssignment,
    InteractionDay,
    Member,
    Outbox,
    PurchaseOrder,
    Redemption,
)
from storage.reports import PAID

OUTCOMES = ("delivered", "interacted", "checked_in", "redeemed", "ordered", "opted_out")
Z95 = 1.959964  # two-sided 95 %
Z_POWER = 0.841621  # power 0.8
DETECT = 0.05  # the difference the needed sample is sized for: 5 points


@dataclass(frozen=True)
class Rate:
    count: int
    rate: float | None
    low: float | None
    high: float | None
    diff: float | None = None  # this arm's rate minus the control's, in share points (0.05 = 5 points)


@dataclass
class ArmReport:
    name: str
    assigned: int = 0
    rates: dict[str, Rate] = field(default_factory=dict)
    needed: int | None = None  # members this arm still needs to read a 5-point difference on `interacted`


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of successes/n: (centre ± half) with centre = (p + z²/2n)/(1 + z²/n) and
    half = z/(1 + z²/n) · sqrt(p(1 - p)/n + z²/4n²). None for n = 0."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def sample_needed(control_rate: float, delta: float = DETECT) -> int:
    """Members per arm to tell `control_rate` from control_rate + delta (or - delta near 1) with a two-sided
    test at 5 % and power 80 %: n = (z_a·sqrt(2·p̄(1 - p̄)) + z_b·sqrt(p1(1 - p1) + p2(1 - p2)))² / delta², p̄ the
    mean of p1 and p2, rounded up."""
    p1 = min(max(control_rate, 0.0), 1.0)
    p2 = p1 + delta if p1 + delta <= 1 else p1 - delta
    mean = (p1 + p2) / 2
    root = Z95 * math.sqrt(2 * mean * (1 - mean)) + Z_POWER * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root * root / (delta * delta))


def _rate(count: int, n: int) -> Rate:
    bounds = wilson(count, n)
    return Rate(count, count / n if n else None, bounds[0] if bounds else None, bounds[1] if bounds else None)


def _within_7d(session: AsyncSession, model: Any, *extra: Any) -> Any:
    at = col(ExperimentAssignment.assigned_at)
    return select(col(model.id)).where(
        col(model.member_id) == ExperimentAssignment.member_id,
        col(model.created_at) > at, col(model.created_at) <= plus_days(session, at, 7), *extra,
    ).exists()


async def _counts(
    session: AsyncSession, experiment_id: int, first: datetime, end: datetime, day: date,
) -> dict[str, list[int]]:
    """Per arm, for the assignments made in [first, end) (one local day, `day`): assigned and each outcome."""
    a = ExperimentAssignment
    delivered = select(col(Outbox.id)).where(
        col(Outbox.experiment_id) == experiment_id, col(Outbox.member_id) == a.member_id, col(Outbox.status) == "sent",
    ).exists()
    interacted = select(col(InteractionDay.member_id)).where(
        col(InteractionDay.member_id) == a.member_id, col(InteractionDay.day) >= day,
        col(InteractionDay.day) <= day + timedelta(days=2),
    ).exists()
    conditions: list[Any] = [
        delivered, interacted, _within_7d(session, Checkin),
        _within_7d(session, Redemption, col(Redemption.granted).is_(None)), _within_7d(session, PurchaseOrder, PAID),
        col(Member.marketing_opt_out).is_(True),
    ]
    rows = await session.execute(
        select(col(a.arm), func.count(), *(func.count().filter(c) for c in conditions))
        .select_from(a).join(Member, and_(col(Member.id) == a.member_id))
        .where(col(a.experiment_id) == experiment_id, col(a.assigned_at) >= first, col(a.assigned_at) < end)
        .group_by(col(a.arm))
    )
    return {str(arm): [int(v) for v in values] for arm, *values in rows.all()}


async def _days(session: AsyncSession, experiment_id: int, tz: ZoneInfo) -> list[date]:
    """The local days assignments were made on (a job's or a broadcast's runs: few)."""
    stamps = await session.scalars(
        select(col(ExperimentAssignment.assigned_at)).distinct()
        .where(col(ExperimentAssignment.experiment_id) == experiment_id)
    )
    return sorted({local_date(as_utc(s), tz) for s in stamps if s is not None})


async def report(session: AsyncSession, experiment: Experiment, tz: ZoneInfo) -> list[ArmReport]:
    """One ArmReport per arm, the control first and the holdout (when it has members or a share) last."""
    experiment_id = int(experiment.id or 0)
    names = [arm["name"] for arm in arms_of(experiment)] + ([HOLDOUT] if experiment.holdout else [])
    totals = {name: [0] * (1 + len(OUTCOMES)) for name in names}
    for day in await _days(session, experiment_id, tz):
        start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
        counts = await _counts(session, experiment_id, start, start + timedelta(days=1), day)
        for name, values in counts.items():
            into = totals.setdefault(name, [0] * len(values))
            totals[name] = [x + y for x, y in zip(into, values, strict=True)]
    arms = [_arm(name, values) for name, values in totals.items()]
    _compare(arms)
    return arms


def _arm(name: str, values: Sequence[int]) -> ArmReport:
    n = values[0]
    return ArmReport(name, n, {outcome: _rate(values[1 + i], n) for i, outcome in enumerate(OUTCOMES)})


def _compare(arms: list[ArmReport]) -> None:
    """Each arm's difference to the control (the first arm), and what it still needs to read 5 points on
    `interacted` at the control's rate."""
    if not arms:
        return
    control = arms[0]
    base = control.rates["interacted"].rate
    needed = sample_needed(base) if base is not None else None
    for arm in arms:
        for outcome, rate in arm.rates.items():
            reference = control.rates[outcome].rate
            if arm is not control and rate.rate is not None and reference is not None:
                arm.rates[outcome] = Rate(rate.count, rate.rate, rate.low, rate.high, rate.rate - reference)
        arm.needed = None if needed is None else max(0, needed - arm.assigned)
