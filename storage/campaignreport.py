"""The campaign report: what a campaign cost and what it sold, computed in SQL over the tables.

Windows are programme-local days, both ends included:
- the campaign's days: from the local day it was created to the local day it ended (settled early, or
  its `ends_at`; an open campaign's later days simply have no orders yet);
- "after": the 14 local days following the last campaign day;
- "before": the 28 local days preceding the first campaign day.

Participants are the campaign's members (campaign_member). Their paid orders count as storage.reports
counts them: by the order's time, net of what was refunded on it, a fully refunded order not at all.

The comparison group is every member who is not a participant, whose tier is one of the participants'
tiers (tiers as they are now: the programme keeps no tier history) and who was a member when the
campaign ended (signed up by then, not left by then).

Definition (the console's footnote says the same in Chinese):
    incremental sales = (participants' sales in the campaign days and the 14 days after ÷ participants
                         − the comparison group's sales in the same days ÷ its members) × participants
    cost              = points paid by the campaign (its `campaign` ledger entries) × point_value_fen
    ROI               = incremental sales ÷ cost; None when the cost is 0.
Incremental sales are None when the comparison group is empty (nothing to compare with); 0 when the
campaign has no participants. Money is in fen; incremental sales are rounded to the fen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.campaigns import Campaigns
from storage.clock import local_date
from storage.models import Campaign, CampaignMember, LedgerEntry, Member, PurchaseOrder
from storage.reports import NET_FEN, PAID, members_at

AFTER_DAYS = 14
BEFORE_DAYS = 28


@dataclass(frozen=True)
class Sales:
    orders: int
    fen: int


@dataclass(frozen=True)
class CampaignReport:
    campaign: Campaign
    first_day: date  # the campaign's first local day
    last_day: date  # its last local day
    participants: int
    joins_per_day: list[tuple[date, int]]
    points_paid: int
    cost_fen: int
    before: Sales  # the participants', the 28 days before
    during: Sales  # the participants', the campaign's days
    after: Sales  # the participants', the 14 days after
    tiers: tuple[str, ...]  # the participants' tiers
    comparison_members: int
    comparison_before: Sales  # the comparison group's, the 28 days before
    comparison: Sales  # the comparison group's, the campaign's days and the 14 after

    @property
    def after_last_day(self) -> date:
        return self.last_day + timedelta(days=AFTER_DAYS)

    @property
    def before_first_day(self) -> date:
        return self.first_day - timedelta(days=BEFORE_DAYS)

    @property
    def sales_fen(self) -> int:
        """The participants' sales in the campaign's days and the 14 days after."""
        return self.during.fen + self.after.fen

    @property
    def per_participant_fen(self) -> float | None:
        return self.sales_fen / self.participants if self.participants else None

    @property
    def per_participant_before_fen(self) -> float | None:
        return self.before.fen / self.participants if self.participants else None

    @property
    def per_comparison_fen(self) -> float | None:
        return self.comparison.fen / self.comparison_members if self.comparison_members else None

    @property
    def per_comparison_before_fen(self) -> float | None:
        return self.comparison_before.fen / self.comparison_members if self.comparison_members else None

    @property
    def incremental_fen(self) -> int | None:
        if not self.participants:
            return 0
        if not self.comparison_members:
            return None
        return round(self.sales_fen - self.comparison.fen * self.participants / self.comparison_members)

    @property
    def roi(self) -> float | None:
        incremental = self.incremental_fen
        if not self.cost_fen or incremental is None:
            return None
        return round(incremental / self.cost_fen, 2)


def yuan(fen: float) -> str:
    """Money as the report reads it, on every surface: ¥1,234.50, -¥12.00 (rounded to the fen)."""
    cents = round(fen)
    return f"{'-' if cents < 0 else ''}¥{abs(cents) / 100:,.2f}"


def _start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def campaign_days(campaign: Campaign, tz: ZoneInfo) -> tuple[date, date]:
    """The campaign's first and last local days: created, to ended (settled early, or `ends_at`)."""
    end = min(campaign.ends_at, campaign.settled_at) if campaign.settled_at else campaign.ends_at
    first = local_date(campaign.created_at, tz)
    return first, max(first, local_date(end - timedelta(microseconds=1), tz))


