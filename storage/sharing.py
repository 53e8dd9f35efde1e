"""Sharing that keeps its promise: a member's own `ref_<code>` poster (a temporary QR kept until it lapses),
the channel (`chan_<name>`) that first brought a member, the scans of every sharing QR, and typed referral
codes checked before sign-up (own, unknown, over the referrer's monthly limit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.enums import MemberStatus
from storage.models import LedgerEntry, Member, ShareScan
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
    referrer = await session.scalar(
        select(Member).where(col(Member.referral_code) == code.strip().upper())
        .where(col(Member.status) != MemberStatus.DELETED.value).where(col(Member.joined_at).is_not(None))
    )
    if referrer is None or referrer.id is None:
        return ReferralCheck(None, UNKNOWN)
    if openid in (referrer.openid, referrer.mp_openid) or (unionid and unionid == referrer.unionid):
        return ReferralCheck(None, OWN)
    if await rewarded_this_month(session, referrer.id, now, tz) >= monthly_limit:
        return ReferralCheck(None, OVER_LIMIT)
    return ReferralCheck(referrer.id, None)


# --- channels and scans ---------------------------------------------------------------------------

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
