"""The guided merge of a duplicate membership: two member rows sharing a unionid become one, in one
transaction, keeping every ledger row and the ledger's invariant for both.

Design. The ledger rows are neither copied nor rewritten, and none is added: Ledger.absorb re-points every
entry and lot of the dropped member (B) to the kept one (A), raises A's balance by B's and sets B's to 0.
So A.balance == sum of A's deltas == sum of A's live lots, B has no ledger rows left (balance 0), and the
ledger holds the same rows before and after (the merge itself is in the audit log, `member.merge`). A
transfer pair of entries was the other choice; it was not taken because a later cancel of B's redemption
or refund of B's order finds its original entry by key and would credit or debit B, not A. A moved entry's
balance_after stays what it was: B's running balance when it was written (the history of that door);
lots keep their earned and expiry times, so spending and expiry treat B's points as they would have.
Keys stay unique because they already were (they name B's id). A second merge of the pair is refused
(B is merged), so it changes nothing. What else moves to A: redemptions and
quotes, orders, outbox rows, win-back offers, referrals B brought, check-ins (one a day: a day A also
checked in stays on B), campaign memberships (joined by both: A's row keeps, marked paid if B's was, B's
row goes and the campaign's participant count drops by one); B's openid / mp_openid and birthday when A
lacks them. A's tier becomes the highest of A's, B's and the one the combined qualifying points give
(upgrades at once; the monthly review may lower it later), earned_total the sum. B is marked status
`deleted` with merged_into = A, so every job and lookup that skips deleted members skips it. The
duplicate-membership anomaly is resolved with the operator's note; the merge is audited `member.merge`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import anomalies, audit
from storage.audit import Actor
from storage.enums import MemberStatus
from storage.errors import ConflictError
from storage.ledger import Ledger
from storage.models import (
    Anomaly,
    Campaign,
    CampaignMember,
    Checkin,
    InteractionDay,
    LedgerEntry,
    Member,
    Outbox,
    PointsLot,
    PurchaseOrder,
    Redemption,
    RedemptionQuote,
    ShareScan,
    SurveyAsk,
    Ticket,
    WinbackOffer,
)

DOORS = ("openid", "mp_openid")
_MOVED_WHOLE: tuple[Any, ...] = (Redemption, RedemptionQuote, PurchaseOrder, Outbox, WinbackOffer, Ticket)


class MergeRefusedError(ConflictError):
    """The two members cannot be merged; `reason` is one of same, unknown, no_unionid, merged."""

    text_key = "error_conflict"

    def __init__(self, reason: str = "", member_id: int | None = None) -> None:
        super().__init__(f"merge refused: {reason}", reason=reason, member_id=member_id)
        self.reason = reason
        self.member_id = member_id


@dataclass(frozen=True)
class Preview:
    """What a merge of `drop` into `keep` moves, and what keep ends with."""

    keep: int
    drop: int
    ledger_entries: int
    live_lots: int
    lot_points: int
    redemptions: int
    coupons: int
    campaigns_moved: int
    campaigns_shared: int
    orders: int
    checkins_moved: int
    checkins_kept: int
    outbox: int
    doors: tuple[str, ...]
    balance: int
    tier: str


async def _count(session: AsyncSession, query: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _shared(model: Any, column: str, keep: int, drop: int) -> Any:
    """drop's rows of `model` whose `column` keep also has (they cannot move: a unique constraint)."""
    mine = select(getattr(model, column)).where(model.member_id == keep)
    return select(model.id).where(model.member_id == drop).where(getattr(model, column).in_(mine))


async def _pair(
    session: AsyncSession, ledger: Ledger, keep_id: int, drop_id: int, *, lock: bool,
) -> tuple[Member, Member]:
    if keep_id == drop_id:
        raise MergeRefusedError("same")
    found: dict[int, Member] = {}
    for member_id in sorted((keep_id, drop_id)):
        member = await session.get(Member, member_id)
        if member is None:
            raise MergeRefusedError("unknown", member_id)
        if lock:
            member = await ledger.lock(session, member_id)
        found[member_id] = member
    keep, drop = found[keep_id], found[drop_id]
    for member in (keep, drop):
        if member.status == MemberStatus.DELETED or member.merged_into is not None:
            raise MergeRefusedError("merged", member.id)
    if not keep.unionid or keep.unionid != drop.unionid:
        raise MergeRefusedError("no_unionid")
    return keep, drop


