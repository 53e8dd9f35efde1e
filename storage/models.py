"""The tables (SQLModel). Columns and constraints only: behaviour lives in the storage services."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = True, index: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


class Member(SQLModel, table=True):
    """Everyone who has written to the account; a member once `joined_at` is set."""

    __tablename__ = "member"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="ck_member_balance_nonnegative"),
        UniqueConstraint("openid", name="uq_member_openid"),
        UniqueConstraint("mp_openid", name="uq_member_mp_openid"),
        UniqueConstraint("referral_code", name="uq_member_referral_code"),
        UniqueConstraint("phone_hash", name="uq_member_phone_hash"),
        Index("ix_member_unionid", "unionid"),
    )

    id: int | None = Field(default=None, primary_key=True)
    openid: str | None = Field(default=None, max_length=64)
    mp_openid: str | None = Field(default=None, max_length=64)
    unionid: str | None = Field(default=None, max_length=64)
    phone_enc: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    phone_hash: str | None = Field(default=None, max_length=64)
    birthday_month: int | None = None
    birthday_day: int | None = None
    birthday_year: int | None = None
    consent_at: datetime | None = Field(default=None, sa_column=_ts())
    consent_version: str | None = Field(default=None, max_length=16)
    referral_code: str | None = Field(default=None, max_length=16)
    referrer_id: int | None = Field(default=None, foreign_key="member.id")
    tier: str = Field(default="普通", max_length=16)
    status: str = Field(default="active", max_length=16)
    marketing_opt_out: bool = False
    balance: int = 0
    joined_at: datetime | None = Field(default=None, sa_column=_ts())
    last_interaction_at: datetime | None = Field(default=None, sa_column=_ts(index=True))
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class Outbox(SQLModel, table=True):
    """One message to push, written in the transaction that decided it; dedupe_key makes it single."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    openid: str = Field(max_length=64)
    source: str = Field(default="oa", max_length=8)
    kind: str = Field(max_length=32)
    category: str = Field(default="transactional", max_length=16)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16)
    channel: str | None = Field(default=None, max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    next_attempt_at: datetime = Field(sa_column=_ts(nullable=False))
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=_ts())
