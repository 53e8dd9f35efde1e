"""Exports: masked CSV of members, ledger entries and redemptions for a local date range, streamed page
by page, UTF-8 with a BOM, audited; admins and analysts only; a bad range is the form again."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.console import exports as export_view
from bot.console import texts
from storage import exports
from storage.clock import FrozenClock
from storage.models import AuditEntry, LedgerEntry, Member
from tests.support.console_support import ConsoleWorld, audit_entries, console_world
from tests.support.factories import TZ, local
from tests.support.ledgerviews_support import FULL_PHONE, coupon, member

DAY = {"since": "2026-11-22", "until": "2026-11-22"}


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        await member(found, "oEXPORTfirst", "13900001111")
        second = await member(found, "oEXPORTsecond", "13700002222")
        await coupon(found, second, clock.now(), name="=HYPERLINK(\"x\")", key="r-live")
        used = await coupon(found, second, clock.now(), name="拿铁", key="r-used")
        async with found.db.unit_of_work() as session:
            await found.wechat.services.rewards.use(session, used.code, clock.now())
        yield found


def rows_of(body: bytes) -> list[list[str]]:
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


async def audited(world: ConsoleWorld, action: str) -> list[AuditEntry]:
    return await audit_entries(world.db, action=action)


@pytest.mark.parametrize("role", ["admin", "analyst"])
async def test_members_export_is_masked_with_local_dates(world: ConsoleWorld, role: str) -> None:
    response = await (await world.as_role(role)).get("/admin/exports/members.csv", params=DAY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="members-2026-11-22-2026-11-22.csv"' in response.headers["content-disposition"]
    header, *rows = rows_of(response.content)
    assert tuple(header) == texts.EXPORT_HEADERS["members"]
    assert [(r[1], r[2], r[9]) for r in rows] == [
        ("oEXPORTfirst", "139****1111", "2026-11-22 10:00:00"), ("oEXPORTsecond", "137****2222", "2026-11-22 10:00:00")]
    assert not FULL_PHONE.search(response.content.decode())
    [entry] = await audited(world, "export.members")
    assert (entry.actor, entry.target, entry.client) == (role, "2026-11-22..2026-11-22", "127.0.0.1")


async def test_ledger_and_redemptions_exports(world: ConsoleWorld) -> None:
    analyst = await world.as_role("analyst")
    ledger = rows_of((await analyst.get("/admin/exports/ledger.csv", params=DAY)).content)
    assert tuple(ledger[0]) == texts.EXPORT_HEADERS["ledger"]
    assert len(ledger) > 3  # two sign-up bonuses and two redemptions at least
    assert all(row[2].startswith("2026-11-22 10:00") for row in ledger[1:])
    redemptions = rows_of((await analyst.get("/admin/exports/redemptions.csv", params=DAY)).content)
    assert tuple(redemptions[0]) == texts.EXPORT_HEADERS["redemptions"]
    live, used = redemptions[1:]
    assert live[2] == "'=HYPERLINK(\"x\")"  # a formula is text in Excel
    assert live[4].startswith("****")  # a code still usable at a till does not leave in full
    assert used[5] == "used"
    assert not used[4].startswith("****")
    for body in (ledger, redemptions):
        assert not FULL_PHONE.search(repr(body))
    assert [e.target for e in await audited(world, "export.ledger")] == ["2026-11-22..2026-11-22"]
    assert len(await audited(world, "export.redemptions")) == 1


async def test_outside_the_range_nothing_is_exported(world: ConsoleWorld) -> None:
    admin = await world.as_role("admin")
    earlier = await admin.get("/admin/exports/members.csv", params={"since": "2026-11-01", "until": "2026-11-21"})
    assert len(rows_of(earlier.content)) == 1  # the header alone


async def test_more_rows_than_one_page_stream_whole(world: ConsoleWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "PAGE", 1)
    ledger = rows_of((await (await world.as_role("admin")).get("/admin/exports/ledger.csv", params=DAY)).content)
    async with world.db.sessions() as session:
        count = len((await session.scalars(select(LedgerEntry.id))).all())
    assert len(ledger) == count + 1
    assert len({row[0] for row in ledger[1:]}) == count


async def test_the_rows_are_read_a_page_at_a_time(world: ConsoleWorld, clock: FrozenClock) -> None:
    """The generator yields each page as it reads it: a member who joins after the first page was
    handed out still comes in a later page, so no page holds more than its own rows."""
    since, until = local(2026, 11, 22), local(2026, 11, 23)
    pages = exports.members(world.db, since, until, lambda token: world.wechat.services.pii.decrypt(token), size=1)
    first = await anext(pages)
    assert [row[1] for row in first] == ["oEXPORTfirst"]
    await member(world, "oEXPORTlate", "13600003333")
    rest = [page async for page in pages]
    assert [[row[1] for row in page] for page in rest] == [["oEXPORTsecond"], ["oEXPORTlate"]]
    async with world.db.sessions() as session:
        assert len((await session.scalars(select(Member.id))).all()) == 3


@pytest.mark.parametrize(("since", "until", "field", "message"), [
    ("2026-11-22", "2026-11-01", "until", texts.EXPORT_RANGE_ORDER),
    ("2025-01-01", "2026-11-22", "until", texts.EXPORT_RANGE_TOO_LONG),
    ("2026-02-30", "2026-11-22", "since", texts.BAD_DATE),
    ("", "2026-11-22", "since", texts.EXPORT_RANGE_REQUIRED),
])
async def test_a_bad_range_is_the_form_again(
    world: ConsoleWorld, since: str, until: str, field: str, message: str,
) -> None:
    page = await (await world.as_role("analyst")).get("/admin/exports/redemptions.csv",
                                                      params={"since": since, "until": until})
    assert page.status_code == 422
    assert f'<span class="field-error" id="{field}-error">{message}</span>' in page.text
    assert await audited(world, "export.redemptions") == []


async def test_a_whole_year_is_allowed(world: ConsoleWorld) -> None:
    page = await (await world.as_role("analyst")).get("/admin/exports/members.csv",
                                                      params={"since": "2025-11-23", "until": "2026-11-22"})
    assert page.status_code == 200


@pytest.mark.parametrize("role", ["operator", "clerk"])
async def test_other_roles_are_refused(world: ConsoleWorld, role: str) -> None:
    me = await world.as_role(role)
    for path in ("/admin/exports", "/admin/exports/members.csv?since=2026-11-22&until=2026-11-22"):
        refused = await me.get(path)
        assert refused.status_code == 403
        assert "管理员、分析师" in refused.text
    assert await audited(world, "export.members") == []


async def test_the_form_and_an_unknown_export(world: ConsoleWorld) -> None:
    admin = await world.as_role("admin")
    form = await admin.get("/admin/exports")
    assert form.status_code == 200
    assert 'name="since" value="2026-10-24"' in form.text
    assert 'name="until" value="2026-11-22"' in form.text
    for kind in ("members", "ledger", "redemptions"):
        assert f'formaction="/admin/exports/{kind}.csv"' in form.text
    assert (await admin.get("/admin/exports/operators.csv", params=DAY)).status_code == 404


async def test_the_file_is_sent_a_page_per_chunk(world: ConsoleWorld) -> None:
    since, until = local(2026, 11, 22), local(2026, 11, 23)
    pages = exports.ledger(world.db, since, until, size=1)
    chunks = [chunk async for chunk in export_view.csv_bytes(texts.EXPORT_HEADERS["ledger"], pages, TZ)]
    async with world.db.sessions() as session:
        count = len((await session.scalars(select(LedgerEntry.id))).all())
    assert len(chunks) == 1 + count  # the BOM and header, then one chunk per one-row page
    assert chunks[0] == ("\ufeff" + ",".join(texts.EXPORT_HEADERS["ledger"]) + "\r\n").encode()


async def test_the_export_is_audited_before_the_first_row_is_read(
    world: ConsoleWorld, monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[list[str]] = []

    async def rows(console: object, since: object, until: object) -> AsyncIterator[list[exports.Row]]:
        seen.append([entry.action for entry in await audited(world, "export.ledger")])  # a fresh session
        yield [(1, "x")]

    monkeypatch.setitem(export_view.EXPORTERS, "ledger", rows)
    response = await (await world.as_role("admin")).get("/admin/exports/ledger.csv", params=DAY)
    assert rows_of(response.content)[1] == ["1", "x"]
    assert seen == [["export.ledger"]]  # committed before the stream began
