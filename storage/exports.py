"""The rows of the console's CSV exports (members, ledger entries, redemptions) for a time range, read
page by page by keyset, each page in its own short session: nothing ever holds a whole table. Phones
leave masked, free text leaves with any phone number in it masked, live coupon codes leave masked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from storage.audit import mask_phones
from storage.db import Database
from storage.members import mask_phone
from storage.models import LedgerEntry, Member, Redemption, Reward

PAGE = 500  # rows per query (and per chunk of the streamed file)

Row = tuple[Any, ...]
Decrypt = Callable[[str], str]

MEMBER_COLUMNS = ("id", "openid", "phone", "tier", "balance", "earned_total", "status", "marketing_opt_out",
                  "referral_code", "joined_at")
LEDGER_COLUMNS = ("id", "member_id", "created_at", "kind", "delta", "balance_after", "reason", "ref", "actor")
REDEMPTION_COLUMNS = ("id", "member_id", "reward", "cost", "code", "status", "created_at", "expires_at",
                      "used_at", "cancelled_at")


def masked_code(code: str, status: str) -> str:
    """A code that can still be used at a till is a bearer token: only its last four characters leave."""
    return "****" + code[-4:] if status == "issued" else code


def _member_row(member: Member, decrypt: Decrypt) -> Row:
    phone = mask_phone(decrypt(member.phone_enc)) if member.phone_enc else ""
    return (member.id, member.openid or "", phone, member.tier, member.balance, member.earned_total, member.status,
            member.marketing_opt_out, member.referral_code or "", member.joined_at)


def _ledger_row(entry: LedgerEntry) -> Row:
    return (entry.id, entry.member_id, entry.created_at, entry.kind, entry.delta, entry.balance_after,
            mask_phones(entry.reason), mask_phones(entry.ref or ""), entry.actor or "")


def _redemption_row(redemption: Redemption, reward_name: str) -> Row:
    return (redemption.id, redemption.member_id, mask_phones(reward_name), redemption.cost,
            masked_code(redemption.code, redemption.status), redemption.status, redemption.created_at,
            redemption.expires_at, redemption.used_at, redemption.cancelled_at, redemption.granted or "")


async def _pages(db: Database, stmt: Any, id_column: Any, size: int) -> AsyncIterator[list[Any]]:
    """The statement's rows by ascending id, `size` at a time, each page read in a fresh session."""
    after = 0
    while True:
        async with db.sessions() as session:
            rows = list((await session.execute(stmt.where(id_column > after).order_by(id_column).limit(size))).all())
        if not rows:
            return
        yield rows
        if len(rows) < size:
            return
        after = rows[-1][0].id


async def members(
    db: Database, since: datetime, until: datetime, decrypt: Decrypt, *, size: int | None = None,
) -> AsyncIterator[list[Row]]:
    """Members who joined in [since, until), a page at a time."""
    stmt = select(Member).where(col(Member.joined_at) >= since).where(col(Member.joined_at) < until)
    async for rows in _pages(db, stmt, col(Member.id), size or PAGE):
        yield [_member_row(member, decrypt) for (member,) in rows]


async def ledger(
    db: Database, since: datetime, until: datetime, *, size: int | None = None,
) -> AsyncIterator[list[Row]]:
    """Ledger entries made in [since, until), a page at a time."""
    stmt = select(LedgerEntry).where(col(LedgerEntry.created_at) >= since).where(col(LedgerEntry.created_at) < until)
    async for rows in _pages(db, stmt, col(LedgerEntry.id), size or PAGE):
        yield [_ledger_row(entry) for (entry,) in rows]


async def redemptions(
    db: Database, since: datetime, until: datetime, *, size: int | None = None,
) -> AsyncIterator[list[Row]]:
    """Redemptions made in [since, until) with their reward's name, a page at a time."""
    stmt = (
        select(Redemption, col(Reward.name)).join(Reward, col(Redemption.reward_id) == col(Reward.id))
        .where(col(Redemption.created_at) >= since).where(col(Redemption.created_at) < until)
    )
    async for rows in _pages(db, stmt, col(Redemption.id), size or PAGE):
        yield [_redemption_row(redemption, name) for redemption, name in rows]
