"""The balance summary both doors show (balance, tier progress, what expires and when): it reads, the ledger writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from storage.ledger import Ledger
from storage.models import Member
from storage.rows import row_id

EXPIRY_NOTICE = timedelta(days=30)


@dataclass(frozen=True)
class BalanceSummary:
    balance: int
    tier: str
    next_tier: str | None
    points_to_next_tier: int | None  # None at the top tier
    expiring_points: int  # in live lots expiring within EXPIRY_NOTICE
    expiring_on: date | None  # the last local day the earliest of them can still be spent


async def balance_summary(session: AsyncSession, ledger: Ledger, member: Member, now: datetime) -> BalanceSummary:
    """What the member has, in the caller's transaction. Lots already lapsed are expired first (keys
    `expire:<lot>`, so a repeat writes nothing), so the balance shown is one a spend would accept."""
    member_id = row_id(member)
    await ledger.expire_member(session, member_id, now)
    # The row expire_member locked, which the ledger keeps in step with what it wrote: no second read.
    balance = (await ledger.lock(session, member_id)).balance
    following = ledger.rules.next_tier(member.tier)
    to_next = None  # at the top tier there is nothing to qualify for
    if following is None:
        expiring, when = await ledger.expiring(session, member_id, now, EXPIRY_NOTICE)
    else:
        expiring, when, qualifying = await ledger.standing(session, member_id, now, EXPIRY_NOTICE)
        to_next = max(following.threshold - qualifying, 0)
    return BalanceSummary(
        balance=balance, tier=member.tier,
        next_tier=following.name if following else None,
        points_to_next_tier=to_next,
        expiring_points=expiring,
        expiring_on=(when.astimezone(ledger.tz) - timedelta(days=1)).date() if when else None,
    )
