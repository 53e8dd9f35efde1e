"""Reading the dates people type (a birthday, a campaign's end): one home for chat and API alike; no I/O here."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo

from handlers.core.message import normalise

MAX_CAMPAIGN_DAYS = 90
# The two grammars differ on purpose: a birthday also takes `.` (1990.05.20), a campaign's end takes a time.
_BIRTHDAY = re.compile(r"^(?:(\d{4})[-/.年])?(\d{1,2})[-/.月](\d{1,2})日?$")
_DAYS = re.compile(r"^(\d{1,2})\s*(天|days?|d)$")
_MONTH_DAY = re.compile(r"^(?:(\d{4})[-/年])?(\d{1,2})[-/月](\d{1,2})日?(?:\s+(\d{1,2})[:：](\d{2}))?$")


def parse_birthday(text: str, today: date) -> tuple[int, int, int | None] | None:
    """`YYYY-MM-DD`, `MM-DD`, `M月D日` (also with / or .). 29 February is valid without a year."""
    match = _BIRTHDAY.match(normalise(text).replace(" ", ""))
    if not match:
        return None
    year = int(match.group(1)) if match.group(1) else None
    month, day = int(match.group(2)), int(match.group(3))
    try:
        date(year or 2000, month, day)  # 2000 is a leap year: 02-29 passes without a year
    except ValueError:
        return None
    if year is not None and not (1900 <= year <= today.year and date(year, month, day) <= today):
        return None
    return month, day, year


def parse_end(text: str, now: datetime, tz: tzinfo) -> datetime | None:
    """`3天` (now + 3 days), `12月31日 20:00`, `12-31`, `2026-12-31` (a bare date ends at midnight
    after that day); it must lie in the next 90 days."""
    cleaned = normalise(text)
    local_now = now.astimezone(tz)
    if match := _DAYS.match(cleaned):
        end = now + timedelta(days=int(match.group(1)))
    elif match := _MONTH_DAY.match(cleaned):
        if match.group(4) and (int(match.group(4)) > 23 or int(match.group(5)) > 59):
            return None
        # Without a year, a month-day already past means next year ("1月5日" in December); each
        # year is tried on its own, since 29 February exists in only one of them.
        years = [int(match.group(1))] if match.group(1) else [local_now.year, local_now.year + 1]
        found = None
        for year in years:
            try:
                day = datetime(year, int(match.group(2)), int(match.group(3)), tzinfo=tz)
            except ValueError:
                continue
            if match.group(4):
                found = day.replace(hour=int(match.group(4)), minute=int(match.group(5)))
            else:
                found = datetime.combine(day.date() + timedelta(days=1), time(0), tzinfo=tz)
            if found > now:
                break
        if found is None:
            return None
        end = found
    else:
        return None
    return end if now < end <= now + timedelta(days=MAX_CAMPAIGN_DAYS) else None
