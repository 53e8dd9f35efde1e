"""Builders for storage-level tests: a ledger with the default rules, joined members written straight to
the table (no sign-up bonus in the way), instants in programme-local time, and a snapshot of one
member's points that states the ledger invariant in one place."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database
from storage.ledger import Ledger
from storage.models import Anomaly, LedgerEntry, LotMovement, Member, PointsLot
from storage.rules import Rules

TZ = ZoneInfo("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """An instant given in Asia/Shanghai wall time, returned as aware UTC (what the clock hands out)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=TZ).astimezone(UTC)


def make_ledger(rules: Rules | None = None) -> Ledger:
    return Ledger(rules or Rules(), TZ)


async def add_member(db: Database, now: datetime, *, tier: str = "普通", openid: str | None = None) -> int:
    """A joined member with a zero balance, committed; returns its id."""
    async with db.unit_of_work() as session:
        member = Member(
            openid=openid or _letters_openid(), referral_code=secrets.token_hex(4).upper(),
            tier=tier, joined_at=now, created_at=now, last_interaction_at=now,
        )
        session.add(member)
        await session.flush()
        assert member.id is not None
        return member.id


def _letters_openid() -> str:
    """Letters only: a random hex id can hold eleven digits that the log check reads as a phone."""
    return "oTEST" + "".join(secrets.choice(string.ascii_letters) for _ in range(23))


@dataclass(frozen=True)
class Points:
    """One member's points as three independent sources tell them, plus every lot."""

    balance: int
    entries_sum: int
    lots_sum: int
    lots: tuple[tuple[int, int, int, datetime], ...]  # (id, amount, remaining, expires_at)

    def assert_consistent(self) -> None:
        assert self.balance == self.entries_sum == self.lots_sum, self
        assert self.balance >= 0, self
        for lot_id, amount, remaining, _ in self.lots:
            assert 0 <= remaining <= amount, f"lot {lot_id}: remaining {remaining} of {amount}"


async def points_of(session: AsyncSession, member_id: int) -> Points:
    balance = await session.scalar(select(Member.balance).where(Member.id == member_id))
    entries = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.delta), 0)).where(LedgerEntry.member_id == member_id)
    )
    lots = (await session.execute(
        select(PointsLot.id, PointsLot.amount, PointsLot.remaining, PointsLot.expires_at)
        .where(PointsLot.member_id == member_id).order_by(PointsLot.id)
    )).all()
    return Points(
        balance=int(balance or 0), entries_sum=int(entries or 0),
        lots_sum=sum(int(r[2]) for r in lots),
        lots=tuple((int(r[0]), int(r[1]), int(r[2]), r[3]) for r in lots),
    )


async def consistent_points(db: Database, member_id: int) -> Points:
    """Read the member's points in a fresh session and assert balance == entries == live lots >= 0."""
    async with db.sessions() as session:
        points = await points_of(session, member_id)
    points.assert_consistent()
    return points


async def entry_by_key(db: Database, key: str) -> LedgerEntry | None:
    async with db.sessions() as session:
        return await session.scalar(select(LedgerEntry).where(LedgerEntry.idempotency_key == key))


async def movements_of(db: Database, entry_id: int) -> list[tuple[int, int]]:
    """(lot id, amount) of one entry's lot movements, in the order they were written."""
    async with db.sessions() as session:
        rows = (await session.execute(
            select(LotMovement.lot_id, LotMovement.amount).where(LotMovement.entry_id == entry_id)
            .order_by(LotMovement.id)
        )).all()
    return [(int(r[0]), int(r[1])) for r in rows]


async def anomalies_of(db: Database, member_id: int, kind: str | None = None) -> list[Anomaly]:
    async with db.sessions() as session:
        stmt = select(Anomaly).where(Anomaly.member_id == member_id).order_by(Anomaly.id)
        if kind is not None:
            stmt = stmt.where(Anomaly.kind == kind)
        return list((await session.scalars(stmt)).all())


async def tier_of(db: Database, member_id: int) -> str:
    async with db.sessions() as session:
        return str(await session.scalar(select(Member.tier).where(Member.id == member_id)))
