"""Granted coupons (issue 17 item 1): Rewards.grant gives a reward without points, once per
`grant:{reason}:{member}:{period}`, counted in the stock and the limits, shown in 我的券 through signed XML,
and never a ledger entry."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from handlers import texts
from storage.clock import FrozenClock
from storage.models import LedgerEntry, Member
from storage.rewards import LimitReachedError, NotMemberError, OutOfStockError, RewardEndedError, grant_key
from tests.e2e.test_redeem_chat import ALICE, BOB, join, reward
from tests.support.fakes import WeChat
from tests.support.invariants import assert_points_consistent
from tests.support.redeem_support import redemptions_of, reward_row


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
