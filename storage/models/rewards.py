"""Rewards, their code pools, redemptions and the chat's redemption quotes. Columns and constraints only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models.columns import utc_column as _ts


class Reward(SQLModel, table=True):
    """Something members buy with points. Stock NULL means unlimited."""

    __tablename__ = "reward"
    __table_args__ = (
        CheckConstraint("stock IS NULL OR stock >= 0", name="ck_reward_stock_nonnegative"),
        CheckConstraint("cost > 0", name="ck_reward_cost_positive"),
        CheckConstraint("kind IN ('coupon', 'code_pool', 'gift')", name="ck_reward_kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=40)
    description: str = Field(default="", max_length=200)
    cost: int
    kind: str = Field(default="coupon", max_length=16)
    stock: int | None = None
    per_member_limit: int | None = None
    total_limit: int | None = None
    issued_count: int = 0
    min_tier: str | None = Field(default=None, max_length=16)
    validity_days: int = 30
    starts_at: datetime | None = Field(default=None, sa_column=_ts())
    ends_at: datetime | None = Field(default=None, sa_column=_ts())
    active: bool = True
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class RewardCode(SQLModel, table=True):
    """A code imported from the retailer's POS; issued to exactly one redemption."""

    __tablename__ = "reward_code"
    __table_args__ = (
        UniqueConstraint("reward_id", "code", name="uq_reward_code"),
        Index("ix_reward_code_available", "reward_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    reward_id: int = Field(foreign_key="reward.id")
    code: str = Field(max_length=64)
    status: str = Field(default="available", max_length=16)
    redemption_id: int | None = Field(default=None, foreign_key="redemption.id")


class Redemption(SQLModel, table=True):
    """Points turned into a code; request_key (chat flow instance or API request id) makes it single."""

    __tablename__ = "redemption"
    __table_args__ = (
        UniqueConstraint("request_key", name="uq_redemption_request_key"),
        UniqueConstraint("code", name="uq_redemption_code"),
        Index("ix_redemption_member", "member_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    reward_id: int = Field(foreign_key="reward.id")
    request_key: str = Field(max_length=80)
    cost: int
    code: str = Field(max_length=64)
    status: str = Field(default="issued", max_length=16)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    expires_at: datetime = Field(sa_column=_ts(nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=_ts())
    cancelled_at: datetime | None = Field(default=None, sa_column=_ts())


class RedemptionQuote(SQLModel, table=True):
    """A price shown in the chat, kept in the database so `是` stays single when the flow state is lost:
    its id is the redemption's key (`quote:<id>`). request_key is the message that asked for it, so a
    replay of that message after the KV lost its memory finds the same quote."""

    __tablename__ = "redemption_quote"
    __table_args__ = (
        UniqueConstraint("request_key", name="uq_redemption_quote_request_key"),
        Index("ix_redemption_quote_member", "member_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    reward_id: int = Field(foreign_key="reward.id")
    request_key: str = Field(max_length=160)
    cost: int
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    expires_at: datetime = Field(sa_column=_ts(nullable=False))
