"""The experiments API (bearer ADMIN_TOKEN): start an A/B experiment over a push kind or a broadcast, list
them, read one with its report per arm (storage/experimentreport.py), stop one. Writes are audited as the token."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from bot.api.deps import AdminDep
from bot.api.errors import ApiError, invalid
from bot.api.validation import PathId, Text
from storage import audit, experimentreport, experiments
from storage.errors import InvalidFieldError, NotFoundError
from storage.models import Experiment

router = APIRouter(prefix="/api/admin/experiments", tags=["admin"])


class ArmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[Text, Field(max_length=experiments.ARM_NAME_MAX)]
    weight: StrictInt
    params: dict[str, Any] | None = None


class ExperimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "回归礼大小", "target": "winback", "holdout": 10, "request_id": "exp-2026-12-winback",
        "arms": [{"name": "control", "weight": 50}, {"name": "double", "weight": 50, "params": {"points": 100}}],
    }]})

    name: Annotated[Text, Field(max_length=experiments.NAME_MAX)]
    target: Annotated[Text, Field(max_length=32, description="birthday, winback or broadcast")]
    arms: list[ArmIn] = Field(max_length=experiments.MAX_ARMS, description="the first arm is the control")
    holdout: StrictInt = Field(0, description="percent of members sent nothing and still measured, 0 to 50")
    request_id: Annotated[Text, Field(min_length=1, max_length=experiments.REQUEST_ID_MAX)]


def _out(experiment: Experiment) -> dict[str, Any]:
    return {
        "id": experiment.id, "name": experiment.name, "target": experiment.target, "status": experiment.status,
        "holdout": experiment.holdout, "arms": experiments.arms_of(experiment), "created_by": experiment.created_by,
        "created_at": experiment.created_at.isoformat(),
        "stopped_at": experiment.stopped_at.isoformat() if experiment.stopped_at else None,
    }


@router.post("", status_code=201, summary="Start an experiment (a repeated request_id answers the first, 200)")
async def create(body: ExperimentIn, response: Response, services: AdminDep) -> dict[str, Any]:
    try:
        async with services.db.unit_of_work() as session:
            experiment, repeated = await experiments.create(
                session, name=body.name, target=body.target, holdout=body.holdout, request_id=body.request_id,
                arms=[arm.model_dump(exclude_none=True) for arm in body.arms], actor=audit.TOKEN,
                now=services.clock.now(),
            )
            out = _out(experiment)
    except InvalidFieldError as exc:
        raise invalid(exc) from None
    if repeated:
        response.status_code = 200
    return out


@router.get("", summary="Every experiment, newest first")
async def listing(services: AdminDep) -> dict[str, Any]:
    async with services.db.sessions() as session:
        found = await experiments.newest(session)
    return {"experiments": [_out(e) for e in found]}


@router.get("/{experiment_id}", summary="One experiment and its report per arm")
async def one(experiment_id: PathId, services: AdminDep) -> dict[str, Any]:
    async with services.db.sessions() as session:
        experiment = await session.get(Experiment, experiment_id)
        if experiment is None:
            raise ApiError(404, "not_found", f"experiment {experiment_id} does not exist")
        arms = await experimentreport.report(session, experiment, services.tz)
    return _out(experiment) | {"report": [dataclasses.asdict(arm) for arm in arms],
                               "needed_for_points": round(experimentreport.DETECT * 100)}


@router.post("/{experiment_id}/stop", summary="Stop drawing members; the assignments and the report stay")
async def stop(experiment_id: PathId, services: AdminDep) -> dict[str, Any]:
    try:
        async with services.db.unit_of_work() as session:
            experiment = await experiments.stop(session, experiment_id, actor=audit.TOKEN, now=services.clock.now())
            return _out(experiment)
    except NotFoundError:
        raise ApiError(404, "not_found", f"experiment {experiment_id} does not exist") from None