def _sales(orders: Any, fen: Any) -> Sales:
    return Sales(int(orders or 0), int(fen or 0))


async def report(
    session: AsyncSession, campaigns: Campaigns, campaign: Campaign, *, joins: bool = True,
) -> CampaignReport:
    """Every figure of one campaign (see the module's docstring), read-only. `joins`: with joins per day."""
    tz, rules = campaigns.ledger.tz, campaigns.ledger.rules
    first, last = campaign_days(campaign, tz)
    before_start, start = _start(first - timedelta(days=BEFORE_DAYS), tz), _start(first, tz)
    end, after_end = _start(last + timedelta(days=1), tz), _start(last + timedelta(days=AFTER_DAYS + 1), tz)
    at = col(PurchaseOrder.created_at)
    before, during, after = (and_(at >= before_start, at < start), and_(at >= start, at < end),
                             and_(at >= end, at < after_end))
    in_any = and_(PAID, at >= before_start, at < after_end)
    joined = select(col(CampaignMember.member_id)).where(col(CampaignMember.campaign_id) == campaign.id)

    def figures(window: Any) -> tuple[Any, Any]:
        return func.count(col(PurchaseOrder.id)).filter(window), func.sum(NET_FEN).filter(window)

    row = (await session.execute(
        select(func.count(distinct(col(CampaignMember.member_id))), *figures(before), *figures(during),
               *figures(after))
        .select_from(CampaignMember)
        .outerjoin(PurchaseOrder, and_(col(PurchaseOrder.member_id) == CampaignMember.member_id, in_any))
        .where(col(CampaignMember.campaign_id) == campaign.id)
    )).one()
    participants = int(row[0])
    tiers = tuple(sorted((await session.scalars(
        select(col(Member.tier)).where(col(Member.id).in_(joined)).distinct()
    )).all()))
    points = int(await session.scalar(
        select(func.coalesce(func.sum(col(LedgerEntry.delta)), 0)).where(
            col(LedgerEntry.member_id).in_(joined), col(LedgerEntry.kind) == "campaign",
            col(LedgerEntry.ref) == campaign.code,
        )
    ) or 0)
    comparison = (await session.execute(
        select(func.count(distinct(col(Member.id))), *figures(before), *figures(or_(during, after)))
        .select_from(Member)
        .outerjoin(PurchaseOrder, and_(col(PurchaseOrder.member_id) == Member.id, in_any))
        .where(col(Member.tier).in_(tiers), col(Member.id).not_in(joined), members_at(end))
    )).one() if tiers else (0, 0, 0, 0, 0)
    return CampaignReport(
        campaign=campaign, first_day=first, last_day=last, participants=participants,
        joins_per_day=await campaigns.joins_per_day(session, campaign) if joins else [],
        points_paid=points, cost_fen=points * rules.point_value_fen,
        before=_sales(row[1], row[2]), during=_sales(row[3], row[4]), after=_sales(row[5], row[6]),
        tiers=tiers, comparison_members=int(comparison[0]),
        comparison_before=_sales(comparison[1], comparison[2]), comparison=_sales(comparison[3], comparison[4]),
    )


async def side_by_side(
    session: AsyncSession, campaigns: Campaigns, *, first: date | None = None, last: date | None = None,
    limit: int = 200,
) -> list[CampaignReport]:
    """Every campaign (newest first, at most `limit`), or those whose days meet the local days from
    `first` to `last` (both included), each with its report (joins per day left out)."""
    tz = campaigns.ledger.tz
    stmt = select(Campaign).order_by(col(Campaign.id).desc()).limit(limit)
    if last is not None:
        stmt = stmt.where(col(Campaign.created_at) < _start(last + timedelta(days=1), tz))
    if first is not None:
        since = _start(first, tz)
        stmt = stmt.where(col(Campaign.ends_at) > since).where(
            or_(col(Campaign.settled_at).is_(None), col(Campaign.settled_at) > since))
    found: Sequence[Campaign] = (await session.scalars(stmt)).all()
    return [await report(session, campaigns, c, joins=False) for c in found]
