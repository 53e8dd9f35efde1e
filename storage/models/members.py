"""Members, staff, and what is kept per member: subscription credits, win-back offers, check-ins."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.enums import MemberStatus
from storage.models.columns import utc_column as _ts


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
        Index("ix_member_birthday", "birthday_month", "birthday_day", "id"),  # the job pages by id
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
    tier_reviewed_month: str | None = Field(default=None, max_length=7)
    status: str = Field(default=MemberStatus.ACTIVE.value, max_length=16)
    marketing_opt_out: bool = False
    balance: int = 0
    # Kept by the ledger in the same write as the balance, so that a check-in reads no other table.
    # earned_total: every qualifying point ever earned, an upper bound that spares the tier query.
    # cap_day/cap_earned: capped (non-purchase) points earned on that local day (NULL: sum the entries).
    # expiry_check_at: no live lot lapses before it (NULL: not known, look at the lots).
    # checkin_day/checkin_streak: the last check-in and its streak (the checkin table keeps them all).
    # winback_until: the end of an open win-back offer.
    earned_total: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    cap_day: date | None = None
    cap_earned: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    expiry_check_at: datetime | None = Field(default=None, sa_column=_ts())
    checkin_day: date | None = None
    checkin_streak: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    winback_until: datetime | None = Field(default=None, sa_column=_ts())
    joined_at: datetime | None = Field(default=None, sa_column=_ts())
    last_interaction_at: datetime | None = Field(default=None, sa_column=_ts(index=True))
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class Staff(SQLModel, table=True):
    """Community managers and admins: they may start, inspect and end campaigns from the chat."""

    __tablename__ = "staff"
    __table_args__ = (
        UniqueConstraint("openid", name="uq_staff_openid"),
        CheckConstraint("role IN ('manager', 'admin')", name="ck_staff_role"),
    )

    id: int | None = Field(default=None, primary_key=True)
    openid: str = Field(max_length=64)
    role: str = Field(max_length=16)
    added_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class SubscribeCredit(SQLModel, table=True):
    """Mini Program one-time subscription credits we count ourselves (WeChat offers no API to read them)."""

    __tablename__ = "subscribe_credit"
    __table_args__ = (
        UniqueConstraint("openid", "template_id", name="uq_subscribe_credit"),
        CheckConstraint("credits >= 0", name="ck_subscribe_credit_nonnegative"),
    )

    id: int | None = Field(default=None, primary_key=True)
    openid: str = Field(max_length=64)
    template_id: str = Field(max_length=64)
    credits: int = 0
    rejected_at: datetime | None = Field(default=None, sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts(nullable=False))


class WinbackOffer(SQLModel, table=True):
    """A win-back push's promise: bonus points on the next check-in before valid_until."""

    __tablename__ = "winback_offer"
    __table_args__ = (Index("ix_winback_offer_member", "member_id", "offered_at"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    points: int
    offered_at: datetime = Field(sa_column=_ts(nullable=False))
    valid_until: datetime = Field(sa_column=_ts(nullable=False))
    redeemed_at: datetime | None = Field(default=None, sa_column=_ts())


class Checkin(SQLModel, table=True):
    __tablename__ = "checkin"
    __table_args__ = (UniqueConstraint("member_id", "day", name="uq_checkin_member_day"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    day: date
    streak: int
    created_at: datetime = Field(sa_column=_ts(nullable=False))
