"""Daily check-in: once per local calendar day per member, with the streak bonus, through the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.clock import local_date
from storage.direct import Statement, fetch_value
from storage.ledger import Ledger, Movement
from storage.models import Checkin, Member, WinbackOffer
from storage.reasons import BOOST, Reason
from storage.rows import row_id, table_of
from storage.rules import Multiplier

_CHECKINS = table_of(Checkin)
_RECORD = Statement("checkins.record", lambda insert, _: insert(_CHECKINS).values(
    {c: bindparam(c) for c in ("member_id", "day", "streak", "created_at")}
).on_conflict_do_nothing(index_elements=["member_id", "day"]).returning(_CHECKINS.c.id))


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
    boost: Multiplier | None = None  # the multiplier that gave the check-in points (None: the plain points)


async def check_in(session: AsyncSession, ledger: Ledger, member_id: int, now: datetime) -> CheckinResult:
    """Credit today's check-in once (`checkin:<member>:<day>`, plus `streak:<member>:<day>` on every
    streak_days-th day). A second call the same day credits nothing and says so (already=True).

    The member's row, locked first, holds the last check-in and its streak, so a check-in reads no
    other table; the checkin table's unique (member, day) keeps the record and a second guard."""
    rules = ledger.rules
    day = local_date(now, ledger.tz)
    member = await ledger.lock(session, member_id)  # one member's check-ins run one at a time
    if member.checkin_day == day:
        return CheckinResult(day, member.checkin_streak, 0, 0, member.balance, already=True)
    # The row's record of the last check-in moves forward only: a past day (the clock set back, a
    # re-run) takes its streak from the table and leaves the row alone.
    forward = member.checkin_day is None or day > member.checkin_day
    if forward:
        streak = member.checkin_streak + 1 if member.checkin_day == day - timedelta(days=1) else 1
    else:
        streak = (await _streak_on(session, member_id, day - timedelta(days=1)) or 0) + 1
    if not await _record(session, member_id, day, streak, now):
        today = await _streak_on(session, member_id, day)
        return CheckinResult(day, today or streak, 0, 0, member.balance, already=True)
    # The check-in's local day picks the multiplier (the streak bonus is not multiplied); the daily cap
    # applies to the multiplied points like to any other non-purchase earning.
    boost = rules.multiplier_for(day, "checkin", member.tier)
    points = boost.apply(rules.checkin_points) if boost else rules.checkin_points
    earned = await ledger.earn(
        session, member_id, points, key=f"checkin:{member_id}:{day}", kind="checkin", now=now,
        reason=Reason.CHECKIN.stored(**{BOOST: boost.name}) if boost else Reason.CHECKIN.stored(),
        also={"checkin_day": day, "checkin_streak": streak} if forward else None,
    )
    bonus_points = rules.streak_bonus_for(streak)
    final = earned
    if bonus_points:
        final = await ledger.earn(
            session, member_id, bonus_points, key=f"streak:{member_id}:{day}", kind="streak",
            now=now, reason=Reason.STREAK.stored(days=streak),
        )
    welcome = await _honour_winback(session, ledger, member, now)
    return CheckinResult(
        day, streak, earned.delta, final.delta if bonus_points else 0,
        welcome.balance if welcome else final.balance,
        upgraded_to=(welcome.upgraded_to if welcome else None) or final.upgraded_to or earned.upgraded_to,
        capped=earned.capped or (bool(bonus_points) and final.capped),
        winback=welcome.delta if welcome else 0, boost=boost,
    )


async def _streak_on(session: AsyncSession, member_id: int, day: date) -> int | None:
    return await session.scalar(
        select(col(Checkin.streak)).where(col(Checkin.member_id) == member_id).where(col(Checkin.day) == day)
    )


async def _record(session: AsyncSession, member_id: int, day: date, streak: int, now: datetime) -> bool:
    params = {"member_id": member_id, "day": day, "streak": streak, "created_at": now}
    return await fetch_value(session, _RECORD, params) is not None


async def _honour_winback(session: AsyncSession, ledger: Ledger, member: Member, now: datetime) -> Movement | None:
    """A win-back push promised bonus points on the next check-in within its window (`winback:<offer>`).
    The row's winback_until says whether an offer is open, so most check-ins look no further."""
    if member.winback_until is None or member.winback_until <= now:
        return None
    offer = await session.scalar(
        select(WinbackOffer).where(col(WinbackOffer.member_id) == member.id)
        .where(col(WinbackOffer.redeemed_at).is_(None)).where(col(WinbackOffer.offered_at) <= now)
        .where(col(WinbackOffer.valid_until) > now).order_by(col(WinbackOffer.offered_at).desc()).limit(1)
    )
    if offer is None:
        return None
    offer.redeemed_at = now
    return await ledger.earn(
        session, row_id(member), offer.points, key=f"winback:{offer.id}", kind="winback", now=now,
        reason=Reason.WINBACK.stored(), also={"winback_until": None},
    )
