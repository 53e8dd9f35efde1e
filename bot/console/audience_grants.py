"""The 人群赠券 screen: a coupon to every member of an audience (storage/grants.give_audience: one per member
and request id, never oversold, audited coupon.grant_audience). 预览 shows the audience's size and the
reward's remaining stock, nothing granted; 确认赠送 grants and says how many. Every refusal comes back on
the form beside its field. The same audience picker as 群发 (bot/console/broadcasts.audience_of)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from bot.console import texts
from bot.console.auth import ConsoleSession, needs, needs_checked
from bot.console.broadcasts import audience_of, form_key, picker, read_form
from bot.console.pages import render
from storage import audiences, grants
from storage.errors import InvalidFieldError
from storage.rewards import is_live

router = APIRouter(prefix="/admin/grants")
Reader = Annotated[ConsoleSession, Depends(needs("members.write"))]
Writer = Annotated[ConsoleSession, Depends(needs_checked("members.write"))]


def _error(exc: InvalidFieldError) -> tuple[str, str]:
    """The form field and its message for a refusal of the picker, the reward or the request."""
    if exc.field in ("reason", "request_id"):
        return exc.field, texts.GRANT_ERRORS["length" if exc.field == "reason" else "format"].format(**exc.details)
    if exc.field == "reward_id":
        problem = {"out_of_stock": "out_of_stock", "ended": "reward_ended"}.get(exc.problem, "reward")
        return "reward_id", texts.GRANT_ERRORS[problem]
    if exc.field == "audience" and exc.problem == "too_large":
        return "audience", texts.AUDIENCE_GRANT_TOO_LARGE.format(**exc.details)
    key = form_key(exc.field)
    return key, texts.BROADCAST_ERRORS[key]


@router.get("", response_class=HTMLResponse)
async def form(request: Request, console: Reader) -> HTMLResponse:
    return await _page(request, console)


@router.post("", response_class=HTMLResponse)
async def give(request: Request, console: Writer) -> HTMLResponse:
    values, tiers, segments = await read_form(request)
    services = console.services
    now = services.clock.now()
    reward_id = values.get("reward_id", "")
    try:
        if not (reward_id.isascii() and reward_id.isdigit() and len(reward_id) < 10):
            raise InvalidFieldError("reward_id", "unknown")
        audience = await audience_of(console, values, tiers, segments)
        if values.get("action") != "send":
            async with services.db.sessions() as session:
                seen = await grants.preview(session, services.rewards, audience, int(reward_id), now=now)
            if seen.size == 0:
                raise InvalidFieldError("audience", "empty")
            return await _page(request, console, values=values, tiers=tiers, segments=segments, preview=seen)
        async with services.db.unit_of_work() as session:
            done = await grants.give_audience(session, services.rewards, audience, int(reward_id),
                                              values.get("reason", ""), values.get("request_id", ""),
                                              actor=console.actor, now=now, client=console.client)
    except InvalidFieldError as exc:
        key, message = _error(exc)
        return await _page(request, console, values=values, tiers=tiers, segments=segments,
                           errors={key: message}, status=422)
    flash = texts.AUDIENCE_GRANT_DONE.format(granted=done.granted, size=done.size, repeated=done.repeated,
                                             over_limit=done.over_limit)
    if done.stopped:
        flash += texts.AUDIENCE_GRANT_STOPPED
    return await _page(request, console, flash=flash)


async def _page(
    request: Request, console: ConsoleSession, *, flash: str | None = None, values: dict[str, str] | None = None,
    tiers: list[str] | None = None, segments: list[str] | None = None, errors: dict[str, str] | None = None,
    preview: grants.AudiencePreview | None = None, status: int = 200,
) -> HTMLResponse:
    services = console.services
    now = services.clock.now()
    async with services.db.sessions() as session:
        rewards = [r for r in await services.rewards.all(session) if is_live(r, now)]
        lists = await audiences.lists(session)
    return render(request, "audience_grant.html", console, status=status, active="grants", flash=flash,
                  values=values or {}, chosen_tiers=tiers or [], chosen_segments=segments or [],
                  errors=errors or {}, preview=preview, rewards=rewards, max_audience=grants.MAX_AUDIENCE,
                  **picker(console, lists))
