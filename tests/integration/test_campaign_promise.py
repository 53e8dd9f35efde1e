"""Campaign payouts keep their promise: every participant receives exactly the points a campaign
announced, also on a day they already earned the whole daily non-purchase cap (campaign payouts stand
outside the cap: they are budgeted and approved by a manager), and the payout leaves the cap alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from storage.campaigns import Campaigns
from storage.db import Database
from storage.ledger import Ledger
from storage.models import Anomaly, Member
from tests.support.campaign_support import add_members, new_campaign, payouts
from tests.support.factories import make_ledger
from tests.support.invariants import assert_points_consistent

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
ENDS = NOW + timedelta(days=3)
PROMISED = 1000  # the most the 发起活动 flow accepts per person, twice the default daily cap


@pytest.fixture
async def db(urls: tuple[str, str]) -> AsyncIterator[Database]:
    database = Database(urls[0])
    yield database
    await database.dispose()


@pytest.fixture
def ledger() -> Ledger:
    return make_ledger()


async def earn_today(db: Database, ledger: Ledger, member: Member, points: int, tag: str) -> int:
    async with db.unit_of_work() as session:
        moved = await ledger.earn(session, member.id or 0, points, key=f"test:{tag}:{member.id}",
                                  kind="checkin", now=NOW)
    return moved.delta


async def balances(db: Database, members: list[Member]) -> dict[int, int]:
    async with db.sessions() as session:
        rows = (await session.execute(
            select(Member.id, Member.balance).where(Member.id.in_([m.id for m in members]))  # type: ignore[union-attr]
        )).all()
    return {member_id: balance for member_id, balance in rows}


@pytest.mark.parametrize(("kind", "goal"), [("join_bonus", 0), ("group_buy", 3)])
async def test_every_participant_receives_exactly_the_announced_points(
    db: Database, ledger: Ledger, kind: str, goal: int
) -> None:
    people = await add_members(db, NOW, 4, start=10 if kind == "group_buy" else 0)
    # before the campaign: one at the cap, one near it, one halfway, one with nothing today
    for member, already in zip(people, (500, 480, 250, 0), strict=True):
        if already:
            assert await earn_today(db, ledger, member, already, "before") == already
    before = await balances(db, people)
    campaigns = Campaigns(ledger)
    c = await new_campaign(db, campaigns, NOW, kind=kind, points=PROMISED, goal=goal, cap=10, ends_at=ENDS)

    for member in people:
        async with db.unit_of_work() as session:
            await campaigns.join(session, c.code, member, NOW + timedelta(minutes=1))

    assert await payouts(db, c.id or 0) == {m.id: [PROMISED] for m in people}
    after = await balances(db, people)
    assert {m: after[m] - before[m] for m in after} == {m.id: PROMISED for m in people}
    async with db.sessions() as session:
        flagged = (await session.scalars(select(Anomaly.member_id).where(Anomaly.kind == "daily_cap"))).all()
    assert flagged == []  # nothing was cut, so nothing to look into
    await assert_points_consistent(db, [m.id or 0 for m in people])


async def test_a_payout_does_not_use_up_the_days_cap(db: Database, ledger: Ledger) -> None:
    [member] = await add_members(db, NOW, 1, start=20)
    campaigns = Campaigns(ledger)
    c = await new_campaign(db, campaigns, NOW, kind="join_bonus", points=PROMISED, cap=5, ends_at=ENDS)
    async with db.unit_of_work() as session:
        joined = await campaigns.join(session, c.code, member, NOW)
    assert joined.paid_now == PROMISED

    # the cap still counts only capped earnings: 500 more the same day, then nothing
    assert await earn_today(db, ledger, member, 500, "after") == 500
    assert await earn_today(db, ledger, member, 10, "over") == 0
    assert (await balances(db, [member]))[member.id or 0] == PROMISED + 500
