"""The admin JSON API's member 360 (bearer ADMIN_TOKEN, actor `token`): search, the member, ledger pages and
points adjustment, over the same storage services as the console page. Phones are masked here too."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from bot.api.deps import AdminDep, client_of, require_admin
from bot.api.errors import ERROR_SCHEMA, ApiError
from bot.api.validation import INT4_MAX, PathId, Text
from handlers.texts import ledger_reason
from storage import adjustments, audit, grants, member360, member_search
from storage.errors import NotFoundError
from storage.models import Member
from storage.rewards import LimitReachedError, NotMemberError, OutOfStockError, RewardEndedError

router = APIRouter(prefix="/api/admin/members", tags=["admin"], dependencies=[Depends(require_admin)])


class AdjustIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: Annotated[StrictInt, Field(ge=-adjustments.MAX_POINTS, le=adjustments.MAX_POINTS)]
    reason: Annotated[Text, Field(max_length=2000)]
    request_id: Annotated[Text, Field(min_length=1, max_length=adjustments.REQUEST_ID_MAX)]


def _lines(page: member360.LedgerPage) -> dict[str, Any]:
    return {
        "entries": [dataclasses.asdict(line) | {"reason_text": ledger_reason(line.reason)} for line in page.lines],
        "next_before": page.next_before,
    }


@router.get("")
async def search(services: AdminDep, q: Annotated[Text, Query(min_length=1, max_length=200)]) -> dict[str, Any]:
    """Members matching a phone, an openid, a referral code or a coupon code exactly."""
    async with services.db.sessions() as session:
        found = await member_search.search(session, services.pii, q)
    return {"members": [dataclasses.asdict(hit) for hit in found]}


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: Annotated[Text, Field(min_length=1, max_length=200)]


@router.post("/search")
async def search_by_body(body: SearchIn, services: AdminDep) -> dict[str, Any]:
    """As GET ?q=, with the query in the body: a phone then stays out of URLs and any access log."""
    return await search(services, body.q)


@router.get("/{member_id}")
async def member(member_id: PathId, services: AdminDep) -> dict[str, Any]:
    """Everything about one member (the newest ledger page; page on with /ledger?before=)."""
    async with services.db.sessions() as session:
        view = await member360.load(session, services.pii, services.ledger, member_id, services.clock.now())
    if view is None:
        raise ApiError(404, "not_found", f"member {member_id} does not exist")
    body = dataclasses.asdict(view)
    body["ledger"] = _lines(view.ledger)
    return body


@router.get("/{member_id}/ledger")
async def ledger(
    member_id: PathId, services: AdminDep, before: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
) -> dict[str, Any]:
    async with services.db.sessions() as session:
        if await session.get(Member, member_id) is None:
            raise ApiError(404, "not_found", f"member {member_id} does not exist")
        page = await member360.ledger_page(session, services.ledger, member_id, before)
    return _lines(page)


@router.post("/{member_id}/adjust")
async def adjust(member_id: PathId, body: AdjustIn, request: Request, services: AdminDep) -> dict[str, Any]:
    """Add or take points (kind `adjust`, key `adjust:<request_id>`; a repeat answers the first result).
    The token may adjust any amount within the bounds; more than the balance is refused with 409."""
    client = client_of(request)
    try:
        async with services.db.unit_of_work() as session:
            done = await adjustments.adjust(session, services.ledger, member_id, body.points, body.reason,
                                            body.request_id, actor=audit.TOKEN, now=services.clock.now(),
                                            client=client)
    except NotFoundError:
        raise ApiError(404, "not_found", f"member {member_id} does not exist") from None
    except adjustments.InvalidAdjustmentError as exc:
        if exc.problem in ("over_balance", "not_member"):
            raise ApiError(409, exc.problem, str(exc) + _figures(exc.details)) from None
        raise ApiError(422, "invalid", str(exc) + _figures(exc.details)) from None
    return dataclasses.asdict(done)


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reward_id": 3, "reason": "投诉补偿：门店排队过久", "request_id": "crm-2026-12-02-0042"},
    ]})

    reward_id: Annotated[StrictInt, Field(ge=1, le=INT4_MAX)]
    reason: Annotated[Text, Field(max_length=2000)]
    request_id: Annotated[Text, Field(min_length=1, max_length=adjustments.REQUEST_ID_MAX)]


class GrantOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "redemption_id": 41, "member_id": 7, "reward_id": 3, "reward": "咖啡券", "code": "K7Q2M9XW3P",
        "expires_at": "2027-01-01T16:00:00Z", "repeated": False,
    }]})

    redemption_id: int
    member_id: int
    reward_id: int
    reward: str
    code: str
    expires_at: str
    repeated: bool


@router.post("/{member_id}/coupons", response_model=GrantOut,
             responses={404: ERROR_SCHEMA, 409: ERROR_SCHEMA, 422: ERROR_SCHEMA})
async def grant_coupon(member_id: PathId, body: GrantIn, request: Request, services: AdminDep) -> dict[str, Any]:
    """Give the member a coupon without points (key `grant:operator:<member>:<request_id>`; a repeat answers
    the first coupon with repeated=true). 404: no such member or reward; 409: not a member, out of stock,
    over the reward's limits, or the reward has ended; 422: a reason outside 2-200 characters."""
    try:
        async with services.db.unit_of_work() as session:
            done = await grants.give(session, services.rewards, member_id, body.reward_id, body.reason,
                                     body.request_id, actor=audit.TOKEN, now=services.clock.now(),
                                     client=client_of(request))
    except NotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except NotMemberError as exc:
        raise ApiError(409, "not_member", str(exc)) from None
    except (OutOfStockError, LimitReachedError, RewardEndedError) as exc:
        raise ApiError(409, exc.text_key, f"reward {body.reward_id}: {exc}" + _figures(
            {k: v for k, v in exc.details.items() if k == "limit"})) from None
    except grants.InvalidGrantError as exc:
        raise ApiError(422, "invalid", str(exc) + _figures(exc.details)) from None
    out = dataclasses.asdict(done)
    out["expires_at"] = f"{done.expires_at:%Y-%m-%dT%H:%M:%S}Z"
    return out


def _figures(details: dict[str, Any]) -> str:
    return "".join(f"; {name}={value}" for name, value in sorted(details.items()))
