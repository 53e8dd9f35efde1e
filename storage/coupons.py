"""Reading a coupon at the store counter before it is used: the redemption a typed code names, with its
reward and owner. Using it stays Rewards.use's job (storage/rewards.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import Member, Redemption, Reward


@dataclass(frozen=True)
class Coupon:
    redemption: Redemption
    reward: Reward
    owner: Member


def state(redemption: Redemption, now: datetime) -> str:
    """issued, used, cancelled, or expired (an issued coupon past its expiry)."""
    if redemption.status == "issued" and redemption.expires_at <= now:
        return "expired"
    return redemption.status


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


async def verified(session: AsyncSession, store: str | None = None, *, limit: int = 50) -> list[Redemption]:
    """Newest first: the coupons used (核销), at `store` only when one is named."""
    stmt = select(Redemption).where(col(Redemption.status) == "used")
    if store is not None:
        stmt = stmt.where(col(Redemption.store) == store)
    stmt = stmt.order_by(col(Redemption.used_at).desc(), col(Redemption.id).desc()).limit(limit)
    return list((await session.scalars(stmt)).all())

