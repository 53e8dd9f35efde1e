"""In Chromium: an operator creates a code-pool reward, imports a CSV with one bad row and reads the
report; the campaigns list shows a seeded campaign's figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage.clock import FrozenClock
from storage.db import Database
from storage.models import Member, RewardCode
from tests.support.browser import Outbound, shot
from tests.support.campaign_support import add_members, new_campaign
from tests.support.console_site import Site, console_site, sign_in
from tests.support.fakes import WeChat


async def seed(wechat: WeChat) -> None:
    services = wechat.services
    now = services.clock.now()
    campaign = await new_campaign(services.db, services.campaigns, now, kind="group_buy", points=20, goal=3,
                                  cap=20, ends_at=now + timedelta(days=3), title="周末拼团")
    for member in await add_members(services.db, now, 2):
        async with services.db.unit_of_work() as session:
            fresh = await session.get(Member, member.id)
            assert fresh is not None
            await services.campaigns.join(session, campaign.code, fresh, now)


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    with console_site(sqlite_template, tmp_path, clock, seed=seed) as found:
        yield found


def test_create_a_reward_and_import_codes_with_a_bad_row(page: Any, site: Site, outbound: Outbound) -> None:
    sign_in(page, site, "operator")
    page.wait_for_selector("nav.side")
    page.click("nav.side a[data-nav=rewards]")
    page.click("#new-reward")
    page.fill("#f-name", "电影兑换券")
    page.fill("#f-cost", "0")
    page.select_option("#f-kind", "code_pool")
    page.click("#save-reward")
    page.wait_for_selector("[data-error=cost]")
    assert "必须大于 0" in page.inner_text("[data-error=cost]")
    page.fill("#f-cost", "300")
    page.click("#save-reward")
    page.wait_for_selector("text=奖品已创建。")
    assert "电影兑换券" in page.inner_text("#rewards")
    shot(page, "console-rewards")

    page.click("#rewards a:has-text('导入券码')")
    page.set_input_files("#codes-file", files=[{
        "name": "codes.csv", "mimeType": "text/csv",
        "buffer": ("code\nFILM-0001\nFILM-0002\n" + "X" * 70 + "\nFILM-0003\n").encode(),
    }])
    page.click("#upload-codes")
    page.wait_for_selector("#refused")
    assert "读取 4 行，导入 3 个券码，拒绝 1 行。" in page.inner_text("#codes-result")
    assert page.locator("#refused tbody tr").all_inner_texts() == ["4\t" + "X" * 70 + "\t超过 64 个字符"]
    shot(page, "console-codes-report")

    async def codes(db: Database) -> list[str]:
        async with db.sessions() as session:
            return list((await session.scalars(select(RewardCode.code).order_by(RewardCode.id))).all())

    assert site.read(codes) == ["FILM-0001", "FILM-0002", "FILM-0003"]
    assert outbound.seen == []


def test_the_campaigns_list(page: Any, site: Site) -> None:
    sign_in(page, site, "analyst")
    page.wait_for_selector("nav.side")
    page.click("nav.side a[data-nav=campaigns]")
    page.wait_for_selector("#campaigns")
    row = page.inner_text("#campaigns tbody tr")
    assert "周末拼团" in row
    assert "2 / 20" in row
    shot(page, "console-campaigns")
    page.click("#campaigns a:has-text('周末拼团')")
    page.wait_for_selector("#joins")
    assert page.locator("#end-campaign").count() == 0  # an analyst reads only
