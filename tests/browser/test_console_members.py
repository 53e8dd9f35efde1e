"""In Chromium: an operator finds a member by phone, opens the member page, adjusts the points with a reason
and sees the new ledger line and balance; a clerk is refused the member page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage.clock import FrozenClock
from storage.db import Database
from storage.models import LedgerEntry, Member
from tests.support.browser import Outbound, shot
from tests.support.console_site import Site, console_site, sign_in
from tests.support.fakes import WeChat
from tests.support.member_support import PHONE, sign_up

CAROL = "oCAROLbrowserMemberCCCCCCCCCC"


async def seed(wechat: WeChat) -> None:
    await sign_up(wechat, CAROL, PHONE)


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    with console_site(sqlite_template, tmp_path, clock, seed=seed) as found:
        yield found


def carol(site: Site) -> tuple[int, int, list[tuple[str, int, str | None]]]:
    """Carol's id, balance and adjustments (reason, points, by whom), read from the site's database."""

    async def work(db: Database) -> tuple[int, int, list[tuple[str, int, str | None]]]:
        async with db.sessions() as session:
            member = await session.scalar(select(Member).where(Member.openid == CAROL))
            assert member is not None
            assert member.id is not None
            entries = (await session.scalars(select(LedgerEntry).where(LedgerEntry.member_id == member.id)
                                             .where(LedgerEntry.kind == "adjust"))).all()
            return member.id, member.balance, [(e.reason, e.delta, e.actor) for e in entries]

    found = site.read(work)
    assert isinstance(found, tuple)
    return found


def test_an_operator_finds_a_member_by_phone_and_adjusts_the_points(
    page: Any, site: Site, outbound: Outbound,
) -> None:
    member_id, start, _ = carol(site)
    sign_in(page, site, "operator")
    page.wait_for_selector("text=欢迎，operator（运营）")
    page.click("nav.side a[data-nav=members]")
    page.fill("#member-q", "138 0013 8000")
    shot(page, "console-member-search")
    page.click("#member-search button[type=submit]")
    page.wait_for_selector("#profile")
    assert page.url.endswith(f"/admin/members/{member_id}")
    assert page.inner_text("#phone").startswith("138****8000")
    assert PHONE not in page.content()
    assert page.inner_text("#balance") == str(start)
    shot(page, "console-member")

    page.fill("#adjust-points", "88")
    page.fill("#adjust-reason", "门店活动补偿")
    page.click("#adjust-submit")
    page.wait_for_selector("text=积分已调整，会员将收到通知。")
    assert page.inner_text("#balance") == str(start + 88)
    newest = page.locator("#ledger tr[data-entry]").first.inner_text()
    assert "+88" in newest
    assert "门店活动补偿" in newest
    assert "operator" in newest
    shot(page, "console-member-adjusted")
    assert carol(site)[1:] == (start + 88, [("门店活动补偿", 88, "operator")])
    assert outbound.seen == []


def test_a_clerk_is_refused_the_member_page(page: Any, site: Site) -> None:
    member_id, start, _ = carol(site)
    sign_in(page, site, "clerk", f"/admin/members/{member_id}")
    page.wait_for_selector("text=需要以下角色之一：管理员、运营、分析师")
    assert "店员" in page.inner_text("main")
    assert page.locator("#profile").count() == 0
    assert carol(site)[1:] == (start, [])


def test_on_a_phone_the_console_fits_the_screen(chromium: Any, site: Site) -> None:
    """Readable on a phone: the menu wraps above the page and nothing is wider than the screen (a wide
    table scrolls inside its own frame), on the dashboard and on a member's page."""
    context = chromium.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
    try:
        phone = context.new_page()
        sign_in(phone, site, "operator")
        phone.wait_for_selector("nav.side")
        phone.goto(f"{site.url}/admin/members?q={CAROL}")
        phone.wait_for_selector("text=基本资料")
        for path in ("/admin", phone.url.removeprefix(site.url)):
            phone.goto(f"{site.url}{path}")
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width}px wide on a 390px screen"
            side = phone.locator("nav.side").bounding_box()
            main = phone.locator("main").bounding_box()
            assert side is not None
            assert main is not None
            assert side["y"] + side["height"] <= main["y"] + 1  # the menu sits above the page, not beside it
        shot(phone, "console-member-phone")
    finally:
        context.close()
