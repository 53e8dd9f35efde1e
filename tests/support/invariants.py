"""The ledger invariant, stated once: cached balance == sum of entries == sum of live lots >= 0, every lot
0 <= remaining <= amount. Reads only; every test that checks the books calls this."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database
from storage.models import LedgerEntry, Member, PointsLot


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
    """One member's points as the session sees them, unchecked."""
    return (await _points(session, [member_id]))[member_id]


async def consistent_points(db: Database, member_id: int) -> Points:
    """Read the member's points in a fresh session and assert the invariant; returns them."""
    async with db.sessions() as session:
        points = await points_of(session, member_id)
    points.assert_consistent()
    return points


async def assert_points_consistent(db: Database, member_ids: Sequence[int] | None = None) -> dict[int, int]:
    """The invariant for every member named (every member when None), all read in one session.
    Returns their balances."""
    async with db.sessions() as session:
        found = await _points(session, member_ids)
    for points in found.values():
        points.assert_consistent()
    return {member_id: points.balance for member_id, points in found.items()}


async def _points(session: AsyncSession, member_ids: Sequence[int] | None) -> dict[int, Points]:
    def among(query: Any, column: Any) -> Any:
        return query if member_ids is None else query.where(column.in_(list(member_ids)))

    balances = _pairs(await session.execute(among(select(Member.id, Member.balance), Member.id)))
    if member_ids is not None:
        assert set(balances) == set(member_ids), f"no such members: {set(member_ids) - set(balances)}"
    entries = _pairs(await session.execute(among(
        select(LedgerEntry.member_id, func.sum(LedgerEntry.delta)), LedgerEntry.member_id
    ).group_by(LedgerEntry.member_id)))
    lots: dict[int, list[tuple[int, int, int, datetime]]] = {}
    for row in (await session.execute(among(
        select(PointsLot.member_id, PointsLot.id, PointsLot.amount, PointsLot.remaining, PointsLot.expires_at),
        PointsLot.member_id,
    ).order_by(PointsLot.id))).all():
        lots.setdefault(int(row[0]), []).append((int(row[1]), int(row[2]), int(row[3]), row[4]))
    return {
        member_id: Points(
            balance=balance, entries_sum=entries.get(member_id, 0),
            lots_sum=sum(lot[2] for lot in lots.get(member_id, ())), lots=tuple(lots.get(member_id, ())),
        )
        for member_id, balance in balances.items()
    }


def _pairs(result: Any) -> dict[int, int]:
    return {int(row[0]): int(row[1] or 0) for row in result}
