"""The admin JSON API's grant to an audience (bearer ADMIN_TOKEN, actor `token`): preview (the audience's size
and the reward's remaining stock), then grant (storage/grants.give_audience: one coupon per member and request
id, one audit row, never oversold). Every refusal is a 422 naming its field; nothing is granted."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from bot.api.admin_audiences import AudienceIn, Id
from bot.api.deps import AdminDep, client_of, require_admin
from bot.api.errors import ERROR_SCHEMA, invalid
from bot.api.validation import Text
from storage import adjustments, audiences, audit, grants
from storage.audiences import Audience
from storage.errors import InvalidFieldError

router = APIRouter(prefix="/api/admin/grants", tags=["admin"], dependencies=[Depends(require_admin)])

class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reward_id: Id
    audience: AudienceIn


class AudienceGrantIn(PreviewIn):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reward_id": 3, "audience": {"tiers": ["金卡"], "active_days": 30}, "reason": "金卡会员回馈",
        "request_id": "crm-2026-12-02-gold",
    }]})

    reason: Annotated[Text, Field(max_length=2000)]
    request_id: Annotated[Text, Field(min_length=1, max_length=adjustments.REQUEST_ID_MAX)]


class PreviewOut(BaseModel):
    size: int
    remaining: int | None


class AudienceGrantOut(BaseModel):
    size: int
    granted: int
    repeated: int
    over_limit: int
    stopped: bool


def _checked(body: PreviewIn, services: Any) -> Audience:
    return audiences.checked(body.audience.audience(), [t.name for t in services.rules.tiers])


@router.post("/audience/preview", response_model=PreviewOut, responses={422: ERROR_SCHEMA})
async def preview(body: PreviewIn, services: AdminDep) -> dict[str, Any]:
    """The audience's size and the reward's remaining stock (null: unlimited), before granting."""
    try:
        audience = _checked(body, services)
        async with services.db.sessions() as session:
            seen = await grants.preview(session, services.rewards, audience, body.reward_id, now=services.clock.now())
    except InvalidFieldError as exc:
        raise invalid(exc) from None
    return dataclasses.asdict(seen)


@router.post("/audience", response_model=AudienceGrantOut, responses={422: ERROR_SCHEMA})
async def grant_audience(body: AudienceGrantIn, request: Request, services: AdminDep) -> dict[str, Any]:
    """Grant the reward to every member of the audience (`grant:operator:<member>:<request_id>`; a repeat
    grants nothing more). Stops when the stock runs out (stopped=true, granted says how many). 422: an
    unknown or ended reward, no stock, an empty audience or one above 2,000 members, a bad reason or id."""
    try:
        audience = _checked(body, services)
        async with services.db.unit_of_work() as session:
            done = await grants.give_audience(session, services.rewards, audience, body.reward_id, body.reason,
                                              body.request_id, actor=audit.TOKEN, now=services.clock.now(),
                                              client=client_of(request))
    except InvalidFieldError as exc:
        raise invalid(exc) from None
    return dataclasses.asdict(done)
