"""The broadcasts API (bearer ADMIN_TOKEN, audited as `token`): preview a broadcast (its audience, who can be
reached on which channel, who the monthly cap holds back, a sample), create it (sent at `send_at` by the
scheduler's expansion, through the push policy), list and read them with their progress, cancel one. Every
refusal is a 422 naming its field; nothing is stored or queued. Thin over storage/broadcasts.py."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from bot.api.admin_audiences import AudienceIn, Id
from bot.api.deps import ServicesDep, SettingsDep, client_of, require_admin
from bot.api.errors import ERROR_SCHEMA, ApiError, invalid
from bot.api.validation import PathId, Text
from storage import audit, broadcasts
from storage.errors import InvalidFieldError
from storage.models import Broadcast

router = APIRouter(prefix="/api/admin/broadcasts", tags=["admin"], dependencies=[Depends(require_admin)])


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[Text, Field(max_length=200)]
    description: Annotated[Text, Field(max_length=400)] = ""
    picurl: Annotated[Text, Field(max_length=500)] = ""
    url: Annotated[Text, Field(max_length=500)] = ""


class BroadcastIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "双十二预热", "kind": "holiday", "audience": {"tiers": ["金卡", "钻石"], "active_days": 90},
        "text": "双十二会员专享：全场积分加倍，回复【积分】查看。", "send_at": "2026-12-10T02:00:00Z",
        "deadline": "2026-12-12T16:00:00Z", "request_id": "crm-2026-12-10-1212",
    }]})

    name: Annotated[Text, Field(max_length=200)]
    kind: Annotated[Text, Field(max_length=20, description="campaign, holiday or content")]
    audience: AudienceIn = AudienceIn()
    text: Annotated[Text, Field(max_length=2000)] | None = None
    article: ArticleIn | None = None
    send_at: datetime | None = Field(None, description="with a time zone; omitted: now")
    deadline: datetime | None = Field(None, description="unsent rows are dropped after it")
    request_id: Annotated[Text, Field(min_length=1, max_length=broadcasts.REQUEST_ID_MAX)]
    experiment_id: Id | None = Field(None, description="a running experiment over broadcasts: its arms vary "
                                                       "the content, its holdout gets nothing")


def _draft(body: BroadcastIn, services: Any) -> broadcasts.Draft:
    article = body.article.model_dump(exclude_defaults=True) if body.article is not None else None
    content = broadcasts.checked_content(body.text, article)
    return broadcasts.checked(
        name=body.name, kind=body.kind, audience=body.audience.audience(), content=content, send_at=body.send_at,
        deadline=body.deadline, request_id=body.request_id, tiers=[t.name for t in services.rules.tiers],
        now=services.clock.now(),
    )


def _out(broadcast: Broadcast, progress: dict[str, int] | None = None) -> dict[str, Any]:
    out = {
        "id": broadcast.id, "name": broadcast.name, "kind": broadcast.kind, "status": broadcast.status,
        "audience": json.loads(broadcast.audience),
        "content": broadcasts.content_of(broadcast), "send_at": broadcast.send_at.isoformat(),
        "deadline": broadcast.deadline.isoformat() if broadcast.deadline else None, "queued": broadcast.queued,
        "held_out": broadcast.held_out, "experiment_id": broadcast.experiment_id, "created_by": broadcast.created_by,
        "cancelled_at": broadcast.cancelled_at.isoformat() if broadcast.cancelled_at else None,
    }
    return out if progress is None else out | {"rows": progress}


def _refused(exc: InvalidFieldError) -> ApiError:
    """The field as this body names it: the content's parts are top-level here (`text`, `article.title`)."""
    return invalid(exc, field=exc.field.removeprefix("content."))


@router.post("/preview", responses={422: ERROR_SCHEMA}, summary="The numbers of a broadcast; nothing stored")
async def preview(body: BroadcastIn, services: ServicesDep, settings: SettingsDep) -> dict[str, Any]:
    try:
        draft = _draft(body, services)
        async with services.db.sessions() as session:
            await broadcasts.running_experiment(session, body.experiment_id)
            seen = await broadcasts.preview(
                session, draft, services.clock.now(), rules=services.rules, tz=services.tz,
                templates=settings.wechat_template_ids, subscribe_templates=settings.miniprogram_subscribe_template_ids,
            )
    except InvalidFieldError as exc:
        raise _refused(exc) from None
    return dataclasses.asdict(seen) | {"starts_at": seen.starts_at.isoformat(), "reachable": seen.reachable}


@router.post("", status_code=201, responses={422: ERROR_SCHEMA},
             summary="Create a broadcast (a repeated request_id answers the first, 200)")
async def create(body: BroadcastIn, request: Request, response: Response, services: ServicesDep) -> dict[str, Any]:
    try:
        draft = _draft(body, services)
        async with services.db.unit_of_work() as session:
            made, created = await broadcasts.create(session, draft, actor=audit.TOKEN, now=services.clock.now(),
                                                    client=client_of(request), experiment_id=body.experiment_id)
            out = _out(made)
    except InvalidFieldError as exc:
        raise _refused(exc) from None
    if not created:
        response.status_code = 200
    return out


@router.get("", summary="The newest broadcasts")
async def listing(services: ServicesDep) -> dict[str, Any]:
    async with services.db.sessions() as session:
        found = await broadcasts.recent(session)
    return {"broadcasts": [_out(b) for b in found]}


@router.get("/{broadcast_id}", summary="One broadcast and its outbox rows by state")
async def one(broadcast_id: PathId, services: ServicesDep) -> dict[str, Any]:
    async with services.db.sessions() as session:
        found = await session.get(Broadcast, broadcast_id)
        if found is None:
            raise ApiError(404, "not_found", f"broadcast {broadcast_id} does not exist")
        return _out(found, await broadcasts.progress(session, broadcast_id))


@router.post("/{broadcast_id}/cancel", summary="Cancel: nothing more is sent; pending rows are dropped")
async def cancel(broadcast_id: PathId, request: Request, services: ServicesDep) -> dict[str, Any]:
    try:
        async with services.db.unit_of_work() as session:
            found, dropped = await broadcasts.cancel(session, broadcast_id, actor=audit.TOKEN,
                                                     now=services.clock.now(), client=client_of(request))
            return _out(found) | {"dropped": dropped}
    except InvalidFieldError:
        raise ApiError(404, "not_found", f"broadcast {broadcast_id} does not exist") from None
