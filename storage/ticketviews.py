"""Read views over tickets for the console: the filtered queue and a member's tickets. Reads only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import Ticket


@dataclass(frozen=True)
class TicketFilter:
    state: str | None = None  # None: the live ones (open and answered)
    category: str | None = None
    kind: str | None = None
    assigned_to: str | None = None
    late: bool = False  # escalated, or past a due time now


async def page(session: AsyncSession, where: TicketFilter, now: datetime, *, limit: int = 100) -> Sequence[Ticket]:
    """Oldest first (the queue's order): the live tickets unless a state is asked for."""
    stmt = select(Ticket).order_by(col(Ticket.created_at), col(Ticket.id)).limit(limit)
    stmt = stmt.where(col(Ticket.state) == where.state) if where.state else stmt.where(
        col(Ticket.state).in_(("open", "answered")))
    if where.category:
        stmt = stmt.where(col(Ticket.category) == where.category)
    if where.kind:
        stmt = stmt.where(col(Ticket.kind) == where.kind)
    if where.assigned_to:
        stmt = stmt.where(col(Ticket.assigned_to) == where.assigned_to)
    if where.late:
        stmt = stmt.where(or_(
            col(Ticket.escalated_at).is_not(None),
            (col(Ticket.first_answer_at).is_(None)) & (col(Ticket.answer_due_at) < now),
            (col(Ticket.resolved_at).is_(None)) & (col(Ticket.resolve_due_at) < now),
        ))
    return (await session.scalars(stmt)).all()


async def of_member(session: AsyncSession, member_id: int, limit: int = 20) -> Sequence[Ticket]:
    return (await session.scalars(select(Ticket).where(col(Ticket.member_id) == member_id)
                                  .order_by(col(Ticket.id).desc()).limit(limit))).all()
