"""The outbox: every push is a row written in the transaction that decided it, single by its dedupe key.

Rows are claimed (FOR UPDATE SKIP LOCKED on PostgreSQL, a conditional update on SQLite) under a short
lease the sender renews, sent by whoever implements PushSender, and end as sent, undeliverable (with
the reason), failed, dropped or, when a dead sender's send may have reached WeChat, uncertain (an
anomaly for operators, never resent)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import anomalies
from storage.db import Database, dialect_insert
from storage.enums import MemberStatus, Source
from storage.models import Member, Outbox, OutboxAttempt
from storage.paging import newest_first
from storage.rows import affected, row_id

TRANSACTIONAL = "transactional"
MARKETING = "marketing"

PENDING, SENDING, SENT = "pending", "sending", "sent"
UNDELIVERABLE, FAILED, DROPPED, UNCERTAIN = "undeliverable", "failed", "dropped", "uncertain"
FINAL = (SENT, UNDELIVERABLE, FAILED, DROPPED, UNCERTAIN)

# What the sender writes in last_error, as the push report reads it back: a row held for the cap
# (pending) or dropped for it starts with CAP_HELD; an undeliverable one with one of these causes.
CAP_HELD = "monthly cap"
UNDELIVERABLE_CAUSES = {
    "no_channel": "no customer-service window",
    "refused": "every channel refused",
    "not_user": "WeChat says the openid is not this app's user",
    "template_delivery": "template delivery",
}

CHANNELS = ("cs", "template", "subscribe")  # a member's channels, best first (PRODUCT.md); "robot" is WeCom's

# When the monthly cap is reached, higher priority waits, lower is dropped (PRODUCT.md). Transactional rows
# (TRANSACTIONAL_PRIORITY) go before any marketing. The scale was doubled in migration 0013 so that a
# coupon's lapse reminder fits just under the points' expiry reminder.
# Broadcasts (storage/broadcasts.py) use their kind: campaign, holiday (4) or content (3).
PRIORITY = {"expiry": 8, "coupon_lapse": 7, "birthday": 6, "campaign": 4, "holiday": 4, "content": 3, "winback": 2,
            "winback_coupon": 2, "winback_warn": 1}
TRANSACTIONAL_PRIORITY = 10


@dataclass(frozen=True)
class SendResult:
    """What one channel answered: errcode 0 is success; msgid for template deliveries."""

    channel: str
    errcode: int
    detail: str = ""
    msgid: str | None = None

    @property
    def ok(self) -> bool:
        return self.errcode == 0


class PushSender(Protocol):
    """Implemented in bot/wechat/client.py; the scheduler is handed one at start-up.
    `send` tries one channel and reports; choosing the channel is the sender loop's job."""

    async def send(self, channel: str, row: Outbox, *, openid: str, template_id: str | None) -> SendResult: ...


async def enqueue(
    session: AsyncSession,
    *,
    dedupe_key: str,
    openid: str,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    source: str = Source.OA,
    member_id: int | None = None,
    category: str = TRANSACTIONAL,
    not_before: datetime | None = None,
    deadline: datetime | None = None,
    experiment_id: int | None = None,
    variant: str | None = None,
    broadcast_id: int | None = None,
) -> bool:
    """Queue one push. Idempotent on dedupe_key: a repeat inserts nothing and returns False. An experiment's
    row names its experiment and the arm (`variant`) it renders."""
    values = {
        "dedupe_key": dedupe_key,
        "openid": openid,
        "kind": kind,
        "payload": json.dumps(payload, ensure_ascii=False),
        "source": source,
        "member_id": member_id,
        "category": category,
        "priority": PRIORITY.get(kind, TRANSACTIONAL_PRIORITY if category == TRANSACTIONAL else 0),
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "deadline": deadline,
        "created_at": now,
        "experiment_id": experiment_id,
        "variant": variant,
        "broadcast_id": broadcast_id,
    }
    stmt = dialect_insert(session)(Outbox).values(**values).on_conflict_do_nothing(
        index_elements=["dedupe_key"]
    )
    return bool(affected(await session.execute(stmt)))


def may_market(member: Member | None) -> str | None:
    """None when a marketing push may go to this member, else the reason it may not."""
    if member is None:
        return "no such member"
    if member.status == MemberStatus.DELETED:
        return "member deleted"
    if member.status == MemberStatus.UNSUBSCRIBED:
        return "member unfollowed the account"
    if member.marketing_opt_out:
        return "member opted out of marketing"
    if member.churn_stage == "dormant":  # storage/winback.py: until the member writes again
        return "member dormant after the win-back"
    return None


# When a marketing push reached its member, for the monthly cap: sent, or claimed (a send under way may land).
REACHED_AT = func.coalesce(col(Outbox.sent_at), col(Outbox.claimed_at))


def counted_since(since: datetime) -> tuple[Any, ...]:
    """The conditions of a marketing row that counts against the cap from `since` on (the sender and the
    broadcast preview count alike)."""
    return (col(Outbox.category) == MARKETING, col(Outbox.status).in_((SENT, SENDING, UNCERTAIN)), REACHED_AT > since)


