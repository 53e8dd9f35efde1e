"""The rewards screens: the catalogue, the create and edit forms (validated by the admin API's own
models, bot/api/reward_input.py), deactivation, and the code-pool CSV import with its per-row report.
Every write goes through the rewards service's tables in one transaction with its audit entry."""

from __future__ import annotations

import csv
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlmodel import col

from bot.api.reward_input import (
    FIELDS,
    CodeFile,
    RewardIn,
    add_reward,
    change_reward,
    form_values,
    import_code_file,
    read_code_file,
)
from bot.api.validation import PathId
from bot.console import texts
from bot.console.auth import ConsoleError, ConsoleSession, needs, needs_checked
from bot.console.forms import field_errors, local_time
from bot.console.pages import render
from storage.errors import ConflictError, NotFoundError
from storage.models import Reward, RewardCode

router = APIRouter(prefix="/admin/rewards")
Reader = Annotated[ConsoleSession, Depends(needs("rewards.read"))]
Writer = Annotated[ConsoleSession, Depends(needs("rewards.write"))]
Posting = Annotated[ConsoleSession, Depends(needs_checked("rewards.write"))]
CODES_MAX_BYTES = 5 * 1024 * 1024


@router.get("", response_class=HTMLResponse)
async def list_rewards(request: Request, console: Reader, done: str = "") -> HTMLResponse:
    async with console.services.db.sessions() as session:
        rewards = await console.services.rewards.all(session)
    return render(request, "rewards.html", console, active="rewards", rewards=rewards,
                  flash=texts.REWARD_DONE.get(done), local=local_time(console.services.tz))


@router.get("/new", response_class=HTMLResponse)
async def new_reward(request: Request, console: Writer) -> HTMLResponse:
    return _form(request, console, None, {"kind": "coupon", "validity_days": "30", "active": "1"}, {})


@router.post("", response_class=HTMLResponse, response_model=None)
async def create_reward(request: Request, console: Posting) -> Response:
    typed = await _typed(request)
    try:
        checked = _validate(console, typed)
    except ValidationError as exc:
        return _form(request, console, None, typed, field_errors(exc, whole="ends_at"), status=422)
    claim = await _claim(request, console)
    if claim is False:  # this form was submitted before: the reward exists once
        return RedirectResponse("/admin/rewards?done=created", 303)
    try:
        async with console.services.db.unit_of_work() as session:
            await add_reward(session, checked.model_dump(), console.actor, console.services.clock.now(),
                                console.client)
    except BaseException:
        if isinstance(claim, str):
            await console.services.kv.delete(claim)  # nothing was created: the same form may try again
        raise
    return RedirectResponse("/admin/rewards?done=created", 303)


async def _claim(request: Request, console: ConsoleSession) -> str | Literal[False] | None:
    """The form's request id as its idempotency key (kept a day): the key when this is its first
    submission, False when it was submitted before, None when the form carries no usable id."""
    given = (await request.form()).get("request_id")
    if not isinstance(given, str) or not 8 <= len(given) <= 64:
        return None
    key = f"wxbot:console:form:reward.create:{given}"
    return key if await console.services.kv.set(key, str(console.operator.id), ex=86400, nx=True) else False


@router.get("/{reward_id}/edit", response_class=HTMLResponse)
async def edit_form(request: Request, reward_id: PathId, console: Writer) -> HTMLResponse:
    reward = await _reward(console, reward_id)
    local = local_time(console.services.tz)
    typed = {key: _shown(getattr(reward, key), local) for key in FIELDS}
    return _form(request, console, reward, typed, {})


@router.post("/{reward_id}", response_class=HTMLResponse, response_model=None)
async def save_reward(request: Request, reward_id: PathId, console: Posting) -> Response:
    reward = await _reward(console, reward_id)
    typed = {**await _typed(request), "kind": reward.kind}  # the kind of a reward never changes
    try:
        checked = _validate(console, typed)
    except ValidationError as exc:
        return _form(request, console, reward, typed, field_errors(exc, whole="ends_at"), status=422)
    async with console.services.db.unit_of_work() as session:
        stored = await console.services.rewards.get(session, reward_id)
        await change_reward(session, stored, checked.model_dump(exclude={"kind"}), "reward.edit", console.actor,
                            console.services.clock.now(), console.client)
    return RedirectResponse("/admin/rewards?done=saved", 303)


