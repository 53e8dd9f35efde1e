"""Time for the whole service: aware UTC instants and programme-local calendar days; never calls
datetime.now() elsewhere.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real clock: aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that tests move by hand."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def advance(self, **delta: float) -> None:
        self._at = self._at + timedelta(**delta)


def local_date(at: datetime, tz: ZoneInfo) -> date:
    """The programme's calendar day of an instant."""
    return at.astimezone(tz).date()


def as_utc(at: datetime) -> datetime:
    """Databases without time zones hand back naive values; they are UTC by convention."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
