"""The outbox: every push is a row written in the transaction that decided it, single by its dedupe
key; sending lives above.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import dialect_insert
from storage.models import Outbox

TRANSACTIONAL = "transactional"
MARKETING = "marketing"


class PushSender(Protocol):
    """Implemented in bot/wechat_api.py; the scheduler is handed one at start-up."""

    async def send(self, row: Outbox) -> str: ...


async def enqueue(
    session: AsyncSession,
    *,
    dedupe_key: str,
    openid: str,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    source: str = "oa",
    member_id: int | None = None,
    category: str = TRANSACTIONAL,
    not_before: datetime | None = None,
) -> bool:
    """Queue one push. Idempotent on dedupe_key: a repeat inserts nothing and returns False."""
    values = {
        "dedupe_key": dedupe_key,
        "openid": openid,
        "kind": kind,
        "payload": json.dumps(payload, ensure_ascii=False),
        "source": source,
        "member_id": member_id,
        "category": category,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "created_at": now,
    }
    insert = dialect_insert(session)
    stmt = insert(Outbox).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"])
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def rows_for(session: AsyncSession, openid: str) -> Sequence[Outbox]:
    result = await session.execute(select(Outbox).where(Outbox.openid == openid).order_by(Outbox.id))
    return result.scalars().all()
