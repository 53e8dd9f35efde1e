"""The experiments screen: the list, the start form (each bad field comes back on the form, nothing saved),
stop (audited by storage/experiments.py), and one experiment's report per arm. Thin over storage/experiments.py
and storage/experimentreport.py, as the JSON API is."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.api.validation import PathId
from bot.console import texts
from bot.console.auth import ConsoleError, ConsoleSession, needs, needs_checked
from bot.console.forms import local_time
from bot.console.pages import render
from storage import experimentreport, experiments
from storage.errors import InvalidFieldError, NotFoundError
from storage.models import Experiment

router = APIRouter(prefix="/admin/experiments")
Reader = Annotated[ConsoleSession, Depends(needs("experiments.read"))]
Writer = Annotated[ConsoleSession, Depends(needs_checked("experiments.write"))]
FORM_ARMS = 3  # rows on the form; the storage allows up to experiments.MAX_ARMS through the API
ARM_FIELDS = ("name", "weight", "text", "hour", "points")
_ARM_ERROR = re.compile(r"arms\[(\d+)\](?:\.(name|weight)|\.params(?:\.(text|hour|points|\w+))?)?$")


@router.get("", response_class=HTMLResponse)
async def list_experiments(request: Request, console: Reader, done: str = "") -> HTMLResponse:
    return await _page(request, console, flash=texts.EXPERIMENT_DONE.get(done))


def _whole(raw: str) -> int | str:
    """A whole number as typed, or the text itself for the storage to refuse with the field named."""
    raw = raw.strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else raw


def _arms(values: dict[str, str]) -> list[dict[str, Any]]:
    """The filled arm rows, in order; an empty row is left out."""
    arms = []
    for i in range(FORM_ARMS):
        row = {key: values.get(f"arm_{key}_{i}", "").strip() for key in ARM_FIELDS}
        if not any(row.values()):
            continue
        params = {key: (row[key] if key == "text" else _whole(row[key])) for key in ("text", "hour", "points")
                  if row[key]}
        arms.append({"name": row["name"], "weight": _whole(row["weight"]), "params": params})
    return arms


def _form_key(field: str, arm_rows: list[int]) -> tuple[str, str]:
    """The form field and the message for a storage refusal's field (`arms[1].params.hour` -> arm_hour_<row>)."""
    found = _ARM_ERROR.match(field)
    if found is None:
        key = field if field in texts.EXPERIMENT_ERRORS else "arms"
        return key, texts.EXPERIMENT_ERRORS[key]
    row = arm_rows[int(found.group(1))] if int(found.group(1)) < len(arm_rows) else 0
    part = found.group(2) or found.group(3)
    if part in ("name", "weight", "text", "hour", "points"):
        return f"arm_{part}_{row}", texts.EXPERIMENT_ERRORS[f"arm_{part}"]
    return f"arm_name_{row}", texts.EXPERIMENT_ERRORS["arm_params"]


@router.post("", response_model=None)
async def create(request: Request, console: Writer) -> Response:
    form = await request.form()
    values = {key: str(value)[:400] for key, value in form.items() if key != "csrf"}
    arms = _arms(values)
    rows = [i for i in range(FORM_ARMS) if any(values.get(f"arm_{k}_{i}", "").strip() for k in ARM_FIELDS)]
    services = console.services
    try:
        async with services.db.unit_of_work() as session:
            await experiments.create(
                session, name=values.get("name", ""), target=values.get("target", ""), arms=arms,
                holdout=_whole(values.get("holdout", "") or "0"),  # type: ignore[arg-type]  # refused if text
                request_id=values.get("request_id", ""), actor=console.actor, now=services.clock.now(),
            )
    except InvalidFieldError as exc:
        key, message = _form_key(exc.field, rows)
        return await _page(request, console, values=values, errors={key: message}, status=422)
    return RedirectResponse("/admin/experiments?done=created", status_code=303)


@router.post("/{experiment_id}/stop", response_model=None)
async def stop(console: Writer, experiment_id: PathId) -> Response:
    services = console.services
    try:
        async with services.db.unit_of_work() as session:
            await experiments.stop(session, experiment_id, actor=console.actor, now=services.clock.now())
    except NotFoundError:
        raise ConsoleError(404, texts.NOT_FOUND) from None
    return RedirectResponse("/admin/experiments?done=stopped", status_code=303)


@router.get("/{experiment_id}", response_class=HTMLResponse)
async def report(request: Request, console: Reader, experiment_id: PathId) -> HTMLResponse:
    async with console.services.db.sessions() as session:
        experiment = await session.get(Experiment, experiment_id)
        if experiment is None:
            raise ConsoleError(404, texts.NOT_FOUND)
        arms = await experimentreport.report(session, experiment, console.services.tz)
    return render(request, "experiment.html", console, active="experiments", experiment=experiment, arms=arms,
                  outcomes=experimentreport.OUTCOMES,
                  local=local_time(console.services.tz))


async def _page(
    request: Request, console: ConsoleSession, *, flash: str | None = None, values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None, status: int = 200,
) -> HTMLResponse:
    async with console.services.db.sessions() as session:
        found = [(e, experiments.arms_of(e)) for e in await experiments.newest(session)]
    defaults = {"target": "birthday", "holdout": "10", "arm_name_0": "control", "arm_weight_0": "50",
                "arm_name_1": "B", "arm_weight_1": "50"}
    return render(request, "experiments.html", console, status=status, active="experiments", found=found,
                  flash=flash, values=values or defaults, errors=errors or {}, rows=range(FORM_ARMS),
                  local=local_time(console.services.tz))
