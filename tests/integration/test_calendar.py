"""The programme calendar against the database: local days for check-ins and streaks, 29 February,
lot expiry at local midnight, earliest-expiring lots spent first, the daily cap, tier changes."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from handlers.core.dates import parse_birthday
from storage import orders
from storage.checkins import CheckinResult, check_in
from storage.db import Database
from storage.ledger import Ledger
from storage.models import LedgerEntry, Member, PointsLot
from storage.tiers import review_tiers
from tests.support.factories import add_member, anomalies_of, entry_by_key, local, movements_of, tier_of
from tests.support.invariants import consistent_points


async def checkin(db: Database, ledger: Ledger, member_id: int, at: datetime) -> CheckinResult:
    async with db.unit_of_work() as session:
        return await check_in(session, ledger, member_id, at)


async def earn(
    db: Database, ledger: Ledger, member_id: int, points: int, at: datetime, *, key: str,
    kind: str = "purchase",
) -> int:
    async with db.unit_of_work() as session:
        return (await ledger.earn(session, member_id, points, key=key, kind=kind, now=at)).delta


# --- check-in days and streaks ------------------------------------------------------------------------


async def test_check_ins_either_side_of_local_midnight_are_two_days(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, local(2026, 11, 1))
    late = await checkin(db, ledger, member_id, local(2026, 11, 22, 23, 59, 59))
    early = await checkin(db, ledger, member_id, local(2026, 11, 23, 0, 0, 0))
    assert (late.day, late.streak, late.points, late.already) == (date(2026, 11, 22), 1, 5, False)
    assert (early.day, early.streak, early.points, early.already) == (date(2026, 11, 23), 2, 5, False)
    assert early.balance == 10
    assert await entry_by_key(db, f"checkin:{member_id}:2026-11-22") is not None
    assert await entry_by_key(db, f"checkin:{member_id}:2026-11-23") is not None
    await consistent_points(db, member_id)


async def test_same_local_day_across_utc_midnight_is_one_check_in(db: Database, ledger: Ledger) -> None:
    # 2026-11-22 16:00 UTC and 2026-11-23 15:59:59 UTC: two UTC dates, one Shanghai date.
    member_id = await add_member(db, local(2026, 11, 1))
    first = await checkin(db, ledger, member_id, local(2026, 11, 23, 0, 0, 0))
    again = await checkin(db, ledger, member_id, local(2026, 11, 23, 23, 59, 59))
    assert (first.already, again.already) == (False, True)
    assert (again.points, again.streak, again.balance) == (0, 1, 5)


async def test_streak_breaks_after_a_missed_day(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, local(2026, 11, 1))
    streaks = []
    for day in (20, 21, 22, 24, 25):  # 23 November missed
        streaks.append((await checkin(db, ledger, member_id, local(2026, 11, day, 12))).streak)
    assert streaks == [1, 2, 3, 1, 2]
    assert (await consistent_points(db, member_id)).balance == 25


async def test_seventh_consecutive_day_adds_the_bonus_and_the_eighth_does_not(
    db: Database, ledger: Ledger
) -> None:
    member_id = await add_member(db, local(2026, 11, 1))
    start = local(2026, 11, 26, 8)  # across the month end into December
    results = [await checkin(db, ledger, member_id, start + timedelta(days=i)) for i in range(8)]
    assert [r.streak for r in results] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [(r.points, r.bonus) for r in results] == [(5, 0)] * 6 + [(5, 20), (5, 0)]
    assert results[6].day == date(2026, 12, 2)
    assert results[6].balance == 6 * 5 + 25
    assert results[7].balance == 6 * 5 + 25 + 5
    bonus = await entry_by_key(db, f"streak:{member_id}:2026-12-02")
    assert bonus is not None
    assert (bonus.delta, bonus.kind) == (20, "streak")
    assert await entry_by_key(db, f"streak:{member_id}:2026-12-03") is None
    await consistent_points(db, member_id)


# --- 29 February ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("02-29", (2, 29, None)),
        ("2月29日", (2, 29, None)),
        ("2024-02-29", (2, 29, 2024)),
        ("2000-02-29", (2, 29, 2000)),
        ("2023-02-29", None),
        ("1900-02-29", None),  # 1900 was not a leap year
        ("02-30", None),
    ],
)
def test_birthday_29_february(text: str, parsed: tuple[int, int, int | None] | None) -> None:
    assert parse_birthday(text, date(2026, 11, 22)) == parsed


# --- expiry -------------------------------------------------------------------------------------------


async def test_points_expire_at_local_midnight_after_the_twelfth_month(db: Database, ledger: Ledger) -> None:
    earned_at = local(2026, 11, 22, 10)
    member_id = await add_member(db, earned_at)
    await earn(db, ledger, member_id, 100, earned_at, key="order:X1")
    async with db.sessions() as session:
        lot = await session.scalar(select(PointsLot).where(PointsLot.member_id == member_id))
        assert lot is not None
        assert lot.expires_at == local(2027, 12, 1)
        assert await ledger.expiring(session, member_id, local(2027, 11, 15), timedelta(days=30)) == (
            100, local(2027, 12, 1)
        )
        assert await ledger.expiring(session, member_id, local(2027, 10, 15), timedelta(days=30)) == (0, None)

    last_second = local(2027, 11, 30, 23, 59, 59)
    async with db.unit_of_work() as session:
        assert await ledger.expire_due(session, last_second) == []
        assert await ledger.expire_member(session, member_id, last_second) == 0
    assert (await consistent_points(db, member_id)).balance == 100

    midnight = local(2027, 12, 1, 0, 0, 0)
    async with db.unit_of_work() as session:
        assert await ledger.expire_due(session, midnight) == [member_id]
        assert await ledger.expire_member(session, member_id, midnight) == 100
    assert (await consistent_points(db, member_id)).balance == 0
    entry = await entry_by_key(db, f"expire:{lot.id}")
    assert entry is not None
    assert (entry.delta, entry.kind, entry.created_at) == (-100, "expire", midnight)

    async with db.unit_of_work() as session:  # running the expiry again changes nothing
        assert await ledger.expire_due(session, midnight + timedelta(days=1)) == []
        assert await ledger.expire_member(session, member_id, midnight + timedelta(days=1)) == 0
    assert (await consistent_points(db, member_id)).balance == 0


async def test_spending_takes_the_earliest_expiring_lot_first(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, local(2026, 11, 1))
    # Credited out of order (a late report), so the earlier-expiring lot is the younger row.
    await earn(db, ledger, member_id, 100, local(2027, 2, 10), key="order:later")  # expires 2028-03-01
    await earn(db, ledger, member_id, 50, local(2026, 11, 22), key="order:earlier")  # expires 2027-12-01
    await earn(db, ledger, member_id, 30, local(2027, 1, 5), key="order:middle")  # expires 2028-02-01
    async with db.sessions() as session:
        lots = {
            lot.entry_id: lot for lot in (await session.scalars(
                select(PointsLot).where(PointsLot.member_id == member_id)
            )).all()
        }
    keys = {k: await entry_by_key(db, f"order:{k}") for k in ("later", "earlier", "middle")}
    lot_id = {k: lots[e.id].id for k, e in keys.items() if e is not None}  # type: ignore[index]

    async with db.unit_of_work() as session:
        spent = await ledger.spend(session, member_id, 70, key="redeem:1", kind="redeem", now=local(2027, 3, 1))
    assert await movements_of(db, spent.entry_id) == [(lot_id["earlier"], -50), (lot_id["middle"], -20)]
    points = await consistent_points(db, member_id)
    assert points.balance == 110
    assert {lid: rem for lid, _, rem, _ in points.lots} == {
        lot_id["earlier"]: 0, lot_id["middle"]: 10, lot_id["later"]: 100,
    }


# --- the daily cap ---------------------------------------------------------------------------------------


async def test_non_purchase_points_are_capped_at_500_a_local_day(db: Database, ledger: Ledger) -> None:
    day = local(2026, 11, 22, 10)
    member_id = await add_member(db, day)
    assert await earn(db, ledger, member_id, 300, day, key="birthday:1", kind="birthday") == 300
    async with db.unit_of_work() as session:
        capped = await ledger.earn(session, member_id, 300, key="birthday:2", kind="birthday", now=day)
    assert (capped.delta, capped.requested, capped.capped) == (200, 300, True)
    late = await checkin(db, ledger, member_id, local(2026, 11, 22, 23, 59, 59))
    assert (late.points, late.capped) == (0, True)
    assert await earn(db, ledger, member_id, 1_000, day, key="order:big") == 1_000  # purchases: no cap

    anomalies = await anomalies_of(db, member_id)
    assert [(a.kind, a.dedupe_key) for a in anomalies] == [("daily_cap", f"cap:{member_id}:2026-11-22")]
    assert (await consistent_points(db, member_id)).balance == 1_500

    next_day = await checkin(db, ledger, member_id, local(2026, 11, 23, 0, 0, 0))  # a new local day
    assert (next_day.points, next_day.capped) == (5, False)
    assert await earn(db, ledger, member_id, 495, local(2026, 11, 23, 1), key="birthday:3", kind="birthday") == 495
    assert await earn(db, ledger, member_id, 1, local(2026, 11, 23, 2), key="birthday:4", kind="birthday") == 0
    assert [a.dedupe_key for a in await anomalies_of(db, member_id, "daily_cap")] == [
        f"cap:{member_id}:2026-11-22", f"cap:{member_id}:2026-11-23",
    ]
    assert (await consistent_points(db, member_id)).balance == 2_000


# --- tiers ------------------------------------------------------------------------------------------------


async def test_upgrade_at_once_and_redemptions_do_not_reduce_qualifying_points(
    db: Database, ledger: Ledger
) -> None:
    now = local(2026, 11, 22, 10)
    member_id = await add_member(db, now)
    async with db.unit_of_work() as session:
        below = await ledger.earn(session, member_id, 999, key="order:a", kind="purchase", now=now)
    assert below.upgraded_to is None
    assert await tier_of(db, member_id) == "普通"
    async with db.unit_of_work() as session:
        crossing = await ledger.earn(session, member_id, 1, key="order:b", kind="purchase", now=now)
    assert crossing.upgraded_to == "银卡"
    assert await tier_of(db, member_id) == "银卡"

    async with db.unit_of_work() as session:
        await ledger.spend(session, member_id, 1_000, key="redeem:1", kind="redeem", now=now)
        assert await ledger.qualifying_points(session, member_id, now) == 1_000
    async with db.unit_of_work() as session:  # the new tier's multiplier applies at once
        member = await session.get(Member, member_id)
        assert member is not None
        paid = await orders.record_paid(session, ledger, member, order_id="PO-9", amount_fen=10_000, now=now)
    assert paid.points == 120

    review = await review_tiers(db, ledger, local(2026, 12, 1, 3))
    assert (review.reviewed, review.downgraded) == (1, 0)
    assert await tier_of(db, member_id) == "银卡"
    await consistent_points(db, member_id)


async def test_review_downgrades_one_level_once_a_month(db: Database, ledger: Ledger) -> None:
    start = local(2026, 11, 22, 10)
    member_id = await add_member(db, start)
    async with db.unit_of_work() as session:
        moved = await ledger.earn(session, member_id, 20_000, key="order:huge", kind="purchase", now=start)
    assert moved.upgraded_to == "钻石"

    in_window = await review_tiers(db, ledger, local(2027, 6, 1, 3))
    assert (in_window.reviewed, in_window.downgraded) == (1, 0)
    assert await tier_of(db, member_id) == "钻石"

    january = local(2028, 1, 1, 3)  # nothing earned in the last 12 months
    first = await review_tiers(db, ledger, january)
    second = await review_tiers(db, ledger, january + timedelta(days=10))
    assert (first.reviewed, first.downgraded) == (1, 1)
    assert (second.reviewed, second.downgraded) == (0, 0)
    assert await tier_of(db, member_id) == "金卡"  # one level, not straight to 普通

    await review_tiers(db, ledger, local(2028, 2, 1, 3))
    assert await tier_of(db, member_id) == "银卡"

    both = await asyncio.gather(
        review_tiers(db, ledger, local(2028, 3, 1, 3)), review_tiers(db, ledger, local(2028, 3, 1, 3))
    )
    assert sum(r.downgraded for r in both) == 1
    assert sum(r.reviewed for r in both) == 1
    assert await tier_of(db, member_id) == "普通"
    async with db.sessions() as session:
        month = await session.scalar(select(Member.tier_reviewed_month).where(Member.id == member_id))
        entries = (await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.member_id == member_id))).all()
    assert month == "2028-03"
    assert list(entries) == ["purchase"]  # the review moves tiers, never points
    await consistent_points(db, member_id)


async def test_tier_review_months_are_local(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, local(2026, 11, 22))
    async with db.unit_of_work() as session:
        await ledger.earn(session, member_id, 1_000, key="order:s", kind="purchase", now=local(2026, 11, 22))
    # 2028-01-31 16:30 UTC is already 1 February in Shanghai: a second review the same local month.
    await review_tiers(db, ledger, local(2028, 2, 1, 0, 30))
    again = await review_tiers(db, ledger, local(2028, 2, 29, 23))
    assert again.reviewed == 0
    assert await tier_of(db, member_id) == "普通"
