"""Marketing tables: RFM moves, uploaded member lists, broadcasts, experiments and their assignments. Columns
and constraints only: behaviour lives in storage/segments.py, audiences.py, broadcasts.py, experiments.py."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models.core import utc_column


class MemberSegment(SQLModel, table=True):
    """A member's RFM class from the daily layering (storage/segments.py): its three 1-5 scores (NULL for
    未消费, no paid order) and the local day the class last changed. No row until the member's first layering.
    A table of its own (migration 0018): a layering writes these narrow rows, not 1,000,000 new versions of
    `member` with its ten indexes."""

    __tablename__ = "member_segment"

    member_id: int = Field(primary_key=True, foreign_key="member.id")
    segment: str = Field(max_length=8)
    r: int | None = None
    f: int | None = None
    m: int | None = None
    since: date


class RfmMove(SQLModel, table=True):
    """A member's RFM class changed on this local day (from NULL on the first layering). One per member and
    day: a re-run of the day's job moves nobody twice."""

    __tablename__ = "rfm_move"
    __table_args__ = (
        # (day, member_id): the flows report reads a range of days through it, so no second index on day.
        UniqueConstraint("day", "member_id", name="uq_rfm_move_day_member"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    day: date
    from_class: str | None = Field(default=None, max_length=8)
    to_class: str = Field(max_length=8)


class MemberList(SQLModel, table=True):
    """An uploaded list of members (openids resolved at upload) that an audience can name."""

    __tablename__ = "member_list"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=60)
    size: int = 0
    unknown: int = 0  # openids in the upload that matched no member
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))


class MemberListEntry(SQLModel, table=True):
    __tablename__ = "member_list_entry"

    list_id: int = Field(foreign_key="member_list.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)


class Broadcast(SQLModel, table=True):
    """An operator's message to an audience: `audience` and `content` are JSON (storage/audiences.py and
    storage/broadcasts.py read them). scheduled -> sending (expanding into outbox rows `broadcast:{id}:{member}`,
    resumable from `cursor`) -> sent; cancelled at any point stops what is not sent yet."""

    __tablename__ = "broadcast"
    __table_args__ = (
        UniqueConstraint("request_id", name="uq_broadcast_request_id"),
        CheckConstraint("kind IN ('campaign', 'holiday', 'content')", name="ck_broadcast_kind"),
        CheckConstraint("status IN ('scheduled', 'sending', 'sent', 'cancelled')", name="ck_broadcast_status"),
        Index("ix_broadcast_due", "status", "send_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=64)
    name: str = Field(max_length=60)
    kind: str = Field(max_length=12)
    audience: str = Field(sa_column=Column(Text, nullable=False))
    content: str = Field(sa_column=Column(Text, nullable=False))
    send_at: datetime = Field(sa_column=utc_column(nullable=False))
    deadline: datetime | None = Field(default=None, sa_column=utc_column())
    status: str = Field(default="scheduled", max_length=12)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    experiment_id: int | None = Field(default=None, foreign_key="experiment.id")
    cursor: int = 0  # the last member id expanded: a crashed expansion resumes after it
    queued: int = 0
    held_out: int = 0  # experiment holdout members: assigned, measured, sent nothing
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    expanded_at: datetime | None = Field(default=None, sa_column=utc_column())
    cancelled_at: datetime | None = Field(default=None, sa_column=utc_column())
    cancelled_by: str | None = Field(default=None, max_length=64)


class Experiment(SQLModel, table=True):
    """An A/B test over a broadcast (`target` 'broadcast') or a push kind ('birthday', 'winback', ...):
    `arms` is JSON, a list of {name, weight, params} whose first arm is the control; `holdout` is the share in
    percent that is sent nothing and still measured. One running experiment per push kind."""

    __tablename__ = "experiment"
    __table_args__ = (
        UniqueConstraint("request_id", name="uq_experiment_request_id"),
        CheckConstraint("status IN ('running', 'stopped')", name="ck_experiment_status"),
        CheckConstraint("holdout >= 0 AND holdout < 100", name="ck_experiment_holdout"),
        Index("ix_experiment_target", "target", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=64)
    name: str = Field(max_length=60)
    target: str = Field(max_length=32)
    arms: str = Field(sa_column=Column(Text, nullable=False))
    holdout: int = 0
    status: str = Field(default="running", max_length=12)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    stopped_at: datetime | None = Field(default=None, sa_column=utc_column())


class ExperimentAssignment(SQLModel, table=True):
    """A member's arm in an experiment (or 'holdout'), fixed the first time it is drawn: the draw is a
    stable hash of (experiment, member), and the row keeps it even if the arms' weights change later."""

    __tablename__ = "experiment_assignment"
    __table_args__ = (Index("ix_experiment_assignment_arm", "experiment_id", "arm"),)

    experiment_id: int = Field(foreign_key="experiment.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    arm: str = Field(max_length=16)
    assigned_at: datetime = Field(sa_column=utc_column(nullable=False))


class WinbackStep(SQLModel, table=True):
    """A stage of a member's win-back episode (warn, recall1, recall2, dormant), once per member, stage and
    local day (`key`): the report's base, and the history of who was chased when."""

    __tablename__ = "winback_step"
    __table_args__ = (
        UniqueConstraint("key", name="uq_winback_step_key"),
        CheckConstraint("stage IN ('warn', 'recall1', 'recall2', 'dormant')", name="ck_winback_step_stage"),
        Index("ix_winback_step_stage_at", "stage", "at"),
        Index("ix_winback_step_member", "member_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=80)
    member_id: int = Field(foreign_key="member.id")
    stage: str = Field(max_length=12)
    at: datetime = Field(sa_column=utc_column(nullable=False))
    held_out: bool = False  # an experiment's holdout: the stage passed with nothing sent
