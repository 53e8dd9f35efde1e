"""The monthly tier review: members whose qualifying points no longer hold their tier go down one
level, once per month (`tier_reviewed_month`); upgrades happen at once in the ledger. An operator's tier
hold (`tier_hold_until`) keeps a member from going down through that local day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from storage import audit
from storage.audit import Actor
from storage.clock import local_date
from storage.db import Database
from storage.errors import DomainError
from storage.ledger import Ledger
from storage.members import ACTIVE, UNSUBSCRIBED
from storage.models import Member
from storage.rows import affected


@dataclass
class TierReview:
    reviewed: int = 0
    downgraded: int = 0
    upgraded: int = 0


def unreviewed(month: str) -> Any:
    """Members whose tier is due for review in `month` (YYYY-MM): joined, not deleted, not yet reviewed."""
    return (
        select(col(Member.id)).where(col(Member.joined_at).is_not(None))
        .where(col(Member.status).in_((ACTIVE, UNSUBSCRIBED)))
        .where(or_(col(Member.tier_reviewed_month).is_(None), col(Member.tier_reviewed_month) != month))
    )


async def review_tiers(db: Database, ledger: Ledger, now: datetime, batch: int = 500) -> TierReview:
    """Review every member not yet reviewed this month, each in its own transaction.
    Safe to run twice (or from two processes): the month marker is set by a conditional update."""
    month = f"{now.astimezone(ledger.tz):%Y-%m}"
    review = TierReview()
    last_id = 0
    while True:
        async with db.sessions() as session:
            ids = list((await session.scalars(
                unreviewed(month).where(col(Member.id) > last_id).order_by(col(Member.id)).limit(batch)
            )).all())
        if not ids:
            return review
        for member_id in ids:
            await _review_one(db, ledger, member_id, month, now, review)
        last_id = ids[-1]


async def _review_one(
    db: Database, ledger: Ledger, member_id: int, month: str, now: datetime, review: TierReview
) -> None:
    async with db.unit_of_work() as session:
        member = await ledger.lock(session, member_id)
        claimed = await session.execute(
            update(Member).where(col(Member.id) == member_id)
            .where(or_(col(Member.tier_reviewed_month).is_(None), col(Member.tier_reviewed_month) != month))
            .values(tier_reviewed_month=month)
        )
        if not affected(claimed):
            return
        review.reviewed += 1
        target = ledger.rules.tier_for(await ledger.qualifying_points(session, member_id, now))
        current = ledger.rules.tier_rank(member.tier)
        wanted = ledger.rules.tier_rank(target.name)
        if wanted < current and not held(member.tier_hold_until, local_date(now, ledger.tz)):
            member.tier = ledger.rules.one_level_down(member.tier).name
            review.downgraded += 1
        elif wanted > current:
            member.tier = target.name
            review.upgraded += 1
            await ledger.upgraded(session, member_id, target.name, now)


def held(hold_until: date | None, today: date) -> bool:
    """A hold covers every local day up to and including `hold_until`."""
    return hold_until is not None and today <= hold_until


class InvalidHoldError(DomainError):
    """A tier hold that cannot be set: `field` (tier or until) says which value is wrong."""

    text_key = "error_invalid"

    def __init__(self, field: str = "") -> None:
        super().__init__(f"{field}: invalid")
        self.field = field


async def hold_tier(
    session: AsyncSession, ledger: Ledger, member_id: int, tier: str | None, until: date | None, *,
    actor: Actor, now: datetime, client: str | None = None,
) -> bool:
    """Set the member's tier and hold it through the local day `until` (after today), or clear the hold
    (tier and until both None: the tier stays, the next review judges it). Audited `tier.hold` with the
    tier and hold before and after. Returns False when nothing changed (a repeat sets the same values)."""
    if (tier is None) != (until is None):
        raise InvalidHoldError("tier" if tier is None else "until")
    if tier is not None and tier not in {t.name for t in ledger.rules.tiers}:
        raise InvalidHoldError("tier")
    if until is not None and until <= local_date(now, ledger.tz):
        raise InvalidHoldError("until")
    member = await ledger.lock(session, member_id)  # one at a time with the ledger's own upgrades
    before = {"tier": member.tier, "hold_until": member.tier_hold_until}
    after = {"tier": tier or member.tier, "hold_until": until}
    if before == after:
        return False
    await session.execute(update(Member).where(col(Member.id) == member_id)
                          .values(tier=after["tier"], tier_hold_until=until))
    set_committed_value(member, "tier", after["tier"])  # the ledger's loaded row follows, not marked dirty
    set_committed_value(member, "tier_hold_until", until)
    await audit.record(session, actor, "tier.hold", f"member:{member_id}", now=now, client=client,
                       before=before, after=after)
    return True
