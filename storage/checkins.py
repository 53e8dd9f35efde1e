"""Daily check-in: once per local calendar day per member, with the streak bonus, through the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.clock import local_date
from storage.db import dialect_insert
from storage.ledger import Ledger, Movement
from storage.models import Checkin, WinbackOffer


@dataclass(frozen=True)
class CheckinResult:
    day: date
    streak: int
    points: int
    bonus: int
    balance: int
    already: bool = False
    upgraded_to: str | None = None
    capped: bool = False
    winback: int = 0


async def check_in(session: AsyncSession, ledger: Ledger, member_id: int, now: datetime) -> CheckinResult:
    """Credit today's check-in once (`checkin:<member>:<day>`, plus `streak:<member>:<day>` on every
    streak_days-th day). A second call the same day credits nothing and says so (already=True)."""
    rules = ledger.rules
    day = local_date(now, ledger.tz)
    await ledger.lock(session, member_id)  # one member's check-ins run one at a time
    yesterday = await session.scalar(
        select(Checkin.streak).where(Checkin.member_id == member_id)
        .where(Checkin.day == day - timedelta(days=1))
    )
    streak = (yesterday or 0) + 1
    inserted = await session.scalar(
        dialect_insert(session)(Checkin)
        .values(member_id=member_id, day=day, streak=streak, created_at=now)
        .on_conflict_do_nothing(index_elements=["member_id", "day"])
        .returning(Checkin.id)
    )
    if inserted is None:
        today = await session.scalar(
            select(Checkin.streak).where(Checkin.member_id == member_id).where(Checkin.day == day)
        )
        balance = await ledger.balance(session, member_id)
        return CheckinResult(day, int(today or streak), 0, 0, balance, already=True)
    earned = await ledger.earn(
        session, member_id, rules.checkin_points, key=f"checkin:{member_id}:{day}", kind="checkin",
        now=now, reason="每日签到",
    )
    bonus_points = rules.streak_bonus_for(streak)
    final = earned
    if bonus_points:
        final = await ledger.earn(
            session, member_id, bonus_points, key=f"streak:{member_id}:{day}", kind="streak",
            now=now, reason=f"连续签到 {streak} 天奖励",
        )
    welcome = await _honour_winback(session, ledger, member_id, now)
    return CheckinResult(
        day, streak, earned.delta, final.delta if bonus_points else 0,
        welcome.balance if welcome else final.balance,
        upgraded_to=(welcome.upgraded_to if welcome else None) or final.upgraded_to or earned.upgraded_to,
        capped=earned.capped or (bool(bonus_points) and final.capped),
        winback=welcome.delta if welcome else 0,
    )


async def _honour_winback(session: AsyncSession, ledger: Ledger, member_id: int, now: datetime) -> Movement | None:
    """A win-back push promised bonus points on the next check-in within its window (`winback:<offer>`)."""
    offer = await session.scalar(
        select(WinbackOffer).where(WinbackOffer.member_id == member_id)
        .where(WinbackOffer.redeemed_at.is_(None)).where(WinbackOffer.offered_at <= now)  # type: ignore[union-attr]
        .where(WinbackOffer.valid_until > now).order_by(WinbackOffer.offered_at.desc()).limit(1)  # type: ignore[union-attr]
    )
    if offer is None:
        return None
    offer.redeemed_at = now
    return await ledger.earn(
        session, member_id, offer.points, key=f"winback:{offer.id}", kind="winback", now=now,
        reason="回归礼",
    )
