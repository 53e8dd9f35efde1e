"""The reports' tables: one row per member per local day with an interaction, and one KPI snapshot per
local day. Columns and constraints only: storage/members.py writes the first, storage/reports.py the second."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from storage.models.core import utc_column


class InteractionDay(SQLModel, table=True):
    """A member wrote or sent an event on this programme-local day (written with the touch)."""

    __tablename__ = "interaction_day"

    member_id: int = Field(foreign_key="member.id", primary_key=True)
    day: date = Field(primary_key=True, index=True)


class KpiSnapshot(SQLModel, table=True):
    """Every dashboard figure of one programme-local day, as JSON (`figures`): a new figure needs no
    migration, and pages read whole days anyway. A re-run of the job replaces the row."""

    __tablename__ = "kpi_snapshot"

    day: date = Field(primary_key=True)
    figures: str = Field(sa_column=Column(Text, nullable=False))
    computed_at: datetime = Field(sa_column=utc_column(nullable=False))
