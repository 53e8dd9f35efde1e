"""Builders for the redemption tests: joined members written straight to the table, points credited
through the ledger, rewards and redemptions as rows."""

from __future__ import annotations

import secrets
import string
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select

from storage.db import Database
from storage.ledger import Ledger
from storage.models import LedgerEntry, Member, PointsLot, Redemption, Reward
from storage.rewards import Issued, Rewards
from storage.rules import Rules
from tests.support.factories import make_ledger
from tests.support.fakes import ADMIN, WeChat


def make_rewards(rules: Rules | None = None) -> Rewards:
    return Rewards(make_ledger(rules))


async def add_members(
    db: Database, ledger: Ledger, now: datetime, count: int, *, points: int = 0, tier: str = "普通",
) -> list[int]:
    """`count` joined members holding `points` each: the rows Ledger.earn would write (one entry and one
    lot per member, key `seed:<member>`), inserted in bulk so that a hundred members take milliseconds."""
    async with db.unit_of_work() as session:
        members = [
            Member(
                openid="o" + "".join(secrets.choice(string.ascii_letters) for _ in range(24)),
                referral_code=secrets.token_hex(4).upper(),
                tier=tier, balance=points, joined_at=now, created_at=now, last_interaction_at=now,
            )
            for _ in range(count)
        ]
        session.add_all(members)
        await session.flush()
        if points:
            entries = [
                LedgerEntry(
                    member_id=m.id, delta=points, kind="adjust", idempotency_key=f"seed:{m.id}",  # type: ignore[arg-type]
                    balance_after=points, created_at=now,
                )
                for m in members
            ]
            session.add_all(entries)
            await session.flush()
            session.add_all([
                PointsLot(
                    member_id=e.member_id, entry_id=e.id, amount=points, remaining=points,  # type: ignore[arg-type]
                    earned_at=now, expires_at=ledger.rules.lot_expiry(now, ledger.tz),
                )
                for e in entries
            ])
        return [m.id for m in members]  # type: ignore[misc]


async def credit(
    db: Database, ledger: Ledger, member_id: int, points: int, now: datetime, key: str | None = None
) -> None:
    async with db.unit_of_work() as session:
        await ledger.earn(
            session, member_id, points, key=key or f"credit:{secrets.token_hex(6)}", kind="adjust", now=now,
        )


async def add_reward(db: Database, now: datetime, **fields: Any) -> int:
    values: dict[str, Any] = {"name": "测试券", "description": "测试用", "cost": 50, "kind": "coupon"}
    values.update(fields)
    async with db.unit_of_work() as session:
        reward = Reward(**values, created_at=now)
        session.add(reward)
        await session.flush()
        assert reward.id is not None
        return reward.id


async def redeem(
    db: Database, rewards: Rewards, member_id: int, reward_id: int, key: str, now: datetime
) -> Issued:
    """One redemption in its own unit of work, as the chat flow and the Mini Program API do it."""
    async with db.unit_of_work() as session:
        return await rewards.redeem(session, member_id, reward_id, request_key=key, now=now)


async def reward_row(db: Database, reward_id: int) -> Reward:
    async with db.sessions() as session:
        reward = await session.get(Reward, reward_id)
    assert reward is not None
    return reward


async def redemptions_of(db: Database, *, member_id: int | None = None) -> list[Redemption]:
    stmt = select(Redemption).order_by(Redemption.id)
    if member_id is not None:
        stmt = stmt.where(Redemption.member_id == member_id)
    async with db.sessions() as session:
        return list((await session.scalars(stmt)).all())


async def balance_of(db: Database, member_id: int) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(Member.balance).where(Member.id == member_id)) or 0)


async def use_coupon(wechat: WeChat, code: str) -> httpx.Response:
    """The store verifies a coupon (核销) through the admin API."""
    return await wechat.client.post(f"/api/admin/coupons/{code}/use", headers=ADMIN)
