"""Mini Program one-time subscription credits: each `accept` adds one, each send (or 43101) uses them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.db import dialect_insert
from storage.models import SubscribeCredit
from storage.rows import affected


async def record_choice(session: AsyncSession, openid: str, template_id: str, accepted: bool, now: datetime) -> None:
    """An accept adds one credit; a reject is recorded (credits already held stay: WeChat keeps them)."""
    insert = dialect_insert(session)(SubscribeCredit).values(
        openid=openid, template_id=template_id, credits=1 if accepted else 0,
        rejected_at=None if accepted else now, updated_at=now,
    )
    if accepted:
        stmt = insert.on_conflict_do_update(
            index_elements=["openid", "template_id"],
            set_={"credits": SubscribeCredit.credits + 1, "updated_at": now},
        )
    else:
        stmt = insert.on_conflict_do_update(
            index_elements=["openid", "template_id"], set_={"rejected_at": now, "updated_at": now},
        )
    await session.execute(stmt)


async def credits(session: AsyncSession, openid: str, template_id: str) -> int:
    value = await session.scalar(
        select(col(SubscribeCredit.credits)).where(col(SubscribeCredit.openid) == openid)
        .where(col(SubscribeCredit.template_id) == template_id)
    )
    return int(value or 0)


async def use_credit(session: AsyncSession, openid: str, template_id: str, now: datetime) -> bool:
    """Take one credit if there is one (conditional decrement); False when none is held."""
    result = await session.execute(
        update(SubscribeCredit).where(col(SubscribeCredit.openid) == openid)
        .where(col(SubscribeCredit.template_id) == template_id).where(col(SubscribeCredit.credits) > 0)
        .values(credits=SubscribeCredit.credits - 1, updated_at=now)
    )
    return bool(affected(result))


async def clear(session: AsyncSession, openid: str, template_id: str, now: datetime) -> None:
    """WeChat said 43101: our count was wrong; trust WeChat."""
    await session.execute(
        update(SubscribeCredit).where(col(SubscribeCredit.openid) == openid)
        .where(col(SubscribeCredit.template_id) == template_id).values(credits=0, updated_at=now)
    )
