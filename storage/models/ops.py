"""The operator side's tables: operator accounts, stores and the append-only audit log. Columns and constraints
only: behaviour lives in storage/operators.py and storage/audit.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models.core import utc_column


class Operator(SQLModel, table=True):
    """A person who signs in to the console. `store` binds a clerk to the store whose coupons they verify."""

    __tablename__ = "operator"
    __table_args__ = (
        UniqueConstraint("name", name="uq_operator_name"),
        CheckConstraint("role IN ('admin', 'operator', 'analyst', 'clerk')", name="ck_operator_role"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=40)
    role: str = Field(max_length=16)
    store: str | None = Field(default=None, max_length=32)
    password_hash: str = Field(sa_column=Column(Text, nullable=False))
    active: bool = True
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    password_changed_at: datetime = Field(sa_column=utc_column(nullable=False))
    last_sign_in_at: datetime | None = Field(default=None, sa_column=utc_column())


class Store(SQLModel, table=True):
    """A shop: its code names it on redemptions, orders and clerks. `secret_hash` is the SHA-256 of its
    API credential (shown once; None when revoked)."""

    __tablename__ = "store"
    __table_args__ = (
        UniqueConstraint("code", name="uq_store_code"),
        UniqueConstraint("secret_hash", name="uq_store_secret_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32)
    name: str = Field(max_length=60)
    city: str = Field(default="", max_length=40)
    active: bool = True
    secret_hash: str | None = Field(default=None, max_length=64)
    secret_set_at: datetime | None = Field(default=None, sa_column=utc_column())
    created_at: datetime = Field(sa_column=utc_column(nullable=False))


class Channel(SQLModel, table=True):
    """An operator's channel QR code (`chan_<name>`) for a store or a poster: permanent, made once."""

    __tablename__ = "channel"
    __table_args__ = (UniqueConstraint("name", name="uq_channel_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=32)
    label: str = Field(max_length=60)
    qr_url: str | None = Field(default=None, max_length=255)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))


class AuditEntry(SQLModel, table=True):
    """One write by a person, a token or a job: who, what, on what, before and after (JSON, phones
    masked), when and from where. Rows are only ever inserted (the migration's triggers refuse the rest)."""

    __tablename__ = "audit"
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_actor_at", "actor", "at"),
        Index("ix_audit_target", "target"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=utc_column(nullable=False))
    actor: str = Field(max_length=64)
    actor_role: str = Field(max_length=16)
    action: str = Field(max_length=48)
    target: str = Field(max_length=120)
    before: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    after: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    client: str | None = Field(default=None, max_length=64)
