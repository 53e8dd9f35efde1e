"""Points adjustments by hand (an operator or the admin token): the bounds, the ledger kind `adjust`, the
member's message and the audit row, in the caller's transaction. Who may adjust how much is the edge's
check (LARGE names the line); nothing here decides a role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import audit, outbox
from storage.audit import Actor
from storage.enums import MemberStatus, Source
from storage.errors import InvalidFieldError
from storage.ledger import Ledger
from storage.models import LedgerEntry, Member

KIND = "adjust"
MAX_POINTS = 100_000
LARGE = 1_000  # above this many points (either way) an adjustment needs the `points.large` right
REASON_MIN, REASON_MAX = 2, 200
REQUEST_ID_MAX = 80


class InvalidAdjustmentError(InvalidFieldError):
    """The adjustment cannot be applied as asked: `field` and `problem` say why (`details` the figures)."""


@dataclass(frozen=True)
class Adjustment:
    """The result of one adjustment (the first result again for a repeated request id)."""

    member_id: int
    entry_id: int
    points: int
    reason: str
    balance_before: int
    balance_after: int
    repeated: bool = False


def is_large(points: int) -> bool:
    return abs(points) > LARGE


def check(points: int, reason: str, request_id: str) -> str:
    """The reason as it will be stored (stripped); raises InvalidAdjustmentError on bad input."""
    if points == 0:
        raise InvalidAdjustmentError("points", "zero")
    if abs(points) > MAX_POINTS:
        raise InvalidAdjustmentError("points", "range", limit=MAX_POINTS)
    return checked_request(reason, request_id)


def checked_request(reason: str, request_id: str, *, forbidden: str = "\x00") -> str:
    """An operator's reason (stripped, REASON_MIN-REASON_MAX characters) and request id (1-REQUEST_ID_MAX,
    none of `forbidden`): the reason as it will be kept, or InvalidAdjustmentError naming the field. The
    bounds of every request an operator makes with a reason (adjustments, coupon grants)."""
    text = reason.strip()
    if not REASON_MIN <= len(text) <= REASON_MAX or "\x00" in text:
        raise InvalidAdjustmentError("reason", "length", low=REASON_MIN, high=REASON_MAX)
    if not request_id or len(request_id) > REQUEST_ID_MAX or any(c in request_id for c in forbidden):
        raise InvalidAdjustmentError("request_id", "format", high=REQUEST_ID_MAX)
    return text


def key_of(request_id: str) -> str:
    return f"adjust:{request_id}"


async def adjust(
    session: AsyncSession, ledger: Ledger, member_id: int, points: int, reason: str, request_id: str, *,
    actor: Actor, now: datetime, client: str | None = None,
) -> Adjustment:
    """Add (earn) or take (take_back, never more than the balance) `points`, ledger key `adjust:<request_id>`,
    the actor kept on the entry. Not capped and not counted towards the tier (kind `adjust` is in neither
    CAPPED_KINDS nor QUALIFYING_KINDS). Side effects, once per request id: a transactional outbox message
    (`points_adjusted`, dedupe `adjust:<request_id>`) and an audit row `points.adjust`. A repeated request
    id changes nothing and answers the first result."""
    text = check(points, reason, request_id)
    await ledger.expire_member(session, member_id, now)  # locks the row; lapsed points are not the balance
    member = await ledger.lock(session, member_id)
    seen = await _seen(session, member_id, key_of(request_id))
    if seen is not None:
        return seen
    if member.joined_at is None or member.status == MemberStatus.DELETED:
        raise InvalidAdjustmentError("member", "not_member")
    before = member.balance
    if points < 0 and -points > before:
        raise InvalidAdjustmentError("points", "over_balance", balance=before)
    if points > 0:
        moved = await ledger.earn(session, member_id, points, key=key_of(request_id), kind=KIND, now=now,
                                  reason=text, actor=actor.name)
    else:
        moved = await ledger.take_back(session, member_id, -points, key=key_of(request_id), kind=KIND, now=now,
                                       reason=text, actor=actor.name)
    await _tell(session, member, points, text, moved.balance, request_id, now)
    await audit.record(session, actor, "points.adjust", f"member:{member_id}", now=now, client=client,
                       before={"balance": before},
                       after={"balance": moved.balance, "points": points, "reason": text, "request_id": request_id})
    return Adjustment(member_id, moved.entry_id, points, text, before, moved.balance)


async def _seen(session: AsyncSession, member_id: int, key: str) -> Adjustment | None:
    entry = await session.scalar(select(LedgerEntry).where(col(LedgerEntry.idempotency_key) == key))
    if entry is None:
        return None
    if entry.member_id != member_id or entry.kind != KIND:
        raise InvalidAdjustmentError("request_id", "taken")
    assert entry.id is not None
    return Adjustment(member_id, entry.id, entry.delta, entry.reason, entry.balance_after - entry.delta,
                      entry.balance_after, repeated=True)


async def _tell(
    session: AsyncSession, member: Member, points: int, reason: str, balance: int, request_id: str,
    now: datetime,
) -> None:
    """The member hears of it on the door they use (the Official Account, else the Mini Program)."""
    openid, source = (member.openid, Source.OA) if member.openid else (member.mp_openid, Source.MP)
    if not openid:
        return
    await outbox.enqueue(
        session, dedupe_key=key_of(request_id), openid=openid, source=source, member_id=member.id,
        kind="points_adjusted", now=now,
        payload={"params": {"points": points, "reason": reason, "balance": balance}},
    )