@router.post("/{reward_id}/deactivate", response_model=None)
async def deactivate(reward_id: PathId, console: Posting) -> Response:
    async with console.services.db.unit_of_work() as session:
        reward = await _get(session, console, reward_id)
        await change_reward(session, reward, {"active": False}, "reward.deactivate", console.actor,
                            console.services.clock.now(), console.client)
    return RedirectResponse("/admin/rewards?done=deactivated", 303)


@router.get("/{reward_id}/codes", response_class=HTMLResponse)
async def codes_page(request: Request, reward_id: PathId, console: Writer) -> HTMLResponse:
    reward = await _reward(console, reward_id)
    return await _codes(request, console, reward, None)


@router.post("/{reward_id}/codes", response_class=HTMLResponse)
async def import_codes(request: Request, reward_id: PathId, console: Posting) -> HTMLResponse:
    """The valid rows are added; the page lists every refused row with its line and reason."""
    reward = await _reward(console, reward_id)
    if reward.kind != "code_pool":
        return await _codes(request, console, reward, None, status=409)
    found = await _uploaded(request)
    if found is None:
        return await _codes(request, console, reward, None, status=422, error=texts.CODES_BAD_FILE)
    if not found.codes:
        return await _codes(request, console, reward, found, status=422, error=texts.CODES_NONE_VALID)
    try:
        async with console.services.db.unit_of_work() as session:
            result = await import_code_file(session, console.services.rewards, reward_id, found, console.actor,
                                            console.services.clock.now(), console.client)
    except ConflictError:
        return await _codes(request, console, reward, None, status=409)
    return await _codes(request, console, reward, result)


# --- helpers ---------------------------------------------------------------------------------------------

async def _typed(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key in (*FIELDS, "kind") if isinstance(value := form.get(key), str)}


def _validate(console: ConsoleSession, typed: dict[str, str]) -> RewardIn:
    values = form_values(typed, console.services.tz)
    tiers = [t.name for t in console.services.rules.tiers]
    return RewardIn.model_validate(values, context={"tiers": tiers})


def _form(request: Request, console: ConsoleSession, reward: Reward | None, typed: dict[str, str],
          errors: dict[str, str], *, status: int = 200) -> HTMLResponse:
    return render(request, "reward_form.html", console, status=status, active="rewards", reward=reward,
                  values=typed, errors=errors, tiers=[t.name for t in console.services.rules.tiers])


async def _codes(request: Request, console: ConsoleSession, reward: Reward, result: CodeFile | None, *,
                 status: int = 200, error: str | None = None) -> HTMLResponse:
    async with console.services.db.sessions() as session:
        available = await session.scalar(
            select(func.count()).select_from(RewardCode).where(col(RewardCode.reward_id) == reward.id)
            .where(col(RewardCode.status) == "available")
        )
    return render(request, "reward_codes.html", console, status=status, active="rewards", reward=reward,
                  result=result, error=error, available=int(available or 0))


async def _uploaded(request: Request) -> CodeFile | None:
    """The uploaded CSV read row by row; None when there is no file or it is not readable UTF-8 CSV."""
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        return None
    raw = await upload.read(CODES_MAX_BYTES + 1)
    if len(raw) > CODES_MAX_BYTES:
        return None
    try:
        return read_code_file(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, csv.Error):
        return None


async def _reward(console: ConsoleSession, reward_id: int) -> Reward:
    async with console.services.db.sessions() as session:
        return await _get(session, console, reward_id)


async def _get(session: Any, console: ConsoleSession, reward_id: int) -> Reward:
    try:
        return await console.services.rewards.get(session, reward_id)
    except NotFoundError:
        raise ConsoleError(404, texts.NOT_FOUND) from None



def _shown(value: Any, local: Any) -> str:
    """A stored value as the form shows it."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, datetime):
        return str(local(value)).replace(" ", "T")
    return "" if value is None else str(value)
