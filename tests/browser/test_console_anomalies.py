"""In Chromium: an operator opens the anomaly queue, filters it, opens an anomaly, resolves it with a note,
and sees it resolved (the note shown escaped, the row stored as resolved by that operator)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage import anomalies
from storage.clock import FrozenClock
from storage.db import Database
from storage.models import Anomaly, Member
from tests.support.browser import Outbound, shot
from tests.support.console_site import Site, console_site, sign_in
from tests.support.fakes import WeChat
from tests.support.member_support import sign_up

OPENID = "oBROWSERanomalyMemberAAAAAAA"


async def seed(wechat: WeChat) -> None:
    await sign_up(wechat, OPENID, "13800138009")
    db, now = wechat.services.db, wechat.services.clock.now()
    async with db.sessions() as session:
        member_id = await session.scalar(select(Member.id).where(Member.openid == OPENID))
    async with db.unit_of_work() as session:
        await anomalies.record(session, kind="redeem_spree", member_id=member_id, now=now,
                               detail="11 redemptions on 2026-11-22", dedupe_key="spree:browser")
        await anomalies.record(session, kind="daily_cap", member_id=member_id, now=now,
                               detail="non-purchase earning over 500 on 2026-11-22", dedupe_key="cap:browser")


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    with console_site(sqlite_template, tmp_path, clock, seed=seed) as found:
        yield found


def test_an_operator_resolves_an_anomaly_with_a_note(page: Any, site: Site, outbound: Outbound) -> None:
    sign_in(page, site, "operator", "/admin/anomalies")
    page.wait_for_selector("table#anomalies")
    assert page.locator("table#anomalies tbody tr").count() == 2
    assert "单日兑换次数过多" in page.inner_text("table#anomalies")
    shot(page, "console-anomalies")

    page.select_option("select[name=kind]", "redeem_spree")
    page.click("#anomaly-filters button[type=submit]")
    page.wait_for_url("**/admin/anomalies?kind=redeem_spree*")
    rows = page.locator("table#anomalies tbody tr")
    assert rows.count() == 1
    rows.first.locator("a").first.click()
    page.wait_for_selector("#resolve-form")
    assert page.inner_text("#anomaly-state") == "待处理"
    page.fill("#resolve-form textarea[name=note]", '已核实：门店活动，<b>正常</b>')
    page.click("#resolve-form button[type=submit]")
    page.wait_for_selector("text=已解决该异常。")
    assert page.inner_text("#anomaly-state") == "已解决"
    assert page.inner_text("#anomaly-note") == "已核实：门店活动，<b>正常</b>"  # shown as typed, not as markup
    assert page.inner_text("#anomaly-handled-by") == "operator"
    assert page.locator("#resolve-form").count() == 0
    shot(page, "console-anomaly-resolved")

    async def stored(db: Database) -> list[tuple[str, str, str | None, str | None]]:
        async with db.sessions() as session:
            found = (await session.scalars(select(Anomaly).order_by(Anomaly.id))).all()
        return [(a.kind, a.state, a.handled_by, a.note) for a in found]

    assert site.read(stored) == [
        ("redeem_spree", "resolved", "operator", "已核实：门店活动，<b>正常</b>"),
        ("daily_cap", "open", None, None),
    ]
    assert outbound.seen == []
