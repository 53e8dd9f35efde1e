"""A/B experiments over a broadcast or a push kind: the stable draw of a member's arm and its stored assignment.

The draw is a hash of (experiment, member): the same member gets the same arm on every run and in every process,
and the first draw is stored (experiment_assignment), so a later change of weights moves nobody. A `holdout`
member is sent nothing and still measured. An arm never adds a push: a job or a broadcast queues at most the one
row it would have queued without the experiment, carrying the arm (outbox.experiment_id and variant)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.db import dialect_insert
from storage.models import Experiment, ExperimentAssignment

HOLDOUT = "holdout"
RUNNING, STOPPED = "running", "stopped"


@dataclass(frozen=True)
class Arm:
    """What a member of a running experiment gets: the arm's name and its params (a push kind's overrides,
    a broadcast's content), or `holdout`: nothing."""

    experiment_id: int
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def holdout(self) -> bool:
        return self.name == HOLDOUT


def arms_of(experiment: Experiment) -> list[dict[str, Any]]:
    """The arms as stored: [{name, weight, params}], the control first."""
    return list(json.loads(experiment.arms))


def _unit(experiment_id: int, member_id: int) -> float:
    digest = hashlib.sha256(f"experiment:{experiment_id}:member:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def draw(experiment_id: int, member_id: int, weights: list[tuple[str, int]], holdout: int) -> str:
    """The arm a member falls in: the first `holdout` percent of the hash's range is the holdout, the rest
    is shared among the arms by weight, in their order. Pure and stable."""
    unit = _unit(experiment_id, member_id)
    share = holdout / 100
    if unit < share:
        return HOLDOUT
    total = sum(weight for _, weight in weights)
    point = (unit - share) / (1 - share) * total
    for name, weight in weights:
        if point < weight:
            return name
        point -= weight
    return weights[-1][0]


async def running_for(session: AsyncSession, target: str) -> Experiment | None:
    """The running experiment over a push kind (or over broadcasts, by `broadcast:<id>`), if any."""
    return await session.scalar(
        select(Experiment).where(col(Experiment.target) == target).where(col(Experiment.status) == RUNNING)
        .order_by(col(Experiment.id)).limit(1)
    )


async def assign(session: AsyncSession, experiment: Experiment, member_id: int, now: datetime) -> Arm:
    """The member's arm: the stored one, or a fresh draw stored now (a racing second draw is the same)."""
    experiment_id = int(experiment.id or 0)
    arms = arms_of(experiment)
    stored = await session.scalar(
        select(col(ExperimentAssignment.arm)).where(col(ExperimentAssignment.experiment_id) == experiment_id)
        .where(col(ExperimentAssignment.member_id) == member_id)
    )
    if stored is None:
        stored = draw(experiment_id, member_id, [(a["name"], int(a["weight"])) for a in arms], experiment.holdout)
        await session.execute(
            dialect_insert(session)(ExperimentAssignment).values(
                experiment_id=experiment_id, member_id=member_id, arm=stored, assigned_at=now,
            ).on_conflict_do_nothing(index_elements=["experiment_id", "member_id"])
        )
    params = next((dict(a.get("params") or {}) for a in arms if a["name"] == stored), {})
    return Arm(experiment_id, str(stored), params)


async def arm_for(session: AsyncSession, target: str, member_id: int, now: datetime) -> Arm | None:
    """The member's arm in the running experiment over `target` (a push kind), or None when there is none:
    the caller then queues what it always does."""
    experiment = await running_for(session, target)
    return None if experiment is None else await assign(session, experiment, member_id, now)
