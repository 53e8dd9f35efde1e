"""Purchases reported by the POS: paid orders earn points (`order:<id>`), refunds take them back
(`refund:<refund id>`) in proportion, never below zero. Both are safe to repeat."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import reasons, surveys
from storage.clock import local_date
from storage.db import dialect_insert
from storage.errors import ConflictError, NotFoundError
from storage.ledger import Ledger
from storage.models import LedgerEntry, Member, OrderItem, PurchaseOrder
from storage.reasons import BOOST, Reason, yuan


class UnknownOrderError(NotFoundError):
    text_key = "error_not_found"


class RefundTooLargeError(ConflictError):
    text_key = "error_conflict"


@dataclass(frozen=True)
class OrderResult:
    order_id: str
    member_id: int
    points: int
    balance: int
    repeated: bool
    shortfall: int = 0
    upgraded_to: str | None = None
    boost: str | None = None  # the multiplier a paid order's points were multiplied by (its name)


@dataclass(frozen=True)
class Line:
    """An order line as the POS sent it (optional; kept for the reports)."""

    sku: str
    category: str
    qty: int
    amount_fen: int


async def record_paid(
    session: AsyncSession, ledger: Ledger, member: Member, *, order_id: str, amount_fen: int, now: datetime,
    store: str | None = None, channel: str | None = None, lines: Sequence[Line] = (),
) -> OrderResult:
    """Credit whole yuan x the member's tier multiplier, once per order id; the store, channel and lines
    are stored with the first report of the order. A [[multipliers]] rule of the order's local day (its
    first report: a retry on another day repeats the first result) multiplies those points, rounded down."""
    assert member.id is not None
    rules = ledger.rules
    boost = rules.multiplier_for(local_date(now, ledger.tz), "purchase", member.tier)
    points = rules.purchase_points(amount_fen, member.tier)
    points = boost.apply(points) if boost else points
    inserted = await session.scalar(
        dialect_insert(session)(PurchaseOrder)
        .values(order_id=order_id, member_id=member.id, amount_fen=amount_fen, points=points, created_at=now,
                store=store, channel=channel)
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(PurchaseOrder.id)
    )
    if inserted is None:
        return await _repeat(session, ledger, order_id, f"order:{order_id}")
    if lines:
        session.add_all([OrderItem(order_id=inserted, sku=x.sku, category=x.category, qty=x.qty,
                                   amount_fen=x.amount_fen) for x in lines])
    moved = await ledger.earn(
        session, member.id, points, key=f"order:{order_id}", kind="purchase", now=now,
        reason=Reason.PURCHASE.stored(yuan=yuan(amount_fen), **({BOOST: boost.name} if boost else {})), ref=order_id,
    )
    await surveys.trigger(session, "order", [member.id], f"order:{order_id}", now)
    return OrderResult(
        order_id, member.id, moved.delta, moved.balance, False, upgraded_to=moved.upgraded_to,
        boost=boost.name if boost else None,
    )


async def record_refund(
    session: AsyncSession, ledger: Ledger, *, order_id: str, refund_id: str, refund_fen: int, now: datetime
) -> OrderResult:
    """Take back the points of the refunded share (cumulative, so partial refunds add up exactly);
    what was already spent is taken from the balance as far as it goes, the rest is an anomaly."""
    order = await session.scalar(
        select(PurchaseOrder).where(col(PurchaseOrder.order_id) == order_id).with_for_update()
    )
    if order is None:
        raise UnknownOrderError(f"order {order_id} is unknown")
    key = f"refund:{refund_id}"
    if await session.scalar(select(col(LedgerEntry.id)).where(col(LedgerEntry.idempotency_key) == key)):
        return await _repeat(session, ledger, order_id, key)
    if order.refunded_fen + refund_fen > order.amount_fen:
        raise RefundTooLargeError(
            f"refunds would total {order.refunded_fen + refund_fen} fen of an order of {order.amount_fen}"
        )
    total_points = order.points * (order.refunded_fen + refund_fen) // order.amount_fen
    points = total_points - order.refunded_points
    moved = await ledger.take_back(
        session, order.member_id, points, key=key, kind="refund", now=now,
        reason=Reason.REFUND.stored(yuan=yuan(refund_fen)), ref=order_id,
    )
    order.refunded_fen += refund_fen
    order.refunded_points += points
    return OrderResult(order_id, order.member_id, moved.delta, moved.balance, False, points + moved.delta)


async def _repeat(session: AsyncSession, ledger: Ledger, order_id: str, key: str) -> OrderResult:
    entry = await session.scalar(select(LedgerEntry).where(col(LedgerEntry.idempotency_key) == key))
    if entry is None:  # the other delivery is still committing; it will answer the POS itself
        raise ConflictError(f"{key} is being processed")
    balance = await ledger.balance(session, entry.member_id)
    parsed = reasons.parse(entry.reason)
    boost = parsed[1].get(BOOST) if parsed else None
    return OrderResult(order_id, entry.member_id, entry.delta, balance, True,
                       boost=boost if isinstance(boost, str) else None)