async def _tier(session: AsyncSession, ledger: Ledger, keep: Member, drop: Member, now: datetime) -> str:
    rules = ledger.rules
    qualifying = sum([await ledger.qualifying_points(session, m.id, now) for m in (keep, drop) if m.id])
    names = (keep.tier, drop.tier, rules.tier_for(qualifying).name)
    return max(names, key=rules.tier_rank)


async def preview(session: AsyncSession, ledger: Ledger, keep_id: int, drop_id: int, now: datetime,
                  *, lock: bool = False) -> Preview:
    """What merge() would move; MergeRefusedError when the two may not be merged."""
    keep, drop = await _pair(session, ledger, keep_id, drop_id, lock=lock)
    of_drop = (lambda model: select(model.id).where(model.member_id == drop_id))  # noqa: E731
    live = select(col(PointsLot.id), col(PointsLot.remaining)).where(col(PointsLot.member_id) == drop_id) \
        .where(col(PointsLot.remaining) > 0).where(col(PointsLot.expires_at) > now)
    lot_points = int(await session.scalar(select(func.coalesce(func.sum(live.subquery().c.remaining), 0))) or 0)
    coupons = of_drop(Redemption).where(col(Redemption.status) == "issued").where(col(Redemption.expires_at) > now)
    campaigns_shared = await _count(session, _shared(CampaignMember, "campaign_id", keep_id, drop_id))
    checkins_kept = await _count(session, _shared(Checkin, "day", keep_id, drop_id))
    return Preview(
        keep=keep_id, drop=drop_id, ledger_entries=await _count(session, of_drop(LedgerEntry)),
        live_lots=await _count(session, live), lot_points=lot_points,
        redemptions=await _count(session, of_drop(Redemption)), coupons=await _count(session, coupons),
        campaigns_moved=await _count(session, of_drop(CampaignMember)) - campaigns_shared,
        campaigns_shared=campaigns_shared, orders=await _count(session, of_drop(PurchaseOrder)),
        checkins_moved=await _count(session, of_drop(Checkin)) - checkins_kept, checkins_kept=checkins_kept,
        outbox=await _count(session, of_drop(Outbox)),
        doors=tuple(d for d in DOORS if getattr(drop, d) and not getattr(keep, d)),
        balance=keep.balance + drop.balance, tier=await _tier(session, ledger, keep, drop, now),
    )


async def _move_campaigns(session: AsyncSession, keep: int, drop: int) -> None:
    shared = (await session.execute(
        select(col(CampaignMember.id), col(CampaignMember.campaign_id), col(CampaignMember.paid))
        .where(col(CampaignMember.id).in_(_shared(CampaignMember, "campaign_id", keep, drop)))
    )).all()
    for row_id_, campaign_id, paid in shared:
        if paid:  # a flag: B's payout is in A's ledger now, so A's row counts as paid
            await session.execute(update(CampaignMember).where(col(CampaignMember.member_id) == keep)
                                  .where(col(CampaignMember.campaign_id) == campaign_id).values(paid=paid))
        await session.execute(delete(CampaignMember).where(col(CampaignMember.id) == row_id_))
        await session.execute(update(Campaign).where(col(Campaign.id) == campaign_id)
                              .values(participants=col(Campaign.participants) - 1))
    await session.execute(update(CampaignMember).where(col(CampaignMember.member_id) == drop).values(member_id=keep))


