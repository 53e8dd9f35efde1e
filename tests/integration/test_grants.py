"""Granted coupons (issue 17 item 1): Rewards.grant gives a reward without points, once per
`grant:{reason}:{member}:{period}`, counted in the stock and the limits, shown in 我的券 through signed XML,
and never a ledger entry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from handlers import texts
from storage.clock import FrozenClock
from storage.db import Database
from storage.models import LedgerEntry, Member
from storage.rewards import (
    Issued,
    LimitReachedError,
    NotMemberError,
    OutOfStockError,
    RewardEndedError,
    Rewards,
    grant_key,
)
from tests.e2e.test_redeem_chat import ALICE, BOB, join, reward
from tests.support.fakes import WeChat
from tests.support.invariants import assert_points_consistent
from tests.support.redeem_support import add_members, add_reward, make_rewards, redemptions_of, reward_row

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


async def grant(wechat: WeChat, member_id: int, reward_id: int, period: str, reason: str = "operator"):  # type: ignore[no-untyped-def]
    services = wechat.services
    async with services.db.unit_of_work() as session:
        return await services.rewards.grant(session, member_id, reward_id, period=period,
                                            now=services.clock.now(), reason=reason)


async def ledger_count(wechat: WeChat, member_id: int) -> int:
    async with wechat.services.db.sessions() as session:
        return int(await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.member_id == member_id)
        ) or 0)


async def test_a_grant_twice_gives_one_coupon_and_no_points(wechat: WeChat, clock: FrozenClock) -> None:
    member = await join(wechat)
    reward_id = await reward(wechat, name="咖啡券", cost=300, stock=5, validity_days=10)
    entries_before = await ledger_count(wechat, member)

    first = await grant(wechat, member, reward_id, "r1")
    again = await grant(wechat, member, reward_id, "r1")

    assert not first.repeated
    assert again.repeated
    assert again.redemption.id == first.redemption.id
    assert again.redemption.code == first.redemption.code
    rows = await redemptions_of(wechat.services.db, member_id=member)
    assert len(rows) == 1
    (row,) = rows
    assert (row.cost, row.granted, row.request_key) == (0, "operator", grant_key("operator", member, "r1"))
    assert row.request_key == f"grant:operator:{member}:r1"
    stored = await reward_row(wechat.services.db, reward_id)
    assert (stored.stock, stored.issued_count) == (4, 1)
    # No ledger entry: the balance is still the sign-up's 100 and the books balance.
    assert await ledger_count(wechat, member) == entries_before
    assert (await assert_points_consistent(wechat.services.db, [member]))[member] == 100
    # The reward's validity: 10 days after the local day of the grant (2026-11-22).
    assert "咖啡券：" + row.code + "（有效期至 2026-12-02）" in await wechat.say(ALICE, "我的券")


async def test_my_coupons_shows_a_granted_coupon_beside_a_bought_one(wechat: WeChat, clock: FrozenClock) -> None:
    member = await join(wechat)
    gift = await reward(wechat, name="生日蛋糕券", cost=999)
    await grant(wechat, member, gift, "2026", reason="birthday")
    services = wechat.services
    bought_id = await reward(wechat, name="5元券", cost=50)
    async with services.db.unit_of_work() as session:
        bought = await services.rewards.redeem(session, member, bought_id, request_key="b1", now=clock.now())

    shown = await wechat.say(ALICE, "我的券")

    assert shown.startswith(texts.COUPONS_HEAD)
    (given,) = [r for r in await redemptions_of(services.db, member_id=member) if r.granted]
    assert f"生日蛋糕券：{given.code}" in shown
    assert f"5元券：{bought.redemption.code}" in shown
    assert (await assert_points_consistent(services.db, [member]))[member] == 50


async def test_a_grant_past_the_stock_is_refused_and_writes_nothing(wechat: WeChat, clock: FrozenClock) -> None:
    alice, bob = await join(wechat), await join(wechat, BOB, "13800138001")
    reward_id = await reward(wechat, name="限量券", stock=1)
    await grant(wechat, alice, reward_id, "r1")

    with pytest.raises(OutOfStockError):
        await grant(wechat, bob, reward_id, "r1")

    assert await redemptions_of(wechat.services.db, member_id=bob) == []
    stored = await reward_row(wechat.services.db, reward_id)
    assert (stored.stock, stored.issued_count) == (0, 1)


async def test_grants_count_in_the_total_and_per_member_limits(wechat: WeChat, clock: FrozenClock) -> None:
    alice, bob = await join(wechat), await join(wechat, BOB, "13800138001")
    per_member = await reward(wechat, name="每人一张", per_member_limit=1)
    await grant(wechat, alice, per_member, "r1")
    with pytest.raises(LimitReachedError):
        await grant(wechat, alice, per_member, "r2")
    # A purchase after the gift meets the same limit: the gift counted.
    async with wechat.services.db.unit_of_work() as session:
        with pytest.raises(LimitReachedError):
            await wechat.services.rewards.redeem(session, alice, per_member, request_key="buy", now=clock.now())

    total = await reward(wechat, name="共两张", total_limit=1)
    await grant(wechat, alice, total, "t1")
    with pytest.raises(OutOfStockError):
        await grant(wechat, bob, total, "t1")
    assert [r.reward_id for r in await redemptions_of(wechat.services.db, member_id=alice)] == [per_member, total]
    assert await redemptions_of(wechat.services.db, member_id=bob) == []
    assert (await reward_row(wechat.services.db, total)).issued_count == 1


async def test_a_grant_of_an_ended_reward_or_to_a_non_member_is_refused(wechat: WeChat, clock: FrozenClock) -> None:
    member = await join(wechat)
    ended = await reward(wechat, name="下架券", active=False)
    with pytest.raises(RewardEndedError):
        await grant(wechat, member, ended, "r1")
    live = await reward(wechat, name="在售券")
    async with wechat.services.db.unit_of_work() as session:  # followed the account, never signed up
        stranger = Member(openid="oSTRANGER000000000000grant", referral_code="STRANGE1", created_at=clock.now())
        session.add(stranger)
        await session.flush()
        stranger_id = stranger.id
    assert stranger_id is not None
    with pytest.raises(NotMemberError):
        await grant(wechat, stranger_id, live, "r1")
    assert await redemptions_of(wechat.services.db) == []


async def test_a_cancelled_gift_returns_the_stock_and_no_points(wechat: WeChat, clock: FrozenClock) -> None:
    member = await join(wechat)
    reward_id = await reward(wechat, name="礼品券", stock=2)
    given = await grant(wechat, member, reward_id, "r1")
    async with wechat.services.db.unit_of_work() as session:
        _, restored = await wechat.services.rewards.cancel(session, given.redemption.id, clock.now())
    assert restored == 0
    assert (await reward_row(wechat.services.db, reward_id)).stock == 2
    assert (await assert_points_consistent(wechat.services.db, [member]))[member] == 100
    assert await wechat.say(ALICE, "我的券") == texts.COUPONS_EMPTY


# --- under concurrency (each grant its own connection, all at once; PostgreSQL is the one that matters) ----

async def _grant_all(db: Database, rewards: Rewards, calls: list[tuple[int, int, str]]) -> list[object]:
    async def one(member_id: int, reward_id: int, period: str) -> Issued:
        async with db.unit_of_work() as session:
            return await rewards.grant(session, member_id, reward_id, period=period, now=NOW, reason="operator")
    return await asyncio.gather(*(one(*call) for call in calls), return_exceptions=True)


async def test_the_same_grant_at_once_gives_one_coupon(urls: tuple[str, str]) -> None:
    db = Database(urls[0], pool_size=20, max_overflow=40)
    try:
        rewards = make_rewards()
        (member,) = await add_members(db, rewards.ledger, NOW, 1)
        reward_id = await add_reward(db, NOW, stock=10)
        results = await _grant_all(db, rewards, [(member, reward_id, "same")] * 8)
        issued = [r for r in results if isinstance(r, Issued)]
        assert len(issued) == 8  # every caller gets the one coupon back
        assert len({r.redemption.id for r in issued}) == 1
        assert sum(not r.repeated for r in issued) == 1
        assert len(await redemptions_of(db, member_id=member)) == 1
        assert (await reward_row(db, reward_id)).stock == 9
    finally:
        await db.dispose()


async def test_grants_racing_for_the_last_coupon_never_oversell(urls: tuple[str, str]) -> None:
    db = Database(urls[0], pool_size=20, max_overflow=40)
    try:
        rewards = make_rewards()
        members = await add_members(db, rewards.ledger, NOW, 8)
        reward_id = await add_reward(db, NOW, stock=3)
        results = await _grant_all(db, rewards, [(m, reward_id, "race") for m in members])
        won = [r for r in results if isinstance(r, Issued)]
        assert len(won) == 3
        assert all(isinstance(r, OutOfStockError) for r in results if not isinstance(r, Issued))
        stored = await reward_row(db, reward_id)
        assert (stored.stock, stored.issued_count) == (0, 3)
        assert len(await redemptions_of(db)) == 3
    finally:
        await db.dispose()
