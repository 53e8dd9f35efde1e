"""Pytest plugin: no phone number appears in any log line of the whole test run (PRODUCT.md,
"Invariants"). Registered from tests/conftest.py.

At start-up it sets the root logger to DEBUG, so every library logs everything it would ever log
(SQLAlchemy its statements, parameters and rows, aiosqlite its calls, the app its own lines) with no
echo flag, and adds a handler that formats every record plainly (not through the app's
RedactingFormatter, which is the last line of defence and would hide a leak) and checks it. At the
end of the session any line holding a mainland mobile number fails the run, with the lines listed.

A test that logs a phone number on purpose (say, to prove the redacting formatter) is marked
`phone_in_logs_on_purpose`; records emitted while it runs are still counted but not judged.

Cost: formatting every DEBUG record (and SQLAlchemy building its parameter and row reprs) adds
roughly 5-10% CPU to chat tests and up to half again to the database-heavy simulations. For a quick
local loop, `pytest -p no:tests.support.logcheck` switches it off; CI keeps it on."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

# A mainland mobile number standing on its own: 1[3-9] and nine digits, perhaps after 86 / 0086,
# and not part of a longer number (message ids and timestamps are).
# Delimited by anything but letters and digits: eleven digits inside an identifier such as a random
# openid (o4b14955811356b9...) are part of that identifier, not a phone number.
PHONE = re.compile(r"(?<![0-9A-Za-z])(?:0{0,2}86)?(1[3-9]\d{9})(?![0-9A-Za-z])")
# Encrypted and hashed values (Fernet tokens, hex digests) can hold eleven digits by chance; they
# are opaque, and a phone number inside one is no leak.
OPAQUE = re.compile(r"gAAAAA[0-9A-Za-z_\-]+=*|(?<![0-9A-Za-z])[0-9a-fA-F]{32,}(?![0-9A-Za-z])")
MARKER = "phone_in_logs_on_purpose"
FORMAT = "%(levelname)s %(name)s %(message)s"


# Every phone above contains this; it is found about fifty times faster, and most lines lack it.
CANDIDATE = re.compile(r"1[3-9]\d{9}")


def find_phones(line: str) -> list[str]:
    if CANDIDATE.search(line) is None:
        return []
    return PHONE.findall(OPAQUE.sub("<opaque>", line))


@dataclass
class Leak:
    test: str
    logger: str
    line: str


class PhoneWatch(logging.Handler):
    """Formats and checks every record; keeps the count, the offending lines, and (while a test
    taps it) the lines themselves."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter(FORMAT))
        self.lines = 0
        self.per_logger: Counter[str] = Counter()
        self.leaks: list[Leak] = []
        self.extra_leaks = 0  # leaks a pytest-xdist worker counted beyond the lines it sent
        self.current_test = "(collection or set-up)"
        self.excused = False
        self._taps: list[list[tuple[str, str]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a broken log call must still be judged on what it carried
            line = f"{record.levelname} {record.name} {record.msg!r} {record.args!r}"
        self.lines += 1
        self.per_logger[record.name.split(".")[0]] += 1
        for tap in self._taps:
            tap.append((record.name, line))
        if not self.excused and find_phones(line):
            self.leaks.append(Leak(self.current_test, record.name, line))

    @contextmanager
    def tap(self) -> Iterator[list[tuple[str, str]]]:
        """Every (logger, formatted line) emitted inside the block."""
        seen: list[tuple[str, str]] = []
        self._taps.append(seen)
        try:
            yield seen
        finally:
            self._taps.remove(seen)


WATCH = PhoneWatch()


def _ensure_installed() -> None:
    """Something may reconfigure logging mid-run (bot.logs.configure replaces the root handlers)."""
    root = logging.getLogger()
    if WATCH not in root.handlers:
        root.addHandler(WATCH)
    if root.level != logging.DEBUG:
        root.setLevel(logging.DEBUG)
    # SQLAlchemy sets its own logger to WARNING on import (echo=True is what usually lowers it), and
    # bot.logs.configure quietens httpx: open both, so their statements and URLs are judged too.
    for name in ("sqlalchemy", "httpx"):
        logging.getLogger(name).setLevel(logging.DEBUG)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: log lines of this test may hold phone numbers (it logs one deliberately)"
    )
    # With the root at DEBUG, pytest's own capture would keep (and print for failures) every SQL
    # line; unless asked otherwise it keeps what it kept before the root was lowered: WARNING and up.
    if config.getoption("log_level", None) is None and not config.getini("log_level"):
        config.option.log_level = "WARNING"
    _ensure_installed()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    _ensure_installed()
    WATCH.current_test = item.nodeid
    WATCH.excused = item.get_closest_marker(MARKER) is not None
    yield
    WATCH.current_test = "(between tests)"
    WATCH.excused = False


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:  # a pytest-xdist worker: the controller judges the whole run
        worker_output["logcheck"] = {"lines": WATCH.lines, "per_logger": dict(WATCH.per_logger),
                                     "leaks": [(leak.test, leak.logger, leak.line) for leak in WATCH.leaks[:200]],
                                     "leak_count": len(WATCH.leaks)}
        return
    if WATCH.leaks and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """pytest-xdist's controller: add what a finished worker watched (its lines, counts and leaks)."""
    seen = getattr(node, "workeroutput", {}).get("logcheck")
    if not seen:
        return
    WATCH.lines += seen["lines"]
    WATCH.per_logger.update(seen["per_logger"])
    WATCH.leaks.extend(Leak(*leak) for leak in seen["leaks"])
    WATCH.extra_leaks += seen["leak_count"] - len(seen["leaks"])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts = ", ".join(f"{name} {n}" for name, n in WATCH.per_logger.most_common(6))
    terminalreporter.write_line(f"logcheck: {WATCH.lines} log lines checked for phone numbers ({counts})")
    if not WATCH.leaks:
        return
    terminalreporter.section("phone numbers in log lines", sep="!", red=True, bold=True)
    for leak in WATCH.leaks[:50]:
        terminalreporter.write_line(f"{leak.test} [{leak.logger}] {leak.line[:400]}")
    total = len(WATCH.leaks) + WATCH.extra_leaks
    if total > 50:
        terminalreporter.write_line(f"... and {total - 50} more")
    terminalreporter.write_line(f"logcheck: FAILED, {total} log lines hold a phone number", red=True)
