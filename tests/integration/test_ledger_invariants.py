"""A hypothesis state machine over the ledger with a moving clock, checked against a model of the lots.

Operations: earn (capped and uncapped kinds), spend, take_back (a refund), restore (cancel of an earlier
spend), expire (expire_due then expire_member), advancing the clock by hours to months or to a lot's
exact expiry, an operator changing expiry_months (so younger lots can expire first), and repeating an
earlier idempotency key. After every step: balance == sum(entries) ==
sum(lot remaining), 0 <= remaining <= amount, balance >= 0, every lot and entry agrees with its lot
movements, and the database matches the model (so a spend took the earliest-expiring lots)."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import itertools
import shutil
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from storage.db import Database
from storage.errors import NotFoundError
from storage.ledger import CAPPED_KINDS, QUALIFYING_KINDS, InsufficientPointsError, Ledger, Movement
from storage.models import Anomaly, LedgerEntry, LotMovement, Member, PointsLot
from storage.rules import Rules
from tests.conftest import START
from tests.support import backends
from tests.support.factories import TZ, add_member, make_ledger

EARN_KINDS = ("purchase", "campaign", "checkin")


@dataclass
class Lot:
    amount: int
    remaining: int
    expires_at: datetime


@dataclass
class Model:
    """What the ledger should hold: the lots, the capped earnings per local day, the open spends."""

    lots: dict[int, Lot] = field(default_factory=dict)
    capped: dict[date, int] = field(default_factory=dict)
    spends: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # key -> (lot, taken)
    spent: dict[str, int] = field(default_factory=dict)  # key -> points the spend took
    expired: set[int] = field(default_factory=set)  # lots that lapsed with points in them

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots.values())

    def expire(self, now: datetime) -> dict[int, int]:
        """Lapse what is due; returns lot id -> points expired."""
        gone = {}
        for lot_id, lot in sorted(self.lots.items(), key=lambda kv: (kv[1].expires_at, kv[0])):
            if lot.remaining and lot.expires_at <= now:
                gone[lot_id] = lot.remaining
                lot.remaining = 0
                self.expired.add(lot_id)
        return gone

    def consume(self, points: int) -> list[tuple[int, int]]:
        """Take points from the earliest-expiring lots; returns the expected (lot, -taken) movements."""
        moves = []
        left = points
        for lot_id, lot in sorted(self.lots.items(), key=lambda kv: (kv[1].expires_at, kv[0])):
            if not left:
                break
            if lot.remaining:
                take = min(lot.remaining, left)
                lot.remaining -= take
                moves.append((lot_id, -take))
                left -= take
        assert not left
        return moves


@dataclass(frozen=True)
class Call:
    """An operation that committed, to be repeated later with the same key."""

    op: str
    key: str
    points: int
    first: Movement


class Backend:
    """Hands each example a fresh, migrated database."""

    async def fresh(self) -> Database:
        raise NotImplementedError

    async def cleanup(self, db: Database) -> None:
        await db.dispose()


class SQLiteBackend(Backend):
    def __init__(self, template: Path, directory: Path) -> None:
        self.template = template
        self.directory = directory
        self.counter = itertools.count()

    async def fresh(self) -> Database:
        path = self.directory / f"example-{next(self.counter)}.db"
        shutil.copy(self.template, path)
        return Database(f"sqlite:///{path}")

    async def cleanup(self, db: Database) -> None:
        await db.dispose()
        name = db.engine.url.database
        assert name is not None
        _remove_sqlite_files(name)


def _remove_sqlite_files(name: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(name + suffix).unlink(missing_ok=True)


class PostgresBackend(Backend):
    def __init__(self, url: str) -> None:
        self.url = url

    async def fresh(self) -> Database:
        await backends.truncate(self.url)
        return Database(self.url, pool_size=2)


@dataclass(frozen=True)
class World:
    """Everything the ledger wrote, read in one session (four queries): what each step checks."""

    balance: int
    entries: tuple[tuple[int, int, str, str, int, datetime], ...]  # id, delta, kind, key, after, at
    lots: tuple[tuple[int, int, int, int, datetime], ...]  # id, entry, amount, remaining, expires
    moves: tuple[tuple[int, int, int], ...]  # entry, lot, amount (in id order)
    anomalies: tuple[tuple[str, str], ...]  # dedupe key, kind
    kept: tuple[int, date | None, int, datetime | None]  # the row's earned_total, cap_day, cap_earned, expiry_check_at

    def entry(self, key: str) -> tuple[int, int, str, str, int, datetime] | None:
        return next((e for e in self.entries if e[3] == key), None)

    def moves_of(self, entry_id: int) -> list[tuple[int, int]]:
        return [(lot, amount) for entry, lot, amount in self.moves if entry == entry_id]

    def lots_of(self, entry_id: int) -> list[tuple[int, int, int, int, datetime]]:
        return [lot for lot in self.lots if lot[1] == entry_id]

    def anomaly(self, dedupe_key: str) -> str | None:
        return next((kind for key, kind in self.anomalies if key == dedupe_key), None)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.backend = backend
        self.ledger: Ledger = make_ledger()
        self.now = START
        self.model = Model()
        self.calls: list[Call] = []
        self.serial = itertools.count(1)
        self.seen: World | None = None  # read by the step that just ran, reused by the invariant
        self.last: World | None = None  # what the invariant last checked
        self.db = self.run(backend.fresh())
        self.member = self.run(add_member(self.db, START))

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.run(self.backend.cleanup(self.db))
        finally:
            self.loop.close()

    # --- calling the ledger, each call in its own transaction --------------------------------------
    async def _call(self, op: str, key: str, points: int) -> Movement:
        async with self.db.unit_of_work() as s:
            if op.startswith("earn:"):
                kind = op.split(":", 1)[1]
                return await self.ledger.earn(s, self.member, points, key=key, kind=kind, now=self.now)
            if op == "spend":
                return await self.ledger.spend(s, self.member, points, key=key, kind="redeem", now=self.now)
            if op == "take_back":
                return await self.ledger.take_back(
                    s, self.member, points, key=key, kind="refund", now=self.now
                )
            assert op.startswith("restore:")
            return await self.ledger.restore(s, op.split(":", 1)[1], key=key, now=self.now)

    def call(self, op: str, key: str, points: int) -> Movement:
        return self.run(self._call(op, key, points))

    def remember(self, op: str, key: str, points: int, movement: Movement) -> None:
        assert not movement.repeated
        assert movement.member_id == self.member
        self.calls.append(Call(op, key, points, movement))

    async def _read(self) -> World:
        async with self.db.sessions() as s:
            balance, *kept = (await s.execute(select(
                Member.balance, Member.earned_total, Member.cap_day, Member.cap_earned, Member.expiry_check_at,
            ).where(Member.id == self.member))).one()
            entries = (await s.execute(select(
                LedgerEntry.id, LedgerEntry.delta, LedgerEntry.kind, LedgerEntry.idempotency_key,
                LedgerEntry.balance_after, LedgerEntry.created_at,
            ).order_by(LedgerEntry.id))).all()
            lots = (await s.execute(select(
                PointsLot.id, PointsLot.entry_id, PointsLot.amount, PointsLot.remaining, PointsLot.expires_at
            ).order_by(PointsLot.id))).all()
            moves = (await s.execute(
                select(LotMovement.entry_id, LotMovement.lot_id, LotMovement.amount).order_by(LotMovement.id)
            )).all()
            anomalies = (await s.execute(select(Anomaly.dedupe_key, Anomaly.kind).order_by(Anomaly.id))).all()
        return World(
            int(balance or 0), tuple(tuple(r) for r in entries), tuple(tuple(r) for r in lots),  # type: ignore[misc]
            tuple(tuple(r) for r in moves), tuple(tuple(r) for r in anomalies),  # type: ignore[misc]
            tuple(kept),  # type: ignore[arg-type]
        )

    def observe(self) -> World:
        self.seen = self.run(self._read())
        return self.seen

    def check_expired(self, world: World, gone: dict[int, int]) -> None:
        for lot_id, points in gone.items():
            entry = world.entry(f"expire:{lot_id}")
            assert entry is not None, f"lot {lot_id} lapsed without an expire entry"
            entry_id, delta, kind, _, _, at = entry
            assert (delta, kind, at) == (-points, "expire", self.model.lots[lot_id].expires_at)
            assert world.moves_of(entry_id) == [(lot_id, -points)]
        expired = {e[3] for e in world.entries if e[2] == "expire"}
        assert expired == {f"expire:{i}" for i in self.model.expired}

    # --- rules -------------------------------------------------------------------------------------------
    @initialize(points=st.integers(1, 1_000))
    def opening_purchase(self, points: int) -> None:
        self.earn(points, "purchase")

    @rule(points=st.integers(0, 500), kind=st.sampled_from(EARN_KINDS))
    def earn(self, points: int, kind: str) -> None:
        key = f"earn:{next(self.serial)}"
        gone = self.model.expire(self.now)
        day = self.now.astimezone(TZ).date()
        expected = points
        if kind in CAPPED_KINDS:
            expected = min(points, max(self.ledger.rules.daily_earn_cap - self.model.capped.get(day, 0), 0))
        moved = self.call(f"earn:{kind}", key, points)
        world = self.observe()
        self.check_expired(world, gone)
        assert (moved.delta, moved.requested, moved.kind) == (expected, points, kind)
        assert moved.balance == self.model.balance + expected
        if kind in CAPPED_KINDS:
            self.model.capped[day] = self.model.capped.get(day, 0) + expected
            if expected < points:
                assert world.anomaly(f"cap:{self.member}:{day.isoformat()}") == "daily_cap"
        lots = world.lots_of(moved.entry_id)
        if expected:
            assert len(lots) == 1
            lot_id, _, amount, remaining, expires_at = lots[0]
            assert (amount, remaining) == (expected, expected)
            assert expires_at == self.ledger.rules.lot_expiry(self.now, TZ)
            self.model.lots[lot_id] = Lot(expected, expected, expires_at)
        else:
            assert lots == []
        self.remember(f"earn:{kind}", key, points, moved)

    @rule(share=st.integers(0, 100), over=st.sampled_from((0, 0, 0, 1, 300)))
    def spend(self, share: int, over: int) -> None:
        """Mostly within the balance (a share of it); sometimes one point or far beyond it."""
        points = max(self.model.balance * share // 100 + over, 1)
        key = f"spend:{next(self.serial)}"
        after = copy.deepcopy(self.model)
        gone = after.expire(self.now)
        if points > after.balance:
            before = self.run(self._read())
            with pytest.raises(InsufficientPointsError):
                self.call("spend", key, points)
            assert self.observe() == before  # nothing changed, not even the expiry
            return
        moved = self.call("spend", key, points)
        self.model = after
        world = self.observe()
        self.check_expired(world, gone)
        expected_moves = self.model.consume(points)
        assert (moved.delta, moved.requested) == (-points, points)
        assert moved.balance == self.model.balance
        actual = world.moves_of(moved.entry_id)
        assert actual == expected_moves  # earliest-expiring lots first, each emptied before the next
        self.model.spends[key] = [(lot, -taken) for lot, taken in actual]
        self.model.spent[key] = points
        self.remember("spend", key, points, moved)

    @rule(share=st.integers(0, 100), over=st.sampled_from((0, 0, 0, 1, 300)))
    def take_back(self, share: int, over: int) -> None:
        """Mostly part of the balance; sometimes more than is left (a shortfall)."""
        points = self.model.balance * share // 400 + over
        key = f"refund:{next(self.serial)}"
        gone = self.model.expire(self.now)
        taken = min(points, self.model.balance)
        moved = self.call("take_back", key, points)
        world = self.observe()
        self.check_expired(world, gone)
        expected_moves = self.model.consume(taken)
        assert (moved.delta, moved.requested) == (-taken, points)
        assert moved.balance == self.model.balance
        assert world.moves_of(moved.entry_id) == expected_moves
        assert world.anomaly(f"shortfall:{key}") == ("refund_shortfall" if taken < points else None)
        self.remember("take_back", key, points, moved)

    @precondition(lambda self: bool(self.model.spends))
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        spend_key = data.draw(st.sampled_from(sorted(self.model.spends)))
        key = f"cancel:{spend_key}"
        gone = self.model.expire(self.now)
        taken = self.model.spends.pop(spend_key)
        expected_moves = [(lot, n) for lot, n in taken if self.model.lots[lot].expires_at > self.now]
        moved = self.call(f"restore:{spend_key}", key, 0)
        world = self.observe()
        self.check_expired(world, gone)
        for lot, n in expected_moves:
            self.model.lots[lot].remaining += n
        assert moved.delta == sum(n for _, n in expected_moves)
        assert moved.requested == self.model.spent[spend_key]
        assert moved.kind == "cancel"
        assert moved.balance == self.model.balance
        assert world.moves_of(moved.entry_id) == expected_moves  # same lots, expiry untouched
        self.remember(f"restore:{spend_key}", key, 0, moved)

    @rule()
    def expire(self) -> None:
        async def expire_all() -> tuple[list[int], int]:
            async with self.db.sessions() as s:
                due = await self.ledger.expire_due(s, self.now)
            total = 0
            for member_id in due:
                async with self.db.unit_of_work() as s:
                    total += await self.ledger.expire_member(s, member_id, self.now)
            return due, total

        gone = self.model.expire(self.now)
        due, total = self.run(expire_all())
        assert due == ([self.member] if gone else [])
        assert total == sum(gone.values())
        self.check_expired(self.observe(), gone)

    @rule(days=st.integers(0, 120), hours=st.integers(0, 23), months=st.sampled_from((0, 0, 1, 6, 12, 13)))
    def advance(self, days: int, hours: int, months: int) -> None:
        self.now += timedelta(days=days + 30 * months, hours=hours)
        self.seen = self.last  # time passing writes nothing: the last reading still stands

    @rule(months=st.sampled_from((1, 3, 12, 24)))
    def operator_changes_expiry(self, months: int) -> None:
        """A new rules file: lots earned from now on may expire before older ones, so the
        earliest-expiring lot is no longer the oldest row."""
        self.ledger = make_ledger(Rules(expiry_months=months))
        self.seen = self.last

    @precondition(lambda self: any(lot.remaining for lot in self.model.lots.values()))
    @rule(data=st.data(), before=st.booleans())
    def advance_to_expiry(self, data: st.DataObject, before: bool) -> None:
        """Land exactly on a live lot's expiry, or one second before it."""
        live = sorted({lot.expires_at for lot in self.model.lots.values() if lot.remaining})
        target = data.draw(st.sampled_from(live)) - timedelta(seconds=1 if before else 0)
        self.now = max(self.now, target)
        self.seen = self.last

    @precondition(lambda self: bool(self.calls))
    @rule(data=st.data(), other_points=st.integers(1, 700))
    def repeat(self, data: st.DataObject, other_points: int) -> None:
        """The same key again (even with another amount) changes nothing and returns the first result."""
        call = data.draw(st.sampled_from(self.calls))
        self.expire()  # lapsing lots is time's doing, not the repeat's: settle it first
        before = self.seen
        points = call.points if call.op.startswith("restore:") else data.draw(
            st.sampled_from((call.points, other_points))
        )
        again = self.call(call.op, call.key, points)
        # Nothing moves. expiry_check_at is a lower bound that any call may tighten when it has passed
        # (a lapsed lot spent to zero leaves it behind): checked for validity by the invariant, not here.
        assert _without_bound(self.observe()) == _without_bound(before)
        first = call.first
        assert again.repeated
        assert (again.entry_id, again.member_id, again.delta, again.balance, again.kind) == (
            first.entry_id, first.member_id, first.delta, first.balance, first.kind
        )

    # --- invariants --------------------------------------------------------------------------------------
    @invariant()
    def ledger_is_consistent(self) -> None:
        world, self.seen = self.seen or self.run(self._read()), None
        self.last = world
        assert world.balance >= 0
        assert world.balance == sum(e[1] for e in world.entries) == sum(lot[3] for lot in world.lots)
        lot_moves: dict[int, int] = {}
        entry_moves: dict[int, int] = {}
        for entry_id, lot_id, amount in world.moves:
            lot_moves[lot_id] = lot_moves.get(lot_id, 0) + amount
            entry_moves[entry_id] = entry_moves.get(entry_id, 0) + amount
        for lot_id, _, amount, remaining, _ in world.lots:
            assert 0 <= remaining <= amount, f"lot {lot_id}: {remaining} of {amount}"
            assert remaining == amount + lot_moves.get(lot_id, 0), f"lot {lot_id} disagrees with its moves"
        lot_of_entry = {lot[1]: lot[2] for lot in world.lots}
        running = 0
        for entry_id, delta, _, _, balance_after, _ in world.entries:
            running += delta
            assert balance_after == running, f"entry {entry_id} balance_after"
            if entry_id in lot_of_entry:  # an earning: one lot of that size, never moved by itself
                assert delta == lot_of_entry[entry_id]
                assert entry_id not in entry_moves
            else:
                assert delta == entry_moves.get(entry_id, 0), f"entry {entry_id} vs its moves"
        assert world.balance == self.model.balance
        assert {lot[0]: (lot[3], lot[4]) for lot in world.lots} == {
            lot_id: (lot.remaining, lot.expires_at) for lot_id, lot in self.model.lots.items()
        }
        self.check_kept_columns(world)

    def check_kept_columns(self, world: World) -> None:
        """What the member's row keeps for the ledger agrees with the entries and lots it summarises."""
        earned_total, cap_day, cap_earned, expiry_check_at = world.kept
        assert earned_total == sum(e[1] for e in world.entries if e[2] in QUALIFYING_KINDS)
        if cap_day is not None:
            assert cap_earned == sum(
                e[1] for e in world.entries if e[2] in CAPPED_KINDS and e[5].astimezone(TZ).date() == cap_day
            ), f"cap tally of {cap_day}"
        live = [lot[4] for lot in world.lots if lot[3] > 0]
        if live:  # a lower bound of the earliest expiry, or not known (then the ledger looks)
            assert expiry_check_at is None or expiry_check_at <= min(live)

    @invariant()
    def restoring_an_unknown_spend_is_refused(self) -> None:
        if len(self.calls) % 7 != 3:  # a cheap spot check, not every step
            return
        with pytest.raises(NotFoundError):
            self.call("restore:no-such-spend", f"cancel:none:{len(self.calls)}", 0)


def _without_bound(world: World | None) -> World | None:
    return None if world is None else dataclasses.replace(world, kept=(*world.kept[:3], None))


SETTINGS = dict(
    stateful_step_count=20, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def run_machine(factory: Callable[[], LedgerMachine], max_examples: int) -> None:
    run_state_machine_as_test(factory, settings=settings(max_examples=max_examples, **SETTINGS))  # type: ignore[arg-type]


def test_ledger_invariants_sqlite(sqlite_template: Path, tmp_path: Path) -> None:
    backend = SQLiteBackend(sqlite_template, tmp_path)
    run_machine(functools.partial(LedgerMachine, backend), max_examples=25)


def test_ledger_invariants_postgres(pg_database: str | None) -> None:
    if pg_database is None:
        pytest.skip("PostgreSQL is not reachable")
    run_machine(functools.partial(LedgerMachine, PostgresBackend(pg_database)), max_examples=8)
