"""In Chromium: an operator starts an experiment from the 实验 form and reads its report, and an analyst reads
the 会员分层 screen of a layered world (a loyal buyer, a new buyer, a member without orders). Screenshots
console-experiment and console-segments."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.jobs import JobContext, rfm
from storage.clock import FrozenClock
from storage.models import PurchaseOrder
from tests.support.browser import Outbound, shot
from tests.support.campaign_support import add_members
from tests.support.console_site import Site, console_site, sign_in
from tests.support.fakes import WeChat


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    async def seed(wechat: WeChat) -> None:
        db = wechat.services.db
        loyal, new, _none = await add_members(db, clock.now() - timedelta(days=400), 3, start=900)
        async with db.unit_of_work() as session:
            for n in range(9):
                session.add(PurchaseOrder(order_id=f"B-L{n}", member_id=loyal.id or 0, amount_fen=30_000, points=300,
                                          created_at=clock.now() - timedelta(days=10 * n + 1)))
            session.add(PurchaseOrder(order_id="B-N", member_id=new.id or 0, amount_fen=30_000, points=300,
                                      created_at=clock.now() - timedelta(days=2)))
        await rfm(JobContext(db, wechat.services.ledger), clock.now())

    with console_site(sqlite_template, tmp_path, clock, seed=seed) as found:
        yield found


def test_an_experiment_from_the_form_and_the_segments(page: Any, site: Site, outbound: Outbound) -> None:
    sign_in(page, site, "operator", "/admin/experiments")
    page.wait_for_selector("#new-experiment")
    page.fill("input[name=name]", "生日文案")
    page.fill("input[name=arm_text_1]", "{brand}祝您生日快乐")
    page.fill("input[name=arm_hour_1]", "10")
    page.click("#new-experiment button[type=submit]")
    page.wait_for_selector("table#experiments")
    assert "control 50%，B 50%" in page.locator("table#experiments tbody tr").first.inner_text()
    page.click("table#experiments a")
    page.wait_for_selector("table#arms")
    assert page.locator("table#arms tbody tr").count() == 3  # control, B, the holdout
    shot(page, "console-experiment")

    page.goto(f"{site.url}/admin/segments")
    page.wait_for_selector("table#classes")
    sizes = {row.locator("td").first.inner_text(): row.locator('td[data-fig="members"]').inner_text()
             for row in page.locator("table#classes tbody tr").all()}
    assert sizes == {"高价值": "1", "中价值": "0", "潜力价值": "1", "流失风险": "0", "未消费": "1"}
    shot(page, "console-segments")
    assert outbound.seen == []
