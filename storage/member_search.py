"""Finding a member for an operator: by phone (normalised, through the keyed hash, never a scan), an openid
of either door, a referral code, or a coupon code. Reads only; phones leave here masked."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import coupons
from storage.members import PiiProtector, masked_phone, normalise_phone
from storage.models import Member

SEARCH_LIMIT = 20


@dataclass(frozen=True)
class Found:
    """One search hit, as the results list shows it."""

    id: int
    phone: str | None
    tier: str
    balance: int
    status: str
    matched: str  # phone, openid, referral_code or coupon_code


async def search(session: AsyncSession, pii: PiiProtector, query: str) -> list[Found]:
    """Members matching `query` exactly: a phone (normalised, through the keyed hash), an openid of either
    door, a referral code, or a coupon code (the redemption's member). Each member once."""
    text = query.strip()
    if not text:
        return []
    hits: list[tuple[Member, str]] = []
    phone = normalise_phone(text)
    if phone is not None:  # only the keyed hash: a phone never reaches a query (or its log) in clear
        by_hash = await session.scalar(select(Member).where(col(Member.phone_hash) == pii.lookup_hash(phone)))
        return [] if by_hash is None else [_found(pii, by_hash, "phone")]
    for member in (await session.scalars(select(Member).where(
        or_(col(Member.openid) == text, col(Member.mp_openid) == text)).limit(SEARCH_LIMIT))).all():
        hits.append((member, "openid"))
    by_code = await session.scalar(select(Member).where(col(Member.referral_code) == text.upper()))
    if by_code is not None:
        hits.append((by_code, "referral_code"))
    coupon = await coupons.find(session, text)  # matched as the counter matches a typed code
    if coupon is not None:
        hits.append((coupon.owner, "coupon_code"))
    seen: dict[int, Found] = {}
    for member, matched in hits:
        assert member.id is not None
        seen.setdefault(member.id, _found(pii, member, matched))
    return list(seen.values())


def _found(pii: PiiProtector, member: Member, matched: str) -> Found:
    assert member.id is not None
    return Found(member.id, masked_phone(pii, member), member.tier, member.balance, member.status, matched)

