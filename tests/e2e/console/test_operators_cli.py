"""`wxbot operators add|passwd|disable|list` from the server's shell, and the admin `wxbot demo` makes:
each account can (or can no longer) sign in to the console, and every change is in the audit log."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.demo import DEMO_OPERATOR, demo_password, seed
from bot.migrate import upgrade
from storage import operators
from storage.db import Database
from storage.models import AuditEntry
from tests.support.fakes import make_settings


def _read(url: str, name: str, password: str) -> tuple[bool, list[tuple[str, str, str]]]:
    async def read() -> tuple[bool, list[tuple[str, str, str]]]:
        db = Database(url)
        try:
            async with db.sessions() as session:
                found = await operators.by_name(session, name)
                ok = found is not None and found.active and operators.password_matches(found, password)
                rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
                return ok, [(r.actor, r.action, r.target) for r in rows]
        finally:
            await db.dispose()

    return asyncio.run(read())


@pytest.fixture
def url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    found = f"sqlite:///{tmp_path / 'ops.db'}"
    monkeypatch.setenv("DATABASE_URL", found)
    asyncio.run(upgrade(found))
    return found


def test_add_generates_a_password_that_signs_in(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["operators", "add", "王小明", "--role", "operator"]) == 0
    out = capsys.readouterr().out
    password = re.search(r"password: (\S+)", out)
    assert password is not None
    ok, audit_rows = _read(url, "王小明", password.group(1))
    assert ok
    assert audit_rows == [("cli", "operator.add", "operator:王小明")]


def test_passwd_from_stdin_and_disable(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("first-password-123\n"))
    assert main(["operators", "add", "clerk1", "--role", "clerk", "--store", "S01", "--password-stdin"]) == 0
    assert "password:" not in capsys.readouterr().out  # a given password is never echoed
    monkeypatch.setattr("sys.stdin", io.StringIO("second-password-456\n"))
    assert main(["operators", "passwd", "clerk1", "--password-stdin"]) == 0
    assert _read(url, "clerk1", "second-password-456")[0]
    assert not _read(url, "clerk1", "first-password-123")[0]
    assert main(["operators", "disable", "clerk1"]) == 0
    ok, rows = _read(url, "clerk1", "second-password-456")
    assert not ok
    assert [action for _, action, _ in rows] == ["operator.add", "operator.passwd", "operator.disable"]
    assert main(["operators", "list"]) == 0
    assert "clerk1  clerk  store S01  (disabled)" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "says"), [
    (["operators", "add", "x", "--role", "admin"], "name:"),
    (["operators", "add", "bob", "--role", "clerk"], "a clerk needs --store"),
    (["operators", "passwd", "nobody"], "no operator nobody"),
    (["operators", "disable", "nobody"], "no operator nobody"),
])
def test_bad_requests_say_why_and_change_nothing(
    url: str, capsys: pytest.CaptureFixture[str], argv: list[str], says: str,
) -> None:
    assert main(argv) == 2
    assert says in capsys.readouterr().err
    assert _read(url, "bob", "")[1] == []


def test_a_short_password_is_refused(url: str, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["operators", "add", "bob", "--role", "admin", "--password-stdin"]) == 2
    assert "10 to 200 characters" in capsys.readouterr().err


def test_a_taken_name_is_refused(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["operators", "add", "bob", "--role", "admin"]) == 0
    assert main(["operators", "add", "bob", "--role", "analyst"]) == 2
    assert "operator bob exists" in capsys.readouterr().err


def test_the_demo_makes_an_admin_whose_password_it_prints(url: str) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    settings = make_settings(url, "memory://demo", wechat_appsecret="")
    asyncio.run(seed(settings, now))
    asyncio.run(seed(settings, now))  # a second start keeps the same account and password
    assert _read(url, DEMO_OPERATOR, demo_password())[0]
    assert Path("var/console_password").stat().st_mode & 0o077 == 0
