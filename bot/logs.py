"""Structured logs (key=value): the dedupe key and intent, never a raw body, a phone number or a token."""

from __future__ import annotations

import logging
import re
import sys

_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


class RedactingFormatter(logging.Formatter):
    """Last line of defence: masks anything shaped like a mainland mobile number."""

    def format(self, record: logging.LogRecord) -> str:
        return _PHONE.sub(lambda m: m.group()[:3] + "****" + m.group()[-4:], super().format(record))


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is written, not when the handler was made: a command
    run inside another program's redirection (a test's capture) must not keep writing to a closed file."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def configure(level: str = "INFO") -> None:
    handler = _Stderr()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)


class KeyAdapter(logging.LoggerAdapter):
    """Prefixes every line with the delivery's dedupe key."""

    def process(self, msg, kwargs):
        return f"key={self.extra['key']} {msg}", kwargs  # type: ignore[index]  # always built with extra={"key": ...}
