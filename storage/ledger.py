"""The ledger: the only writer of points. Integer lots, earliest-expiring spent first, every call keyed.

Invariants kept here and nowhere else: member.balance == sum(entries.delta) == sum(live lots.remaining),
balance >= 0 (CHECK and a conditional update), and one entry per idempotency key (UNIQUE): a repeated
key changes nothing and returns the first result. Every public call takes the caller's session, so
the points move in the same transaction as whatever caused them, and locks the member row first,
so one member's operations run one at a time (SQLite serialises with BEGIN IMMEDIATE)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, insert, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from storage import anomalies
from storage.clock import local_date
from storage.direct import Statement, attach, fetch, fetch_first, fetch_value, transaction_cache
from storage.errors import DomainError, NotFoundError
from storage.models import LedgerEntry, LotMovement, Member, PointsLot, PurchaseOrder
from storage.reasons import Reason
from storage.rows import row_id, table_of
from storage.rules import Rules

# Non-purchase earnings, capped per member per local day. Campaign payouts stand outside the cap: a
# campaign is budgeted and approved by a manager, and its members get exactly the points it announced.
CAPPED_KINDS = ("signup", "referral", "checkin", "streak", "birthday", "winback", "survey")
# What counts towards the tier: everything earned (not restored); refunded purchases are taken off
# in full (from the orders), whether or not their points could still be taken back.
QUALIFYING_KINDS = (*CAPPED_KINDS, "campaign", "purchase")
_MEMBERS, _ENTRIES, _LOTS = table_of(Member), table_of(LedgerEntry), table_of(PointsLot)
_HELD = "wxbot.ledger.held"
_ENTRY_COLUMNS = (
    "member_id", "delta", "kind", "idempotency_key", "reason", "ref", "actor", "balance_after", "created_at",
)



def _build_write_member(_: Any, variant: tuple[bool, tuple[str, ...]]) -> Any:
    spends, names = variant
    stmt = update(_MEMBERS).where(_MEMBERS.c.id == bindparam("member_id"))
    if spends:  # never below zero, whatever the lock says
        stmt = stmt.where(_MEMBERS.c.balance >= bindparam("needed"))
    values = {"balance": _MEMBERS.c.balance + bindparam("delta")} | {n: bindparam(f"new_{n}") for n in names}
    return stmt.values(values).returning(_MEMBERS.c.balance)


# The hot path's statements (storage.direct): built once, run on the driver connection on PostgreSQL.
_LOCK_MEMBER = Statement("ledger.lock_member", lambda _, __: select(*_MEMBERS.c).where(
    _MEMBERS.c.id == bindparam("member_id")
).with_for_update())
_INSERT_ENTRY = Statement("ledger.insert_entry", lambda insert, _: insert(_ENTRIES).values(
    {c: bindparam(c) for c in _ENTRY_COLUMNS}
).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(_ENTRIES.c.id))
_ADD_LOT = Statement("ledger.add_lot", lambda _, __: insert(_LOTS).values(
    {c: bindparam(c) for c in ("member_id", "entry_id", "amount", "remaining", "earned_at", "expires_at")}
))
_WRITE_MEMBER = Statement("ledger.write_member", _build_write_member)  # variant: (spends, columns set)
_ORDERS = table_of(PurchaseOrder)
# The kinds are the code's own constants, written into the SQL (an IN list of bound values would be expanded
# at execution, which a direct statement does not do).
assert all(kind.isidentifier() for kind in QUALIFYING_KINDS)
def _qualifying_columns() -> tuple[Any, Any]:
    """Points earned in the tier window, and the points of refunds in it (`since` is the window's start)."""
    earned = (
        select(func.coalesce(func.sum(_ENTRIES.c.delta), 0))
        .where(_ENTRIES.c.member_id == bindparam("member_id"))
        .where(_ENTRIES.c.kind.in_([literal_column(f"'{kind}'") for kind in QUALIFYING_KINDS]))
        .where(_ENTRIES.c.created_at > bindparam("since", type_=_ENTRIES.c.created_at.type))
    )
    refunded = (
        select(func.coalesce(func.sum(_ORDERS.c.refunded_points), 0))
        .where(_ORDERS.c.member_id == bindparam("member_id"))
        .where(_ORDERS.c.created_at > bindparam("since", type_=_ORDERS.c.created_at.type))
    )
    return earned.scalar_subquery().label("earned"), refunded.scalar_subquery().label("refunded")


def _expiring_lots() -> Any:
    """Points in live lots expiring in (now, until], and the earliest such expiry: always one row."""
    return select(
        func.coalesce(func.sum(_LOTS.c.remaining), 0).label("points"),
        func.min(_LOTS.c.expires_at).label("first"),
    ).where(_LOTS.c.member_id == bindparam("member_id")).where(_LOTS.c.remaining > 0).where(
        _LOTS.c.expires_at > bindparam("now", type_=_LOTS.c.expires_at.type)
    ).where(_LOTS.c.expires_at <= bindparam("until", type_=_LOTS.c.expires_at.type))


def _build_standing(_: Any, __: Any) -> Any:
    lots = _expiring_lots().subquery("lots")
    return select(lots.c.points, lots.c.first, *_qualifying_columns()).select_from(lots)


_QUALIFYING = Statement("ledger.qualifying_points", lambda _, __: select(*_qualifying_columns()))
_EXPIRING = Statement("ledger.expiring", lambda _, __: _expiring_lots())
_STANDING = Statement("ledger.standing", _build_standing)  # both of the above in one round trip


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
        # Called in the upgrading transaction with (session, member id, new tier, now): Rewards sets it to
        # give the rules' gift for reaching a tier (storage/rewards.py tier_gift).

    # --- public operations ---------------------------------------------------------------
    async def earn(
        self, session: AsyncSession, member_id: int, points: int, *, key: str, kind: str,
        now: datetime, reason: str = "", ref: str | None = None, also: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> Movement:
        """Credit points in a new lot (expiring per the rules). Kinds in CAPPED_KINDS obey the
        daily cap: the excess is not credited and an anomaly is recorded. Upgrades the tier at once.
        `also`: other columns of the member's row to set in the same write (nothing on a repeat).
        `actor`: who moved the points by hand (an operator's name, `token`), kept on the entry."""
        if points < 0:
            raise ValueError("earn takes a positive amount")
        member = await self._begin(session, member_id, now)
        granted, columns = points, dict(also or {})
        if kind in CAPPED_KINDS:
            day = local_date(now, self.tz)
            earned = await self._capped_on(session, member, day)
            granted = min(points, max(self.rules.daily_earn_cap - earned, 0))
            if member.cap_day is None or day >= member.cap_day:
                columns.update(cap_day=day, cap_earned=earned + granted)
        entry_id = await self._insert_entry(session, member, granted, kind, key, now, reason, ref, actor=actor)
        if entry_id is None:
            return await self._repeat(session, key)
        if granted < points:
            day_text = local_date(now, self.tz).isoformat()
            await anomalies.record(
                session, member_id=member_id, kind="daily_cap", now=now,
                detail=f"non-purchase earning over {self.rules.daily_earn_cap} on {day_text}",
                dedupe_key=f"cap:{member_id}:{day_text}",
            )
        upgraded = None
        if granted:
            expires_at = self.rules.lot_expiry(now, self.tz)
            await fetch(session, _ADD_LOT, {
                "member_id": member_id, "entry_id": entry_id, "amount": granted, "remaining": granted,
                "earned_at": now, "expires_at": expires_at,
            })
            columns["expiry_check_at"] = _earliest(member.expiry_check_at, expires_at)
            if kind in QUALIFYING_KINDS:
                columns["earned_total"] = member.earned_total + granted
            upgraded = await self._upgrade(session, member, columns.get("earned_total", member.earned_total), now)
            if upgraded:
                columns["tier"] = upgraded
        await self._write_member(session, member, granted, columns)
        if upgraded:
            await self.upgraded(session, member_id, upgraded, now)
        return Movement(entry_id, member_id, granted, member.balance, kind, requested=points, upgraded_to=upgraded)

    async def upgraded(self, session: AsyncSession, member_id: int, tier: str, now: datetime) -> None:
        """A member reached `tier` (here, or in the monthly review): the rules' gift for reaching it, whoever
        holds this ledger (the gift is a reward's business, so Rewards is imported here: it imports the ledger)."""
        if self.rules.tier_gift(tier) is None:
            return
        from storage.rewards import Rewards

        await Rewards(self).tier_gift(session, member_id, tier, now)

    async def spend(
        self, session: AsyncSession, member_id: int, points: int, *, key: str, kind: str,
        now: datetime, reason: str = "", ref: str | None = None,
    ) -> Movement:
        """Debit points from the earliest-expiring live lots. Raises InsufficientPointsError (and
        changes nothing) when the balance is short; the conditional update guards double spending."""
        if points <= 0:
            raise ValueError("spend takes a positive amount")
        member = await self._begin(session, member_id, now)
        if member.balance < points:
            if (seen := await self._seen(session, key)) is not None:
                return seen
            raise InsufficientPointsError(
                "not enough points", needed=points, balance=member.balance, missing=points - member.balance
            )
        entry_id = await self._insert_entry(session, member, -points, kind, key, now, reason, ref)
        if entry_id is None:
            return await self._repeat(session, key)
        await self._consume(session, member_id, entry_id, points, now)
        await self._write_member(session, member, -points, {})
        return Movement(entry_id, member_id, -points, member.balance, kind, requested=points)

    async def take_back(
        self, session: AsyncSession, member_id: int, points: int, *, key: str, kind: str,
        now: datetime, reason: str = "", ref: str | None = None, actor: str | None = None,
    ) -> Movement:
        """Take points back (a refund) as far as the balance goes; the shortfall becomes an
        anomaly, never a negative balance. `requested` minus `-delta` is the shortfall."""
        if points < 0:
            raise ValueError("take_back takes a positive amount")
        member = await self._begin(session, member_id, now)
        taken = min(points, member.balance)
        entry_id = await self._insert_entry(session, member, -taken, kind, key, now, reason, ref, actor=actor)
        if entry_id is None:
            return await self._repeat(session, key)
        if taken:
            await self._consume(session, member_id, entry_id, taken, now)
            await self._write_member(session, member, -taken, {})
        if taken < points:
            await anomalies.record(
                session, member_id=member_id, kind="refund_shortfall", now=now,
                detail=f"{key}: {points - taken} of {points} points were already spent",
                dedupe_key=f"shortfall:{key}",
            )
        return Movement(entry_id, member_id, -taken, member.balance, kind, requested=points)

    async def restore(
        self, session: AsyncSession, spend_key: str, *, key: str, now: datetime, reason: str = "",
    ) -> Movement:
        """Give a spend back to the lots it came from, with their original expiry. Points whose
        lot has expired meanwhile are not returned (they would have lapsed); `requested` says
        how many the spend took."""
        original = await self._entry_by_key(session, spend_key)
        if original is None or original.delta >= 0:
            raise NotFoundError(f"no spend with key {spend_key}")
        member = await self._begin(session, original.member_id, now)
        moves = (await session.execute(
            select(LotMovement, PointsLot).join(PointsLot, col(LotMovement.lot_id) == PointsLot.id)
            .where(col(LotMovement.entry_id) == original.id).where(col(LotMovement.amount) < 0)
        )).all()
        live = [(m, lot) for m, lot in moves if lot.expires_at > now]
        back = sum(-m.amount for m, _ in live)
        entry_id = await self._insert_entry(session, member, back, "cancel", key, now, reason, original.ref)
        if entry_id is None:
            return await self._repeat(session, key)
        earliest = member.expiry_check_at
        for move, lot in live:
            lot.remaining += -move.amount
            session.add(LotMovement(entry_id=entry_id, lot_id=row_id(lot), amount=-move.amount))
            earliest = _earliest(earliest, lot.expires_at)
        await session.flush()
        await self._write_member(session, member, back, {"expiry_check_at": earliest} if live else {})
        return Movement(entry_id, row_id(member), back, member.balance, "cancel", requested=-original.delta)

    async def absorb(
        self, session: AsyncSession, keep_id: int, drop_id: int, *, now: datetime, also: dict[str, Any] | None = None,
    ) -> int:
        """Merge drop's points into keep (storage/merge.py): every entry and lot of drop re-pointed to keep
        as written (an entry's balance_after stays the running balance of the membership that wrote it),
        keep's balance raised by drop's, drop's set to 0; no entry is added or changed otherwise. Both stay
        "balance == sum of entries == sum of live lots"; drop is left with no rows, so a repeat moves
        nothing. `also`: other columns of keep's row. Returns the points moved."""
        for member_id in sorted((keep_id, drop_id)):  # one lock order, whoever merges which way
            await self.lock(session, member_id)
        keep, drop = await self._begin(session, keep_id, now), await self._begin(session, drop_id, now)
        moved = drop.balance
        for table in (_ENTRIES, _LOTS):
            await session.execute(update(table).where(table.c.member_id == drop_id).values(member_id=keep_id))
        await self._write_member(session, drop, -moved, {"earned_total": 0, "cap_day": None, "cap_earned": 0,
                                                         "expiry_check_at": None})
        columns = {"earned_total": keep.earned_total + drop.earned_total, "cap_day": None, "cap_earned": 0,
                   "expiry_check_at": _sooner(keep.expiry_check_at, drop.expiry_check_at), **(also or {})}
        await self._write_member(session, keep, moved, columns)
        return moved

    async def expire_member(self, session: AsyncSession, member_id: int, now: datetime) -> int:
        """Write expiry entries (`expire:<lot>`) for this member's lapsed lots; returns points expired."""
        member = await self.lock(session, member_id)
        return await self._expire(session, member, now) if _may_have_lapsed(member, now) else 0

    async def expire_due(self, session: AsyncSession, now: datetime, limit: int = 500, after: int = 0) -> list[int]:
        """Members with lapsed lots, in id order after `after` (at most `limit`: page on with the last id);
        the caller expires each in its own transaction. Paging by member keeps each page as cheap as the
        first: without it every call walked again past all the lots expired before."""
        return list((await session.scalars(lapsed_members(now, limit, after))).all())

    # --- reads ---------------------------------------------------------------------------
    async def qualifying_points(self, session: AsyncSession, member_id: int, now: datetime) -> int:
        """Points earned in the tier window less the points of refunds in it: one statement, two sums."""
        since = _months_before(now, self.rules.tier_window_months)
        row = await fetch_first(session, _QUALIFYING, {"member_id": member_id, "since": since})
        assert row is not None  # two aggregates: always one row
        return _qualifying(row)

    async def expiring(
        self, session: AsyncSession, member_id: int, now: datetime, within: timedelta
    ) -> tuple[int, datetime | None]:
        """Points in live lots expiring before now + within, and the earliest such expiry."""
        row = await fetch_first(session, _EXPIRING, {"member_id": member_id, "now": now, "until": now + within})
        assert row is not None  # aggregates: always one row
        return int(row["points"] or 0), row["first"]

    async def standing(
        self, session: AsyncSession, member_id: int, now: datetime, within: timedelta
    ) -> tuple[int, datetime | None, int]:
        """`expiring` and `qualifying_points` in one statement: (points expiring, the first expiry, qualifying)."""
        since = _months_before(now, self.rules.tier_window_months)
        params = {"member_id": member_id, "now": now, "until": now + within, "since": since}
        row = await fetch_first(session, _STANDING, params)
        assert row is not None  # aggregates: always one row
        return int(row["points"] or 0), row["first"], _qualifying(row)

    async def balance(self, session: AsyncSession, member_id: int) -> int:
        return int(await session.scalar(select(col(Member.balance)).where(col(Member.id) == member_id)) or 0)

    async def entry_count(self, session: AsyncSession, member_id: int) -> int:
        return int(await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(col(LedgerEntry.member_id) == member_id)
        ) or 0)

    async def history(
        self, session: AsyncSession, member_id: int, limit: int = 10, *, before: int | None = None
    ) -> list[LedgerEntry]:
        """Movements newest first (entries that moved nothing are left out); `before` pages by entry id."""
        query = select(LedgerEntry).where(col(LedgerEntry.member_id) == member_id).where(col(LedgerEntry.delta) != 0)
        if before is not None:
            query = query.where(col(LedgerEntry.id) < before)
        result = await session.execute(query.order_by(col(LedgerEntry.id).desc()).limit(limit))
        return list(result.scalars())

    # --- internals -----------------------------------------------------------------------
    async def _begin(self, session: AsyncSession, member_id: int, now: datetime) -> Member:
        member = await self.lock(session, member_id)
        if _may_have_lapsed(member, now):
            await self._expire(session, member, now)
        return member

    async def lock(self, session: AsyncSession, member_id: int) -> Member:
        """The member's row, locked until the transaction ends (FOR UPDATE; SQLite's BEGIN IMMEDIATE
        holds the whole database). Within one transaction the row is read once: the ledger keeps the
        loaded object in step with every write it makes."""
        held = transaction_cache(session, _HELD)
        if member_id in held:
            return held[member_id]
        row = await fetch_first(session, _LOCK_MEMBER, {"member_id": member_id})
        if row is None:
            raise NotFoundError(f"member {member_id} does not exist")
        member = held[member_id] = attach(session, Member, row)
        return member

    def hold(self, session: AsyncSession, member: Member) -> None:
        """The caller has locked this freshly read row in the session's transaction: use it as lock() would."""
        transaction_cache(session, _HELD)[member.id] = member

    async def _seen(self, session: AsyncSession, key: str) -> Movement | None:
        entry = await self._entry_by_key(session, key)
        return None if entry is None else self._movement(entry, repeated=True)

    async def _repeat(self, session: AsyncSession, key: str) -> Movement:
        seen = await self._seen(session, key)
        if seen is None:  # the key's entry vanished between the conflict and the read: cannot be
            raise RuntimeError(f"ledger key {key} conflicted but holds no entry")
        return seen

    async def _entry_by_key(self, session: AsyncSession, key: str) -> LedgerEntry | None:
        result = await session.execute(select(LedgerEntry).where(col(LedgerEntry.idempotency_key) == key))
        return result.scalar_one_or_none()

    async def _insert_entry(
        self, session: AsyncSession, member: Member, delta: int, kind: str, key: str, now: datetime,
        reason: str, ref: str | None, *, pending: int = 0, actor: str | None = None,
    ) -> int | None:
        """The entry's id, or None when the key is taken (a repeat: nothing was written). `pending`:
        what this call has already moved and not yet written to the member's row."""
        return await fetch_value(session, _INSERT_ENTRY, {
            "member_id": member.id, "delta": delta, "kind": kind, "idempotency_key": key, "reason": reason[:200],
            "ref": ref, "actor": actor and actor[:64], "balance_after": member.balance + pending + delta,
            "created_at": now,
        })

    async def _write_member(self, session: AsyncSession, member: Member, delta: int, columns: dict[str, Any]) -> None:
        """One UPDATE of the locked row: the balance moved by `delta` (never below zero) and `columns`;
        the loaded object follows without being marked dirty."""
        if not delta and not columns:
            return
        names = tuple(sorted(columns))
        params = {"member_id": member.id, "delta": delta, **{f"new_{n}": columns[n] for n in names}}
        if delta < 0:
            params["needed"] = -delta
        balance = await fetch_value(session, _WRITE_MEMBER, params, (delta < 0, names))
        if balance != member.balance + delta:  # the lock says this cannot happen: refuse to guess
            raise RuntimeError(f"member {member.id}: balance {balance} where {member.balance + delta} was due")
        set_committed_value(member, "balance", balance)
        for name, value in columns.items():
            set_committed_value(member, name, value)

    async def _consume(
        self, session: AsyncSession, member_id: int, entry_id: int, points: int, now: datetime
    ) -> None:
        lots = (await session.execute(
            select(PointsLot).where(col(PointsLot.member_id) == member_id).where(col(PointsLot.remaining) > 0)
            .where(col(PointsLot.expires_at) > now).order_by(col(PointsLot.expires_at), col(PointsLot.id))
        )).scalars()
        left = points
        for lot in lots:
            take = min(lot.remaining, left)
            lot.remaining -= take
            session.add(LotMovement(entry_id=entry_id, lot_id=row_id(lot), amount=-take))
            left -= take
            if not left:
                break
        if left:  # the balance said yes but the lots disagree: never paper over that
            raise RuntimeError(f"ledger lots of member {member_id} short by {left}")
        await session.flush()

    async def _expire(self, session: AsyncSession, member: Member, now: datetime) -> int:
        """Expire the member's lapsed lots and move expiry_check_at to the earliest live lot."""
        lots = (await session.execute(
            select(PointsLot).where(col(PointsLot.member_id) == member.id).where(col(PointsLot.remaining) > 0)
            .where(col(PointsLot.expires_at) <= now).order_by(col(PointsLot.expires_at), col(PointsLot.id))
        )).scalars().all()
        total = 0
        for lot in lots:
            points = lot.remaining
            local_day = lot.expires_at.astimezone(self.tz).date() - timedelta(days=1)
            entry_id = await self._insert_entry(
                session, member, -points, "expire", f"expire:{lot.id}", lot.expires_at,
                Reason.EXPIRE.stored(earned=f"{lot.earned_at.astimezone(self.tz):%Y-%m}", day=f"{local_day:%Y-%m-%d}"),
                None,
                pending=-total,
            )
            if entry_id is None:  # cannot be while the lot still holds points: never expire twice
                raise RuntimeError(f"lot {lot.id} holds points but its expiry entry exists")
            lot.remaining = 0
            session.add(LotMovement(entry_id=entry_id, lot_id=row_id(lot), amount=-points))
            total += points
        if lots:
            await session.flush()
        earliest = await session.scalar(
            select(func.min(col(PointsLot.expires_at))).where(col(PointsLot.member_id) == member.id)
            .where(col(PointsLot.remaining) > 0)
        )
        moved = {} if earliest == member.expiry_check_at else {"expiry_check_at": earliest}
        await self._write_member(session, member, -total, moved)
        return total

    async def _capped_on(self, session: AsyncSession, member: Member, day: date) -> int:
        """Capped points the member has earned on the local `day`: from the row's tally when it is
        that day's (or a later day has started), else summed from the entries."""
        if member.cap_day == day:
            return member.cap_earned
        if member.cap_day is not None and day > member.cap_day:
            return 0  # every capped earning goes through here and would have moved cap_day
        start = self.rules.day_start(day, self.tz)
        earned = await session.scalar(
            select(func.coalesce(func.sum(col(LedgerEntry.delta)), 0))
            .where(col(LedgerEntry.member_id) == member.id)
            .where(col(LedgerEntry.kind).in_(CAPPED_KINDS))
            .where(col(LedgerEntry.created_at) >= start)
            .where(col(LedgerEntry.created_at) < self.rules.day_start(day + timedelta(days=1), self.tz))
        )
        return int(earned or 0)

    async def _upgrade(self, session: AsyncSession, member: Member, earned_total: int, now: datetime) -> str | None:
        """The tier the member rises to now, if any. No query while everything the member ever
        earned stays below the next threshold (the window's total cannot be more)."""
        following = self.rules.next_tier(member.tier)
        if following is None or earned_total < following.threshold:
            return None
        target = self.rules.tier_for(await self.qualifying_points(session, row_id(member), now))
        if self.rules.tier_rank(target.name) <= self.rules.tier_rank(member.tier):
            return None
        return target.name

    @staticmethod
    def _movement(entry: LedgerEntry, *, repeated: bool = False) -> Movement:
        return Movement(
            entry_id=row_id(entry), member_id=entry.member_id, delta=entry.delta,
            balance=entry.balance_after, kind=entry.kind, repeated=repeated, requested=abs(entry.delta),
        )

def lapsed_members(now: datetime, limit: int, after: int = 0) -> Any:
    """Ledger.expire_due's statement: the next `limit` members after `after` holding lapsed lots."""
    return (
        select(col(PointsLot.member_id)).where(col(PointsLot.member_id) > after).where(col(PointsLot.expires_at) <= now)
        .where(col(PointsLot.remaining) > 0).group_by(col(PointsLot.member_id)).order_by(col(PointsLot.member_id))
        .limit(limit)
    )


def _may_have_lapsed(member: Member, now: datetime) -> bool:
    """Whether a live lot may have reached its expiry (NULL: not known, so look)."""
    return member.expiry_check_at is None or member.expiry_check_at <= now


def _sooner(one: datetime | None, other: datetime | None) -> datetime | None:
    """expiry_check_at of two merged members: NULL (look at the lots) unless both are known."""
    return None if one is None or other is None else min(one, other)


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def _qualifying(row: dict[str, Any]) -> int:
    return max(int(row["earned"] or 0) - int(row["refunded"] or 0), 0)


def _months_before(at: datetime, months: int) -> datetime:
    total = at.year * 12 + at.month - 1 - months
    year, month = divmod(total, 12)
    day = min(at.day, calendar.monthrange(year, month + 1)[1])  # 31 March less one month: 28/29 Feb
    return at.replace(year=year, month=month + 1, day=day)
