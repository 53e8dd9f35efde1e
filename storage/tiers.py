"""The monthly tier review: members whose qualifying points no longer hold their tier go down one
level, once per month (`tier_reviewed_month`); upgrades happen at once in the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlmodel import col

from storage.db import Database
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
        if wanted < current:
            member.tier = ledger.rules.one_level_down(member.tier).name
            review.downgraded += 1
        elif wanted > current:
            member.tier = target.name
            review.upgraded += 1
