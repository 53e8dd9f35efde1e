"""The admin API (bearer ADMIN_TOKEN): rewards and code pools, store verification (核销), cancellation and
staff. Every write is audited as actor `token` in the transaction of the change."""

from __future__ import annotations

import csv
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, ValidationError

from bot import staffing
from bot.api.deps import AdminDep, WeChatDep, client_of, require_admin
from bot.api.reward_input import (
    RewardIn,
    RewardPatch,
    add_reward,
    change_reward,
    import_code_file,
    read_code_file,
)
from bot.api.validation import PathId, PathText
from handlers.core.context import Services
from storage import audit, staff
from storage.errors import ConflictError, NotFoundError
from storage.models import Reward

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(require_admin)])
CODES_MAX_BYTES = 5 * 1024 * 1024


class RewardOut(BaseModel):
    """What the API answers: the stored columns, not re-validated against the input's bounds."""

    model_config = ConfigDict(extra="ignore", from_attributes=True)

    id: int
    issued_count: int
    name: str
    description: str
    cost: int
    kind: str
    stock: int | None
    per_member_limit: int | None
    total_limit: int | None
    min_tier: str | None
    validity_days: int
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool


def tier_context(services: Services) -> dict[str, Any]:
    """What the reward models check min_tier against: the programme's tiers."""
    return {"tiers": [t.name for t in services.rules.tiers]}


def _checked(model: type[RewardIn] | type[RewardPatch], body: BaseModel, services: Services) -> Any:
    """The body once more, now with the programme's tiers as context (FastAPI checked only its shape)."""
    try:
        return model.model_validate(body.model_dump(exclude_unset=True), context=tier_context(services))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise HTTPException(422, f"{where}: {first['msg']}") from None


@router.get("/rewards", response_model=list[RewardOut])
async def list_rewards(services: AdminDep) -> list[Reward]:
    async with services.db.sessions() as session:
        return await services.rewards.all(session)


@router.post("/rewards", response_model=RewardOut, status_code=201)
async def create_reward(body: RewardIn, request: Request, services: AdminDep) -> Reward:
    values = _checked(RewardIn, body, services).model_dump()
    async with services.db.unit_of_work() as session:
        return await add_reward(session, values, audit.TOKEN, services.clock.now(), client_of(request))


@router.patch("/rewards/{reward_id}", response_model=RewardOut)
async def edit_reward(reward_id: PathId, body: RewardPatch, request: Request, services: AdminDep) -> Reward:
    patch = _checked(RewardPatch, body, services)
    if nulls := patch.nulls():
        raise HTTPException(422, f"{', '.join(nulls)} cannot be null")
    values = patch.model_dump(exclude_unset=True)
    async with services.db.unit_of_work() as session:
        reward = await _reward(session, services, reward_id)
        await change_reward(session, reward, values, "reward.edit", audit.TOKEN, services.clock.now(),
                            client_of(request))
    return reward


@router.post("/rewards/{reward_id}/deactivate", response_model=RewardOut)
async def deactivate_reward(reward_id: PathId, request: Request, services: AdminDep) -> Reward:
    async with services.db.unit_of_work() as session:
        reward = await _reward(session, services, reward_id)
        await change_reward(session, reward, {"active": False}, "reward.deactivate", audit.TOKEN,
                            services.clock.now(), client_of(request))
    return reward


@router.post("/rewards/{reward_id}/codes")
async def import_codes(reward_id: PathId, request: Request, services: AdminDep) -> dict[str, Any]:
    """Body: CSV (text/csv), one code per row in the first column; a header row `code` is skipped. Valid
    rows are added; `refused` lists every other row with its line and reason (empty, too_long, nul,
    duplicate, taken). 422 when no row is valid."""
    raw = await request.body()
    if len(raw) > CODES_MAX_BYTES:
        raise HTTPException(413, "CSV larger than 5 MiB")
    try:
        found = read_code_file(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise HTTPException(422, "CSV must be UTF-8") from None
    except csv.Error as exc:
        raise HTTPException(422, f"CSV is malformed: {exc}") from None
    if not found.codes:
        reasons = sorted({row.reason for row in found.refused})
        raise HTTPException(422, f"no valid code in the CSV{': ' + ', '.join(reasons) if reasons else ''}")
    try:
        async with services.db.unit_of_work() as session:
            result = await import_code_file(session, services.rewards, reward_id, found, audit.TOKEN,
                                            services.clock.now(), client_of(request))
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except ConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"received": result.received, "added": len(result.codes),
            "refused": [{"line": r.line, "code": r.code, "reason": r.reason} for r in result.refused]}


class CouponUse(BaseModel):
    code: str
    status: str
    used_at: datetime | None
    reward_id: int
    member_id: int


@router.post("/coupons/{code}/use", response_model=CouponUse)
async def use_coupon(code: PathText, request: Request, services: AdminDep) -> CouponUse:
    now = services.clock.now()
    try:
        async with services.db.unit_of_work() as session:
            used = await services.rewards.use(session, code, now, by="token")
            await audit.record(session, audit.TOKEN, "coupon.use", f"redemption:{used.id}", now=now,
                               before={"status": "issued"}, after={"status": used.status}, client=client_of(request))
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except ConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    return CouponUse(code=used.code, status=used.status, used_at=used.used_at,
                     reward_id=used.reward_id, member_id=used.member_id)


@router.post("/redemptions/{redemption_id}/cancel")
async def cancel_redemption(redemption_id: PathId, request: Request, services: AdminDep) -> dict[str, object]:
    now = services.clock.now()
    try:
        async with services.db.unit_of_work() as session:
            found, restored = await services.rewards.cancel(session, redemption_id, now)
            await audit.record(session, audit.TOKEN, "redemption.cancel", f"redemption:{found.id}", now=now,
                               before={"status": "issued"}, after={"status": found.status,
                                                                   "points_restored": restored},
                               client=client_of(request))
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except ConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"id": found.id, "status": found.status, "points_restored": restored,
            "points_lapsed": found.cost - restored}


async def _reward(session: Any, services: Services, reward_id: int) -> Reward:
    try:
        return await services.rewards.get(session, reward_id)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None


def token_of(request: Request, services: Services) -> staffing.Who:
    return staffing.Who(audit.TOKEN, services.clock.now(), client_of(request), added_by="admin-api")


@router.get("/staff")
async def list_staff(services: AdminDep) -> list[dict[str, object]]:
    async with services.db.sessions() as session:
        rows = await staff.all_staff(session)
    return [{"openid": s.openid, "role": s.role, "store": s.store, "added_by": s.added_by, "created_at": s.created_at}
            for s in rows]


@router.post("/staff", status_code=201)
async def add_staff(body: staffing.StaffIn, request: Request, services: AdminDep, api: WeChatDep) -> dict[str, object]:
    try:
        new = await staffing.appoint(services.db, api, token_of(request, services), body.openid, body.role,
                                     body.store)
    except NotFoundError:
        raise HTTPException(422, f"store {body.store} does not exist") from None
    return {"openid": body.openid, "role": body.role, "store": body.store, "created": new}


@router.delete("/staff/{openid}")
async def remove_staff(openid: PathText, request: Request, services: AdminDep, api: WeChatDep) -> dict[str, object]:
    if not await staffing.dismiss(services.db, api, token_of(request, services), openid):
        raise HTTPException(404, f"{openid} is not staff")
    return {"openid": openid, "removed": True}
