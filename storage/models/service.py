"""Member-service tables: tickets and their threads (member texts encrypted at rest). Columns and
constraints only: behaviour lives in storage/tickets.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models.core import utc_column


class Ticket(SQLModel, table=True):
    """A complaint, suggestion, after-sales request or hand-off: open -> answered -> resolved (a low rating
    reopens it for a supervisor). Due times are fixed at opening from the rules' SLA (business hours)."""

    __tablename__ = "ticket"
    __table_args__ = (
        UniqueConstraint("code", name="uq_ticket_code"),
        CheckConstraint("state IN ('open', 'answered', 'resolved')", name="ck_ticket_state"),
        CheckConstraint("kind IN ('ticket', 'hand-off')", name="ck_ticket_kind"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="ck_ticket_rating"),
        Index("ix_ticket_member_state", "member_id", "state"),
        Index("ix_ticket_state_created", "state", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16)
    member_id: int = Field(foreign_key="member.id")
    openid: str = Field(max_length=64)
    source: str = Field(max_length=8)
    kind: str = Field(default="ticket", max_length=16)
    category: str = Field(max_length=16)
    state: str = Field(default="open", max_length=16)
    order_id: str | None = Field(default=None, max_length=64)
    assigned_to: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    answer_due_at: datetime = Field(sa_column=utc_column(nullable=False))
    resolve_due_at: datetime = Field(sa_column=utc_column(nullable=False))
    first_answer_at: datetime | None = Field(default=None, sa_column=utc_column())
    resolved_at: datetime | None = Field(default=None, sa_column=utc_column())
    escalated_at: datetime | None = Field(default=None, sa_column=utc_column())
    breach: str | None = Field(default=None, max_length=16)  # 'answer' or 'resolve': the SLA it missed first
    rating: int | None = None
    rated_at: datetime | None = Field(default=None, sa_column=utc_column())
    reopens: int = 0
    supervisor: bool = False


class TicketMessage(SQLModel, table=True):
    """One entry of a ticket's thread: the member's words, a staff answer, a resolution note. `body_enc`
    is encrypted (member data never in clear, so never in a statement's logged parameters); a staff entry
    for the member is `delivered_at` once it reached them (a customer-service message, or their next chat)."""

    __tablename__ = "ticket_message"
    __table_args__ = (
        CheckConstraint("author IN ('member', 'staff', 'system')", name="ck_ticket_message_author"),
        Index("ix_ticket_message_ticket", "ticket_id", "id"),
        Index("ix_ticket_message_undelivered", "openid", "delivered_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    openid: str = Field(max_length=64)
    author: str = Field(max_length=8)
    author_name: str = Field(default="", max_length=64)
    body_enc: str = Field(sa_column=Column(Text, nullable=False))
    media: str | None = Field(default=None, max_length=600)
    for_member: bool = False
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    delivered_at: datetime | None = Field(default=None, sa_column=utc_column())
