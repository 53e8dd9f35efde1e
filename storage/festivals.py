"""The festival calendar ([[festivals]] in the rules): local days on which the monthly marketing cap is
raised by one (a holiday greeting beside the month's campaigns), never beyond MAX_CAP."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

MAX_CAP = 5
_DATE = re.compile(r"^(?:(\d{4})-)?(\d{2})-(\d{2})$")


class FestivalError(ValueError):
    """A bad [[festivals]] entry, naming the key; refused at start-up."""


@dataclass(frozen=True)
class Festival:
    name: str
    month: int
    day: int
    year: int | None = None  # None: every year (MM-DD)

    def on(self, day: date) -> bool:
        return (self.year is None or self.year == day.year) and (self.month, self.day) == (day.month, day.day)


def festivals(value: Any) -> tuple[Festival, ...]:
    """[[festivals]] name = "春节", date = "2027-02-06" (one year) or "10-01" (every year)."""
    if not isinstance(value, list):
        raise FestivalError("festivals must be an array of tables ([[festivals]])")
    found = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"name", "date"}:
            raise FestivalError(f"festivals[{i}] needs exactly name and date")
        name, text = item["name"], item["date"]
        if not isinstance(name, str) or not name.strip() or len(name) > 30:
            raise FestivalError(f"festivals[{i}].name must be 1 to 30 characters")
        match = _DATE.match(text) if isinstance(text, str) else None
        if match is None:
            raise FestivalError(f"festivals[{i}].date must be MM-DD or YYYY-MM-DD, got {text!r}")
        year = int(match.group(1)) if match.group(1) else None
        month, day = int(match.group(2)), int(match.group(3))
        try:
            date(year or 2024, month, day)  # 2024 is a leap year: 02-29 is a valid every-year date
        except ValueError:
            raise FestivalError(f"festivals[{i}].date {text!r} is not a calendar date") from None
        found.append(Festival(name.strip(), month, day, year))
    return tuple(found)


def cap_on(cap: int, calendar: tuple[Festival, ...], day: date) -> int:
    """The monthly marketing cap on a local day: one more on a festival, never beyond MAX_CAP (nor below `cap`)."""
    if any(f.on(day) for f in calendar):
        return max(cap, min(cap + 1, MAX_CAP))
    return cap
