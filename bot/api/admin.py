"""The admin API (bearer ADMIN_TOKEN): rewards and code pools, store verification (核销) and cancellation."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from bot.api.deps import AdminDep, WeChatDep, require_admin
from bot.api.validation import Count, Moment, OpenId, PathId, PathText, Text
from bot.wechat.menu import StaffTag
from handlers.core.context import Services
from storage import staff
from storage.errors import ConflictError, NotFoundError
from storage.models import Reward

Stock = Annotated[StrictInt, Field(ge=0, le=10_000_000)]
Limit = Annotated[Count, Field(gt=0)]
Name = Annotated[Text, Field(min_length=1, max_length=40)]
Description = Annotated[Text, Field(max_length=200)]
Cost = Annotated[StrictInt, Field(gt=0, le=10_000_000)]
Days = Annotated[StrictInt, Field(gt=0, le=3650)]

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(require_admin)])


class RewardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description = ""
    cost: Cost
    kind: Literal["coupon", "code_pool", "gift"] = "coupon"
    stock: Stock | None = None
    per_member_limit: Limit | None = None
    total_limit: Limit | None = None
    min_tier: Text | None = None
    validity_days: Days = 30
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    active: bool = True


class RewardPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Description | None = None
    cost: Cost | None = None
    stock: Stock | None = None
    per_member_limit: Limit | None = None
    total_limit: Limit | None = None
    min_tier: Text | None = None
    validity_days: Days | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    active: bool | None = None


REQUIRED = ("name", "description", "cost", "validity_days", "active")


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


def _check_reward(services: Services, values: dict) -> None:
    tier = values.get("min_tier")
    if tier and tier not in {t.name for t in services.rules.tiers}:
        raise HTTPException(422, f"min_tier must be one of {[t.name for t in services.rules.tiers]}")


@router.get("/rewards", response_model=list[RewardOut])
async def list_rewards(services: AdminDep) -> list[Reward]:
    async with services.db.sessions() as session:
        return await services.rewards.all(session)


@router.post("/rewards", response_model=RewardOut, status_code=201)
async def create_reward(body: RewardIn, services: AdminDep) -> Reward:
    values = body.model_dump()
    _check_reward(services, values)
    reward = Reward(**values, created_at=services.clock.now())
    async with services.db.unit_of_work() as session:
        session.add(reward)
    return reward


@router.patch("/rewards/{reward_id}", response_model=RewardOut)
async def edit_reward(reward_id: PathId, body: RewardPatch, services: AdminDep) -> Reward:
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
async def deactivate_reward(reward_id: PathId, services: AdminDep) -> Reward:
    async with services.db.unit_of_work() as session:
        reward = await _reward(session, services, reward_id)
        reward.active = False
    return reward


@router.post("/rewards/{reward_id}/codes")
async def import_codes(reward_id: PathId, request: Request, services: AdminDep) -> dict[str, int]:
    """Body: CSV (text/csv), one code per row in the first column; a header row `code` is skipped."""
    raw = await request.body()
    if len(raw) > 5 * 1024 * 1024:
        raise HTTPException(413, "CSV larger than 5 MiB")
    try:
        codes = parse_codes(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise HTTPException(422, "CSV must be UTF-8") from None
    except csv.Error as exc:
        raise HTTPException(422, f"CSV is malformed: {exc}") from None
    if any("\x00" in code for code in codes):
        raise HTTPException(422, "code: must not contain NUL characters")
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
async def use_coupon(code: PathText, services: AdminDep) -> CouponUse:
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
async def cancel_redemption(redemption_id: PathId, services: AdminDep) -> dict[str, object]:
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

    openid: OpenId
    role: Literal["manager", "admin"] = "manager"


@router.get("/staff")
async def list_staff(services: AdminDep) -> list[dict[str, object]]:
    async with services.db.sessions() as session:
        rows = await staff.all_staff(session)
    return [{"openid": s.openid, "role": s.role, "added_by": s.added_by, "created_at": s.created_at} for s in rows]


@router.post("/staff", status_code=201)
async def add_staff(body: StaffIn, services: AdminDep, api: WeChatDep) -> dict[str, object]:
    async with services.db.unit_of_work() as session:
        new = await staff.add(session, body.openid, body.role, "admin-api", services.clock.now())
    await StaffTag(api).set(body.openid, staff=True)
    return {"openid": body.openid, "role": body.role, "created": new}


@router.delete("/staff/{openid}")
async def remove_staff(openid: PathText, services: AdminDep, api: WeChatDep) -> dict[str, object]:
    async with services.db.unit_of_work() as session:
        if not await staff.remove(session, openid):
            raise HTTPException(404, f"{openid} is not staff")
    await StaffTag(api).set(openid, staff=False)
    return {"openid": openid, "removed": True}
