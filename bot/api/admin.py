"""The admin API (bearer ADMIN_TOKEN): rewards and code pools, store verification (核销) and cancellation."""

from __future__ import annotations

import csv
import hmac
import io
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from handlers.core.context import Services
from storage import staff
from storage.errors import ConflictError, NotFoundError
from storage.models import Reward

Count = Annotated[StrictInt, Field(ge=0, le=10_000_000)]


def require_admin(request: Request) -> Services:
    expected = request.app.state.settings.admin_token
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not token or not hmac.compare_digest(token, expected):
        raise HTTPException(401, "a valid `Authorization: Bearer <ADMIN_TOKEN>` header is required")
    return request.app.state.services


router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(require_admin)])
AdminServices = Annotated[Services, Depends(require_admin)]


class RewardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=40)]
    description: Annotated[str, Field(max_length=200)] = ""
    cost: Annotated[StrictInt, Field(gt=0, le=10_000_000)]
    kind: Literal["coupon", "code_pool", "gift"] = "coupon"
    stock: Count | None = None
    per_member_limit: Annotated[StrictInt, Field(gt=0)] | None = None
    total_limit: Annotated[StrictInt, Field(gt=0)] | None = None
    min_tier: str | None = None
    validity_days: Annotated[StrictInt, Field(gt=0, le=3650)] = 30
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    active: bool = True


class RewardPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    description: Annotated[str, Field(max_length=200)] | None = None
    cost: Annotated[StrictInt, Field(gt=0, le=10_000_000)] | None = None
    stock: Count | None = None
    per_member_limit: Annotated[StrictInt, Field(gt=0)] | None = None
    total_limit: Annotated[StrictInt, Field(gt=0)] | None = None
    min_tier: str | None = None
    validity_days: Annotated[StrictInt, Field(gt=0, le=3650)] | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    active: bool | None = None


REQUIRED = ("name", "description", "cost", "validity_days", "active")


class RewardOut(RewardIn):
    model_config = ConfigDict(extra="ignore", from_attributes=True)

    id: int
    issued_count: int


def _check_reward(services: Services, values: dict) -> None:
    tier = values.get("min_tier")
    if tier and tier not in {t.name for t in services.rules.tiers}:
        raise HTTPException(422, f"min_tier must be one of {[t.name for t in services.rules.tiers]}")
    for key in ("starts_at", "ends_at"):
        if values.get(key) is not None and values[key].tzinfo is None:
            raise HTTPException(422, f"{key} needs a time zone offset")


@router.get("/rewards", response_model=list[RewardOut])
async def list_rewards(services: AdminServices) -> list[Reward]:
    async with services.db.sessions() as session:
        return await services.rewards.all(session)


@router.post("/rewards", response_model=RewardOut, status_code=201)
async def create_reward(body: RewardIn, services: AdminServices) -> Reward:
    values = body.model_dump()
    _check_reward(services, values)
    reward = Reward(**values, created_at=services.clock.now())
    async with services.db.unit_of_work() as session:
        session.add(reward)
    return reward


@router.patch("/rewards/{reward_id}", response_model=RewardOut)
async def edit_reward(reward_id: int, body: RewardPatch, services: AdminServices) -> Reward:
    values = body.model_dump(exclude_unset=True)
    nulls = [key for key in REQUIRED if key in values and values[key] is None]
    if nulls:  # null clears an optional field; these columns have no "unset"
        raise HTTPException(422, f"{', '.join(nulls)} cannot be null")
    _check_reward(services, values)
    async with services.db.unit_of_work() as session:
        reward = await _reward(session, services, reward_id)
        for key, value in values.items():
            setattr(reward, key, value)
    return reward


@router.post("/rewards/{reward_id}/deactivate", response_model=RewardOut)
async def deactivate_reward(reward_id: int, services: AdminServices) -> Reward:
    async with services.db.unit_of_work() as session:
        reward = await _reward(session, services, reward_id)
        reward.active = False
    return reward


@router.post("/rewards/{reward_id}/codes")
async def import_codes(reward_id: int, request: Request, services: AdminServices) -> dict[str, int]:
    """Body: CSV (text/csv), one code per row in the first column; a header row `code` is skipped."""
    raw = await request.body()
    if len(raw) > 5 * 1024 * 1024:
        raise HTTPException(413, "CSV larger than 5 MiB")
    try:
        codes = parse_codes(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise HTTPException(422, "CSV must be UTF-8") from None
    if not codes:
        raise HTTPException(422, "no codes in the CSV")
    async with services.db.unit_of_work() as session:
        try:
            added = await services.rewards.import_codes(session, reward_id, codes)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        except ConflictError as exc:
            raise HTTPException(409, str(exc)) from None
    return {"received": len(codes), "added": added}


def parse_codes(text: str) -> list[str]:
    rows = [row[0].strip() for row in csv.reader(io.StringIO(text)) if row and row[0].strip()]
    if rows and rows[0].lower() == "code":
        rows = rows[1:]
    return rows


class CouponUse(BaseModel):
    code: str
    status: str
    used_at: datetime | None
    reward_id: int
    member_id: int


@router.post("/coupons/{code}/use", response_model=CouponUse)
async def use_coupon(code: str, services: AdminServices) -> CouponUse:
    try:
        async with services.db.unit_of_work() as session:
            used = await services.rewards.use(session, code, services.clock.now())
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except ConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    return CouponUse(code=used.code, status=used.status, used_at=used.used_at,
                     reward_id=used.reward_id, member_id=used.member_id)


@router.post("/redemptions/{redemption_id}/cancel")
async def cancel_redemption(redemption_id: int, services: AdminServices) -> dict[str, object]:
    try:
        async with services.db.unit_of_work() as session:
            rewards = services.rewards
            found, restored = await rewards.cancel(session, redemption_id, services.clock.now())
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except ConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"id": found.id, "status": found.status, "points_restored": restored,
            "points_lapsed": found.cost - restored}


async def _reward(session, services: Services, reward_id: int) -> Reward:
    try:
        return await services.rewards.get(session, reward_id)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None


class StaffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    openid: Annotated[str, Field(min_length=1, max_length=64)]
    role: Literal["manager", "admin"] = "manager"


@router.get("/staff")
async def list_staff(services: AdminServices) -> list[dict[str, object]]:
    async with services.db.sessions() as session:
        rows = await staff.all_staff(session)
    return [{"openid": s.openid, "role": s.role, "added_by": s.added_by, "created_at": s.created_at} for s in rows]


@router.post("/staff", status_code=201)
async def add_staff(body: StaffIn, services: AdminServices) -> dict[str, object]:
    async with services.db.unit_of_work() as session:
        new = await staff.add(session, body.openid, body.role, "admin-api", services.clock.now())
    return {"openid": body.openid, "role": body.role, "created": new}


@router.delete("/staff/{openid}")
async def remove_staff(openid: str, services: AdminServices) -> dict[str, object]:
    async with services.db.unit_of_work() as session:
        if not await staff.remove(session, openid):
            raise HTTPException(404, f"{openid} is not staff")
    return {"openid": openid, "removed": True}
