"""Sharing that keeps its promise: a member's own `ref_<code>` poster (a temporary QR kept until it lapses),
the channel (`chan_<name>`) that first brought a member, the scans of every sharing QR, and typed referral
codes checked before sign-up (own, unknown, over the referrer's monthly limit)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, distinct, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.enums import MemberStatus
from storage.errors import ConflictError
from storage.models import Campaign, CampaignMember, Channel, LedgerEntry, Member, PurchaseOrder, ShareScan
from storage.reports import PAID, REFERRED, ratio
from storage.rows import affected

POSTER_SECONDS = 2_592_000  # WeChat's longest temporary QR: 30 days
POSTER_MARGIN = timedelta(days=1)  # a poster lapsing within a day is made again, so a shared one still scans


def poster_scene(code: str) -> str:
    return f"ref_{code}"


def live_poster(member: Member, now: datetime) -> str | None:
    """The member's kept poster link while it has more than a day left, else None (make a new one)."""
    if member.share_qr_url and member.share_qr_expires_at and member.share_qr_expires_at > now + POSTER_MARGIN:
        return member.share_qr_url
    return None


async def keep_poster(session: AsyncSession, member_id: int, url: str, expires_at: datetime) -> None:
    await session.execute(
        update(Member).where(col(Member.id) == member_id).values(share_qr_url=url, share_qr_expires_at=expires_at)
    )


async def member_by_code(session: AsyncSession, code: str) -> Member | None:
    """The member whose referral code this is (any case), unless deleted."""
    return await session.scalar(
        select(Member).where(col(Member.referral_code) == code.strip().upper())
        .where(col(Member.status) != MemberStatus.DELETED.value)
    )


# --- typed referral codes -------------------------------------------------------------------------

OWN, UNKNOWN, OVER_LIMIT = "own", "unknown", "over_limit"


@dataclass(frozen=True)
class ReferralCheck:
    referrer_id: int | None  # set when the code may be used
    refusal: str | None  # OWN, UNKNOWN or OVER_LIMIT


async def rewarded_this_month(session: AsyncSession, referrer_id: int, now: datetime, tz: ZoneInfo) -> int:
    """Referral rewards the referrer received this local month (the monthly limit counts these)."""
    local = now.astimezone(tz)
    month_start = datetime(local.year, local.month, 1, tzinfo=tz)
    count = await session.scalar(  # rewarded ones only: a referral the daily cap zeroed paid nothing
        select(func.count()).select_from(LedgerEntry)
        .where(col(LedgerEntry.member_id) == referrer_id).where(col(LedgerEntry.kind) == "referral")
        .where(col(LedgerEntry.delta) > 0).where(col(LedgerEntry.created_at) >= month_start)
    )
    return int(count or 0)


async def check_code(
    session: AsyncSession, code: str, openid: str, unionid: str | None, now: datetime, tz: ZoneInfo,
    monthly_limit: int,
) -> ReferralCheck:
    """May the sender (by openid at either door, or unionid) name `code` as their referrer?"""
    referrer = await member_by_code(session, code)
    if referrer is None or referrer.id is None or referrer.joined_at is None:
        return ReferralCheck(None, UNKNOWN)
    if openid in (referrer.openid, referrer.mp_openid) or (unionid and unionid == referrer.unionid):
        return ReferralCheck(None, OWN)
    if await rewarded_this_month(session, referrer.id, now, tz) >= monthly_limit:
        return ReferralCheck(None, OVER_LIMIT)
    return ReferralCheck(referrer.id, None)


# --- channels and scans ---------------------------------------------------------------------------

CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # `chan_<name>` stays well inside WeChat's 64


def channel_scene(name: str) -> str:
    return f"chan_{name}"


async def channel_by_name(session: AsyncSession, name: str) -> Channel | None:
    return await session.scalar(select(Channel).where(col(Channel.name) == name.strip().lower()))


async def all_channels(session: AsyncSession) -> Sequence[Channel]:
    return (await session.scalars(select(Channel).order_by(col(Channel.name)))).all()


async def add_channel(
    session: AsyncSession, name: str, label: str, qr_url: str | None, created_by: str, now: datetime,
) -> Channel:
    """A new channel QR code; ConflictError when the name is taken (the caller audits `channel.create`)."""
    if await channel_by_name(session, name) is not None:
        raise ConflictError(f"channel {name} exists")
    channel = Channel(name=name, label=label, qr_url=qr_url, created_by=created_by, created_at=now)
    session.add(channel)
    await session.flush()
    return channel


async def record_channel(session: AsyncSession, member_id: int, channel: str) -> bool:
    """The channel that brought the person: the first one wins."""
    result = await session.execute(
        update(Member).where(col(Member.id) == member_id).where(col(Member.channel).is_(None)).values(channel=channel)
    )
    return bool(affected(result))