async def marketing_sent_since(
    session: AsyncSession, member_id: int, since: datetime, *, batch: datetime | None = None
) -> list[datetime]:
    """When marketing pushes reached this member since `since` (sending counts: it may land).
    Rows still `sending` from the caller's own batch (claimed at `batch`, the row being decided
    among them) have not been sent by anyone yet, so they do not count."""
    stmt = select(REACHED_AT).where(col(Outbox.member_id) == member_id).where(*counted_since(since))
    if batch is not None:
        stmt = stmt.where(or_(col(Outbox.status) != SENDING, col(Outbox.claimed_at) != batch))
    rows = await session.scalars(stmt)
    return sorted(r for r in rows if r is not None)


def claim_pick(dialect: str, now: datetime, limit: int) -> Any:
    """The ids a sender claims next: due pending rows, highest priority first (SKIP LOCKED on PostgreSQL)."""
    pick = (
        # A literal, not a parameter: a prepared statement's generic plan could not use the partial
        # index ix_outbox_pending (WHERE status = 'pending') for `status = $1`.
        select(col(Outbox.id)).where(col(Outbox.status) == literal_column(f"'{PENDING}'"))
        .where(col(Outbox.next_attempt_at) <= now)
        .order_by(col(Outbox.priority).desc(), col(Outbox.id)).limit(limit)
    )
    return pick.with_for_update(skip_locked=True) if dialect == "postgresql" else pick


async def claim(
    db: Database, now: datetime, limit: int = 20, *, by: str = "", lease: timedelta = timedelta(seconds=30),
) -> list[Outbox]:
    """Take up to `limit` due rows for sender `by` until `now + lease` (renew() extends it), highest
    priority first. Each row is claimed by exactly one sender: SKIP LOCKED on PostgreSQL, a
    conditional update everywhere."""
    async with db.unit_of_work() as session:
        ids = list((await session.scalars(claim_pick(db.dialect, now, limit))).all())
        if not ids:
            return []
        await session.execute(
            update(Outbox).where(col(Outbox.id).in_(ids)).where(col(Outbox.status) == PENDING)
            .values(status=SENDING, claimed_at=now, claimed_by=by, lease_until=now + lease,
                    attempts=col(Outbox.attempts) + 1)
        )
        rows = await session.scalars(
            select(Outbox).where(col(Outbox.id).in_(ids)).where(col(Outbox.status) == SENDING)
            .where(col(Outbox.claimed_at) == now).where(col(Outbox.claimed_by) == by)
            .order_by(col(Outbox.priority).desc(), col(Outbox.id))
        )
        return list(rows.all())


async def renew(db: Database, by: str, until: datetime) -> int:
    """Extend sender `by`'s claim on the rows it still holds; how many it holds."""
    async with db.unit_of_work() as session:
        result = await session.execute(
            update(Outbox).where(col(Outbox.status) == SENDING).where(col(Outbox.claimed_by) == by)
            .values(lease_until=until)
        )
    return int(affected(result))


async def start_send(db: Database, row: Outbox, channel: str, now: datetime, by: str) -> bool:
    """Mark a send as started (committed before WeChat is called), if `by` still holds the claim: a
    dead sender's in-flight mark is what tells a send that may have landed from one never made."""
    async with db.unit_of_work() as session:
        result = await session.execute(
            update(Outbox).where(col(Outbox.id) == row.id).where(col(Outbox.status) == SENDING)
            .where(col(Outbox.claimed_by) == by).values(in_flight=channel, in_flight_at=now)
        )
    if affected(result):
        row.in_flight, row.in_flight_at = channel, now
    return bool(affected(result))


async def finish(
    session: AsyncSession, row: Outbox, status: str, now: datetime, *, reason: str = "",
    channel: str | None = None, msgid: str | None = None, retry_at: datetime | None = None,
    uncount: bool = False,
) -> None:
    """Record the outcome of a claimed row (pending again with retry_at, or a final status)."""
    values: dict[str, Any] = {"status": status, "last_error": reason[:500] or None}
    if channel:
        values["channel"] = channel
    if msgid:
        values["wechat_msgid"] = msgid
    if status == SENT:  # the send landed: no longer in flight (attempt() leaves this to here)
        values.update(sent_at=now, in_flight=None, in_flight_at=None)
    if status == PENDING:
        values.update(next_attempt_at=retry_at or now, claimed_at=None, claimed_by=None, lease_until=None)
    if uncount:
        values["attempts"] = Outbox.attempts - 1
    await session.execute(update(Outbox).where(col(Outbox.id) == row.id).values(**values))
    if status == SENT:
        row.in_flight, row.in_flight_at = None, None


async def attempt(session: AsyncSession, row: Outbox, result: SendResult, now: datetime) -> None:
    """Record WeChat's answer; the send is no longer in flight (same transaction). On success the
    caller's finish(SENT) clears the in-flight mark in the same UPDATE as the outcome."""
    session.add(OutboxAttempt(
        outbox_id=row_id(row), channel=result.channel, errcode=result.errcode,
        detail=result.detail[:200], at=now,
    ))
    if result.ok:
        return
    await session.execute(update(Outbox).where(col(Outbox.id) == row.id).values(in_flight=None, in_flight_at=None))
    row.in_flight, row.in_flight_at = None, None


