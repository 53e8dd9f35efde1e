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


def spellings(code: str) -> tuple[str, ...]:
    """How a typed code is matched, in order: exactly as issued (pool codes keep the POS's case), then
    upper-cased (the codes wxbot generates). The one rule for Rewards.use and the counter's look-up."""
    wanted = code.strip()
    return tuple(dict.fromkeys((wanted, wanted.upper())))


async def find(session: AsyncSession, code: str) -> Coupon | None:
    """The coupon `code` names (see `spellings`), with its reward and owner."""
    for candidate in spellings(code):
        row = (await session.execute(
            select(Redemption, Reward, Member).join(Reward, col(Redemption.reward_id) == col(Reward.id))
            .join(Member, col(Redemption.member_id) == col(Member.id)).where(col(Redemption.code) == candidate)
        )).first()
        if row is not None:
            return Coupon(*row)
    return None
