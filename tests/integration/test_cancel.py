"""Cancelling a redemption through the admin API: the points go back to the lots they came from with
their original expiry (what lapsed meanwhile is reported, not returned), the stock comes back, a pool
code is voided for good, and a redemption is cancelled at most once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from handlers import texts
from storage.clock import FrozenClock
from storage.models import LedgerEntry, LotMovement, Member, PointsLot, Redemption, RewardCode
from storage.rewards import OutOfStockError, Rewards
from tests.support.factories import TZ, local
from tests.support.fakes import ADMIN, WeChat
from tests.support.invariants import assert_points_consistent
from tests.support.redeem_support import add_members, add_reward, credit, redeem, reward_row, use_coupon


async def cancel(wechat: WeChat, redemption_id: int, headers: dict[str, str] = ADMIN) -> httpx.Response:
    return await wechat.client.post(f"/api/admin/redemptions/{redemption_id}/cancel", headers=headers)


def rewards_of(wechat: WeChat) -> Rewards:
    return Rewards(wechat.services.ledger)


async def lots_of(wechat: WeChat, member_id: int) -> list[PointsLot]:
    async with wechat.services.db.sessions() as session:
        return list((await session.scalars(
            select(PointsLot).where(PointsLot.member_id == member_id).order_by(PointsLot.id)
        )).all())


async def movements(wechat: WeChat, key: str) -> tuple[LedgerEntry, set[tuple[int, int]]]:
    async with wechat.services.db.sessions() as session:
        entry = await session.scalar(select(LedgerEntry).where(LedgerEntry.idempotency_key == key))
        assert entry is not None, key
        rows = (await session.execute(
            select(LotMovement.lot_id, LotMovement.amount).where(LotMovement.entry_id == entry.id)
        )).all()
    return entry, {(int(r[0]), int(r[1])) for r in rows}


async def redemption_row(wechat: WeChat, redemption_id: int) -> Redemption:
    async with wechat.services.db.sessions() as session:
        found = await session.get(Redemption, redemption_id)
    assert found is not None
    return found


async def one_member(wechat: WeChat, now: datetime, points: int = 0) -> int:
    return (await add_members(wechat.services.db, wechat.services.ledger, now, 1, points=points))[0]


async def test_cancel_after_partial_expiry_returns_points_to_their_lots(
    wechat: WeChat, clock: FrozenClock
) -> None:
    db, ledger = wechat.services.db, wechat.services.ledger
    member = await one_member(wechat, local(2025, 9, 1, 12))
    await credit(db, ledger, member, 100, local(2025, 9, 15, 12), key="lot:a")   # expires 2026-10-01
    await credit(db, ledger, member, 100, local(2025, 11, 15, 12), key="lot:b")  # expires 2026-12-01
    await credit(db, ledger, member, 100, local(2026, 3, 10, 12), key="lot:c")   # expires 2027-04-01
    lot_a, lot_b, lot_c = await lots_of(wechat, member)
    reward_id = await add_reward(db, local(2026, 1, 1, 12), name="周年礼盒", cost=250, stock=5, validity_days=365)
    issued = await redeem(db, rewards_of(wechat), member, reward_id, "chat:cancel-1", local(2026, 9, 20, 12))
    spend, taken = await movements(wechat, "redeem:chat:cancel-1")
    assert taken == {(lot_a.id, -100), (lot_b.id, -100), (lot_c.id, -50)}  # type: ignore[comparison-overlap]

    clock.set(local(2026, 11, 22, 10))  # lot A has lapsed, B and C are live
    response = await cancel(wechat, issued.redemption.id)  # type: ignore[arg-type]

    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": issued.redemption.id, "status": "cancelled", "points_restored": 150, "points_lapsed": 100,
    }
    entry, given = await movements(wechat, f"cancel:{issued.redemption.id}")
    assert (entry.kind, entry.delta, entry.balance_after) == ("cancel", 150, 200)
    assert given == {(lot_b.id, 100), (lot_c.id, 50)}  # type: ignore[comparison-overlap]
    after = {lot.id: lot for lot in await lots_of(wechat, member)}
    assert after[lot_a.id].remaining == 0
    assert (after[lot_b.id].remaining, after[lot_c.id].remaining) == (100, 100)
    for lot in (lot_a, lot_b, lot_c):  # the original expiry, untouched
        assert after[lot.id].expires_at == lot.expires_at
    assert after[lot_b.id].expires_at == datetime(2026, 12, 1, tzinfo=TZ)
    assert after[lot_c.id].expires_at == datetime(2027, 4, 1, tzinfo=TZ)
    assert len(after) == 3  # no new lot: the points went back where they came from
    assert (await assert_points_consistent(db, [member]))[member] == 200
    cancelled = await redemption_row(wechat, issued.redemption.id)  # type: ignore[arg-type]
    assert (cancelled.status, cancelled.cancelled_at) == ("cancelled", clock.now())
    reward = await reward_row(db, reward_id)
    assert (reward.stock, reward.issued_count) == (5, 0)


async def test_cancel_after_every_lot_lapsed_restores_nothing(wechat: WeChat, clock: FrozenClock) -> None:
    db, ledger = wechat.services.db, wechat.services.ledger
    member = await one_member(wechat, local(2025, 9, 1, 12))
    await credit(db, ledger, member, 300, local(2025, 9, 15, 12))  # expires 2026-10-01
    reward_id = await add_reward(db, local(2025, 9, 1, 12), cost=250, validity_days=365)
    issued = await redeem(db, rewards_of(wechat), member, reward_id, "chat:cancel-2", local(2025, 10, 1, 12))

    clock.set(local(2026, 11, 22, 10))
    response = await cancel(wechat, issued.redemption.id)  # type: ignore[arg-type]

    assert response.status_code == 200, response.text
    assert response.json()["points_restored"] == 0
    assert response.json()["points_lapsed"] == 250
    (lot,) = await lots_of(wechat, member)
    assert lot.remaining == 0
    assert (await assert_points_consistent(db, [member]))[member] == 0


async def test_cancel_returns_stock_and_the_next_member_can_redeem(wechat: WeChat, clock: FrozenClock) -> None:
    db, ledger = wechat.services.db, wechat.services.ledger
    first, second = await add_members(db, ledger, clock.now(), 2, points=100)
    reward_id = await add_reward(db, clock.now(), name="最后一件", cost=60, stock=1)
    issued = await redeem(db, rewards_of(wechat), first, reward_id, "k1", clock.now())
    with pytest.raises(OutOfStockError):
        await redeem(db, rewards_of(wechat), second, reward_id, "k2", clock.now())

    assert (await cancel(wechat, issued.redemption.id)).status_code == 200  # type: ignore[arg-type]

    assert (await reward_row(db, reward_id)).stock == 1
    again = await redeem(db, rewards_of(wechat), second, reward_id, "k2", clock.now())
    assert again.redemption.code != issued.redemption.code
    assert await assert_points_consistent(db, [first, second]) == {first: 100, second: 40}


async def test_cancel_voids_a_pool_code_for_good(wechat: WeChat, clock: FrozenClock) -> None:
    db, ledger = wechat.services.db, wechat.services.ledger
    members = await add_members(db, ledger, clock.now(), 3, points=100)
    reward_id = await add_reward(db, clock.now(), name="电影券", cost=30, kind="code_pool")
    async with db.unit_of_work() as session:
        await rewards_of(wechat).import_codes(session, reward_id, ["FILM-1", "FILM-2"])
    issued = await redeem(db, rewards_of(wechat), members[0], reward_id, "p1", clock.now())
    assert issued.redemption.code == "FILM-1"

    assert (await cancel(wechat, issued.redemption.id)).status_code == 200  # type: ignore[arg-type]

    async with db.sessions() as session:
        codes = {c.code: c for c in (await session.scalars(select(RewardCode))).all()}
    assert codes["FILM-1"].status == "void"
    assert codes["FILM-2"].status == "available"
    assert (await redeem(db, rewards_of(wechat), members[1], reward_id, "p2", clock.now())).redemption.code == "FILM-2"
    with pytest.raises(OutOfStockError):  # the voided code is never handed out again
        await redeem(db, rewards_of(wechat), members[2], reward_id, "p3", clock.now())
    reward = await reward_row(db, reward_id)
    assert (reward.stock, reward.issued_count) == (None, 1)
    assert (await use_coupon(wechat, "FILM-1")).status_code == 409  # a cancelled code cannot be used in store
    assert await assert_points_consistent(db, members) == {members[0]: 100, members[1]: 70, members[2]: 100}


async def test_cancelled_coupon_leaves_my_coupons(wechat: WeChat, clock: FrozenClock) -> None:
    db = wechat.services.db
    member = await one_member(wechat, clock.now(), points=100)
    reward_id = await add_reward(db, clock.now(), name="5元券", cost=50)
    issued = await redeem(db, rewards_of(wechat), member, reward_id, "c1", clock.now())
    async with db.sessions() as session:
        openid = await session.scalar(select(Member.openid).where(Member.id == member))
    assert openid is not None
    assert issued.redemption.code in await wechat.say(openid, "我的券")

    assert (await cancel(wechat, issued.redemption.id)).status_code == 200  # type: ignore[arg-type]

    assert await wechat.say(openid, "我的券") == texts.COUPONS_EMPTY
    assert (await assert_points_consistent(db, [member]))[member] == 100


async def test_cancel_refusals(wechat: WeChat, clock: FrozenClock) -> None:
    db = wechat.services.db
    member = await one_member(wechat, clock.now(), points=200)
    reward_id = await add_reward(db, clock.now(), cost=50)
    once = await redeem(db, rewards_of(wechat), member, reward_id, "r1", clock.now())
    used = await redeem(db, rewards_of(wechat), member, reward_id, "r2", clock.now())

    assert (await cancel(wechat, once.redemption.id)).status_code == 200  # type: ignore[arg-type]
    twice = await cancel(wechat, once.redemption.id)  # type: ignore[arg-type]
    assert twice.status_code == 409
    assert "cancelled" in twice.json()["message"]

    assert (await use_coupon(wechat, used.redemption.code)).status_code == 200
    after_use = await cancel(wechat, used.redemption.id)  # type: ignore[arg-type]
    assert after_use.status_code == 409
    assert "used" in after_use.json()["message"]

    assert (await cancel(wechat, 999_999)).status_code == 404
    assert (await cancel(wechat, used.redemption.id, headers={})).status_code == 401  # type: ignore[arg-type]
    wrong: dict[str, Any] = {"Authorization": "Bearer nope"}
    assert (await cancel(wechat, used.redemption.id, headers=wrong)).status_code == 401  # type: ignore[arg-type]
    # one cancel entry, nothing restored twice: 200 - 50 - 50 + 50
    assert (await assert_points_consistent(db, [member]))[member] == 150
    async with db.sessions() as session:
        cancels = (await session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "cancel"))).all()
    assert [c.delta for c in cancels] == [50]
