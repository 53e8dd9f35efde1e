"""Column types shared by the tables: aware UTC timestamps on every backend."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Aware UTC in, aware UTC out, on every backend. SQLite keeps no offset, so it stores naive
    UTC (which also keeps its text comparisons in order); PostgreSQL stores timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(nullable: bool = True, index: bool = False) -> Column[Any]:
    """A timestamp column holding aware UTC (see UTCDateTime)."""
    return Column(UTCDateTime(), nullable=nullable, index=index)