async def _move_rows(session: AsyncSession, keep: int, drop: int) -> None:
    for model in _MOVED_WHOLE:
        await session.execute(update(model).where(col(model.member_id) == drop).values(member_id=keep))
    await _move_campaigns(session, keep, drop)
    await session.execute(update(Checkin).where(col(Checkin.member_id) == drop)
                          .where(col(Checkin.id).not_in(_shared(Checkin, "day", keep, drop))).values(member_id=keep))
    # An interaction day both wrote is A's already: B's copy goes (the key is the pair), the rest move.
    keeps_days = select(col(InteractionDay.day)).where(col(InteractionDay.member_id) == keep)
    await session.execute(delete(InteractionDay).where(col(InteractionDay.member_id) == drop)
                          .where(col(InteractionDay.day).in_(keeps_days)))
    await session.execute(update(InteractionDay).where(col(InteractionDay.member_id) == drop).values(member_id=keep))
    # Survey asks likewise: one per survey and trigger (a trigger both doors met is A's), the rest move, so
    # B's answers count for A and A's 90 quiet days see them.
    def asks_of(member_id: int) -> Any:
        return select(col(SurveyAsk.id), col(SurveyAsk.survey_id), col(SurveyAsk.trigger_key)).where(
            col(SurveyAsk.member_id) == member_id)

    keeps_triggers = {(survey, trigger) for _, survey, trigger in (await session.execute(asks_of(keep))).all()}
    clashing = [i for i, survey, trigger in (await session.execute(asks_of(drop))).all()
                if (survey, trigger) in keeps_triggers]
    if clashing:
        await session.execute(delete(SurveyAsk).where(col(SurveyAsk.id).in_(clashing)))
    await session.execute(update(SurveyAsk).where(col(SurveyAsk.member_id) == drop).values(member_id=keep))
    await session.execute(update(Member).where(col(Member.referrer_id) == drop).where(col(Member.id) != keep)
                          .values(referrer_id=keep))
    # What B shared counts for A: the scans of B's QR codes and the campaign joins B's invites brought.
    await session.execute(update(ShareScan).where(col(ShareScan.referrer_id) == drop).values(referrer_id=keep))
    await session.execute(update(CampaignMember).where(col(CampaignMember.referrer_id) == drop).values(
        referrer_id=case((col(CampaignMember.member_id) == keep, None), else_=keep)))  # never one's own sharer


async def _move_identity(session: AsyncSession, keep: Member, drop: Member) -> None:
    moving = {d: getattr(drop, d) for d in DOORS if getattr(drop, d) and not getattr(keep, d)}
    if keep.birthday_month is None and drop.birthday_month is not None:
        keep.birthday_month, keep.birthday_day, keep.birthday_year = (
            drop.birthday_month, drop.birthday_day, drop.birthday_year)
    if (drop.checkin_day or datetime.min.date()) > (keep.checkin_day or datetime.min.date()):
        keep.checkin_day, keep.checkin_streak = drop.checkin_day, drop.checkin_streak
    keep.channel = keep.channel or drop.channel  # the first channel of either
    due = [d for d in (keep.survey_due_until, drop.survey_due_until) if d is not None]
    keep.survey_due_until = max(due, default=None)  # an ask B was due stays due for A
    if keep.referrer_id == drop.id:
        keep.referrer_id = drop.referrer_id if drop.referrer_id != keep.id else None
    for door in moving:
        setattr(drop, door, None)
    drop.status, drop.merged_into, drop.marketing_opt_out = MemberStatus.DELETED, keep.id, True
    await session.flush()  # free the unique openids before keep takes them
    for door, value in moving.items():
        setattr(keep, door, value)
    await session.flush()


async def merge(
    session: AsyncSession, ledger: Ledger, actor: Actor, keep_id: int, drop_id: int, *, note: str,
    now: datetime, client: str | None = None,
) -> Preview:
    """Merge drop into keep in the caller's transaction (see the module docstring); resolves the pair's
    duplicate-membership anomaly with `note` and audits `member.merge`. MergeRefusedError (nothing written)
    when they may not be merged, which includes a second merge of the same pair."""
    note = anomalies.checked_note(note)
    planned = await preview(session, ledger, keep_id, drop_id, now, lock=True)
    keep, drop = await ledger.lock(session, keep_id), await ledger.lock(session, drop_id)
    before = {"keep": _who(keep), "drop": _who(drop)}
    await _move_rows(session, keep_id, drop_id)
    tier_hold = max((d for d in (keep.tier_hold_until, drop.tier_hold_until) if d), default=None)
    await ledger.absorb(session, keep_id, drop_id, now=now, also={"tier": planned.tier, "tier_hold_until": tier_hold})
    await _move_identity(session, keep, drop)
    low, high = sorted((keep_id, drop_id))
    duplicate = await session.scalar(select(col(Anomaly.id)).where(col(Anomaly.dedupe_key) == f"duplicate:{low}:{high}")
                                     .where(col(Anomaly.state) != anomalies.RESOLVED))
    if duplicate is not None:
        await anomalies.transition(session, actor, duplicate, anomalies.RESOLVED, note=note, now=now, client=client)
    await audit.record(session, actor, "member.merge", f"member:{keep_id}", now=now, before=before,
                       after={**asdict(planned), "note": note}, client=client)
    return planned


def _who(member: Member) -> dict[str, Any]:
    return {"id": member.id, "balance": member.balance, "tier": member.tier, "status": member.status,
            "openid": bool(member.openid), "mp_openid": bool(member.mp_openid)}


