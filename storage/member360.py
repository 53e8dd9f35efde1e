"""Member 360, the read model the console page and the admin JSON API share: everything about one member
as dataclasses, the phone masked. Reads only, except the audited phone reveal (storage/member_search.py
finds the member)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import audit, coupons
from storage.audit import Actor, mask_phones
from storage.ledger import Ledger
from storage.members import PiiProtector, masked_phone
from storage.models import (
    Anomaly,
    Campaign,
    CampaignMember,
    LedgerEntry,
    Member,
    MemberSegment,
    Outbox,
    PointsLot,
    PurchaseOrder,
    Redemption,
    Reward,
)

LEDGER_PAGE = 20
LIST_LIMIT = 20


@dataclass(frozen=True)
class Profile:
    id: int
    phone: str | None  # masked
    openid: str | None
    mp_openid: str | None
    unionid: str | None
    referral_code: str | None
    birthday: str | None  # MM-DD (with the year when given)
    status: str
    joined_at: datetime | None
    consent_at: datetime | None
    consent_version: str | None
    marketing_opt_out: bool
    last_interaction_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Standing:
    tier: str
    tier_hold_until: date | None
    qualifying: int
    next_tier: str | None
    gap: int | None  # qualifying points still missing for next_tier
    balance: int
    rfm_class: str | None = None  # the daily RFM layering's class (storage/segments.py), since rfm_since
    rfm_since: date | None = None


@dataclass(frozen=True)
class Lot:
    id: int
    amount: int
    remaining: int
    earned_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Line:
    """One ledger entry; `reason` as stored (a code or free text: the edge puts it into words)."""

    id: int
    created_at: datetime
    kind: str
    delta: int
    balance_after: int
    reason: str
    actor: str | None


@dataclass(frozen=True)
class LedgerPage:
    lines: list[Line]
    next_before: int | None  # the `before` of the next (older) page, None on the last


@dataclass(frozen=True)
class Order:
    order_id: str
    amount_fen: int
    points: int
    refunded_fen: int
    refunded_points: int
    created_at: datetime


@dataclass(frozen=True)
class Coupon:
    id: int
    reward: str
    cost: int
    code: str
    state: str  # issued, used, cancelled, or expired (issued and past its date)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    granted: str | None = None  # why it was given without points (birthday, tier, operator...); None: bought


@dataclass(frozen=True)
class Joined:
    code: str
    title: str
    kind: str
    status: str
    joined_at: datetime
    paid: int


@dataclass(frozen=True)
class Push:
    id: int
    kind: str
    category: str
    channel: str | None
    status: str
    attempts: int
    last_error: str | None  # why an undeliverable or failed push did not reach the member
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class Flag:
    id: int
    kind: str
    state: str
    detail: str
    created_at: datetime


@dataclass(frozen=True)
class Member360:
    profile: Profile
    standing: Standing
    lots: list[Lot]
    ledger: LedgerPage
    orders: list[Order]
    coupons: list[Coupon]
    campaigns: list[Joined]
    pushes: list[Push]
    anomalies: list[Flag]


async def load(
    session: AsyncSession, pii: PiiProtector, ledger: Ledger, member_id: int, now: datetime,
    *, before: int | None = None,
) -> Member360 | None:
    """Everything about one member (None when there is no such row), the ledger page older than `before`."""
    member = await session.get(Member, member_id)
    if member is None:
        return None
    return Member360(
        profile=_profile(pii, member, member_id), standing=await standing(session, ledger, member, now),
        lots=await lots(session, member_id, now), ledger=await ledger_page(session, ledger, member_id, before),
        orders=await _orders(session, member_id), coupons=await _coupons(session, member_id, now),
        campaigns=await _campaigns(session, member_id), pushes=await _pushes(session, member_id),
        anomalies=await _anomalies(session, member_id),
    )


def _profile(pii: PiiProtector, member: Member, member_id: int) -> Profile:
    birthday = None
    if member.birthday_month and member.birthday_day:
        birthday = f"{member.birthday_month:02d}-{member.birthday_day:02d}"
        if member.birthday_year:
            birthday = f"{member.birthday_year}-{birthday}"
    return Profile(
        id=member_id, phone=masked_phone(pii, member), openid=member.openid, mp_openid=member.mp_openid,
        unionid=member.unionid, referral_code=member.referral_code, birthday=birthday, status=member.status,
        joined_at=member.joined_at, consent_at=member.consent_at, consent_version=member.consent_version,
        marketing_opt_out=member.marketing_opt_out, last_interaction_at=member.last_interaction_at,
        created_at=member.created_at,
    )


async def standing(session: AsyncSession, ledger: Ledger, member: Member, now: datetime) -> Standing:
    assert member.id is not None
    qualifying = await ledger.qualifying_points(session, member.id, now)
    following = ledger.rules.next_tier(member.tier)
    gap = None if following is None else max(following.threshold - qualifying, 0)
    segment = await session.get(MemberSegment, member.id)
    return Standing(member.tier, member.tier_hold_until, qualifying, following.name if following else None, gap,
                    member.balance, segment.segment if segment else None, segment.since if segment else None)


async def lots(session: AsyncSession, member_id: int, now: datetime) -> list[Lot]:
    """The live lots, the first to expire first (the order spending takes them in)."""
    rows = (await session.scalars(
        select(PointsLot).where(col(PointsLot.member_id) == member_id).where(col(PointsLot.remaining) > 0)
        .where(col(PointsLot.expires_at) > now).order_by(col(PointsLot.expires_at), col(PointsLot.id))
    )).all()
    return [Lot(lot.id or 0, lot.amount, lot.remaining, lot.earned_at, lot.expires_at) for lot in rows]


async def ledger_page(
    session: AsyncSession, ledger: Ledger, member_id: int, before: int | None = None,
) -> LedgerPage:
    """LEDGER_PAGE movements newest first, keyset by entry id."""
    rows = await ledger.history(session, member_id, LEDGER_PAGE + 1, before=before)
    lines = [_line(entry) for entry in rows[:LEDGER_PAGE]]
    return LedgerPage(lines, lines[-1].id if len(rows) > LEDGER_PAGE else None)


def _line(entry: LedgerEntry) -> Line:
    return Line(entry.id or 0, entry.created_at, entry.kind, entry.delta, entry.balance_after, entry.reason,
                entry.actor)


async def _orders(session: AsyncSession, member_id: int) -> list[Order]:
    rows = (await session.scalars(select(PurchaseOrder).where(col(PurchaseOrder.member_id) == member_id)
                                  .order_by(col(PurchaseOrder.id).desc()).limit(LIST_LIMIT))).all()
    return [Order(o.order_id, o.amount_fen, o.points, o.refunded_fen, o.refunded_points, o.created_at) for o in rows]


async def _coupons(session: AsyncSession, member_id: int, now: datetime) -> list[Coupon]:
    rows = (await session.execute(
        select(Redemption, col(Reward.name)).join(Reward, col(Reward.id) == Redemption.reward_id)
        .where(col(Redemption.member_id) == member_id).order_by(col(Redemption.id).desc()).limit(LIST_LIMIT)
    )).all()
    return [Coupon(r.id or 0, name, r.cost, r.code, coupons.state(r, now), r.created_at, r.expires_at, r.used_at,
                   r.granted)
            for r, name in rows]


async def _campaigns(session: AsyncSession, member_id: int) -> list[Joined]:
    rows = (await session.execute(
        select(CampaignMember, Campaign).join(Campaign, col(Campaign.id) == CampaignMember.campaign_id)
        .where(col(CampaignMember.member_id) == member_id).order_by(col(CampaignMember.id).desc()).limit(LIST_LIMIT)
    )).all()
    return [Joined(c.code, c.title, c.kind, c.status, m.joined_at, m.paid) for m, c in rows]


async def _pushes(session: AsyncSession, member_id: int) -> list[Push]:
    rows = (await session.scalars(select(Outbox).where(col(Outbox.member_id) == member_id)
                                  .order_by(col(Outbox.id).desc()).limit(LIST_LIMIT))).all()
    return [Push(o.id or 0, o.kind, o.category, o.channel, o.status, o.attempts,
                 o.last_error and mask_phones(o.last_error), o.created_at,
                 o.sent_at) for o in rows]


async def _anomalies(session: AsyncSession, member_id: int) -> list[Flag]:
    rows = (await session.scalars(select(Anomaly).where(col(Anomaly.member_id) == member_id)
                                  .order_by(col(Anomaly.id).desc()).limit(LIST_LIMIT))).all()
    return [Flag(a.id or 0, a.kind, a.state, a.detail, a.created_at) for a in rows]


async def reveal_phone(
    session: AsyncSession, pii: PiiProtector, member_id: int, *, actor: Actor, now: datetime,
    client: str | None = None,
) -> str | None:
    """The member's full phone (None when there is none), the reveal audited `phone.reveal` in the caller's
    transaction, with no phone in the audit row. Who may reveal is the edge's check."""
    member = await session.get(Member, member_id)
    if member is None or not member.phone_enc:
        return None
    await audit.record(session, actor, "phone.reveal", f"member:{member_id}", now=now, client=client)
    return pii.decrypt(member.phone_enc)
