"""Audiences: who a broadcast, an experiment or a grant reaches, resolved to member ids in keyset pages.

An audience is a conjunction: every filter given narrows it (tiers, RFM segments, a campaign's participants,
an uploaded list, active within N days); none given is everyone. The base is every joined member a marketing
push may reach today (active, not opted out, not dormant): the sender's push policy still decides each row
(storage/outbox.may_market, the cap, quiet hours), so an audience is never a gate to a member's phone."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import audit
from storage.enums import MemberStatus
from storage.errors import InvalidFieldError
from storage.models import Campaign, CampaignMember, Member, MemberList, MemberListEntry, MemberSegment

# The RFM classes (storage/segments.py writes them on the member); NO_ORDERS is a member without a paid order.
SEGMENTS = ("高价值", "中价值", "潜力价值", "流失风险", "未消费")
DORMANT = "dormant"  # the win-back's last stage: no marketing until the member writes again
MAX_ACTIVE_DAYS = 3650
PAGE = 5000
MAX_LIST = 100_000  # openids in one upload


@dataclass(frozen=True)
class Audience:
    tiers: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    campaign_id: int | None = None
    list_id: int | None = None
    active_days: int | None = None  # wrote or sent an event within this many days

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v not in ((), None)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Audience:
        raw = json.loads(text or "{}")
        return cls(
            tiers=tuple(raw.get("tiers", ())), segments=tuple(raw.get("segments", ())),
            campaign_id=raw.get("campaign_id"), list_id=raw.get("list_id"), active_days=raw.get("active_days"),
        )


def checked(audience: Audience, tiers: Iterable[str]) -> Audience:
    """The audience if every filter names something that exists; else InvalidFieldError naming the field.
    (Whether a campaign or a list exists is asked of the database: exists().)"""
    known = set(tiers)
    for tier in audience.tiers:
        if tier not in known:
            raise InvalidFieldError("audience.tiers", f"unknown tier {tier!r}")
    for segment in audience.segments:
        if segment not in SEGMENTS:
            raise InvalidFieldError("audience.segments", f"unknown segment {segment!r}")
    if audience.active_days is not None and not 1 <= audience.active_days <= MAX_ACTIVE_DAYS:
        raise InvalidFieldError("audience.active_days", f"must be 1 to {MAX_ACTIVE_DAYS}")
    return audience


async def exists(session: AsyncSession, audience: Audience) -> None:
    """InvalidFieldError when the audience names a campaign or a list that is not there."""
    if audience.campaign_id is not None and await session.get(Campaign, audience.campaign_id) is None:
        raise InvalidFieldError("audience.campaign", "unknown campaign")
    if audience.list_id is not None and await session.get(MemberList, audience.list_id) is None:
        raise InvalidFieldError("audience.list", "unknown list")


def reachable() -> Any:
    """The base: joined, active, not opted out of marketing, not dormant."""
    return and_(
        col(Member.joined_at).is_not(None), col(Member.status) == MemberStatus.ACTIVE.value,
        col(Member.marketing_opt_out).is_(False),
        or_(col(Member.churn_stage).is_(None), col(Member.churn_stage) != DORMANT),
    )


def where(audience: Audience, now: datetime) -> list[Any]:
    """The audience's conditions on `member` (the base included), for any statement over that table."""
    conditions = [reachable()]
    if audience.tiers:
        conditions.append(col(Member.tier).in_(audience.tiers))
    if audience.segments:
        conditions.append(col(Member.id).in_(
            select(col(MemberSegment.member_id)).where(col(MemberSegment.segment).in_(audience.segments))
        ))
    if audience.active_days is not None:
        conditions.append(col(Member.last_interaction_at) >= now - timedelta(days=audience.active_days))
    if audience.campaign_id is not None:
        conditions.append(
            select(col(CampaignMember.id)).where(col(CampaignMember.campaign_id) == audience.campaign_id)
            .where(col(CampaignMember.member_id) == Member.id).exists()
        )
    if audience.list_id is not None:
        conditions.append(
            select(col(MemberListEntry.member_id)).where(col(MemberListEntry.list_id) == audience.list_id)
            .where(col(MemberListEntry.member_id) == Member.id).exists()
        )
    return conditions


def select_ids(audience: Audience, now: datetime, *, after_id: int = 0, limit: int | None = None) -> Select[Any]:
    """SELECT member.id of the audience above `after_id`, in id order (a keyset page when `limit` is given)."""
    stmt = select(col(Member.id)).where(*where(audience, now)).where(col(Member.id) > after_id).order_by(col(Member.id))
    return stmt if limit is None else stmt.limit(limit)


async def count(session: AsyncSession, audience: Audience, now: datetime) -> int:
    return int(await session.scalar(select(func.count()).select_from(Member).where(*where(audience, now))) or 0)


async def pages(
    session: AsyncSession, audience: Audience, now: datetime, *, after_id: int = 0, size: int = PAGE,
) -> AsyncIterator[list[int]]:
    """The audience's member ids in pages of `size`, each page a fresh keyset query (nothing held open)."""
    while True:
        ids = [int(i) for i in (await session.scalars(select_ids(audience, now, after_id=after_id, limit=size))).all()]
        if not ids:
            return
        yield ids
        if len(ids) < size:
            return
        after_id = ids[-1]


async def upload(
    session: AsyncSession, name: str, openids: Iterable[str], *, actor: audit.Actor, now: datetime,
    client: str | None = None,
) -> MemberList:
    """A named list from uploaded openids (Official Account or Mini Program), audited `list.upload`: each
    known member once; the count of unknown openids is kept for the operator. An empty name, more than
    MAX_LIST openids, or no known member, is refused."""
    name = name.strip()
    if not name or len(name) > 60:
        raise InvalidFieldError("name", "1 to 60 characters")
    wanted = sorted({o.strip() for o in openids if o.strip()})
    if not wanted:
        raise InvalidFieldError("openids", "empty")
    if len(wanted) > MAX_LIST:
        raise InvalidFieldError("openids", f"at most {MAX_LIST:,} openids in one list")
    found: set[int] = set()
    matched: set[str] = set()
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start:start + 1000]
        rows = await session.execute(
            select(col(Member.id), col(Member.openid), col(Member.mp_openid))
            .where(or_(col(Member.openid).in_(chunk), col(Member.mp_openid).in_(chunk)))
        )
        for member_id, openid, mp_openid in rows.all():
            found.add(int(member_id or 0))
            matched.update(o for o in (openid, mp_openid) if o)
    if not found:
        raise InvalidFieldError("openids", "no member has any of these openids")
    listed = MemberList(name=name, size=len(found), unknown=len(set(wanted) - matched), created_by=actor.name[:64],
                        created_at=now)
    session.add(listed)
    await session.flush()
    session.add_all(MemberListEntry(list_id=int(listed.id or 0), member_id=m) for m in sorted(found))
    await audit.record(session, actor, "list.upload", f"member_list:{listed.id}", now=now, client=client,
                       after={"name": name, "size": listed.size, "unknown": listed.unknown})
    return listed


async def lists(session: AsyncSession, limit: int = 50) -> list[MemberList]:
    """The newest uploaded lists, for a form's choice."""
    return list((await session.scalars(select(MemberList).order_by(col(MemberList.id).desc()).limit(limit))).all())
