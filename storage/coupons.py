"""Reading a coupon at the store counter before it is used: the redemption a typed code names, with its
reward and owner. Using it stays Rewards.use's job (storage/rewards.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import Member, Redemption, Reward


@dataclass(frozen=True)
class Coupon:
    redemption: Redemption
    reward: Reward
    owner: Member


async def find(session: AsyncSession, code: str) -> Coupon | None:
    """The coupon `code` names, matched as Rewards.use matches it: exactly as issued, then upper-cased."""
    wanted = code.strip()
    for candidate in dict.fromkeys((wanted, wanted.upper())):
        row = (await session.execute(
            select(Redemption, Reward, Member).join(Reward, col(Redemption.reward_id) == col(Reward.id))
            .join(Member, col(Redemption.member_id) == col(Member.id)).where(col(Redemption.code) == candidate)
        )).first()
        if row is not None:
            return Coupon(*row)
    return None
