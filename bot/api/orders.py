"""POST /hooks/orders: the POS reports paid and refunded orders, signed with HMAC-SHA256 of
`timestamp + "." + body` under ORDER_WEBHOOK_SECRET. Refusals change nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from handlers.core.context import Services
from storage import members, orders
from storage.errors import ConflictError, NotFoundError

router = APIRouter(tags=["orders"])
MAX_AGE = 300
MAX_BODY = 64 * 1024
MAX_AMOUNT_FEN = 10_000_000
Fen = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT_FEN)]
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:]+$")]


class OrderEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    order_id: Ident
    status: Literal["paid", "refunded"]
    amount_fen: Fen
    openid: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    unionid: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    phone: Annotated[str, Field(min_length=11, max_length=20)] | None = None
    refund_id: Ident | None = None
    refund_amount_fen: Fen | None = None

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
        return self


class OrderResponse(BaseModel):
    order_id: str
    member_id: int
    points: int = Field(description="points moved by this call: positive for paid, negative for refunds")
    balance: int
    repeated: bool = Field(description="true when this order or refund was already applied")
    shortfall: int = Field(0, description="refund points that could not be taken back (already spent)")


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float) -> None:
    if not secret:
        raise HTTPException(503, "order webhook is disabled: ORDER_WEBHOOK_SECRET is not set")
    if not timestamp or not signature:
        raise HTTPException(401, "X-Wxbot-Timestamp and X-Wxbot-Signature are required")
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        raise HTTPException(401, "X-Wxbot-Timestamp must be Unix seconds") from None
    if age > MAX_AGE:
        raise HTTPException(401, "X-Wxbot-Timestamp is more than 5 minutes away from now")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    given = signature.removeprefix("sha256=").lower()
    if not hmac.compare_digest(expected, given):
        raise HTTPException(401, "invalid signature")


@router.post("/hooks/orders", response_model=OrderResponse, responses={401: {}, 404: {}, 409: {}, 422: {}})
async def order_webhook(request: Request) -> OrderResponse:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, f"body larger than {MAX_BODY} bytes")
    services: Services = request.app.state.services
    now = services.clock.now()
    verify(
        request.app.state.settings.order_webhook_secret, request.headers.get("x-wxbot-timestamp"),
        request.headers.get("x-wxbot-signature"), body, now.timestamp(),
    )
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError):  # bad JSON, bytes that are not UTF-8, or nesting too deep
        raise HTTPException(422, "body is not valid JSON") from None
    try:
        event = OrderEvent.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise HTTPException(422, problems) from None
    try:
        async with services.db.unit_of_work() as session:
            if event.status == "paid":
                member = await _member(session, services, event)
                result = await orders.record_paid(
                    session, services.ledger, member, order_id=event.order_id,
                    amount_fen=event.amount_fen, now=now,
                )
            else:
                result = await orders.record_refund(
                    session, services.ledger, order_id=event.order_id, refund_id=event.refund_id or "",
                    refund_fen=event.refund_amount_fen or 0, now=now,
                )
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except ConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    return OrderResponse(
        order_id=result.order_id, member_id=result.member_id, points=result.points,
        balance=result.balance, repeated=result.repeated, shortfall=result.shortfall,
    )


async def _member(session, services: Services, event: OrderEvent):
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
