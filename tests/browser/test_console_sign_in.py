"""In Chromium: an operator signs in, sees the console's home and menu for their role, and signs out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.clock import FrozenClock
from tests.support.browser import Outbound, shot
from tests.support.console_site import Site, console_site, sign_in


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    with console_site(sqlite_template, tmp_path, clock) as found:
        yield found


def test_sign_in_and_sign_out(page: Any, site: Site, outbound: Outbound) -> None:
    page.goto(f"{site.url}/admin")
    assert page.url.endswith("/admin/login?next=/admin")
    shot(page, "console-sign-in")
    sign_in(page, site, "admin")
    page.wait_for_selector("text=欢迎，admin（管理员）")
    menu = page.locator("nav.side a").all_inner_texts()
    assert menu[0] == "首页"
    assert "审计日志" in menu
    shot(page, "console-home")
    page.click("#sign-out")
    page.wait_for_selector("text=您已退出登录。")
    page.goto(f"{site.url}/admin")
    assert "/admin/login" in page.url
    assert outbound.seen == []  # every asset came from this machine


def test_a_wrong_password_shows_the_form_again(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/admin/login")
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    page.wait_for_selector("text=用户名或密码不正确。")
    assert page.input_value("input[name=name]") == "admin"


def test_an_analyst_sees_no_write_screens(page: Any, site: Site) -> None:
    sign_in(page, site, "analyst")
    page.wait_for_selector("text=欢迎，analyst（分析师）")
    menu = page.locator("nav.side a").all_inner_texts()
    assert "员工" not in menu
    assert "核销" not in menu
    assert "导出" in menu
