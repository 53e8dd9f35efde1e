"""The dashboard (issue 15) over HTTP: who sees it (dashboard.read: admin, operator, analyst; a clerk keeps
the plain home), the tiles and the table of the snapshots the real job computed over members who signed
up and checked in through the chat, the range choice, and the KPI JSON API (401, 422, the series)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.console import texts
from scheduler.jobs import JobContext, kpi_snapshot
from storage.clock import FrozenClock
from tests.support.console_support import ConsoleWorld, console_world
from tests.support.fakes import ADMIN
from tests.support.member_support import sign_up

# The clock starts 2026-11-22 10:00 local (tests/conftest.py START).


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def _two_days(world: ConsoleWorld, clock: FrozenClock) -> None:
    """11-22: two members sign up, one checks in; 11-23: a third signs up. Snapshots of both days."""
    await sign_up(world.wechat, "oDASHaliceAAAAAAAAAAAAAAAAA", "13800138001")
    await sign_up(world.wechat, "oDASHbobBBBBBBBBBBBBBBBBBBB", "13800138002")
    await world.wechat.say("oDASHaliceAAAAAAAAAAAAAAAAA", "签到")
    ctx = JobContext(world.db, world.wechat.services.ledger)
    clock.advance(days=1)
    await sign_up(world.wechat, "oDASHcarolCCCCCCCCCCCCCCCCC", "13800138003")
    assert await kpi_snapshot(ctx, clock.now()) == 1  # 11-22
    clock.advance(days=1)
    assert await kpi_snapshot(ctx, clock.now() - timedelta(hours=9, minutes=30)) == 1  # 11-23, at 00:30


def _tile(html: str, figure: str) -> str:
    found = re.search(rf'data-figure="{figure}">\s*<h3>[^<]*</h3>\s*<p class="kpi-value" data-value>([^<]*)</p>'
                      rf'\s*<p class="kpi-change muted">([^<]*)</p>', html)
    assert found, figure
    return f"{found.group(1)} | {found.group(2)}"


async def test_the_roles_that_read_it_see_the_snapshots(world: ConsoleWorld, clock: FrozenClock) -> None:
    await _two_days(world, clock)
    for role in ("admin", "operator", "analyst"):
        page = await (await world.as_role(role)).get("/admin?days=7")
        assert page.status_code == 200, role
        assert texts.DASHBOARD_TITLE in page.text
        assert texts.DASHBOARD_AS_OF.format(day="2026-11-23") in page.text
    html = page.text
    assert _tile(html, "members") == "3 | " + texts.DASHBOARD_NO_CHANGE.format(days=7)
    assert _tile(html, "signups").startswith("1 | ")
    assert _tile(html, "points_issued").startswith("100 | ")  # carol's sign-up bonus on 11-23
    assert _tile(html, "liability_yuan").startswith("¥3.05 | ")  # 100 + 100 + 100 + 5, one fen a point
    assert _tile(html, "active_members").startswith("3 | ")
    assert _tile(html, "checkin_participation").startswith("0.0% | ")  # nobody checked in on 11-23
    assert '<tr data-day="2026-11-23"><td class="">2026-11-23</td><td class="num">3</td>' in html  # followers
    assert '<tr data-day="2026-11-22">' in html
    assert 'src="/admin/static/echarts.min.js"' in html
    assert (await (await world.as_role("admin")).get("/admin/static/echarts.min.js")).status_code == 200


async def test_the_change_is_against_the_period_before(world: ConsoleWorld, clock: FrozenClock) -> None:
    await _two_days(world, clock)
    ctx = JobContext(world.db, world.wechat.services.ledger)
    assert await kpi_snapshot(ctx, clock.now() - timedelta(days=7)) == 1  # 11-16 rebuilt: nobody yet
    html = (await (await world.as_role("analyst")).get("/admin?days=7")).text
    assert _tile(html, "members") == "3 | " + texts.DASHBOARD_CHANGE.format(days=7, delta="+3")
    assert _tile(html, "liability_yuan") == "¥3.05 | " + texts.DASHBOARD_CHANGE.format(days=7, delta="+¥3.05")
    assert _tile(html, "referral_share_30d") == "0.0% | " + texts.DASHBOARD_NO_CHANGE.format(days=7)  # 0 of 0
    month = (await (await world.as_role("analyst")).get("/admin?days=30")).text
    assert _tile(month, "members") == "3 | " + texts.DASHBOARD_NO_CHANGE.format(days=30)


async def test_a_clerk_keeps_the_plain_home_a_bad_range_is_refused(world: ConsoleWorld, clock: FrozenClock) -> None:
    await _two_days(world, clock)
    clerk = await (await world.as_role("clerk")).get("/admin")
    assert clerk.status_code == 200
    assert texts.DASHBOARD_TITLE not in clerk.text
    assert "欢迎，clerk（店员）" in clerk.text
    bad = await (await world.as_role("admin")).get("/admin?days=12")
    assert bad.status_code == 422
    assert texts.DASHBOARD_BAD_RANGE.format(days=12) in bad.text


async def test_no_snapshot_yet_says_how_to_make_one(world: ConsoleWorld) -> None:
    page = await (await world.as_role("operator")).get("/admin")
    assert page.status_code == 200
    assert texts.DASHBOARD_EMPTY in page.text


async def test_the_kpi_api_returns_the_series(world: ConsoleWorld, clock: FrozenClock) -> None:
    await _two_days(world, clock)
    api = world.wechat.client
    assert (await api.get("/api/admin/kpis")).status_code == 401
    assert (await api.get("/api/admin/kpis", headers={"Authorization": "Bearer wrong"})).status_code == 401
    body = (await api.get("/api/admin/kpis", headers=ADMIN)).json()
    assert (body["from"], body["to"]) == ("2026-10-25", "2026-11-23")  # 30 days up to the latest snapshot
    assert body["days"] == ["2026-11-22", "2026-11-23"]
    assert body["series"]["members"] == [2, 3]
    assert body["series"]["signups"] == [2, 1]
    assert body["targets"]["redemption_rate_12m"] == [0.5, None]
    one = (await api.get("/api/admin/kpis?from=2026-11-23&to=2026-11-23", headers=ADMIN)).json()
    assert one["days"] == ["2026-11-23"]
    for query, message in [
        ("from=2026-13-01", "`from` must be a date as YYYY-MM-DD, got '2026-13-01'"),
        ("to=yesterday", "`to` must be a date as YYYY-MM-DD, got 'yesterday'"),
        ("from=2026-11-23&to=2026-11-22", "`from` (2026-11-23) is after `to` (2026-11-22)"),
        ("from=2024-01-01&to=2026-11-22", "at most 366 days per request, asked 1057"),
    ]:
        refused = await api.get(f"/api/admin/kpis?{query}", headers=ADMIN)
        assert refused.status_code == 422, query
        assert refused.json()["message"] == message
