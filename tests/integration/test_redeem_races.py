"""Redemption under concurrency, on every backend (PostgreSQL is the one that matters): the stock never
goes below zero, a request key redeems once, points are never spent twice, and a pool code is issued once.
Every redeemer runs its own unit of work on its own connection, all started at the same moment."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from handlers import texts
from storage.db import Database
from storage.ledger import InsufficientPointsError
from storage.models import LedgerEntry, Redemption, RewardCode
from storage.rewards import Issued, LimitReachedError, OutOfStockError, Rewards
from tests.support.invariants import assert_points_consistent
from tests.support.redeem_support import (
    add_members,
    add_reward,
    balance_of,
    make_rewards,
    redeem,
    redemptions_of,
    reward_row,
)

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


@pytest.fixture
async def db(urls: tuple[str, str]) -> AsyncIterator[Database]:
    database = Database(urls[0], pool_size=20, max_overflow=40)
    yield database
    await database.dispose()


@pytest.fixture
def rewards() -> Rewards:
    return make_rewards()


async def redeem_all(
    db: Database, rewards: Rewards, calls: list[tuple[int, int, str]]
) -> list[Issued | BaseException]:
    """(member, reward, request key) each in its own transaction, all at once."""
    return await asyncio.gather(
        *(redeem(db, rewards, member, reward, key, NOW) for member, reward, key in calls),
        return_exceptions=True,
    )


def split(results: list[Issued | BaseException]) -> tuple[list[Issued], list[BaseException]]:
    won = [r for r in results if isinstance(r, Issued)]
    lost = [r for r in results if not isinstance(r, Issued)]
    return won, lost


async def redeem_entries(db: Database, member_ids: list[int]) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "redeem")
            .where(LedgerEntry.member_id.in_(member_ids))  # type: ignore[attr-defined]
        ) or 0)


async def test_hundred_members_race_for_the_last_item(db: Database, rewards: Rewards) -> None:
    reward_id = await add_reward(db, NOW, name="限量礼盒", cost=50, stock=1)
    members = await add_members(db, rewards.ledger, NOW, 100, points=80)

    results = await redeem_all(db, rewards, [(m, reward_id, f"race:{m}") for m in members])

    won, lost = split(results)
    assert len(won) == 1, Counter(type(r).__name__ for r in results)
    assert len(lost) == 99
    assert all(isinstance(exc, OutOfStockError) for exc in lost), {repr(e) for e in lost}
    assert {texts.domain_text(exc) for exc in lost} == {texts.out_of_stock.format(name="限量礼盒")}  # type: ignore[arg-type]
    reward = await reward_row(db, reward_id)
    assert (reward.stock, reward.issued_count) == (0, 1)
    issued = await redemptions_of(db)
    assert len(issued) == 1
    assert issued[0].code == won[0].redemption.code
    assert issued[0].member_id == won[0].redemption.member_id
    balances = await assert_points_consistent(db, members)
    winner = won[0].redemption.member_id
    assert balances[winner] == 30
    assert all(balance == 80 for member, balance in balances.items() if member != winner)
    assert await redeem_entries(db, members) == 1


async def test_same_request_key_confirmed_twice_at_once_redeems_once(
    db: Database, rewards: Rewards
) -> None:
    reward_id = await add_reward(db, NOW, cost=60, stock=10)
    members = await add_members(db, rewards.ledger, NOW, 5, points=100)

    calls = [(m, reward_id, f"chat:{m}") for m in members for _ in range(2)]
    results = await redeem_all(db, rewards, calls)

    won, lost = split(results)
    assert lost == []
    for member in members:
        mine = [r for r in won if r.redemption.member_id == member]
        assert len(mine) == 2
        assert mine[0].redemption.id == mine[1].redemption.id
        assert mine[0].redemption.code == mine[1].redemption.code
        assert sorted(r.repeated for r in mine) == [False, True]
        assert len(await redemptions_of(db, member_id=member)) == 1
    reward = await reward_row(db, reward_id)
    assert (reward.stock, reward.issued_count) == (5, 5)
    balances = await assert_points_consistent(db, members)
    assert set(balances.values()) == {40}
    assert await redeem_entries(db, members) == 5


async def test_two_keys_with_points_for_one_item_spend_once(db: Database, rewards: Rewards) -> None:
    reward_id = await add_reward(db, NOW, cost=60, stock=10)
    members = await add_members(db, rewards.ledger, NOW, 5, points=100)

    calls = [(m, reward_id, f"chat:{m}:{n}") for m in members for n in range(2)]
    results = await redeem_all(db, rewards, calls)

    for member in members:
        mine = [r for (m, _, _), r in zip(calls, results, strict=True) if m == member]
        won, lost = split(mine)
        assert len(won) == 1, mine
        assert len(lost) == 1
        refusal = lost[0]
        assert isinstance(refusal, InsufficientPointsError), repr(refusal)
        assert refusal.details == {"needed": 60, "balance": 40, "missing": 20}
        assert len(await redemptions_of(db, member_id=member)) == 1
        assert await balance_of(db, member) == 40
    reward = await reward_row(db, reward_id)
    assert (reward.stock, reward.issued_count) == (5, 5)  # the refused ones' stock came back
    await assert_points_consistent(db, members)
    assert await redeem_entries(db, members) == 5


async def test_per_member_limit_holds_under_concurrency(db: Database, rewards: Rewards) -> None:
    reward_id = await add_reward(db, NOW, name="新人券", cost=10, per_member_limit=1)
    members = await add_members(db, rewards.ledger, NOW, 5, points=100)

    calls = [(m, reward_id, f"limit:{m}:{n}") for m in members for n in range(3)]
    results = await redeem_all(db, rewards, calls)

    won, lost = split(results)
    assert len(won) == 5
    assert all(isinstance(exc, LimitReachedError) for exc in lost), {repr(e) for e in lost}
    assert sorted(r.redemption.member_id for r in won) == sorted(members)
    assert set((await assert_points_consistent(db, members)).values()) == {90}
    assert (await reward_row(db, reward_id)).issued_count == 5


async def test_total_limit_holds_under_concurrency(db: Database, rewards: Rewards) -> None:
    reward_id = await add_reward(db, NOW, name="限量券", cost=10, total_limit=3)
    members = await add_members(db, rewards.ledger, NOW, 12, points=100)

    won, lost = split(await redeem_all(db, rewards, [(m, reward_id, f"total:{m}") for m in members]))

    assert len(won) == 3
    assert all(isinstance(exc, OutOfStockError) for exc in lost), {repr(e) for e in lost}
    assert (await reward_row(db, reward_id)).issued_count == 3
    assert len(await redemptions_of(db)) == 3
    balances = await assert_points_consistent(db, members)
    assert sorted(balances.values()) == [90] * 3 + [100] * 9


async def test_code_pool_never_issues_a_code_twice(db: Database, rewards: Rewards) -> None:
    """No stock limit: the pool alone decides, so every redeemer reaches the code claim."""
    pool = 10
    reward_id = await add_reward(db, NOW, name="电影券", cost=20, kind="code_pool")
    async with db.unit_of_work() as session:
        assert await rewards.import_codes(session, reward_id, [f"MOVIE-{n:04d}" for n in range(pool)]) == pool
    members = await add_members(db, rewards.ledger, NOW, 3 * pool, points=50)

    results = await redeem_all(db, rewards, [(m, reward_id, f"pool:{m}") for m in members])

    won, lost = split(results)
    assert len(won) == pool, Counter(type(r).__name__ for r in results)
    assert all(isinstance(exc, OutOfStockError) for exc in lost), {repr(e) for e in lost}
    issued = await redemptions_of(db)
    assert len(issued) == pool
    assert len({r.code for r in issued}) == pool
    assert {r.code for r in issued} == {f"MOVIE-{n:04d}" for n in range(pool)}
    async with db.sessions() as session:
        codes = (await session.scalars(select(RewardCode).where(RewardCode.reward_id == reward_id))).all()
        by_id = {r.id: r for r in (await session.scalars(select(Redemption))).all()}
    assert {c.status for c in codes} == {"issued"}
    assert len({c.redemption_id for c in codes}) == pool
    for code in codes:
        assert code.redemption_id is not None
        assert by_id[code.redemption_id].code == code.code
    reward = await reward_row(db, reward_id)
    assert reward.issued_count == pool
    assert reward.stock is None
    balances = await assert_points_consistent(db, members)
    winners = {r.member_id for r in issued}
    assert all(balances[m] == (30 if m in winners else 50) for m in members)
