"""Regression: the tier window started on day min(day, 28) of the month 12 months back, so on 31 March
points earned on 29-31 March of the year before (over 12 months old) still counted towards the tier
and could upgrade a member. The window now starts on the same day (or the month's last day)."""

from __future__ import annotations

from storage.db import Database
from storage.ledger import Ledger
from tests.support.factories import add_member, local, tier_of


async def test_points_older_than_twelve_months_do_not_qualify_at_month_end(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, local(2026, 3, 1))
    async with db.unit_of_work() as session:
        await ledger.earn(session, member_id, 600, key="order:old", kind="purchase", now=local(2026, 3, 29, 12))
        await ledger.earn(session, member_id, 300, key="order:new", kind="purchase", now=local(2026, 4, 2, 12))
    at = local(2027, 3, 31, 10)
    async with db.unit_of_work() as session:
        assert await ledger.qualifying_points(session, member_id, at) == 300
        moved = await ledger.earn(session, member_id, 100, key="order:now", kind="purchase", now=at)
    assert moved.upgraded_to is None
    assert await tier_of(db, member_id) == "普通"


async def test_window_is_twelve_months_to_the_day(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, local(2026, 11, 1))
    async with db.unit_of_work() as session:
        await ledger.earn(session, member_id, 1_000, key="order:a", kind="purchase", now=local(2026, 11, 29, 12))
    async with db.sessions() as session:
        assert await ledger.qualifying_points(session, member_id, local(2027, 11, 29, 11)) == 1_000
        assert await ledger.qualifying_points(session, member_id, local(2027, 11, 30, 12)) == 0
        # 29 February less 12 months is 28 February.
        assert await ledger.qualifying_points(session, member_id, local(2028, 2, 29, 12)) == 0
