"""No phone number in any log line: the session-wide check lives in tests/support/logcheck.py (it fails the
whole run at the end); these tests prove it is armed, that it sees what the app logs while a phone
number passes through it (sign-up, 我的数据, an order found by phone), and that it would notice one."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.logs import RedactingFormatter
from storage.clock import FrozenClock
from tests.support import logcheck
from tests.support.fakes import WeChat
from tests.support.member_support import app_with_order_secret, pay, post_order, refund, sign_up

PHONE = "13912345678"
REPO = Path(__file__).resolve().parent.parent
ALICE = "oLOGCHECK_ALICE_00000000001"


@pytest.fixture
async def wechat(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[WeChat]:
    async with app_with_order_secret(urls, clock) as harness:
        yield harness


def test_the_watch_is_on_the_root_logger_at_debug() -> None:
    root = logging.getLogger()
    assert logcheck.WATCH in root.handlers
    assert root.level == logging.DEBUG
    assert logging.getLogger("sqlalchemy.engine.Engine").isEnabledFor(logging.INFO)


async def test_a_phone_passing_through_the_app_is_never_logged(wechat: WeChat) -> None:
    leaks_before = len(logcheck.WATCH.leaks)
    with logcheck.WATCH.tap() as lines:
        await sign_up(wechat, ALICE, phone="+86 139-1234-5678")
        await wechat.say(ALICE, "我的数据")
        await wechat.say(ALICE, "13912345678")  # typed outside any flow: just an unknown message
        await pay(wechat, "LOG-1", 10_000, phone=PHONE)
        await post_order(wechat, refund("LOG-1", 10_000, "LOG-1-R", 10_000))
        await post_order(wechat, {"order_id": "LOG-2", "status": "paid", "amount_fen": 100, "phone": "13900000000"})

    # The app did log while the phone went through it: the SQL that stored it, with parameters.
    assert len(lines) > 50
    statements = [line for name, line in lines if name.startswith("sqlalchemy.engine")]
    assert any("UPDATE member SET phone_enc" in line for line in statements)
    assert any("INSERT INTO ledger_entry" in line for line in statements)
    assert any("phone_hash" in line for line in statements)
    own = [line for name, line in lines if name.startswith("wxbot")]
    assert any("signed up member=" in line for line in own)
    # ... and not one line holds it, in any form.
    assert [line for _, line in lines if PHONE in line.replace(" ", "").replace("-", "")] == []
    assert [line for _, line in lines if logcheck.find_phones(line)] == []
    assert len(logcheck.WATCH.leaks) == leaks_before


@pytest.mark.parametrize(
    ("line", "found"),
    [
        ("member phone=13800138000 signed up", ["13800138000"]),
        ("(['19912345678', 'x'],)", ["19912345678"]),
        ("手机号13800138000已绑定", ["13800138000"]),
        ("+8613800138000", ["13800138000"]),
        ("12800138000 is not a mobile number", []),
        ("key=oa:1763800138000123456 intent=checkin", []),  # a message id, not a phone
        ("created 1795831200", []),  # a Unix timestamp
        ("hash 3f2a13800138000bb9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d", []),
        ("token gAAAAABnQ13800138000xyz_-AbCdEfGhIjKlMnOpQrStUvWxYz==", []),
    ],
)
def test_the_detector(line: str, found: list[str]) -> None:
    assert logcheck.find_phones(line) == found


def test_a_leak_would_be_caught_and_named() -> None:
    """A private watch, not the session's: proves the handler records the line and the test."""
    watch = logcheck.PhoneWatch()
    watch.current_test = "tests/x.py::test_leaky"
    logger = logging.getLogger("logcheck.selftest")
    logger.propagate = False
    logger.addHandler(watch)
    try:
        logger.info("signed up phone=%s", "13800138000")
        logger.debug("nothing here: %d", 42)
        try:
            raise ValueError("bad phone 13700137000")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(watch)
        logger.propagate = True
    assert watch.lines == 3
    assert [(leak.test, leak.logger) for leak in watch.leaks] == [("tests/x.py::test_leaky", "logcheck.selftest")] * 2
    assert "13800138000" in watch.leaks[0].line
    assert "13700137000" in watch.leaks[1].line  # the traceback is part of the line


def test_the_apps_own_formatter_would_have_hidden_it() -> None:
    """Why the watch formats plainly: production logs mask numbers, which would mask a leak."""
    record = logging.LogRecord("wxbot", logging.INFO, __file__, 1, "phone=%s", ("13800138000",), None)
    assert RedactingFormatter("%(message)s").format(record) == "phone=138****8000"
    assert logcheck.find_phones(logging.Formatter(logcheck.FORMAT).format(record)) == ["13800138000"]


@pytest.mark.phone_in_logs_on_purpose
def test_a_marked_test_may_log_a_phone() -> None:
    before = len(logcheck.WATCH.leaks)
    logging.getLogger("logcheck.marked").info("phone=%s", "13800138000")
    assert len(logcheck.WATCH.leaks) == before


def run_pytest_with_the_plugin(
    tmp_path: Path, test: str, logger: str, phone: str, options: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Runs, under the plugin alone, one passing test that debug-logs `member phone=<phone>` to `logger`."""
    body = (
        "import logging\n"
        f"def {test}():\n"
        f"    logging.getLogger({logger!r}).debug('member phone=%s', {phone!r})\n"
    )
    (tmp_path / "test_tiny.py").write_text(body, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.support.logcheck", "-p", "no:cacheprovider",
         "-c", os.devnull, "--rootdir", str(tmp_path), *options, str(tmp_path / "test_tiny.py")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120, check=False,
    )


@pytest.mark.parametrize("options", [(), ("-n", "2")], ids=["one process", "xdist workers"])
def test_a_run_that_logs_a_phone_fails_at_the_end(tmp_path: Path, options: tuple[str, ...]) -> None:
    """The session check itself: every test passes, yet the run fails and names the line (also when the
    test ran in a pytest-xdist worker: the controller judges what each worker watched)."""
    result = run_pytest_with_the_plugin(tmp_path, "test_passes_but_leaks", "wxbot.leaky", "13800138000", options)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "phone numbers in log lines" in result.stdout
    assert "test_passes_but_leaks [wxbot.leaky] DEBUG wxbot.leaky member phone=13800138000" in result.stdout
    assert "logcheck: FAILED, 1 log lines hold a phone number" in result.stdout


@pytest.mark.parametrize("options", [(), ("-n", "2")], ids=["one process", "xdist workers"])
def test_a_clean_run_passes(tmp_path: Path, options: tuple[str, ...]) -> None:
    result = run_pytest_with_the_plugin(tmp_path, "test_clean", "wxbot.clean", "138****8000", options)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "log lines checked for phone numbers (wxbot 1" in result.stdout
