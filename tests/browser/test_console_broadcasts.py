"""In Chromium: an operator builds a broadcast on the 群发 screen (a tier, a text), reads the preview's
numbers and the sample, confirms it, and once the scheduler has expanded it sees its rows on the broadcast's
page and on the pushes screen. Screenshots console-broadcast-preview and console-broadcast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from storage import broadcasts
from storage.clock import FrozenClock
from storage.db import Database
from storage.models import Member
from storage.rules import Rules
from tests.support.browser import Outbound, shot
from tests.support.campaign_support import add_members
from tests.support.console_site import Site, console_site, sign_in
from tests.support.fakes import WeChat

TEXT = "金卡会员专享：本周末到店消费积分加倍，回复【积分】查看余额。"


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    async def seed(wechat: WeChat) -> None:
        db = wechat.services.db
        people = await add_members(db, clock.now(), 5, start=950)
        async with db.unit_of_work() as session:
            for member in people[:2]:
                row = await session.get(Member, member.id)
                assert row is not None
                row.tier = "金卡"

    with console_site(sqlite_template, tmp_path, clock, seed=seed) as found:
        yield found


def test_build_preview_send_and_see_the_rows(page: Any, site: Site, clock: FrozenClock, outbound: Outbound) -> None:
    sign_in(page, site, "operator", "/admin/broadcasts")
    page.wait_for_selector("#new-broadcast")
    page.fill("input[name=name]", "周末积分加倍")
    page.check("input[name=tiers][value=金卡]")
    page.fill("textarea[name=text]", TEXT)
    page.click("#broadcast-preview-button")
    page.wait_for_selector("#broadcast-preview")
    assert page.inner_text('[data-preview="audience"]') == "2"
    assert page.inner_text('[data-preview="reachable"]') == "2"
    assert page.inner_text('[data-preview="capped"]') == "0"
    assert page.inner_text("#broadcast-sample") == TEXT
    shot(page, "console-broadcast-preview")

    page.click("#broadcast-send")
    page.wait_for_selector("table#broadcast")
    assert page.locator('td[data-status="scheduled"]').count() == 1
    broadcast_id = int(page.url.rsplit("/", 1)[1].split("?")[0])

    async def expand(db: Database) -> object:  # the scheduler's minute job, as it runs it
        return await broadcasts.expand(db, broadcast_id, clock.now(), rules=Rules(), tz=ZoneInfo("Asia/Shanghai"))

    assert site.read(expand) == 2
    page.reload()
    page.wait_for_selector("#broadcast-rows")
    assert page.inner_text('[data-rows="pending"]') == "2"
    shot(page, "console-broadcast")

    page.click("#broadcast-pushes")
    page.wait_for_selector("table#pushes")
    assert page.locator("table#pushes tbody tr").count() == 2
    assert all("holiday" not in row.inner_text() for row in page.locator("table#pushes tbody tr").all())
    assert outbound.seen == []  # nothing is sent by the console itself
