"""In Chromium: a member talks to the bot in /simulator (typing and the menu), redeems and sees the code, and
receives a birthday push sent by time travel; /docs renders offline; production has no simulator."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.demo import DEMO_MANAGER
from storage import staff
from storage.clock import FrozenClock
from storage.db import Database
from storage.models import Member, Redemption, Reward
from tests.support.browser import Outbound, shot
from tests.support.console_site import Site
from tests.support.fakes import WeChat
from tests.support.member_support import sign_up
from tests.support.simulator_site import simulator_site

ANN = "oSIMann0000000000000000001"
BEN = "oSIMben0000000000000000001"


async def members_and_a_coupon(wechat: WeChat) -> None:
    async with wechat.services.db.unit_of_work() as session:
        session.add(Reward(name="5元券", description="全场通用", cost=50, kind="coupon", stock=5,
                           created_at=wechat.services.clock.now()))
    await sign_up(wechat, ANN, birthday="1990-11-23")
    await sign_up(wechat, BEN, phone="13900139000", birthday="1991-03-03")


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    with simulator_site(sqlite_template, tmp_path, clock) as found:
        yield found


@pytest.fixture
def seeded(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    with simulator_site(sqlite_template, tmp_path, clock, seed=members_and_a_coupon) as found:
        yield found


def type_line(page: Any, text: str, expect: str) -> None:
    """Type a line as the member and wait for the account's bubble that contains `expect`."""
    before = page.locator(".msg.bot").count()
    page.fill("#input", text)
    page.press("#input", "Enter")
    page.locator(".msg.bot").nth(before).wait_for()
    page.locator(".msg.bot", has_text=expect).last.wait_for()


def member(site: Site, openid: str) -> Member | None:
    async def read(db: Database) -> Member | None:
        async with db.sessions() as session:
            found: Member | None = await session.scalar(select(Member).where(Member.openid == openid))
            return found

    return site.read(read)  # type: ignore[return-value]


def test_sign_up_and_check_in_by_typing(page: Any, site: Site, outbound: Outbound) -> None:
    page.goto(f"{site.url}/simulator?openid={ANN}")
    page.wait_for_selector("#menu .top")
    assert page.locator("#mode").inner_text() == "安全模式（加密）"
    type_line(page, "注册", "手机号")
    type_line(page, "13800138000", "生日")
    type_line(page, "1990-11-23", "同意")
    type_line(page, "同意", "注册成功")
    assert page.locator(".msg.me").last.inner_text() == "同意"
    shot(page, "simulator-signup")
    type_line(page, "签到", "签到成功")
    shot(page, "simulator-checkin")
    joined = member(site, ANN)
    assert joined is not None
    assert joined.joined_at is not None
    assert f"当前积分 {joined.balance}" in page.locator(".msg.bot").last.inner_text()
    assert outbound.seen == []  # every asset came from this machine


def test_the_menus_check_in_button(page: Any, seeded: Site) -> None:
    page.goto(f"{seeded.url}/simulator?openid={ANN}")
    page.click("#menu .top >> text=会员")
    page.click("#menu button[data-key=CHECKIN]")
    page.locator(".msg.bot", has_text="签到成功").wait_for()
    assert page.locator(".msg.me").last.inner_text() == "［签到］"
    found = member(seeded, ANN)
    assert found is not None
    assert found.checkin_streak == 1
    assert f"当前积分 {found.balance}" in page.locator(".msg.bot").last.inner_text()


def test_redeem_and_see_the_code(page: Any, seeded: Site) -> None:
    page.goto(f"{seeded.url}/simulator?openid={ANN}")
    page.wait_for_selector("#menu .top")
    type_line(page, "兑换", "5元券")
    type_line(page, "1", "兑换后剩余")
    type_line(page, "是", "兑换成功")
    shot(page, "simulator-redeem")

    async def code(db: Database) -> str | None:
        async with db.sessions() as session:
            return await session.scalar(select(Redemption.code))

    stored = seeded.read(code)
    assert isinstance(stored, str)
    assert stored in page.locator(".msg.bot").last.inner_text()


def test_a_birthday_push_sent_by_time_travel_appears_for_its_member_only(page: Any, seeded: Site) -> None:
    page.goto(f"{seeded.url}/simulator?openid={ANN}")
    page.wait_for_selector("#menu .top")
    other = page.context.new_page()  # a second tab: a second member
    other.goto(f"{seeded.url}/simulator?openid={BEN}")
    other.wait_for_selector("#menu .top")
    page.select_option("#travel-job", "birthday")
    page.fill("#travel-at", "2026-11-23T09:00")
    page.click("#travel-run")
    page.locator("#travel-result", has_text="处理 1 条，发出推送 1 条").wait_for()
    push = page.locator(".msg.push[data-channel=cs]")
    push.wait_for()
    assert "客服消息" in push.inner_text()
    assert "生日" in push.inner_text()
    shot(page, "simulator-push")
    other.wait_for_timeout(2000)  # past a poll or two
    assert other.locator(".msg.push").count() == 0
    assert other.input_value("#openid") == BEN


def test_docs_render_offline(page: Any, site: Site, outbound: Outbound) -> None:
    page.goto(f"{site.url}/docs")
    page.locator(".opblock-summary-path", has_text="/api/admin").first.wait_for()
    assert page.locator(".opblock").count() > 5
    shot(page, "docs-offline")
    page.goto(f"{site.url}/redoc")
    page.locator("h2", has_text="Healthz").first.wait_for()
    assert outbound.seen == []


def test_production_has_no_simulator(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> None:
    with simulator_site(sqlite_template, tmp_path, clock, wechat_appsecret="a-real-secret") as live:
        for path in ("/simulator", "/simulator/static/simulator.js", "/simulator/api/people"):
            assert httpx.get(f"{live.url}{path}").status_code == 404
        assert httpx.get(f"{live.url}/docs").status_code == 200


async def a_manager_and_members(wechat: WeChat) -> None:
    async with wechat.services.db.unit_of_work() as session:
        await staff.add(session, DEMO_MANAGER, "manager", "test", wechat.services.clock.now())
    await members_and_a_coupon(wechat)


def test_a_manager_starts_a_group_buy_and_two_members_join_it_in_their_tabs(
    page: Any, sqlite_template: Path, tmp_path: Path, clock: FrozenClock, outbound: Outbound,
) -> None:
    with simulator_site(sqlite_template, tmp_path, clock, seed=a_manager_and_members) as site:
        page.goto(f"{site.url}/simulator?openid={DEMO_MANAGER}")
        page.click("#menu .top >> text=员工")
        page.click("#menu button[data-key=STAFF_NEW_CAMPAIGN]")
        page.locator(".msg.bot", has_text="请选择类型").wait_for()
        for line, expect in (("2", "活动标题"), ("周末拼团送积分", "多少积分"), ("50", "成团"), ("2", "最多允许"),
                             ("10", "什么时候结束"), ("3天", "群机器人"), ("跳过", "请确认活动")):
            type_line(page, line, expect)
        type_line(page, "是", "活动已创建")
        created = page.locator(".msg.bot").last
        assert created.locator("img.qr").count() == 1  # the demo QR link shown as a QR code
        found = re.search(r"活动码：(\w+)", created.inner_text())
        assert found is not None
        code = found.group(1)
        for openid, expect in ((ANN, "还差 1 人"), (BEN, "拼团成功")):
            tab = page.context.new_page()
            tab.goto(f"{site.url}/simulator?openid={openid}")
            tab.wait_for_selector("#menu .top")
            type_line(tab, f"参加 {code}", expect)
        shot(tab, "simulator-group-buy")
    assert outbound.seen == []
