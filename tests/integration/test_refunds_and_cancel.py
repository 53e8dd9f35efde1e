"""Refunds take back proportional points, never below zero (the shortfall is an anomaly); a cancelled
spend goes back to the lots it came from with their original expiry, as far as they are still live."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from storage import orders
from storage.db import Database
from storage.errors import NotFoundError
from storage.ledger import Ledger, Movement
from storage.models import LedgerEntry, Member, PointsLot, PurchaseOrder
from tests.support.factories import TZ, add_member, anomalies_of, entry_by_key, local, movements_of
from tests.support.invariants import consistent_points

NOW = local(2026, 11, 22, 10)


async def paid(db: Database, ledger: Ledger, member_id: int, order_id: str, fen: int) -> orders.OrderResult:
    async with db.unit_of_work() as session:
        member = await session.get(Member, member_id)
        assert member is not None
        return await orders.record_paid(session, ledger, member, order_id=order_id, amount_fen=fen, now=NOW)


async def refund(
    db: Database, ledger: Ledger, order_id: str, refund_id: str, fen: int, at: datetime = NOW
) -> orders.OrderResult:
    async with db.unit_of_work() as session:
        return await orders.record_refund(
            session, ledger, order_id=order_id, refund_id=refund_id, refund_fen=fen, now=at
        )


async def order_row(db: Database, order_id: str) -> PurchaseOrder:
    async with db.sessions() as session:
        order = await session.scalar(select(PurchaseOrder).where(PurchaseOrder.order_id == order_id))
    assert order is not None
    return order


async def entry_count(db: Database) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(LedgerEntry)) or 0)


# --- refunds ---------------------------------------------------------------------------------------------


async def test_two_partial_refunds_add_up_to_the_order_exactly(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, NOW)
    assert (await paid(db, ledger, member_id, "PO-1", 10_000)).points == 100
    first = await refund(db, ledger, "PO-1", "RF-1", 3_333)
    second = await refund(db, ledger, "PO-1", "RF-2", 6_667)
    assert (first.points, second.points) == (-33, -67)
    assert (first.shortfall, second.shortfall) == (0, 0)
    assert (await consistent_points(db, member_id)).balance == 0
    order = await order_row(db, "PO-1")
    assert (order.refunded_fen, order.refunded_points) == (10_000, 100)
    assert await anomalies_of(db, member_id) == []


async def test_three_thirds_refunded_take_back_every_point(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, NOW)
    assert (await paid(db, ledger, member_id, "PO-3", 10_000)).points == 100
    taken = [(await refund(db, ledger, "PO-3", f"RF-{i}", fen)).points
             for i, fen in enumerate((3_333, 3_333, 3_334))]
    assert taken == [-33, -33, -34]
    assert (await consistent_points(db, member_id)).balance == 0


async def test_refund_beyond_the_order_is_refused_and_changes_nothing(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, NOW)
    await paid(db, ledger, member_id, "PO-2", 10_000)
    await refund(db, ledger, "PO-2", "RF-1", 6_000)
    entries = await entry_count(db)

    with pytest.raises(orders.RefundTooLargeError):
        await refund(db, ledger, "PO-2", "RF-2", 4_001)

    assert await entry_count(db) == entries
    assert await entry_by_key(db, "refund:RF-2") is None
    order = await order_row(db, "PO-2")
    assert (order.refunded_fen, order.refunded_points) == (6_000, 60)
    assert (await consistent_points(db, member_id)).balance == 40
    assert (await refund(db, ledger, "PO-2", "RF-2", 4_000)).points == -40  # the exact rest still works


async def test_repeated_refund_id_returns_the_first_result(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, NOW)
    await paid(db, ledger, member_id, "PO-4", 50_000)
    first = await refund(db, ledger, "PO-4", "RF-1", 10_000)
    again = await refund(db, ledger, "PO-4", "RF-1", 10_000)
    assert (first.points, first.repeated, again.points, again.repeated) == (-100, False, -100, True)
    assert (await consistent_points(db, member_id)).balance == 400
    assert (await order_row(db, "PO-4")).refunded_fen == 10_000


async def test_refund_of_an_unknown_order_is_refused(db: Database, ledger: Ledger) -> None:
    with pytest.raises(orders.UnknownOrderError):
        await refund(db, ledger, "PO-none", "RF-1", 100)


async def test_refund_after_the_points_were_spent_stops_at_zero(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, NOW)
    await paid(db, ledger, member_id, "PO-5", 10_000)
    async with db.unit_of_work() as session:
        await ledger.spend(session, member_id, 80, key="redeem:1", kind="redeem", now=NOW)

    result = await refund(db, ledger, "PO-5", "RF-1", 10_000)

    assert (result.points, result.shortfall, result.balance) == (-20, 80, 0)
    points = await consistent_points(db, member_id)
    assert points.balance == 0
    shortfalls = await anomalies_of(db, member_id, "refund_shortfall")
    assert [a.dedupe_key for a in shortfalls] == ["shortfall:refund:RF-1"]
    assert "80 of 100" in shortfalls[0].detail
    order = await order_row(db, "PO-5")
    assert (order.refunded_fen, order.refunded_points) == (10_000, 100)

    again = await refund(db, ledger, "PO-5", "RF-1", 10_000)  # a retry: no second anomaly, no movement
    assert (again.repeated, again.points, again.balance) == (True, -20, 0)
    assert len(await anomalies_of(db, member_id)) == 1


# --- cancel (restore) -----------------------------------------------------------------------------------


async def spend(db: Database, ledger: Ledger, member_id: int, points: int, key: str, at: datetime) -> Movement:
    async with db.unit_of_work() as session:
        return await ledger.spend(session, member_id, points, key=key, kind="redeem", now=at)


async def restore(db: Database, ledger: Ledger, spend_key: str, key: str, at: datetime) -> Movement:
    async with db.unit_of_work() as session:
        return await ledger.restore(session, spend_key, key=key, now=at)


async def lots_by_key(db: Database, member_id: int) -> dict[str, PointsLot]:
    async with db.sessions() as session:
        rows = (await session.execute(
            select(LedgerEntry.idempotency_key, PointsLot)
            .join(PointsLot, PointsLot.entry_id == LedgerEntry.id).where(PointsLot.member_id == member_id)
        )).all()
    return {key: lot for key, lot in rows}


async def test_cancel_gives_back_to_the_same_lots_with_their_original_expiry(
    db: Database, ledger: Ledger
) -> None:
    member_id = await add_member(db, NOW)
    async with db.unit_of_work() as session:
        await ledger.earn(session, member_id, 100, key="order:a", kind="purchase", now=local(2026, 11, 22))
        await ledger.earn(session, member_id, 100, key="order:b", kind="purchase", now=local(2027, 1, 10))
    before = await lots_by_key(db, member_id)
    spent = await spend(db, ledger, member_id, 150, "redeem:1", local(2027, 2, 1))

    back = await restore(db, ledger, "redeem:1", "cancel:1", local(2027, 3, 1))

    assert (back.delta, back.requested, back.kind, back.balance) == (150, 150, "cancel", 200)
    after = await lots_by_key(db, member_id)
    for key in ("order:a", "order:b"):
        assert after[key].remaining == after[key].amount == 100
        assert after[key].expires_at == before[key].expires_at
    moved = await movements_of(db, spent.entry_id)
    assert await movements_of(db, back.entry_id) == [(lot, -n) for lot, n in moved]
    await consistent_points(db, member_id)


async def test_cancel_after_partial_expiry_returns_only_live_lots(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, NOW)
    async with db.unit_of_work() as session:
        await ledger.earn(session, member_id, 100, key="order:nov", kind="purchase", now=local(2026, 11, 22))
        await ledger.earn(session, member_id, 100, key="order:jan", kind="purchase", now=local(2027, 1, 10))
        await ledger.earn(session, member_id, 40, key="order:dec", kind="purchase", now=local(2026, 12, 5))
    lots = await lots_by_key(db, member_id)
    nov, dec, jan = lots["order:nov"], lots["order:dec"], lots["order:jan"]
    assert nov.expires_at == local(2027, 12, 1)
    assert dec.expires_at == local(2028, 1, 1)
    assert jan.expires_at == local(2028, 2, 1)

    spent = await spend(db, ledger, member_id, 170, "redeem:7", local(2027, 2, 1))
    assert await movements_of(db, spent.entry_id) == [(nov.id, -100), (dec.id, -40), (jan.id, -30)]

    # 1 January 2028 local: the November and December lots have lapsed, the January one is live.
    at = local(2028, 1, 1, 0, 0, 0)
    back = await restore(db, ledger, "redeem:7", "cancel:7", at)

    assert (back.delta, back.requested, back.balance) == (30, 170, 100)
    assert await movements_of(db, back.entry_id) == [(jan.id, 30)]
    after = await lots_by_key(db, member_id)
    assert (after["order:jan"].remaining, after["order:jan"].expires_at) == (100, local(2028, 2, 1))
    assert (after["order:nov"].remaining, after["order:dec"].remaining) == (0, 0)
    assert after["order:jan"].expires_at.astimezone(TZ).date().isoformat() == "2028-02-01"
    assert (await consistent_points(db, member_id)).balance == 100

    again = await restore(db, ledger, "redeem:7", "cancel:7", local(2028, 1, 2))
    assert (again.repeated, again.entry_id, again.delta) == (True, back.entry_id, 30)
    assert (await consistent_points(db, member_id)).balance == 100

    async with db.unit_of_work() as session:  # the restored points still lapse on their own date
        assert await ledger.expire_member(session, member_id, local(2028, 2, 1)) == 100
    assert (await consistent_points(db, member_id)).balance == 0


async def test_cancel_of_something_that_is_not_a_spend_is_refused(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, NOW)
    async with db.unit_of_work() as session:
        await ledger.earn(session, member_id, 100, key="order:z", kind="purchase", now=NOW)
    with pytest.raises(NotFoundError):
        await restore(db, ledger, "redeem:missing", "cancel:missing", NOW)
    with pytest.raises(NotFoundError):
        await restore(db, ledger, "order:z", "cancel:z", NOW)
    assert (await consistent_points(db, member_id)).balance == 100


async def test_fully_refunded_order_does_not_keep_the_tier(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, NOW)
    assert (await paid(db, ledger, member_id, "PO-8", 100_000)).upgraded_to == "银卡"
    await spend(db, ledger, member_id, 1_000, "redeem:8", NOW)
    assert (await refund(db, ledger, "PO-8", "RF-8", 100_000)).shortfall == 1_000
    async with db.sessions() as session:
        assert await ledger.qualifying_points(session, member_id, NOW) == 0
