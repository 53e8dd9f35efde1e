"""Simultaneous deliveries against one member, each in its own transaction: the database, not the
caller, must keep the points single and the balance non-negative (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import func, select

from storage import orders
from storage.checkins import CheckinResult, check_in
from storage.db import Database
from storage.errors import ConflictError
from storage.ledger import InsufficientPointsError, Ledger, Movement
from storage.models import Checkin, LedgerEntry, Member, PurchaseOrder
from tests.conftest import START
from tests.support.factories import add_member
from tests.support.invariants import consistent_points

NOW = START


@pytest.fixture
async def db(urls: tuple[str, str]) -> AsyncIterator[Database]:
    database = Database(urls[0], pool_size=25, max_overflow=50)  # up to 75 connections on PostgreSQL
    yield database
    await database.dispose()


async def count(db: Database, stmt: object) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(stmt) or 0)  # type: ignore[call-overload]


async def test_fifty_simultaneous_check_ins_credit_once(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, NOW)

    async def one() -> CheckinResult:
        async with db.unit_of_work() as session:
            return await check_in(session, ledger, member_id, NOW)

    results = await asyncio.gather(*(one() for _ in range(50)))

    credited = [r for r in results if not r.already]
    assert len(credited) == 1
    assert credited[0].points == 5
    assert all(r.already and r.points == 0 and r.streak == 1 for r in results if r is not credited[0])
    points = await consistent_points(db, member_id)
    assert points.balance == 5
    assert await count(db, select(func.count()).select_from(Checkin)) == 1
    assert await count(db, select(func.count()).select_from(LedgerEntry)) == 1


async def test_fifty_simultaneous_spends_never_overdraw(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, NOW)
    async with db.unit_of_work() as session:
        await ledger.earn(session, member_id, 400, key="seed:a", kind="purchase", now=NOW)
        await ledger.earn(session, member_id, 600, key="seed:b", kind="purchase", now=NOW)
    balance, cost = 1_000, 70

    async def one(i: int) -> Movement | InsufficientPointsError:
        try:
            async with db.unit_of_work() as session:
                return await ledger.spend(session, member_id, cost, key=f"redeem:{i}", kind="redeem", now=NOW)
        except InsufficientPointsError as exc:
            return exc

    results = await asyncio.gather(*(one(i) for i in range(50)))

    spent = [r for r in results if isinstance(r, Movement)]
    refused = [r for r in results if isinstance(r, InsufficientPointsError)]
    assert len(spent) == balance // cost == 14
    assert len(refused) == 50 - 14
    assert sorted(m.balance for m in spent) == [balance - cost * n for n in range(14, 0, -1)]
    points = await consistent_points(db, member_id)
    assert points.balance == balance - 14 * cost == 20


async def test_same_paid_order_five_times_at_once_credits_once(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, NOW)

    async def deliver() -> orders.OrderResult | ConflictError:
        try:
            async with db.unit_of_work() as session:
                member = await session.get(Member, member_id)
                assert member is not None
                return await orders.record_paid(
                    session, ledger, member, order_id="PO-1", amount_fen=12_345, now=NOW
                )
        except ConflictError as exc:  # the first delivery still committing: the POS retries later
            return exc

    results = await asyncio.gather(*(deliver() for _ in range(5)))

    answered = [r for r in results if isinstance(r, orders.OrderResult)]
    first = [r for r in answered if not r.repeated]
    assert len(first) == 1
    assert first[0].points == 123
    assert all(r.points == 123 and r.balance == 123 for r in answered if r.repeated)
    assert (await consistent_points(db, member_id)).balance == 123
    assert await count(db, select(func.count()).select_from(PurchaseOrder)) == 1
    assert await count(db, select(func.count()).select_from(LedgerEntry)) == 1


async def test_same_refund_three_times_at_once_takes_back_once(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, NOW)
    async with db.unit_of_work() as session:
        member = await session.get(Member, member_id)
        assert member is not None
        await orders.record_paid(session, ledger, member, order_id="PO-2", amount_fen=20_000, now=NOW)

    async def deliver() -> orders.OrderResult | ConflictError:
        try:
            async with db.unit_of_work() as session:
                return await orders.record_refund(
                    session, ledger, order_id="PO-2", refund_id="RF-1", refund_fen=5_000, now=NOW
                )
        except ConflictError as exc:
            return exc

    results = await asyncio.gather(*(deliver() for _ in range(3)))

    answered = [r for r in results if isinstance(r, orders.OrderResult)]
    assert len([r for r in answered if not r.repeated]) == 1
    assert all(r.points == -50 for r in answered)
    assert (await consistent_points(db, member_id)).balance == 150
    async with db.sessions() as session:
        order = await session.scalar(select(PurchaseOrder).where(PurchaseOrder.order_id == "PO-2"))
    assert order is not None
    assert (order.refunded_fen, order.refunded_points) == (5_000, 50)


async def test_check_ins_of_many_members_at_once_each_credit_once(db: Database, ledger: Ledger) -> None:
    """Members do not block each other into failure: 20 members x 3 deliveries each."""
    ids = [await add_member(db, NOW) for _ in range(20)]

    async def one(member_id: int, at: datetime) -> CheckinResult:
        async with db.unit_of_work() as session:
            return await check_in(session, ledger, member_id, at)

    results = await asyncio.gather(*(one(m, NOW) for m in ids for _ in range(3)))

    assert sum(not r.already for r in results) == 20
    for member_id in ids:
        assert (await consistent_points(db, member_id)).balance == 5


async def test_two_different_refunds_racing_past_the_order_total(db: Database, ledger: Ledger) -> None:
    """Each alone fits the order, together they exceed it: exactly one goes through."""
    member_id = await add_member(db, NOW)
    async with db.unit_of_work() as session:
        member = await session.get(Member, member_id)
        assert member is not None
        await orders.record_paid(session, ledger, member, order_id="PO-3", amount_fen=10_000, now=NOW)

    async def deliver(refund_id: str) -> orders.OrderResult | orders.RefundTooLargeError:
        try:
            async with db.unit_of_work() as session:
                return await orders.record_refund(
                    session, ledger, order_id="PO-3", refund_id=refund_id, refund_fen=6_000, now=NOW
                )
        except orders.RefundTooLargeError as exc:
            return exc

    results = await asyncio.gather(deliver("RF-a"), deliver("RF-b"))

    assert sorted(type(r).__name__ for r in results) == ["OrderResult", "RefundTooLargeError"]
    assert (await consistent_points(db, member_id)).balance == 40
    async with db.sessions() as session:
        order = await session.scalar(select(PurchaseOrder).where(PurchaseOrder.order_id == "PO-3"))
    assert order is not None
    assert (order.refunded_fen, order.refunded_points) == (6_000, 60)
