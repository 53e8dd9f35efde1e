"""In Chromium: a campaign's report page draws its joins per day with the vendored ECharts (nothing
fetched from elsewhere) beside the figures of a small seeded world: two participants who joined on two
days (join bonus 20 each: 40 points, ¥0.40 at the default 1 fen a point), one of whom paid ¥120.00 the
next day, and a non-participant of the same tier who bought nothing: incremental sales
(120.00 / 2 - 0) x 2 = ¥120.00, ROI 12000 / 40 = 300.00. Screenshot console-campaign-report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from storage import orders
from storage.clock import FrozenClock
from storage.models import Member
from tests.support.browser import Outbound, shot
from tests.support.campaign_support import add_members, new_campaign
from tests.support.console_site import Site, console_site, sign_in
from tests.support.fakes import WeChat


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    async def seed(wechat: WeChat) -> None:
        services = wechat.services
        campaign = await new_campaign(services.db, services.campaigns, clock.now(), kind="join_bonus", points=20,
                                      cap=10, ends_at=clock.now() + timedelta(days=3), title="报名有礼")
        people = await add_members(services.db, clock.now(), 3)
        for n, member in enumerate(people[:2]):
            clock.advance(days=n)
            async with services.db.unit_of_work() as session:
                fresh = await session.get(Member, member.id)
                assert fresh is not None
                await services.campaigns.join(session, campaign.code, fresh, clock.now())
        async with services.db.unit_of_work() as session:
            buyer = await session.get(Member, people[0].id)
            assert buyer is not None
            await orders.record_paid(session, services.ledger, buyer, order_id="BROWSER-1", amount_fen=12000,
                                     now=clock.now())

    with console_site(sqlite_template, tmp_path, clock, seed=seed) as found:
        yield found


def test_the_report_draws_the_joins_and_shows_the_figures(page: Any, site: Site, outbound: Outbound) -> None:
    sign_in(page, site, "analyst")
    page.wait_for_selector("text=运营数据看板")
    page.goto(f"{site.url}/admin/campaigns")
    page.click("a.report-link")
    page.wait_for_selector("body[data-charts]")
    assert page.locator("#report-title").inner_text() == "活动报告：报名有礼"
    figures = {name: page.locator(f'dd[data-figure="{name}"]').inner_text()
               for name in ("participants", "points_paid", "cost", "comparison_members", "incremental", "roi")}
    assert figures == {"participants": "2", "points_paid": "40", "cost": "¥0.40", "comparison_members": "1",
                       "incremental": "¥120.00", "roi": "300.00"}
    assert page.locator("#joins tbody tr").all_inner_texts() == ["2026-11-22\t1", "2026-11-23\t1"]
    assert page.locator("#joins-chart svg").count() == 1  # drawn by ECharts
    drawn = page.evaluate("echarts.getInstanceByDom(document.getElementById('joins-chart')).getOption().series[0].data")
    assert drawn == [1, 1]  # the chart's bars are the table's joins
    shot(page, "console-campaign-report")
    assert outbound.seen == []
