"""Who the admin API's broadcasts and grants reach: the audience body both take (storage/audiences.py), and
uploaded openid lists an audience can name (`list_id`). Bearer ADMIN_TOKEN; an upload is audited as `token`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from bot.api.deps import AdminDep, client_of, require_admin
from bot.api.errors import ERROR_SCHEMA, invalid
from bot.api.validation import INT4_MAX, Text
from storage import audiences, audit
from storage.audiences import Audience
from storage.errors import InvalidFieldError
from storage.models import MemberList

router = APIRouter(prefix="/api/admin/lists", tags=["admin"], dependencies=[Depends(require_admin)])

Id = Annotated[StrictInt, Field(ge=1, le=INT4_MAX)]
Name = Annotated[Text, Field(min_length=1, max_length=60)]


class AudienceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tiers: Annotated[list[Name], Field(max_length=20)] = []
    segments: Annotated[list[Name], Field(max_length=10)] = []
    campaign_id: Id | None = None
    list_id: Id | None = None
    active_days: Annotated[StrictInt, Field(ge=1, le=audiences.MAX_ACTIVE_DAYS)] | None = None

    def audience(self) -> Audience:
        return Audience(tuple(self.tiers), tuple(self.segments), self.campaign_id, self.list_id, self.active_days)


class ListIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "南京西路店会员", "openids": ["oABC123", "oDEF456"],
    }]})

    name: Name
    openids: Annotated[list[Annotated[Text, Field(max_length=64)]], Field(min_length=1, max_length=audiences.MAX_LIST)]


def list_out(listed: MemberList) -> dict[str, Any]:
    return {"id": listed.id, "name": listed.name, "size": listed.size, "unknown": listed.unknown,
            "created_by": listed.created_by, "created_at": listed.created_at.isoformat()}


@router.post("", status_code=201, responses={422: ERROR_SCHEMA}, summary="Upload a list of openids")
async def upload(body: ListIn, request: Request, services: AdminDep) -> dict[str, Any]:
    """The members with these openids (Official Account or Mini Program) as a list an audience can name by
    its `id`; `size` counts the members found, `unknown` the openids that matched nobody. 422 when none matched."""
    try:
        async with services.db.unit_of_work() as session:
            listed = await audiences.upload(session, body.name, body.openids, actor=audit.TOKEN,
                                            now=services.clock.now(), client=client_of(request))
            return list_out(listed)
    except InvalidFieldError as exc:
        raise invalid(exc) from None


@router.get("", summary="The newest uploaded lists")
async def listing(services: AdminDep) -> dict[str, Any]:
    async with services.db.sessions() as session:
        return {"lists": [list_out(m) for m in await audiences.lists(session)]}
