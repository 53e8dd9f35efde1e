"""The ledger: the only writer of points. Integer lots, earliest-expiring spent first, every call keyed.

Invariants kept here and nowhere else: member.balance == sum(entries.delta) == sum(live lots.remaining),
balance >= 0 (CHECK and a conditional update), and one entry per idempotency key (UNIQUE): a repeated
key changes nothing and returns the first result. Every public call takes the caller's session, so
the points move in the same transaction as whatever caused them, and locks the member row first,
so one member's operations run one at a time (SQLite serialises with BEGIN IMMEDIATE)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import anomalies
from storage.clock import local_date
from storage.errors import DomainError, NotFoundError
from storage.models import LedgerEntry, LotMovement, Member, PointsLot, PurchaseOrder
from storage.rules import Rules

# Non-purchase earnings, capped per member per local day.
CAPPED_KINDS = ("signup", "referral", "checkin", "streak", "birthday", "campaign", "winback")
# What counts towards the tier: everything earned (not restored); refunded purchases are taken off
# in full (from the orders), whether or not their points could still be taken back.
QUALIFYING_KINDS = (*CAPPED_KINDS, "purchase")


class InsufficientPointsError(DomainError):
    text_key = "insufficient_points"


@dataclass(frozen=True)
class Movement:
    """The result of one ledger call (the first result again for a repeated key)."""

    entry_id: int
    member_id: int
    delta: int
    balance: int
    kind: str
    repeated: bool = False
    requested: int = 0
    upgraded_to: str | None = None

    @property
    def capped(self) -> bool:
        return self.delta < self.requested


class Ledger:
    def __init__(self, rules: Rules, tz: ZoneInfo) -> None:
        self.rules = rules
        self.tz = tz

    # --- public operations ---------------------------------------------------------------
    async def earn(
        self, session: AsyncSession, member_id: int, points: int, *, key: str, kind: str,
        now: datetime, reason: str = "", ref: str | None = None,
    ) -> Movement:
        """Credit points in a new lot (expiring per the rules). Kinds in CAPPED_KINDS obey the
        daily cap: the excess is not credited and an anomaly is recorded. Upgrades the tier at once."""
        if points < 0:
            raise ValueError("earn takes a positive amount")
        member = await self._begin(session, member_id, now)
        if (seen := await self._seen(session, key)) is not None:
            return seen
        granted = points
        if kind in CAPPED_KINDS:
            granted = min(points, await self._cap_room(session, member_id, now))
            if granted < points:
                day = local_date(now, self.tz).isoformat()
                await anomalies.record(
                    session, member_id=member_id, kind="daily_cap", now=now,
                    detail=f"non-purchase earning over {self.rules.daily_earn_cap} on {day}",
                    dedupe_key=f"cap:{member_id}:{day}",
                )
        entry = await self._entry(session, member_id, granted, kind, key, now, reason, ref)
        if granted:
            session.add(PointsLot(
                member_id=member_id, entry_id=entry.id, amount=granted, remaining=granted,
                earned_at=now, expires_at=self.rules.lot_expiry(now, self.tz),
            ))
        upgraded = await self._maybe_upgrade(session, member, now) if granted else None
        return self._movement(entry, requested=points, upgraded_to=upgraded)

    async def spend(
        self, session: AsyncSession, member_id: int, points: int, *, key: str, kind: str,
        now: datetime, reason: str = "", ref: str | None = None,
    ) -> Movement:
        """Debit points from the earliest-expiring live lots. Raises InsufficientPointsError (and
        changes nothing) when the balance is short; the conditional update guards double spending."""
        if points <= 0:
            raise ValueError("spend takes a positive amount")
        await self._begin(session, member_id, now)
        if (seen := await self._seen(session, key)) is not None:
            return seen
        entry = await self._entry(session, member_id, -points, kind, key, now, reason, ref, guard=True)
        await self._consume(session, member_id, entry.id, points, now)
        return self._movement(entry, requested=points)

    async def take_back(
        self, session: AsyncSession, member_id: int, points: int, *, key: str, kind: str,
        now: datetime, reason: str = "", ref: str | None = None,
    ) -> Movement:
        """Take points back (a refund) as far as the balance goes; the shortfall becomes an
        anomaly, never a negative balance. `requested` minus `-delta` is the shortfall."""
        if points < 0:
            raise ValueError("take_back takes a positive amount")
        member = await self._begin(session, member_id, now)
        if (seen := await self._seen(session, key)) is not None:
            return seen
        taken = min(points, member.balance)
        entry = await self._entry(session, member_id, -taken, kind, key, now, reason, ref, guard=True)
        if taken:
            await self._consume(session, member_id, entry.id, taken, now)
        if taken < points:
            await anomalies.record(
                session, member_id=member_id, kind="refund_shortfall", now=now,
                detail=f"{key}: {points - taken} of {points} points were already spent",
                dedupe_key=f"shortfall:{key}",
            )
        return self._movement(entry, requested=points)

    async def restore(
        self, session: AsyncSession, spend_key: str, *, key: str, now: datetime, reason: str = "",
    ) -> Movement:
        """Give a spend back to the lots it came from, with their original expiry. Points whose
        lot has expired meanwhile are not returned (they would have lapsed); `requested` says
        how many the spend took."""
        original = await self._entry_by_key(session, spend_key)
        if original is None or original.delta >= 0:
            raise NotFoundError(f"no spend with key {spend_key}")
        await self._begin(session, original.member_id, now)
        if (seen := await self._seen(session, key)) is not None:
            return seen
        moves = (await session.execute(
            select(LotMovement, PointsLot).join(PointsLot, LotMovement.lot_id == PointsLot.id)
            .where(LotMovement.entry_id == original.id).where(LotMovement.amount < 0)
        )).all()
        live = [(m, lot) for m, lot in moves if lot.expires_at > now]
        back = sum(-m.amount for m, _ in live)
        entry = await self._entry(
            session, original.member_id, back, "cancel", key, now, reason, original.ref
        )
        for move, lot in live:
            lot.remaining += -move.amount
            session.add(LotMovement(entry_id=entry.id, lot_id=lot.id, amount=-move.amount))
        return self._movement(entry, requested=-original.delta)

    async def expire_member(self, session: AsyncSession, member_id: int, now: datetime) -> int:
        """Write expiry entries (`expire:<lot>`) for this member's lapsed lots; returns points expired."""
        await self.lock(session, member_id)
        return await self._expire(session, member_id, now)

    async def expire_due(self, session: AsyncSession, now: datetime, limit: int = 500) -> list[int]:
        """Members with lapsed lots (at most `limit`); the caller expires each in its own transaction."""
        rows = await session.execute(
            select(PointsLot.member_id).where(PointsLot.expires_at <= now)
            .where(PointsLot.remaining > 0).group_by(PointsLot.member_id).limit(limit)
        )
        return [r[0] for r in rows]

    # --- reads ---------------------------------------------------------------------------
    async def qualifying_points(self, session: AsyncSession, member_id: int, now: datetime) -> int:
        since = _months_before(now, self.rules.tier_window_months)
        earned = await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.delta), 0))
            .where(LedgerEntry.member_id == member_id)
            .where(LedgerEntry.kind.in_(QUALIFYING_KINDS))  # type: ignore[attr-defined]
            .where(LedgerEntry.created_at > since)
        )
        refunded = await session.scalar(
            select(func.coalesce(func.sum(PurchaseOrder.refunded_points), 0))
            .where(PurchaseOrder.member_id == member_id).where(PurchaseOrder.created_at > since)
        )
        return max(int(earned or 0) - int(refunded or 0), 0)

    async def expiring(
        self, session: AsyncSession, member_id: int, now: datetime, within: timedelta
    ) -> tuple[int, datetime | None]:
        """Points in live lots expiring before now + within, and the earliest such expiry."""
        row = (await session.execute(
            select(func.coalesce(func.sum(PointsLot.remaining), 0), func.min(PointsLot.expires_at))
            .where(PointsLot.member_id == member_id).where(PointsLot.remaining > 0)
            .where(PointsLot.expires_at > now).where(PointsLot.expires_at <= now + within)
        )).one()
        return int(row[0]), row[1]

    async def balance(self, session: AsyncSession, member_id: int) -> int:
        return int(await session.scalar(select(Member.balance).where(Member.id == member_id)) or 0)

    async def entry_count(self, session: AsyncSession, member_id: int) -> int:
        return int(await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.member_id == member_id)
        ) or 0)

    async def history(
        self, session: AsyncSession, member_id: int, limit: int = 10, *, before: int | None = None
    ) -> list[LedgerEntry]:
        """Movements newest first (entries that moved nothing are left out); `before` pages by entry id."""
        query = select(LedgerEntry).where(LedgerEntry.member_id == member_id).where(LedgerEntry.delta != 0)
        if before is not None:
            query = query.where(LedgerEntry.id < before)  # type: ignore[operator]
        result = await session.execute(query.order_by(LedgerEntry.id.desc()).limit(limit))  # type: ignore[union-attr]
        return list(result.scalars())

    # --- internals -----------------------------------------------------------------------
    async def _begin(self, session: AsyncSession, member_id: int, now: datetime) -> Member:
        member = await self.lock(session, member_id)
        if await self._expire(session, member_id, now):
            await session.refresh(member)
        return member

    async def lock(self, session: AsyncSession, member_id: int) -> Member:
        member = await session.scalar(
            select(Member).where(Member.id == member_id).with_for_update()
            .execution_options(populate_existing=True)
        )
        if member is None:
            raise NotFoundError(f"member {member_id} does not exist")
        return member

    async def _seen(self, session: AsyncSession, key: str) -> Movement | None:
        entry = await self._entry_by_key(session, key)
        return None if entry is None else self._movement(entry, repeated=True)

    async def _entry_by_key(self, session: AsyncSession, key: str) -> LedgerEntry | None:
        result = await session.execute(select(LedgerEntry).where(LedgerEntry.idempotency_key == key))
        return result.scalar_one_or_none()

    async def _entry(
        self, session: AsyncSession, member_id: int, delta: int, kind: str, key: str, now: datetime,
        reason: str, ref: str | None, *, guard: bool = False,
    ) -> LedgerEntry:
        stmt = update(Member).where(Member.id == member_id)
        if guard:
            stmt = stmt.where(Member.balance >= -delta)
        balance = await session.scalar(
            stmt.values(balance=Member.balance + delta).returning(Member.balance)
        )
        if balance is None:
            current = int(await session.scalar(select(Member.balance).where(Member.id == member_id)) or 0)
            raise InsufficientPointsError(
                "not enough points", needed=-delta, balance=current, missing=-delta - current
            )
        entry = LedgerEntry(
            member_id=member_id, delta=delta, kind=kind, idempotency_key=key, reason=reason[:200],
            ref=ref, balance_after=balance, created_at=now,
        )
        session.add(entry)
        await session.flush()
        return entry

    async def _consume(
        self, session: AsyncSession, member_id: int, entry_id: int, points: int, now: datetime
    ) -> None:
        lots = (await session.execute(
            select(PointsLot).where(PointsLot.member_id == member_id).where(PointsLot.remaining > 0)
            .where(PointsLot.expires_at > now).order_by(PointsLot.expires_at, PointsLot.id)
        )).scalars()
        left = points
        for lot in lots:
            take = min(lot.remaining, left)
            lot.remaining -= take
            session.add(LotMovement(entry_id=entry_id, lot_id=lot.id, amount=-take))
            left -= take
            if not left:
                break
        if left:  # the balance said yes but the lots disagree: never paper over that
            raise RuntimeError(f"ledger lots of member {member_id} short by {left}")
        await session.flush()

    async def _expire(self, session: AsyncSession, member_id: int, now: datetime) -> int:
        lots = (await session.execute(
            select(PointsLot).where(PointsLot.member_id == member_id).where(PointsLot.remaining > 0)
            .where(PointsLot.expires_at <= now).order_by(PointsLot.expires_at, PointsLot.id)
        )).scalars().all()
        total = 0
        for lot in lots:
            points = lot.remaining
            local_day = lot.expires_at.astimezone(self.tz).date() - timedelta(days=1)
            entry = await self._entry(
                session, member_id, -points, "expire", f"expire:{lot.id}", lot.expires_at,
                f"{lot.earned_at.astimezone(self.tz):%Y-%m} 获得的积分于 {local_day:%Y-%m-%d} 到期", None,
                guard=True,
            )
            lot.remaining = 0
            session.add(LotMovement(entry_id=entry.id, lot_id=lot.id, amount=-points))
            total += points
        if total:
            await session.flush()
        return total

    async def _cap_room(self, session: AsyncSession, member_id: int, now: datetime) -> int:
        day_start = self.rules.day_start(local_date(now, self.tz), self.tz)
        earned = await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.delta), 0))
            .where(LedgerEntry.member_id == member_id)
            .where(LedgerEntry.kind.in_(CAPPED_KINDS))  # type: ignore[attr-defined]
            .where(LedgerEntry.created_at >= day_start)
        )
        return max(self.rules.daily_earn_cap - int(earned or 0), 0)

    async def _maybe_upgrade(self, session: AsyncSession, member: Member, now: datetime) -> str | None:
        if self.rules.next_tier(member.tier) is None:
            return None
        target = self.rules.tier_for(await self.qualifying_points(session, member.id, now))  # type: ignore[arg-type]
        if self.rules.tier_rank(target.name) <= self.rules.tier_rank(member.tier):
            return None
        member.tier = target.name
        return target.name

    @staticmethod
    def _movement(
        entry: LedgerEntry, *, repeated: bool = False, requested: int | None = None,
        upgraded_to: str | None = None,
    ) -> Movement:
        return Movement(
            entry_id=entry.id, member_id=entry.member_id, delta=entry.delta,  # type: ignore[arg-type]
            balance=entry.balance_after, kind=entry.kind, repeated=repeated,
            requested=abs(entry.delta) if requested is None else requested, upgraded_to=upgraded_to,
        )


def _months_before(at: datetime, months: int) -> datetime:
    total = at.year * 12 + at.month - 1 - months
    year, month = divmod(total, 12)
    day = min(at.day, calendar.monthrange(year, month + 1)[1])  # 31 March less one month: 28/29 Feb
    return at.replace(year=year, month=month + 1, day=day)
