"""Member-service tables: tickets and their threads, satisfaction surveys and their asks (member texts
encrypted at rest). Columns and
constraints only: behaviour lives in storage/tickets.py and storage/surveys.py."""

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
        CheckConstraint("kind IN ('ticket', 'hand-off', 'survey')", name="ck_ticket_kind"),
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


class Survey(SQLModel, table=True):
    """An operator's satisfaction survey: NPS (0-10) or CSAT (1-5), an optional open follow-up question,
    the touchpoint that triggers it (and, for the weekly sample, the share of active members in percent)
    and an optional thank-you in points. Paused surveys trigger nothing."""

    __tablename__ = "survey"
    __table_args__ = (
        CheckConstraint("kind IN ('nps', 'csat')", name="ck_survey_kind"),
        CheckConstraint("touchpoint IN ('coupon', 'order', 'campaign', 'ticket', 'sample')",
                        name="ck_survey_touchpoint"),
        CheckConstraint("status IN ('active', 'paused')", name="ck_survey_status"),
        CheckConstraint("thanks_points >= 0", name="ck_survey_thanks"),
        Index("ix_survey_touchpoint_status", "touchpoint", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=40)
    kind: str = Field(max_length=8)
    question: str = Field(max_length=200)
    followup: str | None = Field(default=None, max_length=200)
    touchpoint: str = Field(max_length=16)
    sample_percent: int = 0
    thanks_points: int = 0
    status: str = Field(default="active", max_length=8)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    created_by: str = Field(default="", max_length=64)


class SurveyAsk(SQLModel, table=True):
    """One trigger of a survey for one member (unique per survey, member and trigger): pending until the member's
    next message within 7 days asks it, then answered, declined or dropped; skipped when another ask went
    first or the member was asked in the last 90 days, expired past 7 days. The follow-up answer is
    encrypted; a detractor's answer links the follow-up ticket."""

    __tablename__ = "survey_ask"
    __table_args__ = (
        UniqueConstraint("survey_id", "member_id", "trigger_key", name="uq_survey_ask_trigger"),
        CheckConstraint(
            "state IN ('pending', 'asked', 'answered', 'declined', 'dropped', 'skipped', 'expired')",
            name="ck_survey_ask_state",
        ),
        Index("ix_survey_ask_member_state", "member_id", "state"),
        Index("ix_survey_ask_member_asked", "member_id", "asked_at"),
        Index("ix_survey_ask_survey_state", "survey_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    survey_id: int = Field(foreign_key="survey.id")
    member_id: int = Field(foreign_key="member.id")
    trigger_key: str = Field(max_length=80)
    touchpoint: str = Field(max_length=16)
    reward_id: int | None = None
    campaign_id: int | None = None
    triggered_at: datetime = Field(sa_column=utc_column(nullable=False))
    state: str = Field(default="pending", max_length=16)
    asked_at: datetime | None = Field(default=None, sa_column=utc_column())
    score: int | None = None
    answered_at: datetime | None = Field(default=None, sa_column=utc_column())
    followup_enc: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    thanked: int = 0
