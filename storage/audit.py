"""The audit log: who (an Actor), did what, to what, before and after, when, from where. Written in the
transaction of the change it records; only ever appended (the table's triggers refuse the rest)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry
from storage.paging import newest_first

_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


@dataclass(frozen=True)
class Actor:
    """Who a write is by: an operator (name, role), the machine token, a staff member in chat, or a job."""

    name: str
    role: str
    store: str | None = None


OPERATOR_ROLES = ("admin", "operator", "analyst", "clerk")
TOKEN = Actor("token", "token")


def mask_phones(text: str) -> str:
    """Every mainland mobile number in `text`, masked as 138****1234."""
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


def _snapshot(value: Any) -> str | None:
    if value is None:
        return None
    return mask_phones(json.dumps(value, ensure_ascii=False, default=str, sort_keys=True))


async def record(
    session: AsyncSession, actor: Actor, action: str, target: str, *, now: datetime,
    before: Any = None, after: Any = None, client: str | None = None,
) -> None:
    """Append one entry in the caller's transaction (so it commits, or rolls back, with the change).
    before/after are JSON-encoded with every phone number in them masked."""
    session.add(AuditEntry(
        at=now, actor=actor.name[:64], actor_role=actor.role[:16], action=action[:48], target=target[:120],
        before=_snapshot(before), after=_snapshot(after), client=(client or None) and client[:64],
    ))
    await session.flush()


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def entries(
    session: AsyncSession, where: AuditFilter, *, limit: int = 50, before_id: int | None = None,
) -> Sequence[AuditEntry]:
    """Newest first, a page of `limit` after the keyset `before_id`."""
    stmt = newest_first(
        AuditEntry, limit=limit, before_id=before_id,
        equal={"actor": where.actor, "action": where.action, "target": where.target},
        at="at", since=where.since, until=where.until,
    )
    return (await session.scalars(stmt)).all()

