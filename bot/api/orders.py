"""POST /hooks/orders: the POS reports paid and refunded orders, signed with HMAC-SHA256 of
`timestamp + "." + body` under ORDER_WEBHOOK_SECRET. Refusals change nothing; past API_DEADLINE, or
with storage down, the answer is a 503 and nothing is applied (the order id makes the retry safe)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from bot.api.deps import ServicesDep, SettingsDep, SignedOrder, within_deadline
from bot.api.errors import ApiError, problems_of
from bot.api.validation import OpenId, Text
from handlers.core.context import Services
from storage import members, orders, stores
from storage.errors import ConflictError, NotFoundError
from storage.models import Member

router = APIRouter(tags=["orders"])
MAX_AMOUNT_FEN = 10_000_000
Fen = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT_FEN)]
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:]+$")]
StoreCode = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
Channel = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-.]+$")]
MAX_ITEMS = 200


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Ident
    category: Annotated[Text, Field(max_length=40)] = ""
    qty: Annotated[StrictInt, Field(gt=0, le=10_000)]
    amount_fen: Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT_FEN)]


class OrderEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    order_id: Ident
    status: Literal["paid", "refunded"]
    amount_fen: Fen
    openid: OpenId | None = None
    unionid: OpenId | None = None
    phone: Annotated[Text, Field(min_length=11, max_length=20)] | None = None
    refund_id: Ident | None = None
    refund_amount_fen: Fen | None = None
    store: StoreCode | None = None
    channel: Channel | None = None
    items: Annotated[list[OrderLine], Field(max_length=MAX_ITEMS)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> OrderEvent:
        if self.status == "paid" and not (self.openid or self.unionid or self.phone):
            raise ValueError("a paid order needs the member: openid, unionid or phone")
        if self.status == "refunded":
            if self.refund_id is None or self.refund_amount_fen is None:
                raise ValueError("a refund needs refund_id and refund_amount_fen")
            if self.refund_amount_fen > self.amount_fen:
                raise ValueError("refund_amount_fen exceeds amount_fen")
        if self.phone is not None and members.normalise_phone(self.phone) is None:
            raise ValueError("phone is not a mainland mobile number")
        if self.items and sum(line.amount_fen for line in self.items) > self.amount_fen:
            raise ValueError("items: their amount_fen add up to more than the order's amount_fen")
        return self


class OrderResponse(BaseModel):
    order_id: str
    member_id: int
    points: int = Field(description="points moved by this call: positive for paid, negative for refunds")
    balance: int
    repeated: bool = Field(description="true when this order or refund was already applied")
    shortfall: int = Field(0, description="refund points that could not be taken back (already spent)")
    multiplier: str | None = Field(
        None, description="the name of the [[multipliers]] rule (a member day) that multiplied a paid order's "
        "points; absent when none did",
    )


# The body is read raw (its HMAC covers the bytes), so its schema is given by hand. Nested models (OrderLine)
# stay in the schema's own $defs and are referred to by a pointer into this very operation: the document's
# components never list them.
_OWN_DEFS = "#/paths/~1hooks~1orders/post/requestBody/content/application~1json/schema/$defs/{model}"
BODY_SCHEMA: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": OrderEvent.model_json_schema(ref_template=_OWN_DEFS)},
}}}


@router.post(
    "/hooks/orders", response_model=OrderResponse, openapi_extra=BODY_SCHEMA, response_model_exclude_none=True,
    responses={401: {}, 404: {}, 409: {}, 413: {}, 422: {}, 503: {}},
)
async def order_webhook(body: SignedOrder, services: ServicesDep, config: SettingsDep) -> OrderResponse:
    """The body is read raw (the signature covers its bytes), then validated as an OrderEvent."""
    event = parse_event(body)
    result = await within_deadline(config.api_deadline, apply(services, event))
    return OrderResponse(
        order_id=result.order_id, member_id=result.member_id, points=result.points,
        balance=result.balance, repeated=result.repeated, shortfall=result.shortfall, multiplier=result.boost,
    )


def parse_event(body: bytes) -> OrderEvent:
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError):  # bad JSON, bytes that are not UTF-8, or nesting too deep
        raise ApiError(422, "invalid", "body is not valid JSON") from None
    try:
        return OrderEvent.model_validate(raw)
    except ValidationError as exc:
        raise ApiError(422, "invalid", problems_of(list(exc.errors()))) from None


async def apply(services: Services, event: OrderEvent) -> orders.OrderResult:
    """One transaction: the order (or refund) and its ledger movement, or nothing."""
    now = services.clock.now()
    try:
        async with services.db.unit_of_work() as session:
            if event.status == "paid":
                member = await _member(session, services, event)
                return await orders.record_paid(
                    session, services.ledger, member, order_id=event.order_id,
                    amount_fen=event.amount_fen, now=now, store=await _store(session, event.store),
                    channel=event.channel, lines=[orders.Line(x.sku, x.category, x.qty, x.amount_fen)
                                                  for x in event.items or ()],
                )
            return await orders.record_refund(
                session, services.ledger, order_id=event.order_id, refund_id=event.refund_id or "",
                refund_fen=event.refund_amount_fen or 0, now=now,
            )
    except NotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except ConflictError as exc:
        raise ApiError(409, "conflict", str(exc)) from None


async def _store(session: AsyncSession, code: str | None) -> str | None:
    """The store's code as registered; an unknown store is a 422 naming the field."""
    if code is None:
        return None
    try:
        return (await stores.by_code(session, code)).code
    except NotFoundError:
        raise ApiError(422, "invalid", f"store: no store {code.upper()}") from None


async def _member(session: AsyncSession, services: Services, event: OrderEvent) -> Member:
    found = None
    if event.openid:
        found = await members.by_openid(session, event.openid) or await members.by_openid(
            session, event.openid, "mp"
        )
    if found is None and event.unionid:
        found = await members.by_unionid(session, event.unionid)
    if found is None and event.phone:
        found = await members.by_phone(session, services.pii, members.normalise_phone(event.phone) or "")
    if found is None or found.joined_at is None or found.status == members.DELETED:
        raise NotFoundError("no member matches the openid, unionid or phone given")
    return found
