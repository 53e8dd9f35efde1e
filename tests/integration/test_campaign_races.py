"""Campaigns under concurrency, on every backend (PostgreSQL is the one that matters): members joining a
group-buy at the same moment are each credited exactly once when the N-th joins and never before; a cap
holds against a rush; settlement run by several schedulers at once pays once; the budget is never
exceeded. Every joiner runs its own unit of work on its own connection, all started together."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from storage.campaigns import AlreadyJoinedError, CampaignEndedError, CampaignFullError, Campaigns, Joined
from storage.checkins import check_in
from storage.db import Database
from storage.models import Campaign, CampaignMember, Member
from tests.support.campaign_support import (
    add_members,
    campaign_row,
    draw_record,
    new_campaign,
    outbox_rows,
    participants,
    payouts,
)
from tests.support.factories import make_ledger
from tests.support.invariants import assert_points_consistent

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
ENDS = NOW + timedelta(days=3)


@pytest.fixture
async def db(urls: tuple[str, str]) -> AsyncIterator[Database]:
    # up to 36 connections: enough for the rushes below without starving other PostgreSQL users
    database = Database(urls[0], pool_size=12, max_overflow=24)
    yield database
    await database.dispose()


@pytest.fixture
def campaigns() -> Campaigns:
    return Campaigns(make_ledger())


async def join(db: Database, campaigns: Campaigns, code: str, member: Member, now: datetime = NOW) -> Joined:
    async with db.unit_of_work() as session:
        return await campaigns.join(session, code, member, now)


async def rush(
    db: Database, campaigns: Campaigns, code: str, people: list[Member], now: datetime = NOW
) -> list[Joined | BaseException]:
    return await asyncio.gather(*(join(db, campaigns, code, m, now) for m in people), return_exceptions=True)


def split(results: list[Joined | BaseException]) -> tuple[list[Joined], list[BaseException]]:
    joined = [r for r in results if isinstance(r, Joined)]
    refused = [r for r in results if not isinstance(r, Joined)]
    return joined, refused


async def test_thirty_join_a_group_buy_of_ten_at_once(db: Database, campaigns: Campaigns) -> None:
    people = await add_members(db, NOW, 30)
    c = await new_campaign(db, campaigns, NOW, kind="group_buy", points=10, goal=10, cap=50, ends_at=ENDS)

    results = await rush(db, campaigns, c.code, people)

    joined, refused = split(results)
    assert refused == [], {repr(r) for r in refused}
    assert sorted(j.count for j in joined) == list(range(1, 31))  # one at a time under the row lock
    for j in joined:
        # nobody before the threshold: the first nine joins paid nothing, the tenth paid everyone
        assert j.paid_now == (0 if j.count < 10 else 10), j.count
        assert j.threshold_reached == (j.count == 10)
    ids = [m.id for m in people]
    assert await payouts(db, c.id) == {m: [10] for m in ids}  # type: ignore[arg-type, misc]
    first_nine = {m.id for m, j in zip(people, results, strict=True) if isinstance(j, Joined) and j.count < 10}
    told = await outbox_rows(db, kind="campaign_reward")
    assert {r.member_id for r in told} == first_nine  # paid by the tenth join, told by message
    assert len(told) == 9
    row = await campaign_row(db, c.id)  # type: ignore[arg-type]
    assert (row.participants, row.paid_out, row.budget) == (30, 300, 500)
    async with db.sessions() as session:
        assert await session.scalar(
            select(func.count()).select_from(CampaignMember).where(CampaignMember.paid == 1)
        ) == 30

    # the same thirty again, at once: refused, and nobody paid twice
    again = await rush(db, campaigns, c.code, people)
    assert all(isinstance(r, AlreadyJoinedError) for r in again), {repr(r) for r in again}
    assert await payouts(db, c.id) == {m: [10] for m in ids}  # type: ignore[arg-type, misc]
    await assert_points_consistent(db)


async def test_nobody_is_paid_before_the_nth_then_a_rush_pays_all(db: Database, campaigns: Campaigns) -> None:
    people = await add_members(db, NOW, 30)
    c = await new_campaign(db, campaigns, NOW, kind="group_buy", points=10, goal=10, cap=50, ends_at=ENDS)

    for n, member in enumerate(people[:9], start=1):  # a sequential prefix of N-1
        done = await join(db, campaigns, c.code, member)
        assert (done.count, done.paid_now, done.threshold_reached) == (n, 0, False)
        assert await payouts(db, c.id) == {}  # type: ignore[arg-type]
    async with db.sessions() as session:
        held = (await session.scalars(select(Member.balance).where(Member.id.in_([m.id for m in people])))).all()  # type: ignore[union-attr]
    assert set(held) == {0}
    assert await outbox_rows(db, kind="campaign_reward") == []

    results = await rush(db, campaigns, c.code, people[9:])  # the other 21 at once

    joined, refused = split(results)
    assert refused == [], {repr(r) for r in refused}
    assert sorted(j.count for j in joined) == list(range(10, 31))
    assert sum(j.threshold_reached for j in joined) == 1
    assert all(j.paid_now == 10 for j in joined)
    assert await payouts(db, c.id) == {m.id: [10] for m in people}  # type: ignore[arg-type, misc]
    assert {r.member_id for r in await outbox_rows(db, kind="campaign_reward")} == {m.id for m in people[:9]}
    assert (await campaign_row(db, c.id)).paid_out == 300  # type: ignore[arg-type]
    await assert_points_consistent(db)


@pytest.mark.parametrize("kind", ["join_bonus", "group_buy"])
async def test_a_cap_of_twenty_holds_against_fifty_at_once(db: Database, campaigns: Campaigns, kind: str) -> None:
    people = await add_members(db, NOW, 50)
    goal = 10 if kind == "group_buy" else 0
    c = await new_campaign(db, campaigns, NOW, kind=kind, points=5, goal=goal, cap=20, ends_at=ENDS)

    results = await rush(db, campaigns, c.code, people)

    joined, refused = split(results)
    assert len(joined) == 20
    assert len(refused) == 30
    assert all(isinstance(r, CampaignFullError) for r in refused), Counter(type(r).__name__ for r in refused)
    assert sorted(j.count for j in joined) == list(range(1, 21))
    in_it = {m.id for m, r in zip(people, results, strict=True) if isinstance(r, Joined)}
    assert set(await participants(db, c.id)) == in_it  # type: ignore[arg-type]
    row = await campaign_row(db, c.id)  # type: ignore[arg-type]
    assert row.participants == 20
    assert await payouts(db, c.id) == {m: [5] for m in in_it}  # type: ignore[arg-type]
    assert row.paid_out == 100 == row.budget
    await assert_points_consistent(db)


async def test_finalize_due_run_concurrently_from_two_databases_pays_once(
    db: Database, campaigns: Campaigns, urls: tuple[str, str]
) -> None:
    people = await add_members(db, NOW, 10)
    draw = await new_campaign(db, campaigns, NOW, kind="lucky_draw", points=20, goal=3, cap=10, ends_at=ENDS,
                              robot_key="robot-key-draw-0001")
    challenge = await new_campaign(db, campaigns, NOW, kind="checkin_challenge", points=30, goal=1, cap=10,
                                   ends_at=ENDS, robot_key="robot-key-chal-0001")
    for member in people:
        for c in (draw, challenge):
            await join(db, campaigns, c.code, member)
        async with db.unit_of_work() as session:
            await check_in(session, campaigns.ledger, member.id, NOW + timedelta(hours=1))  # type: ignore[arg-type]
    other = Database(urls[0], pool_size=4)
    try:
        due = ENDS + timedelta(minutes=1)
        settled = await asyncio.gather(
            campaigns.finalize_due(db, due), campaigns.finalize_due(db, due),
            Campaigns(make_ledger()).finalize_due(other, due), Campaigns(make_ledger()).finalize_due(other, due),
        )
        assert sum(settled) == 2, settled
        assert await campaigns.finalize_due(other, due + timedelta(hours=1)) == 0
    finally:
        await other.dispose()

    record = draw_record(await campaign_row(db, draw.id))  # type: ignore[arg-type]
    assert record["pool"] == sorted(m.id for m in people)  # type: ignore[type-var]
    assert len(record["winners"]) == 3
    assert await payouts(db, draw.id) == {w: [20] for w in record["winners"]}  # type: ignore[arg-type]
    assert await payouts(db, challenge.id) == {m.id: [30] for m in people}  # type: ignore[arg-type, misc]
    for c, paid in ((draw, 60), (challenge, 300)):
        row = await campaign_row(db, c.id)  # type: ignore[arg-type]
        assert (row.status, row.paid_out) == ("settled", paid)
        assert row.paid_out <= row.budget
        assert [r.dedupe_key for r in await outbox_rows(db, prefix=f"announce:{c.id}:end")] == [f"announce:{c.id}:end"]
    assert len(await outbox_rows(db, kind="campaign_reward")) == 13
    await assert_points_consistent(db)


async def test_joins_racing_the_draw_are_either_in_the_pool_or_refused(db: Database, campaigns: Campaigns) -> None:
    people = await add_members(db, NOW, 20)
    c = await new_campaign(db, campaigns, NOW, kind="lucky_draw", points=20, goal=5, cap=50, ends_at=ENDS)

    async def end_early() -> int:
        await asyncio.sleep(0.01)
        async with db.unit_of_work() as session:
            found = await campaigns.by_code(session, c.code, lock=True)
            return await campaigns.settle(session, found, NOW)

    *results, paid = await asyncio.gather(
        *(join(db, campaigns, c.code, m) for m in people), end_early(), return_exceptions=True
    )
    in_it = {m.id for m, r in zip(people, results, strict=True) if isinstance(r, Joined)}
    refused = [r for r in results if not isinstance(r, Joined)]
    assert all(isinstance(r, CampaignEndedError) for r in refused), {repr(r) for r in refused}
    record = draw_record(await campaign_row(db, c.id))  # type: ignore[arg-type]
    assert set(record["pool"]) == in_it == set(await participants(db, c.id))  # type: ignore[arg-type]
    assert len(record["winners"]) == min(5, len(in_it))
    assert paid == 20 * len(record["winners"])


async def test_the_budget_is_never_exceeded(db: Database, campaigns: Campaigns) -> None:
    people = await add_members(db, NOW, 10)
    c = await new_campaign(db, campaigns, NOW, kind="join_bonus", points=10, cap=10, ends_at=ENDS)
    async with db.unit_of_work() as session:  # an operator cut the budget to three payouts
        await session.execute(update(Campaign).where(Campaign.id == c.id).values(budget=30))

    results = await rush(db, campaigns, c.code, people)

    joined, refused = split(results)
    assert (len(joined), refused) == (10, [])
    assert sorted(j.paid_now for j in joined) == [0] * 7 + [10] * 3
    assert sum(len(v) for v in (await payouts(db, c.id)).values()) == 3  # type: ignore[arg-type]
    row = await campaign_row(db, c.id)  # type: ignore[arg-type]
    assert (row.paid_out, row.budget, row.participants) == (30, 30, 10)
    await assert_points_consistent(db)
