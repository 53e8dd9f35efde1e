"""In Chromium: the dashboard of a world seeded through the chat (three members signed up, one check-in)
and snapshotted by the real kpi_snapshot job for two days: the tiles and the table show its numbers, the
charts are drawn from the vendored ECharts, and nothing is fetched from elsewhere. And the demo's year of
history (bot/demo_history.py) makes a living dashboard: screenshot console-dashboard-demo."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from bot import demo_history
from scheduler.jobs import JobContext, kpi_snapshot
from storage.clock import FrozenClock
from storage.db import Database
from storage.models import Member, Reward
from tests.support.browser import Outbound, shot
from tests.support.console_site import Site, console_site, sign_in
from tests.support.fakes import WeChat
from tests.support.member_support import sign_up


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    async def seed(wechat: WeChat) -> None:
        await sign_up(wechat, "oBROWSEdashAAAAAAAAAAAAAAAA", "13800138011")
        await sign_up(wechat, "oBROWSEdashBBBBBBBBBBBBBBBB", "13800138012")
        await wechat.say("oBROWSEdashAAAAAAAAAAAAAAAA", "签到")
        ctx = JobContext(wechat.services.db, wechat.services.ledger)
        assert await kpi_snapshot(ctx, clock.now() - timedelta(days=5)) == 1  # 11-16, before anyone: rebuilt
        clock.advance(days=1)
        await sign_up(wechat, "oBROWSEdashCCCCCCCCCCCCCCCC", "13800138013")
        assert await kpi_snapshot(ctx, clock.now()) == 1  # 11-22
        clock.advance(days=1)
        assert await kpi_snapshot(ctx, clock.now()) == 1  # 11-23

    with console_site(sqlite_template, tmp_path, clock, seed=seed) as found:
        yield found


def tile(page: Any, figure: str) -> tuple[str, str]:
    found = page.locator(f'article.kpi-tile[data-figure="{figure}"]')
    return found.locator(".kpi-value").inner_text(), found.locator(".kpi-change").inner_text()


def cell(page: Any, dimension: str, day: str, figure: str) -> str:
    table = page.locator(f'#kpi-table table[data-dimension="{dimension}"]')
    headers = table.locator("thead th").all_inner_texts()
    column = headers.index(page.locator(f'#kpi-table th[data-figure="{figure}"]').inner_text())
    return table.locator(f'tbody tr[data-day="{day}"] td').nth(column).inner_text()


def test_the_dashboard_shows_the_seeded_numbers(page: Any, site: Site, outbound: Outbound) -> None:
    sign_in(page, site, "analyst")
    page.wait_for_selector("text=运营数据看板")
    page.click('a[data-range="7"]')
    page.wait_for_selector("body[data-charts]")
    assert page.locator("#as-of").inner_text() == "数据截至 2026-11-23（每日凌晨生成快照）"
    assert tile(page, "members") == ("3", "较 7 天前 +3")  # 11-16 had no members
    assert tile(page, "signups") == ("1", "较 7 天前 +1")
    assert tile(page, "liability_yuan") == ("¥3.05", "较 7 天前 +¥3.05")  # three bonuses and a check-in
    assert tile(page, "active_members")[0] == "3"
    assert page.locator('article[data-figure="redemption_rate_12m"] .kpi-target').inner_text() == "目标 ≥ 50.0%"
    assert cell(page, "growth", "2026-11-22", "members") == "2"
    assert cell(page, "growth", "2026-11-23", "members") == "3"
    assert cell(page, "value", "2026-11-22", "points_issued") == "205"  # 100 + 100 + the check-in's 5
    assert cell(page, "experience", "2026-11-22", "checkin_participation") == "50.0%"  # one of two
    tiles = page.locator(".kpi-chart").count()
    assert tiles >= 35  # every figure of the four dimensions has its tile
    assert int(page.get_attribute("body", "data-charts")) == tiles  # and each tile its chart, drawn
    assert page.locator('.kpi-chart[data-chart="members"] svg').count() == 1  # drawn by ECharts
    shot(page, "console-dashboard")
    assert outbound.seen == []


@pytest.fixture
def demo_site(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    async def seed(wechat: WeChat) -> None:
        async with wechat.services.db.unit_of_work() as session:
            session.add(Reward(name="5元无门槛券", cost=50, created_at=clock.now()))
        assert await demo_history.seed_history(wechat.services.db, wechat.services.ledger, clock.now())
        assert not await demo_history.seed_history(wechat.services.db, wechat.services.ledger, clock.now())  # once

    with console_site(sqlite_template, tmp_path, clock, seed=seed) as found:
        yield found


def test_the_demo_history_makes_a_living_dashboard(page: Any, demo_site: Site) -> None:
    async def members(db: Database) -> int:
        async with db.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(Member).where(
                col(Member.openid).startswith(demo_history.DEMO_PREFIX), col(Member.deleted_at).is_(None),
                col(Member.joined_at).is_not(None))) or 0)

    sign_in(page, demo_site, "admin")
    page.wait_for_selector("text=运营数据看板")
    page.click('a[data-range="365"]')
    page.wait_for_selector("body[data-charts]")
    assert page.locator("#as-of").inner_text() == "数据截至 2026-11-21（每日凌晨生成快照）"  # yesterday
    assert page.locator('#kpi-table table[data-dimension="growth"] tbody tr').count() == 365
    assert tile(page, "members")[0] == str(demo_site.read(members))
    assert int(tile(page, "active_members")[0]) > 0
    assert tile(page, "redemption_rate_12m")[0] != "—"
    page.click('a[data-range="90"]')  # a page a person can take in (the year's table is long)
    page.wait_for_selector("body[data-charts]")
    shot(page, "console-dashboard-demo")
