"""Builders for storage-level tests: a ledger with the default rules, joined members written straight to
the table (no sign-up bonus in the way), instants in programme-local time, and a snapshot of one
member's points that states the ledger invariant in one place."""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from storage.db import Database
from storage.ledger import Ledger
from storage.models import Anomaly, LedgerEntry, LotMovement, Member
from storage.rules import Rules

TZ = ZoneInfo("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """An instant given in Asia/Shanghai wall time, returned as aware UTC (what the clock hands out)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=TZ).astimezone(UTC)


def make_ledger(rules: Rules | None = None) -> Ledger:
    return Ledger(rules or Rules(), TZ)


async def add_member(
    db: Database, now: datetime, *, tier: str = "普通", openid: str | None = None, mp_openid: str | None = None,
    birthday: tuple[int, int] | None = None, status: str = "active", opt_out: bool = False,
    last_interaction_at: datetime | None = None, balance: int = 0,
) -> int:
    """A joined member (no sign-up bonus in the way), committed; returns its id. A `balance` is the
    cached column alone: for points the ledger can account for, credit them through it."""
    async with db.unit_of_work() as session:
        member = Member(
            openid=openid if openid is not None else _letters_openid(), mp_openid=mp_openid,
            birthday_month=birthday[0] if birthday else None, birthday_day=birthday[1] if birthday else None,
            referral_code=secrets.token_hex(4).upper(), tier=tier, status=status, marketing_opt_out=opt_out,
            joined_at=now, created_at=now, last_interaction_at=last_interaction_at or now, balance=balance,
        )
        session.add(member)
        await session.flush()
        assert member.id is not None
        return member.id


def _letters_openid() -> str:
    """Letters only: a random hex id can hold eleven digits that the log check reads as a phone."""
    return "oTEST" + "".join(secrets.choice(string.ascii_letters) for _ in range(23))


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
