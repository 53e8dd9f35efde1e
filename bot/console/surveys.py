"""The satisfaction surveys screen (under the service area, rights like the tickets screen): the surveys with
their figures and NPS/CSAT by touchpoint, the create form (each bad field comes back on the form, nothing
saved), pause and resume (audited by storage/surveys.py), and one survey's report (by reward, by campaign,
its asks by state). Thin over storage/surveys.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.api.validation import PathId
from bot.console import texts
from bot.console.auth import ConsoleError, ConsoleSession, needs, needs_checked
from bot.console.forms import local_time
from bot.console.pages import render
from handlers.texts import SURVEY_NPS_QUESTION
from storage import surveys
from storage.errors import NotFoundError

router = APIRouter(prefix="/admin/surveys")
Reader = Annotated[ConsoleSession, Depends(needs("surveys.read"))]
Writer = Annotated[ConsoleSession, Depends(needs_checked("surveys.write"))]
Field = Annotated[str, Form(max_length=400)]


@router.get("", response_class=HTMLResponse)
async def list_surveys(request: Request, console: Reader, done: str = "") -> HTMLResponse:
    return await _page(request, console, flash=texts.SURVEY_DONE.get(done))


def _number(raw: str, low: int, high: int) -> int | None:
    raw = raw.strip() or "0"
    return int(raw) if raw.isascii() and raw.isdigit() and low <= int(raw) <= high else None


def _check(values: dict[str, str]) -> tuple[surveys.Draft | None, dict[str, str]]:
    """The form's values as a draft, or each bad field's message."""
    errors: dict[str, str] = {}
    name, kind, touchpoint = values["name"], values["kind"], values["touchpoint"]
    if not name or len(name) > 40:
        errors["name"] = texts.SURVEY_NAME_INVALID
    if kind not in surveys.KINDS:
        errors["kind"] = texts.SURVEY_KIND_INVALID
    question = SURVEY_NPS_QUESTION if kind == surveys.NPS else values["question"]
    if kind == surveys.CSAT and (not question or len(question) > 200):
        errors["question"] = texts.SURVEY_QUESTION_INVALID
    if len(values["followup"]) > 200:
        errors["followup"] = texts.SURVEY_FOLLOWUP_INVALID
    if touchpoint not in surveys.TOUCHPOINTS:
        errors["touchpoint"] = texts.SURVEY_TOUCHPOINT_INVALID
    share = _number(values["sample_percent"], 1, 100) if touchpoint == "sample" else 0
    if share is None:
        errors["sample_percent"] = texts.SURVEY_SAMPLE_INVALID
    thanks = _number(values["thanks_points"], 0, surveys.MAX_THANKS)
    if thanks is None:
        errors["thanks_points"] = texts.SURVEY_THANKS_INVALID.format(high=surveys.MAX_THANKS)
    if errors:
        return None, errors
    return surveys.Draft(name=name, kind=kind, question=question, followup=values["followup"] or None,
                         touchpoint=touchpoint, sample_percent=share or 0, thanks_points=thanks or 0), {}


@router.post("", response_model=None)
async def create(
    request: Request, console: Writer, name: Field = "", kind: Field = "", question: Field = "",
    followup: Field = "", touchpoint: Field = "", sample_percent: Field = "", thanks_points: Field = "",
) -> Response:
    values = {"name": name.strip(), "kind": kind.strip(), "question": question.strip(),
              "followup": followup.strip(), "touchpoint": touchpoint.strip(),
              "sample_percent": sample_percent.strip(), "thanks_points": thanks_points.strip()}
    draft, errors = _check(values)
    if draft is None:
        return await _page(request, console, values=values, errors=errors, status=422)
    services = console.services
    async with services.db.unit_of_work() as session:
        await surveys.create(session, console.actor, draft, services.clock.now(), client=console.client)
    return RedirectResponse("/admin/surveys?done=created", status_code=303)


@router.post("/{survey_id}/status", response_model=None)
async def set_status(console: Writer, survey_id: PathId, status: Field = "") -> Response:
    if status not in (surveys.ACTIVE, surveys.PAUSED):
        raise ConsoleError(400, texts.BAD_REQUEST.format(detail=texts.SURVEY_FIELDS["status"]))
    services = console.services
    try:
        async with services.db.unit_of_work() as session:
            await surveys.set_status(session, console.actor, survey_id, status, services.clock.now(),
                                     client=console.client)
    except NotFoundError:
        raise ConsoleError(404, texts.NOT_FOUND) from None
    return RedirectResponse(f"/admin/surveys?done={'paused' if status == surveys.PAUSED else 'resumed'}", 303)


@router.get("/{survey_id}", response_class=HTMLResponse)
async def report(request: Request, console: Reader, survey_id: PathId) -> HTMLResponse:
    try:
        async with console.services.db.sessions() as session:
            found = await surveys.report(session, survey_id)
    except NotFoundError:
        raise ConsoleError(404, texts.NOT_FOUND) from None
    return render(request, "survey.html", console, active="surveys", report=found,
                  local=local_time(console.services.tz))


async def _page(
    request: Request, console: ConsoleSession, *, flash: str | None = None, values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None, status: int = 200,
) -> HTMLResponse:
    async with console.services.db.sessions() as session:
        found = await surveys.summary(session)
    return render(request, "surveys.html", console, status=status, active="surveys", summary=found, flash=flash,
                  values=values or {"kind": surveys.NPS, "touchpoint": "order"}, errors=errors or {},
                  nps_question=SURVEY_NPS_QUESTION, local=local_time(console.services.tz))
