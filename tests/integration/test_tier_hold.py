"""The tier hold (storage/tiers.py): an operator sets a tier through a date; the monthly review leaves it alone
through that local day and judges it again after; earning may still lift the member above it; adjustments
never count towards the tier; clearing the hold hands the tier back to the review."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select

from storage import adjustments
from storage.audit import Actor
from storage.db import Database
from storage.ledger import Ledger
from storage.models import AuditEntry, Member
from storage.tiers import InvalidHoldError, hold_tier, review_tiers
from tests.support.factories import add_member, local, tier_of
from tests.support.invariants import assert_points_consistent

OPERATOR = Actor("lin", "operator")


async def hold(db: Database, ledger: Ledger, member_id: int, tier: str | None, until: date | None,
               now: object) -> bool:
    async with db.unit_of_work() as session:
        return await hold_tier(session, ledger, member_id, tier, until, actor=OPERATOR, now=now)  # type: ignore[arg-type]


async def hold_of(db: Database, member_id: int) -> date | None:
    async with db.sessions() as session:
        return await session.scalar(select(Member.tier_hold_until).where(Member.id == member_id))


async def test_a_held_tier_survives_the_monthly_review_through_its_date(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, local(2026, 11, 1))
    assert await hold(db, ledger, member_id, "金卡", date(2027, 1, 1), local(2026, 11, 22, 10))
    assert await tier_of(db, member_id) == "金卡"

    december = await review_tiers(db, ledger, local(2026, 12, 1, 3))
    assert (december.reviewed, december.downgraded) == (1, 0)
    assert await tier_of(db, member_id) == "金卡"
    # 1 January local is the hold's last day: still held (the review runs at 03:00 local).
    january = await review_tiers(db, ledger, local(2027, 1, 1, 3))
    assert (january.reviewed, january.downgraded) == (1, 0)
    assert await tier_of(db, member_id) == "金卡"
    february = await review_tiers(db, ledger, local(2027, 2, 1, 3))
    assert (february.reviewed, february.downgraded) == (1, 1)
    assert await tier_of(db, member_id) == "银卡"  # past the hold, down one level as always


async def test_earning_still_lifts_a_held_member_above_the_held_tier(db: Database, ledger: Ledger) -> None:
    now = local(2026, 11, 22, 10)
    member_id = await add_member(db, now)
    await hold(db, ledger, member_id, "银卡", date(2027, 6, 30), now)
    async with db.unit_of_work() as session:
        moved = await ledger.earn(session, member_id, 6_000, key="order:big", kind="purchase", now=now)
    assert moved.upgraded_to == "金卡"
    review = await review_tiers(db, ledger, local(2026, 12, 1, 3))
    assert review.downgraded == 0
    assert await tier_of(db, member_id) == "金卡"
    await assert_points_consistent(db)


async def test_adjustments_do_not_qualify_for_a_tier(db: Database, ledger: Ledger) -> None:
    now = local(2026, 11, 22, 10)
    member_id = await add_member(db, now)
    async with db.unit_of_work() as session:
        done = await adjustments.adjust(session, ledger, member_id, 50_000, "补录历史积分", "r-big",
                                        actor=OPERATOR, now=now)
    assert done.balance_after == 50_000
    assert await tier_of(db, member_id) == "普通"
    async with db.sessions() as session:
        assert await ledger.qualifying_points(session, member_id, now) == 0
        member = await session.get(Member, member_id)
    assert member is not None
    assert (member.cap_day, member.cap_earned) == (None, 0)  # nor against the daily earning cap
    await assert_points_consistent(db)


async def test_clearing_the_hold_hands_the_tier_back_to_the_review(db: Database, ledger: Ledger) -> None:
    now = local(2026, 11, 22, 10)
    member_id = await add_member(db, now)
    await hold(db, ledger, member_id, "钻石", date(2027, 12, 31), now)
    assert await hold(db, ledger, member_id, None, None, now)
    assert await hold_of(db, member_id) is None
    assert not await hold(db, ledger, member_id, None, None, now)  # nothing to clear: nothing written
    await review_tiers(db, ledger, local(2026, 12, 1, 3))
    assert await tier_of(db, member_id) == "金卡"
    async with db.sessions() as session:
        audits = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "tier.hold")
                                        .order_by(AuditEntry.id))).all()
    assert [(a.actor, a.target, json.loads(a.before or ""), json.loads(a.after or "")) for a in audits] == [
        ("lin", f"member:{member_id}", {"tier": "普通", "hold_until": None},
         {"tier": "钻石", "hold_until": "2027-12-31"}),
        ("lin", f"member:{member_id}", {"tier": "钻石", "hold_until": "2027-12-31"},
         {"tier": "钻石", "hold_until": None}),
    ]


@pytest.mark.parametrize(("tier", "until", "field"), [
    ("金卡", date(2026, 11, 22), "until"),  # today (local) is not after today
    ("金卡", date(2026, 1, 1), "until"),
    ("黑卡", date(2027, 1, 1), "tier"),
    (None, date(2027, 1, 1), "tier"),
    ("金卡", None, "until"),
])
async def test_an_invalid_hold_is_refused_and_changes_nothing(
    db: Database, ledger: Ledger, tier: str | None, until: date | None, field: str,
) -> None:
    now = local(2026, 11, 22, 23, 30)  # late evening in Shanghai, still the 22nd there
    member_id = await add_member(db, now)
    with pytest.raises(InvalidHoldError) as refused:
        await hold(db, ledger, member_id, tier, until, now)
    assert refused.value.field == field
    assert await tier_of(db, member_id) == "普通"
    assert await hold_of(db, member_id) is None
