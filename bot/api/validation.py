"""The bounds every HTTP input is held to before it reaches a service: int4 ids and counts, strings
without NUL, dates a timestamp column and date arithmetic can hold, Unix seconds of sane length.

Pydantic types for bodies, query and path; plain functions for the signed headers and queries whose
refusal status (401/403) is fixed by contract rather than by validation (422)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, Field, StrictInt

INT4_MAX = 2**31 - 1  # every integer column is PostgreSQL `integer`; SQLite overflows past int8
MAX_TIMESTAMP_DIGITS = 12  # Unix seconds until the year 33658; longer is no clock's answer
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)  # far from datetime.max, so adding years of days cannot overflow


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _bounded_moment(value: datetime) -> datetime:
    # Compared after conversion to UTC, which is itself what overflows near year 1 or 9999.
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}") from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
"""Any string that may reach the database (PostgreSQL text refuses NUL)."""

Id = Annotated[StrictInt, Field(ge=1, le=INT4_MAX)]
"""A row id in a body."""

Count = Annotated[StrictInt, Field(ge=0, le=INT4_MAX)]
"""A non-negative integer stored in an int4 column."""

PathId = Annotated[int, Path(ge=1, le=INT4_MAX)]
"""A row id in a path."""

PathText = Annotated[Text, Path(min_length=1, max_length=64)]
"""A short key in a path: a coupon code, a staff member's openid."""

OpenId = Annotated[Text, Field(min_length=1, max_length=64)]
"""A WeChat openid (or unionid) in a body."""

Moment = Annotated[AwareDatetime, AfterValidator(_bounded_moment)]
"""An instant with a time zone offset, in the years the product can schedule."""


def unix_seconds(value: str | None) -> int | None:
    """Unix seconds from ASCII digits (int() alone also takes '١٢', ' 1', '1_0' and 4,000 digits)."""
    if not value or len(value) > MAX_TIMESTAMP_DIGITS or not (value.isascii() and value.isdigit()):
        return None
    return int(value)


def nul_field(fields: Mapping[str, Any], prefix: str = "") -> str | None:
    """The name of the first field (nested ones dotted) whose text holds a NUL, if any."""
    for name, value in fields.items():
        path = f"{prefix}{name}"
        if "\x00" in str(name) or (isinstance(value, str) and "\x00" in value):
            return path
        if isinstance(value, Mapping) and (inner := nul_field(value, f"{path}.")) is not None:
            return inner
        if isinstance(value, list) and any(isinstance(v, str) and "\x00" in v for v in value):
            return path
    return None
