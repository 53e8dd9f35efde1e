"""Anomalies for operators: recorded once per dedupe key, never raised at the member; listed with filters,
moved open -> acknowledged -> resolved by an operator with a note, and handed to the announcer once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import audit
from storage.audit import Actor
from storage.db import dialect_insert
from storage.errors import ConflictError, NotFoundError
from storage.models import Anomaly
from storage.paging import newest_first
from storage.rows import affected

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
STATES = (OPEN, ACKNOWLEDGED, RESOLVED)
# Which states each transition may start from: resolving straight from open is allowed (the note says why).
_FROM = {ACKNOWLEDGED: (OPEN,), RESOLVED: (OPEN, ACKNOWLEDGED)}
NOTE_MIN, NOTE_MAX = 2, 500


class AnomalyUnknownError(NotFoundError):
    """No anomaly has that id."""


class AnomalyStateError(ConflictError):
    """The transition does not start from the anomaly's state (resolving twice, acknowledging a resolved one)."""


class NoteInvalidError(ConflictError):
    text_key = "error_invalid"


async def record(
    session: AsyncSession, *, kind: str, detail: str, dedupe_key: str, now: datetime,
    member_id: int | None = None,
) -> bool:
    """Idempotent on dedupe_key; returns False when it was already recorded. One insert, nothing else: the
    announcer (scheduler job `announce_anomalies`) finds the new row by its NULL announced_at."""
    stmt = (
        dialect_insert(session)(Anomaly)
        .values(member_id=member_id, kind=kind, detail=detail, dedupe_key=dedupe_key, created_at=now)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    return bool(affected(await session.execute(stmt)))


async def for_member(session: AsyncSession, member_id: int) -> Sequence[Anomaly]:
    result = await session.execute(
        select(Anomaly).where(col(Anomaly.member_id) == member_id).order_by(col(Anomaly.id))
    )
    return result.scalars().all()


@dataclass(frozen=True)
class AnomalyFilter:
    kind: str | None = None
    state: str | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before


async def page(
    session: AsyncSession, where: AnomalyFilter, *, limit: int = 50, before_id: int | None = None,
) -> Sequence[Anomaly]:
    """Newest first, `limit` rows after the keyset `before_id`."""
    stmt = newest_first(Anomaly, limit=limit, before_id=before_id, equal={"kind": where.kind, "state": where.state},
                        at="created_at", since=where.since, until=where.until)
    return (await session.scalars(stmt)).all()


async def kinds(session: AsyncSession) -> list[str]:
    """Every kind recorded so far (for the filter's choices)."""
    return sorted(str(k) for k in (await session.scalars(select(col(Anomaly.kind)).distinct())).all())


async def by_id(session: AsyncSession, anomaly_id: int) -> Anomaly | None:
    return await session.get(Anomaly, anomaly_id, populate_existing=True)


def snapshot(anomaly: Anomaly) -> dict[str, Any]:
    """What the audit log keeps of an anomaly's handling, before and after a transition."""
    return {"state": anomaly.state, "note": anomaly.note, "handled_by": anomaly.handled_by}


def checked_note(note: str) -> str:
    """The note trimmed; NoteInvalidError unless it is NOTE_MIN..NOTE_MAX characters."""
    note = note.strip()
    if not NOTE_MIN <= len(note) <= NOTE_MAX:
        raise NoteInvalidError(f"a note takes {NOTE_MIN} to {NOTE_MAX} characters")
    return note


async def acknowledge(session: AsyncSession, anomaly_id: int, *, by: str, note: str, now: datetime) -> Anomaly:
    """open -> acknowledged, with the operator's note. AnomalyStateError (nothing written) from any other state."""
    return await _move(session, anomaly_id, ACKNOWLEDGED, by=by, note=note,
                       stamp={"acknowledged_at": now})


async def resolve(session: AsyncSession, anomaly_id: int, *, by: str, note: str, now: datetime) -> Anomaly:
    """open or acknowledged -> resolved, with the note. AnomalyStateError (nothing written) once resolved."""
    return await _move(session, anomaly_id, RESOLVED, by=by, note=note, stamp={"resolved_at": now})


async def _move(
    session: AsyncSession, anomaly_id: int, to: str, *, by: str, note: str, stamp: dict[str, datetime],
) -> Anomaly:
    note = checked_note(note)
    # One conditional update: two operators clicking at once cannot both move it.
    result = await session.execute(
        update(Anomaly).where(col(Anomaly.id) == anomaly_id).where(col(Anomaly.state).in_(_FROM[to]))
        .values(state=to, note=note, handled_by=by[:64], **stamp)
    )
    found = await by_id(session, anomaly_id)
    if found is None:
        raise AnomalyUnknownError(f"no anomaly {anomaly_id}")
    if not affected(result):
        raise AnomalyStateError(f"anomaly {anomaly_id} is {found.state}", state=found.state)
    return found


async def transition(
    session: AsyncSession, actor: Actor, anomaly_id: int, to: str, *, note: str, now: datetime,
    client: str | None = None,
) -> Anomaly:
    """acknowledge or resolve as `actor`, audited (`anomaly.acknowledge|resolve`, target `anomaly:<id>`,
    before and after) in the caller's transaction: the console and the admin API both come here."""
    before = await by_id(session, anomaly_id)
    if before is None:
        raise AnomalyUnknownError(f"no anomaly {anomaly_id}")
    was = snapshot(before)
    move = acknowledge if to == ACKNOWLEDGED else resolve
    after = await move(session, anomaly_id, by=actor.name, note=note, now=now)
    action = "anomaly.acknowledge" if to == ACKNOWLEDGED else "anomaly.resolve"
    await audit.record(session, actor, action, f"anomaly:{anomaly_id}", now=now, before=was,
                       after=snapshot(after), client=client)
    return after


# --- the announcer's side ---------------------------------------------------------------------------

async def unannounced(session: AsyncSession, limit: int = 100) -> Sequence[Anomaly]:
    """Anomalies not yet handed to the announcer, oldest first (the partial index ix_anomaly_unannounced)."""
    return (await session.scalars(
        select(Anomaly).where(col(Anomaly.announced_at).is_(None)).order_by(col(Anomaly.id)).limit(limit)
    )).all()


async def mark_announced(session: AsyncSession, ids: Sequence[int], now: datetime) -> int:
    result = await session.execute(
        update(Anomaly).where(col(Anomaly.id).in_(list(ids))).where(col(Anomaly.announced_at).is_(None))
        .values(announced_at=now)
    )
    return int(affected(result))
