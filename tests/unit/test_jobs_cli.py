"""`wxbot jobs list` and `wxbot jobs run NAME --at ISO-TIME` (issue 6): every job with its next run; a
job run as of a given time, obeying the same dedupe keys (running it twice changes nothing); a time
without a UTC offset refused with a clear message."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from bot.migrate import upgrade
from scheduler.jobs import JOBS, SCHEDULE
from storage.db import Database
from storage.models import LedgerEntry, Member, Outbox
from tests.support.factories import TZ

ENV = ("WECHAT_APPID", "WECHAT_APPSECRET", "WECHAT_API_BASE", "MINIPROGRAM_APPID", "MINIPROGRAM_SECRET",
       "RULES_FILE", "TIMEZONE", "ADMIN_TOKEN", "PII_KEY")


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A migrated SQLite database the CLI finds through DATABASE_URL (and an in-process KV)."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'wxbot.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("REDIS_URL", f"memory://cli-{secrets.token_hex(4)}")
    asyncio.run(upgrade(url))
    return url


def add_members(url: str, birthdays: list[tuple[int, int]]) -> list[int]:
    async def run() -> list[int]:
        db = Database(url)
        joined = datetime(2025, 3, 1, tzinfo=UTC)
        try:
            async with db.unit_of_work() as session:
                rows = [Member(
                    openid=f"oCLI{i:024d}", birthday_month=month, birthday_day=day, joined_at=joined,
                    created_at=joined, last_interaction_at=datetime(2026, 5, 19, tzinfo=UTC),
                    referral_code=f"CLI{i:03d}",
                ) for i, (month, day) in enumerate(birthdays)]
                session.add_all(rows)
                await session.flush()
                return [int(r.id) for r in rows]  # type: ignore[arg-type]
        finally:
            await db.dispose()

    return asyncio.run(run())


def state(url: str) -> tuple[list[tuple[int, str, int]], dict[int, int], int]:
    async def run() -> tuple[list[tuple[int, str, int]], dict[int, int], int]:
        db = Database(url)
        try:
            async with db.sessions() as session:
                entries = (await session.execute(
                    select(LedgerEntry.member_id, LedgerEntry.idempotency_key, LedgerEntry.delta)
                    .order_by(LedgerEntry.id)
                )).all()
                balances = dict((await session.execute(select(Member.id, Member.balance))).all())
                pushes = int(await session.scalar(select(func.count()).select_from(Outbox)) or 0)
            return [tuple(e) for e in entries], balances, pushes  # type: ignore[misc]
        finally:
            await db.dispose()

    return asyncio.run(run())


def test_jobs_list_shows_every_job_with_its_next_run(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = datetime.now(UTC)
    assert main(["jobs", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert set(JOBS) <= set(lines)
    for name in JOBS:
        _, when = lines[name].split("next run")
        at = datetime.fromisoformat(when.strip())
        assert at.tzinfo is not None, lines[name]
        assert before <= at <= before + timedelta(days=32), lines[name]
        local = at.astimezone(TZ)
        fields = SCHEDULE[name]
        if fields.get("hour", "*") != "*":
            assert local.hour == int(fields["hour"]), lines[name]
        if fields.get("minute", "*") != "*":
            assert local.minute == int(fields["minute"]), lines[name]
        if "day" in fields:
            assert local.day == int(fields["day"]), lines[name]
    assert "sender" in lines
    assert "continuously" in lines["sender"]


def test_jobs_run_birthday_pays_once_and_a_second_run_pays_nothing(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    today, other = add_members(database, [(5, 20), (5, 21)])
    assert main(["jobs", "run", "birthday", "--at", "2026-05-20T09:00:00+08:00"]) == 0
    assert capsys.readouterr().out.strip() == "birthday: 1"
    entries, balances, pushes = state(database)
    assert entries == [(today, f"birthday:{today}:2026", 200)]
    assert balances == {today: 200, other: 0}
    assert pushes == 1  # the greeting, queued for the sender

    assert main(["jobs", "run", "birthday", "--at", "2026-05-20T09:00:00+08:00"]) == 0
    assert capsys.readouterr().out.strip() == "birthday: 0"
    assert state(database) == (entries, balances, pushes)

    # The same day given in another offset is the same day: still nothing.
    assert main(["jobs", "run", "birthday", "--at", "2026-05-20T01:00:00+00:00"]) == 0
    assert capsys.readouterr().out.strip() == "birthday: 0"
    assert state(database) == (entries, balances, pushes)


def test_jobs_run_at_a_time_without_an_offset_is_refused(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    add_members(database, [(5, 20)])
    assert main(["jobs", "run", "birthday", "--at", "2026-05-20T09:00:00"]) == 2
    captured = capsys.readouterr()
    assert "--at needs a time zone offset" in captured.err
    assert "+08:00" in captured.err  # it shows how to write one
    assert captured.out == ""
    assert state(database)[0] == []  # nothing was paid


def test_jobs_run_refuses_an_unknown_job(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["jobs", "run", "birthdays"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_jobs_run_refuses_a_time_that_is_not_iso(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "run", "birthday", "--at", "tomorrow"]) == 2
    assert "not an ISO time" in capsys.readouterr().err
