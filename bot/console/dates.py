"""Local dates and times on console pages and in exports: the programme's zone (services.tz) both ways."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from storage.clock import as_utc


def parse_day(raw: str | None) -> date | None:
    """A YYYY-MM-DD date, None when empty; ValueError when it is not one."""
    text = (raw or "").strip()
    return date.fromisoformat(text) if text else None


def start_of(day: date, tz: ZoneInfo) -> datetime:
    """The instant a local day begins."""
    return datetime.combine(day, time(0), tz)


def end_of(day: date, tz: ZoneInfo) -> datetime:
    """The instant after a local day ends (ranges are half-open)."""
    return start_of(day + timedelta(days=1), tz)


def local(at: datetime | None, tz: ZoneInfo) -> str:
    """An instant as the operator reads it: local `YYYY-MM-DD HH:MM:SS`, empty when unknown."""
    return "" if at is None else f"{as_utc(at).astimezone(tz):%Y-%m-%d %H:%M:%S}"


def formatter(tz: ZoneInfo) -> Callable[[datetime | None], str]:
    return lambda at: local(at, tz)


def parse_month(raw: str | None) -> date | None:
    """A month as YYYY-MM (or a YYYY-MM-DD day, taken as its month): its first day; None when empty;
    ValueError when it is neither."""
    text = (raw or "").strip()
    if not text:
        return None
    if len(text) == 7:
        text += "-01"
    return date.fromisoformat(text).replace(day=1)
