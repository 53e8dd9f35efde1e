"""Points: ledger entries, lots and their movements, purchase orders, anomalies. Columns and constraints only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models.columns import utc_column as _ts


class LedgerEntry(SQLModel, table=True):
    """One movement of points. The idempotency key makes every operation apply once."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_ledger_entry_key"),
        Index("ix_ledger_entry_member_created", "member_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    delta: int
    kind: str = Field(max_length=16)
    idempotency_key: str = Field(max_length=160)
    reason: str = Field(default="", max_length=200)
    ref: str | None = Field(default=None, max_length=100)
    balance_after: int
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class PointsLot(SQLModel, table=True):
    """Points earned together, expiring together. Spending consumes the earliest-expiring lots."""

    __tablename__ = "points_lot"
    __table_args__ = (
        CheckConstraint("remaining >= 0", name="ck_points_lot_remaining_nonnegative"),
        CheckConstraint("remaining <= amount", name="ck_points_lot_remaining_le_amount"),
        Index("ix_points_lot_member_live", "member_id", "expires_at"),
        Index("ix_points_lot_expiry", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    entry_id: int = Field(foreign_key="ledger_entry.id")
    amount: int
    remaining: int
    earned_at: datetime = Field(sa_column=_ts(nullable=False))
    expires_at: datetime = Field(sa_column=_ts(nullable=False))


class LotMovement(SQLModel, table=True):
    """Which lots an entry took points from (negative) or gave them back to (positive)."""

    __tablename__ = "lot_movement"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="ledger_entry.id", index=True)
    lot_id: int = Field(foreign_key="points_lot.id", index=True)
    amount: int


class PurchaseOrder(SQLModel, table=True):
    """An order reported by the POS; refunds are keyed by their own ids in the ledger."""

    __tablename__ = "purchase_order"
    __table_args__ = (UniqueConstraint("order_id", name="uq_purchase_order_order_id"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(max_length=64)
    member_id: int = Field(foreign_key="member.id", index=True)
    amount_fen: int
    points: int
    refunded_fen: int = 0
    refunded_points: int = 0
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class Anomaly(SQLModel, table=True):
    """Something operators should look at: a cap hit, a refund shortfall, a redemption spree."""

    __tablename__ = "anomaly"
    __table_args__ = (UniqueConstraint("dedupe_key", name="uq_anomaly_dedupe_key"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    kind: str = Field(max_length=32)
    detail: str = Field(sa_column=Column(Text, nullable=False))
    dedupe_key: str = Field(max_length=160)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
