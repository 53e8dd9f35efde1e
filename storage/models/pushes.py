"""Outbound work: the outbox, its attempts, recorded outbound calls, late deliveries, job runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from storage.enums import Source
from storage.models.columns import utc_column as _ts
from storage.rows import table_of


class Outbox(SQLModel, table=True):
    """One message to push, written in the transaction that decided it; dedupe_key makes it single."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_member_sent", "member_id", "category", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    openid: str = Field(max_length=64)
    source: str = Field(default=Source.OA.value, max_length=8)
    kind: str = Field(max_length=32)
    category: str = Field(default="transactional", max_length=16)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    priority: int = 0
    status: str = Field(default="pending", max_length=16)
    channel: str | None = Field(default=None, max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    wechat_msgid: str | None = Field(default=None, max_length=32, index=True)
    next_attempt_at: datetime = Field(sa_column=_ts(nullable=False))
    deadline: datetime | None = Field(default=None, sa_column=_ts())
    claimed_at: datetime | None = Field(default=None, sa_column=_ts())
    # The claiming sender and how long its claim holds: renewed while it works the batch.
    claimed_by: str | None = Field(default=None, max_length=16)
    lease_until: datetime | None = Field(default=None, sa_column=_ts())
    # A send started whose answer is not recorded yet: the channel and when (a dead sender's last act).
    in_flight: str | None = Field(default=None, max_length=16)
    in_flight_at: datetime | None = Field(default=None, sa_column=_ts())
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=_ts())


class OutboxAttempt(SQLModel, table=True):
    """Every try at delivering an outbox row: which channel, what WeChat answered."""

    __tablename__ = "outbox_attempt"

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="outbox.id", index=True)
    channel: str = Field(max_length=16)
    errcode: int
    detail: str = Field(default="", max_length=200)
    at: datetime = Field(sa_column=_ts(nullable=False))


class OutboundCall(SQLModel, table=True):
    """In demo mode nothing leaves the machine: each WeChat API call is recorded here instead."""

    __tablename__ = "outbound_call"

    id: int | None = Field(default=None, primary_key=True)
    api: str = Field(max_length=80)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_ts(nullable=False, index=True))


class LateDelivery(SQLModel, table=True):
    """A message past its reply deadline, held durably until its replies are in the outbox: WeChat was
    told `success`, so a worker that dies leaves this row for a sweep to run again (storage/deliveries.py)."""

    __tablename__ = "late_delivery"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_late_delivery_dedupe_key"),
        Index("ix_late_delivery_due", "status", "lease_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200)
    inbound: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    lease_until: datetime = Field(sa_column=_ts(nullable=False))
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    done_at: datetime | None = Field(default=None, sa_column=_ts())


class JobRun(SQLModel, table=True):
    """How far each scheduler job has run: every due time up to `done_through` is handled, so a new
    leader knows what fell due while nobody led."""

    __tablename__ = "job_run"

    name: str = Field(primary_key=True, max_length=32)
    done_through: datetime = Field(sa_column=_ts(nullable=False))
    finished_at: datetime = Field(sa_column=_ts(nullable=False))


# The sender's claim: due pending rows, highest priority first. Without it every batch sorts the backlog.
Index(
    "ix_outbox_pending", table_of(Outbox).c.priority.desc(), table_of(Outbox).c.id,
    postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'"),
)
