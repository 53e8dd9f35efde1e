"""Helpers the screens share: a validation error as each form field's Chinese message (texts.py), and
instants shown in the programme's time zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from bot.console import texts

T = TypeVar("T")


def field_errors(exc: ValidationError, *, whole: str) -> dict[str, str]:
    """{field: message}, the first error of each field; an error of the whole model goes to `whole`."""
    found: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else whole
        template = texts.FIELD_ERRORS.get(error["type"], texts.FIELD_INVALID)
        context = {key: _shown(value) for key, value in (error.get("ctx") or {}).items()}
        try:
            message = template.format(**context)
        except (KeyError, IndexError):
            message = texts.FIELD_INVALID
        found.setdefault(name, message)
    return found


def _shown(value: object) -> str:
    return "、".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)


def local_time(tz: ZoneInfo) -> Callable[[datetime | None], str]:
    """A template filter: an instant as local `YYYY-MM-DD HH:MM`, blank for none."""
    return lambda moment: moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else ""


def read_field(parse: Callable[[str], T | None], raw: str, field: str, errors: dict[str, str],
               message: str = texts.BAD_DATE) -> T | None:
    """`parse(raw)` (a day, a month), None when empty; when it cannot be read, None with the field's error
    set, so the page comes back with the form and the message beside that field."""
    try:
        return parse(raw)
    except ValueError:
        errors[field] = message
        return None
