"""A/B experiments over a broadcast or a push kind: the stable draw of a member's arm and its stored assignment.

The draw is a hash of (experiment, member): the same member gets the same arm on every run and in every process,
and the first draw is stored (experiment_assignment), so a later change of weights moves nobody. A `holdout`
member is sent nothing and still measured. An arm never adds a push: a job or a broadcast queues at most the one
row it would have queued without the experiment, carrying the arm (outbox.experiment_id and variant)."""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import audit
from storage.audit import Actor
from storage.db import dialect_insert
from storage.errors import InvalidFieldError, NotFoundError
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


# --- creating and stopping -------------------------------------------------------------------------------
# What an arm may change, per target: a push kind's overrides, or a broadcast's content. A target outside this
# table has no experiment hook, so it is refused rather than silently measured with nothing varied.
TARGET_PARAMS: dict[str, frozenset[str]] = {
    "birthday": frozenset({"text", "hour"}),
    "winback": frozenset({"points"}),
    "broadcast": frozenset({"text", "title", "description", "picurl", "url"}),
}
NAME_MAX, ARM_NAME_MAX, MAX_ARMS, MAX_HOLDOUT, REQUEST_ID_MAX = 60, 16, 5, 50, 64
TEXT_MAX = 300
SEND_HOURS = range(9, 21)  # inside the push policy's day: an arm never asks for quiet hours
OFFER_POINTS = range(1, 1001)
_GREETING_FIELDS = frozenset({"points", "balance", "brand"})


def _fills_only_greeting_fields(text: str) -> bool:
    """Only plain {points}, {balance}, {brand}: no other name, no format spec (a width could ask the
    renderer for a huge string), no conversion; braces balanced."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        return False
    return all(name is None or (name in _GREETING_FIELDS and not spec and conversion is None)
               for _, name, spec, conversion in parts)


def _checked_params(target: str, index: int, params: Any) -> dict[str, Any]:
    field_name = f"arms[{index}].params"
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise InvalidFieldError(field_name, "must be an object")
    if unknown := sorted(set(params) - TARGET_PARAMS[target]):
        raise InvalidFieldError(field_name, f"{target} arms may not set {', '.join(unknown)}")
    for key, value in params.items():
        if key == "hour":
            if not isinstance(value, int) or isinstance(value, bool) or value not in SEND_HOURS:
                raise InvalidFieldError(f"{field_name}.hour", "a local hour from 9 to 20")
        elif key == "points":
            if not isinstance(value, int) or isinstance(value, bool) or value not in OFFER_POINTS:
                raise InvalidFieldError(f"{field_name}.points", "whole points from 1 to 1000")
        elif not isinstance(value, str) or not value.strip() or len(value) > TEXT_MAX:
            raise InvalidFieldError(f"{field_name}.{key}", f"1 to {TEXT_MAX} characters")
        elif key == "url" and not value.startswith(("http://", "https://")):
            raise InvalidFieldError(f"{field_name}.url", "must start with http:// or https://")
        elif key == "text" and target == "birthday" and not _fills_only_greeting_fields(value):
            raise InvalidFieldError(f"{field_name}.text", "only {points}, {balance} and {brand} may be filled in")
    return {k: v.strip() if isinstance(v, str) else v for k, v in params.items()}


def checked_arms(target: str, arms: Any) -> list[dict[str, Any]]:
    """The arms as stored ([{name, weight, params}], the control first), or InvalidFieldError naming the field:
    2 to 5 arms with distinct names (not `holdout`), whole weights > 0 that sum to 100, params the target allows."""
    if not isinstance(arms, list) or not 2 <= len(arms) <= MAX_ARMS:
        raise InvalidFieldError("arms", f"2 to {MAX_ARMS} arms, the first is the control")
    out: list[dict[str, Any]] = []
    for i, arm in enumerate(arms):
        if not isinstance(arm, dict):
            raise InvalidFieldError(f"arms[{i}]", "must be an object with name, weight and params")
        name = str(arm.get("name") or "").strip()
        if not 1 <= len(name) <= ARM_NAME_MAX or name == HOLDOUT:
            raise InvalidFieldError(f"arms[{i}].name", f"1 to {ARM_NAME_MAX} characters, not {HOLDOUT!r}")
        if name in {a["name"] for a in out}:
            raise InvalidFieldError(f"arms[{i}].name", f"{name!r} is used twice")
        weight = arm.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool) or weight <= 0:
            raise InvalidFieldError(f"arms[{i}].weight", "a whole number above 0")
        out.append({"name": name, "weight": weight, "params": _checked_params(target, i, arm.get("params"))})
    if (total := sum(a["weight"] for a in out)) != 100:
        raise InvalidFieldError("arms", f"the weights must sum to 100, they sum to {total}")
    return out


async def create(
    session: AsyncSession, *, name: str, target: str, arms: Any, holdout: int, request_id: str, actor: Actor,
    now: datetime,
) -> tuple[Experiment, bool]:
    """Start an experiment (audited `experiment.create`); (experiment, repeated): a request id seen before
    answers the first experiment. A push kind has at most one running experiment (members get one arm)."""
    request_id = request_id.strip()
    if not 1 <= len(request_id) <= REQUEST_ID_MAX:
        raise InvalidFieldError("request_id", f"1 to {REQUEST_ID_MAX} characters")
    first = await session.scalar(select(Experiment).where(col(Experiment.request_id) == request_id))
    if first is not None:
        return first, True
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidFieldError("name", f"1 to {NAME_MAX} characters")
    if target not in TARGET_PARAMS:
        raise InvalidFieldError("target", f"one of {', '.join(TARGET_PARAMS)}")
    stored_arms = checked_arms(target, arms)
    if isinstance(holdout, bool) or not isinstance(holdout, int) or not 0 <= holdout <= MAX_HOLDOUT:
        raise InvalidFieldError("holdout", f"a whole percent from 0 to {MAX_HOLDOUT}")
    if target != "broadcast" and (running := await running_for(session, target)) is not None:
        raise InvalidFieldError("target", f"experiment {running.id} ({running.name}) already runs over {target}")
    experiment = Experiment(request_id=request_id, name=name, target=target, holdout=holdout, created_by=actor.name,
                            created_at=now, arms=json.dumps(stored_arms, ensure_ascii=False))
    session.add(experiment)
    await session.flush()
    await audit.record(session, actor, "experiment.create", f"experiment:{experiment.id}", now=now,
                       after={"name": name, "target": target, "holdout": holdout, "arms": stored_arms})
    return experiment, False


async def stop(session: AsyncSession, experiment_id: int, *, actor: Actor, now: datetime) -> Experiment:
    """Stop a running experiment (audited `experiment.stop`): no new member is drawn; the assignments and
    the report stay. Stopping a stopped one changes nothing and answers it."""
    experiment = await session.get(Experiment, experiment_id)
    if experiment is None:
        raise NotFoundError(f"experiment {experiment_id}")
    if experiment.status == RUNNING:
        experiment.status, experiment.stopped_at = STOPPED, now
        await audit.record(session, actor, "experiment.stop", f"experiment:{experiment_id}", now=now,
                           before={"status": RUNNING}, after={"status": STOPPED})
    return experiment


async def newest(session: AsyncSession, limit: int = 200) -> list[Experiment]:
    """The newest experiments first (the console's and the API's list)."""
    return list((await session.scalars(select(Experiment).order_by(col(Experiment.id).desc()).limit(limit))).all())
