"""`wxbot staff add OPENID --role clerk --store CODE` appoints a store's clerk from the shell (the one way
besides the database itself): the store must exist, a clerk must name one, and the appointment is audited."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.migrate import upgrade
from storage import stores
from storage.db import Database
from storage.models import AuditEntry, Staff

CLERK = "oCLERKcli000000000000000001"


def _rows(url: str) -> tuple[list[tuple[str, str, str | None]], list[tuple[str, str | None]]]:
    async def read() -> tuple[list[tuple[str, str, str | None]], list[tuple[str, str | None]]]:
        db = Database(url)
        try:
            async with db.sessions() as session:
                staff = (await session.scalars(select(Staff))).all()
                audit = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
                return [(s.openid, s.role, s.store) for s in staff], [(a.action, a.after) for a in audit]
        finally:
            await db.dispose()

    return asyncio.run(read())


@pytest.fixture
def url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    found = f"sqlite:///{tmp_path / 'clerk.db'}"
    monkeypatch.setenv("DATABASE_URL", found)
    asyncio.run(upgrade(found))

    async def store() -> None:
        db = Database(found)
        try:
            async with db.unit_of_work() as session:
                await stores.add(session, "S001", "南京西路店", "上海", datetime(2026, 12, 1, tzinfo=UTC))
        finally:
            await db.dispose()

    asyncio.run(store())
    return found


def test_a_clerk_is_appointed_for_an_existing_store(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["staff", "add", CLERK, "--role", "clerk", "--store", "s001"]) == 0
    staff, audit = _rows(url)
    assert staff == [(CLERK, "clerk", "S001")]
    assert audit == [("staff.add", '{"role": "clerk", "store": "S001"}')]
    assert main(["staff", "list"]) == 0
    assert f"{CLERK}  clerk  store S001" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "says"), [
    (["--role", "clerk"], "a clerk, and only a clerk, is bound to a store"),
    (["--role", "clerk", "--store", "S999"], "store S999 does not exist"),
    (["--role", "manager", "--store", "S001"], "a clerk, and only a clerk, is bound to a store"),
])
def test_a_bad_appointment_says_why_and_changes_nothing(
    url: str, capsys: pytest.CaptureFixture[str], argv: list[str], says: str,
) -> None:
    assert main(["staff", "add", CLERK, *argv]) == 2
    assert says in capsys.readouterr().err
    assert _rows(url) == ([], [])
