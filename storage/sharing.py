"""Sharing that keeps its promise: a member's own `ref_<code>` poster (a temporary QR kept until it lapses),
the channel (`chan_<name>`) that first brought a member, the scans of every sharing QR, and typed referral
codes checked before sign-up (own, unknown, over the referrer's monthly limit)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.enums import MemberStatus
from storage.errors import ConflictError
from storage.models import Channel, LedgerEntry, Member, ShareScan
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
