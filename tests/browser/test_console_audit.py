"""In Chromium: an admin opens the audit log, filters it by actor and sees the entry (its change shown,
escaped); the pushes and exports screens render. Screenshots: console-audit, console-pushes,
console-exports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage import audit, outbox
from storage.clock import FrozenClock
from tests.support.browser import Outbound, shot
from tests.support.console_site import Site, console_site, sign_in
from tests.support.fakes import WeChat
from tests.support.ledgerviews_support import EVIL
from tests.support.member_support import sign_up


async def seed(wechat: WeChat) -> None:
    await sign_up(wechat, "oBROWSERmember", "13900001111")
    now = wechat.services.clock.now()
    async with wechat.services.db.unit_of_work() as session:
        await audit.record(session, audit.Actor("alice", "operator"), "points.adjust", "member:1", now=now,
                           before={"balance": 200}, after={"balance": 250, "reason": EVIL}, client="10.0.0.9")
        await audit.record(session, audit.Actor("bob", "operator"), "tier.hold", "member:1", now=now,
                           after={"until": "2026-12-31"})
        for n, kind in enumerate(("birthday", "winback", "campaign_reward")):
            await outbox.enqueue(session, dedupe_key=f"browser:{n}", openid="oBROWSERmember", kind=kind,
                                 payload={"params": {"points": 10 * (n + 1)}}, now=now, member_id=1)


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    with console_site(sqlite_template, tmp_path, clock, seed=seed) as found:
        yield found


def test_an_admin_filters_the_audit_log_by_actor(page: Any, site: Site, outbound: Outbound) -> None:
    sign_in(page, site, "admin")
    page.wait_for_selector("text=欢迎，admin（管理员）")
    page.click("nav.side a[data-nav=audit]")
    page.wait_for_selector("table#audit")
    assert page.locator("table#audit > tbody > tr").count() >= 3  # alice, bob, the admin's sign-in
    page.fill("#audit-filters input[name=actor]", "alice")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_url("**/admin/audit?actor=alice**")
    rows = page.locator("table#audit > tbody > tr")
    assert rows.count() == 1
    row = rows.first.inner_text()
    assert "alice" in row
    assert "points.adjust" in row
    assert EVIL in row  # shown as text: escaped, never run
    assert page.locator("table#audit script").count() == 0
    assert page.locator("td.was").first.inner_text() == "200"
    assert page.locator("td.now").first.inner_text() == "250"
    shot(page, "console-audit")
    page.click("nav.side a[data-nav=pushes]")
    page.wait_for_selector("table#pushes")
    assert page.locator("table#pushes tbody tr").count() == 3
    shot(page, "console-pushes")
    page.click("nav.side a[data-nav=exports]")
    page.wait_for_selector("#export-form")
    shot(page, "console-exports")
    assert outbound.seen == []
