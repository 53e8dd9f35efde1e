"""Community group campaigns and their participants. Columns and constraints only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.enums import CampaignStatus
from storage.models.columns import utc_column as _ts


class Campaign(SQLModel, table=True):
    """A group activity a manager started in the chat; budget is the most it can ever pay out."""

    __tablename__ = "campaign"
    __table_args__ = (
        UniqueConstraint("code", name="uq_campaign_code"),
        CheckConstraint(
            "kind IN ('join_bonus', 'group_buy', 'checkin_challenge', 'lucky_draw')", name="ck_campaign_kind"
        ),
        CheckConstraint("paid_out <= budget", name="ck_campaign_within_budget"),
        Index("ix_campaign_due", "status", "ends_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=8)
    kind: str = Field(max_length=20)
    title: str = Field(max_length=40)
    points: int
    goal: int = 0  # group-buy N, challenge K days, draw W winners
    cap: int
    budget: int
    paid_out: int = 0
    participants: int = 0
    status: str = Field(default=CampaignStatus.OPEN.value, max_length=12)
    robot_key: str | None = Field(default=None, max_length=80)
    qr_url: str | None = Field(default=None, max_length=300)
    draw_record: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    ends_at: datetime = Field(sa_column=_ts(nullable=False))
    settled_at: datetime | None = Field(default=None, sa_column=_ts())


class CampaignMember(SQLModel, table=True):
    __tablename__ = "campaign_member"
    __table_args__ = (UniqueConstraint("campaign_id", "member_id", name="uq_campaign_member"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    joined_at: datetime = Field(sa_column=_ts(nullable=False))
    paid: int = 0