async def record_scan(
    session: AsyncSession, openid: str, now: datetime, *, follow: bool, referrer_id: int | None = None,
    channel: str | None = None, campaign_id: int | None = None,
) -> None:
    session.add(ShareScan(
        openid=openid, referrer_id=referrer_id, channel=channel, campaign_id=campaign_id, follow=follow,
        created_at=now,
    ))


# --- the sharing funnel (the console's sharing screen; not a snapshot figure) ------------------------------

@dataclass(frozen=True)
class FunnelRow:
    """One sharer (by referral code) or channel: distinct people who scanned its QR, of them who followed
    by it, members it brought (referrer / first channel) and of those who have a paid order."""

    key: str
    scans: int
    follows: int
    signups: int
    first_orders: int


@dataclass(frozen=True)
class TopSharer:
    campaign_code: str
    campaign_title: str
    sharer: str  # the sharer's referral code: no personal data on the page
    joins: int


@dataclass(frozen=True)
class SharingReport:
    sharers: list[FunnelRow]
    channels: list[FunnelRow]
    top_sharers: list[TopSharer]
    signups_30d: int
    referred_30d: int
    referral_share_30d: float | None  # the KPI's figure (growth's referral_share_30d), over the 30 days to now


TOP_SHARERS = 3  # per campaign


def _funnel(scans: dict[Any, tuple[int, int]], members: dict[Any, tuple[int, int]], label: dict[Any, str]
            ) -> list[FunnelRow]:
    keys = set(scans) | set(members)
    rows = [FunnelRow(label.get(k, str(k)), *scans.get(k, (0, 0)), *members.get(k, (0, 0))) for k in keys]
    return sorted(rows, key=lambda r: (-r.signups, -r.scans, r.key))


async def sharing_report(session: AsyncSession, now: datetime) -> SharingReport:
    paid = select(col(PurchaseOrder.id)).where(col(PurchaseOrder.member_id) == col(Member.id)).where(PAID).exists()
    joined = col(Member.joined_at).is_not(None)
    people = func.count(distinct(col(ShareScan.openid)))
    follows = func.count(distinct(case((col(ShareScan.follow), col(ShareScan.openid)))))

    async def scans_by(column: Any) -> dict[Any, tuple[int, int]]:
        rows = await session.execute(select(column, people, follows).where(column.is_not(None)).group_by(column))
        return {k: (int(a), int(b)) for k, a, b in rows.all()}

    async def members_by(column: Any) -> dict[Any, tuple[int, int]]:
        rows = await session.execute(
            select(column, func.count(), func.count().filter(paid)).where(joined, column.is_not(None)).group_by(column)
        )
        return {k: (int(a), int(b)) for k, a, b in rows.all()}

    by_sharer_scans, by_sharer = await scans_by(col(ShareScan.referrer_id)), await members_by(col(Member.referrer_id))
    sharer_ids = set(by_sharer_scans) | set(by_sharer)
    codes = {i: c or f"#{i}" for i, c in (await session.execute(
        select(col(Member.id), col(Member.referral_code)).where(col(Member.id).in_(sharer_ids))
    )).all()} if sharer_ids else {}
    sharers = _funnel(by_sharer_scans, by_sharer, codes)
    channels = _funnel(await scans_by(col(ShareScan.channel)), await members_by(col(Member.channel)), {})

    invites = (await session.execute(
        select(col(Campaign.code), col(Campaign.title), col(Member.referral_code), col(Member.id), func.count())
        .select_from(CampaignMember)
        .join(Campaign, col(Campaign.id) == col(CampaignMember.campaign_id))
        .join(Member, col(Member.id) == col(CampaignMember.referrer_id))
        .group_by(col(Campaign.code), col(Campaign.title), col(Member.referral_code), col(Member.id))
    )).all()
    ranked = sorted(invites, key=lambda r: (r[0], -r[4], r[2] or ""))
    top: list[TopSharer] = []
    for code, title, sharer, member_id, joins in ranked:
        if sum(1 for t in top if t.campaign_code == code) < TOP_SHARERS:
            top.append(TopSharer(code, title, sharer or f"#{member_id}", int(joins)))

    since = now - timedelta(days=30)
    in_30 = and_(col(Member.joined_at) >= since, col(Member.joined_at) < now)
    row = (await session.execute(select(func.count().filter(in_30), func.count().filter(in_30, REFERRED)))).one()
    signups_30, referred_30 = (int(v or 0) for v in row)
    return SharingReport(sharers, channels, top, signups_30, referred_30, ratio(referred_30, signups_30))
