"""POST /api/pos/members/lookup: the till asks who a member is, by phone or by the member's dynamic code
(会员码), signed like the order webhook (HMAC-SHA256 of `timestamp + "." + body` under
ORDER_WEBHOOK_SECRET). A POST, not a GET: a phone in a query string ends up in access logs. Answers the
tier, the tier's discount from the rules, the balance and the usable coupons; rate-limited per store."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.api.deps import ServicesDep, SignedOrder
from bot.api.errors import ApiError, problems_of
from handlers.core.context import Services
from storage import membercode, members, stores
from storage.errors import NotFoundError
from storage.models import Member

router = APIRouter(prefix="/api/pos", tags=["pos"])
LOOKUPS_PER_MINUTE = 30  # per store: a till asks a few times a minute; a guesser gets 429s
StoreCode = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]


class Lookup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store: StoreCode
    phone: Annotated[str, Field(min_length=11, max_length=20)] | None = None
    member_code: Annotated[str, Field(min_length=7, max_length=18, pattern=r"^[0-9]+$")] | None = None

    @model_validator(mode="after")
    def _one_key(self) -> Lookup:
        if (self.phone is None) == (self.member_code is None):
            raise ValueError("give exactly one of phone and member_code")
        if self.phone is not None and members.normalise_phone(self.phone) is None:
            raise ValueError("phone is not a mainland mobile number")
        return self


class UsableCoupon(BaseModel):
    code: str
    reward: str
    expires_at: datetime


class MemberAtTill(BaseModel):
    tier: str
    discount_percent: int = Field(description="what the tier pays, percent of the list price (95 = 9.5折)")
    discount: str = Field(description="the same, as the till shows it: 9.5折, or 无折扣")
    balance: int
    phone: str = Field(description="masked, 138****1234")
    coupons: list[UsableCoupon]


def discount_label(percent: int) -> str:
    return "无折扣" if percent >= 100 else f"{percent / 10:g}折"


def _parse(body: bytes) -> Lookup:
    try:
        return Lookup.model_validate(json.loads(body))
    except (ValueError, RecursionError) as exc:
        detail = problems_of(list(exc.errors())) if isinstance(exc, ValidationError) else "body is not valid JSON"
        raise ApiError(422, "invalid", detail) from None


async def _limit(services: Services, store: str) -> None:
    minute = int(services.clock.now().timestamp() // 60)
    if await services.kv.incr(f"wxbot:pos:lookups:{store}:{minute}", ex=120) > LOOKUPS_PER_MINUTE:
        raise ApiError(429, "rate_limited", f"more than {LOOKUPS_PER_MINUTE} lookups a minute from store {store}")


async def _find(services: Services, wanted: Lookup) -> Member | None:
    now = services.clock.now()
    async with services.db.sessions() as session:
        if wanted.member_code is not None:
            member_id = await membercode.consume(services.kv, services.pii, wanted.member_code, now)
            found = await session.get(Member, member_id) if member_id is not None else None
        else:
            found = await members.by_phone(session, services.pii, members.normalise_phone(wanted.phone or "") or "")
    if found is None or found.joined_at is None or found.status == members.DELETED:
        return None
    return found


@router.post("/members/lookup", response_model=MemberAtTill, responses={401: {}, 404: {}, 422: {}, 429: {}})
async def lookup(body: SignedOrder, services: ServicesDep) -> MemberAtTill:
    wanted = _parse(body)
    async with services.db.sessions() as session:
        try:
            store = await stores.by_code(session, wanted.store)
        except NotFoundError:
            raise ApiError(422, "invalid", f"store: no store {wanted.store.upper()}") from None
    if not store.active:
        raise ApiError(422, "invalid", f"store: store {store.code} is closed")
    await _limit(services, store.code)
    found = await _find(services, wanted)
    if found is None:
        raise ApiError(404, "not_found", "no member matches (a member code lasts 60 seconds and works once)")
    async with services.db.sessions() as session:
        usable = await services.rewards.coupons(session, found.id or 0, services.clock.now())
    percent = services.rules.discount_percent(found.tier)
    phone = members.masked_phone(services.pii, found) or ""
    return MemberAtTill(
        tier=found.tier, discount_percent=percent, discount=discount_label(percent), balance=found.balance,
        phone=phone, coupons=[UsableCoupon(code=r.code, reward=w.name, expires_at=r.expires_at) for r, w in usable],
    )