# Rows a claim left behind in `sending` (migration 0005 gave claims from before it a lease).
def _stale(now: datetime) -> Any:
    return (col(Outbox.status) == SENDING) & (col(Outbox.lease_until) < now)


def resend_is_safe(row: Outbox, now: datetime, window: timedelta) -> bool:
    """No send in flight, or a template send WeChat dedupes: the same client_msg_id (the dedupe key)
    to the same openid is sent once within about 10 minutes (`window` stays well inside that)."""
    if row.in_flight is None:
        return True
    return row.in_flight == "template" and row.in_flight_at is not None and now - row.in_flight_at <= window


async def recover_stuck(db: Database, now: datetime, window: timedelta = timedelta(minutes=5)) -> tuple[int, int]:
    """Rows a dead sender held past its lease: (taken back, uncertain). A row is sent again only when
    that cannot deliver it twice (resend_is_safe); otherwise it becomes `uncertain` with an anomaly,
    for marketing and transactional rows alike (one greeting lost beats one code sent twice)."""
    async with db.unit_of_work() as session:
        stale = list((await session.scalars(select(Outbox).where(_stale(now)))).all())
        back = uncertain = 0
        for row in stale:
            if resend_is_safe(row, now, window):
                back += await _take_back(session, row, now)
            else:
                uncertain += await mark_uncertain(session, row, now)
    return back, uncertain


async def _take_back(session: AsyncSession, row: Outbox, now: datetime) -> int:
    # in_flight stays: the resend then goes through the template channel only, with the same key.
    reason = None if row.in_flight is None else "sender stopped mid-send; resent with the same client_msg_id"
    result = await session.execute(
        update(Outbox).where(col(Outbox.id) == row.id).where(_stale(now)).values(
            status=PENDING, claimed_at=None, claimed_by=None, lease_until=None, next_attempt_at=now,
            last_error=reason, attempts=col(Outbox.attempts) - (1 if row.in_flight is None else 0),
        )
    )
    return int(affected(result))


async def mark_uncertain(session: AsyncSession, row: Outbox, now: datetime) -> int:
    """A send that may have reached WeChat and cannot be resent safely: final, and an anomaly."""
    result = await session.execute(
        update(Outbox).where(col(Outbox.id) == row.id).where(col(Outbox.status).in_((SENDING, PENDING)))
        .values(status=UNCERTAIN, lease_until=None,
                last_error=f"sender stopped while sending on {row.in_flight}; may have been delivered, not resent")
    )
    if affected(result):
        await anomalies.record(
            session, kind="push_uncertain", member_id=row.member_id, now=now, dedupe_key=f"push_uncertain:{row.id}",
            detail=f"推送（{row.kind}，{row.dedupe_key}）发送途中中断，可能已送达，未重发，请核实",
        )
    return int(affected(result))


async def mark_delivery(session: AsyncSession, msgid: str, status: str) -> bool:
    """TEMPLATESENDJOBFINISH: WeChat's final word on a template message."""
    final = SENT if status.strip().lower() == "success" else UNDELIVERABLE
    reason = None if final == SENT else f"{UNDELIVERABLE_CAUSES['template_delivery']}: {status}"
    result = await session.execute(
        update(Outbox).where(col(Outbox.wechat_msgid) == msgid)
        .values(status=final, last_error=reason)
    )
    return bool(affected(result))


async def rows_for(session: AsyncSession, openid: str) -> Sequence[Outbox]:
    result = await session.execute(select(Outbox).where(col(Outbox.openid) == openid).order_by(col(Outbox.id)))
    return result.scalars().all()


async def counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(col(Outbox.status), func.count()).group_by(col(Outbox.status)))
    return {status: int(n) for status, n in rows.all()}




# --- read helpers for the console's pushes screen -------------------------------------------------
STATES = (PENDING, SENDING, SENT, UNDELIVERABLE, FAILED, DROPPED, UNCERTAIN)


async def page(
    session: AsyncSession, *, status: str | None = None, kind: str | None = None,
    before_id: int | None = None, limit: int = 50, broadcast_id: int | None = None,
) -> Sequence[Outbox]:
    """Newest first, `limit` rows older than the keyset `before_id`, optionally of one status, kind and
    broadcast."""
    stmt = newest_first(Outbox, limit=limit, before_id=before_id,
                        equal={"status": status, "kind": kind, "broadcast_id": broadcast_id})
    return (await session.scalars(stmt)).all()


async def by_id(session: AsyncSession, outbox_id: int) -> Outbox | None:
    return await session.get(Outbox, outbox_id)


async def attempts_of(session: AsyncSession, outbox_id: int) -> Sequence[OutboxAttempt]:
    """Every try at one row, in order."""
    stmt = select(OutboxAttempt).where(col(OutboxAttempt.outbox_id) == outbox_id).order_by(col(OutboxAttempt.id))
    return (await session.scalars(stmt)).all()
