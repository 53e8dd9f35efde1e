"""The 渠道码与分享 page's <title> held a copy of its funnel tables (a template merged twice): the browser tab
showed markup. Every screen of the menu now has a plain title: the screen, then the console's name."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from bot.console import texts
from bot.console.pages import menu_for
from storage.clock import FrozenClock
from tests.support.console_support import ConsoleWorld, console_world


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


@pytest.mark.parametrize("role", ["admin", "clerk"])
async def test_every_screen_has_a_plain_title(world: ConsoleWorld, role: str) -> None:
    who = await world.as_role(role)
    screens = menu_for(role)
    assert {path for _, path, _ in screens} >= {"/admin", "/admin/verify"}  # the walk covers the menu
    for key, path, _ in screens:
        page = await who.get(path)
        assert page.status_code == 200, path
        title = re.search(r"<title>(.*?)</title>", page.text, flags=re.S)
        assert title is not None, path
        assert "<" not in title.group(1), path
        assert title.group(1).strip().endswith(texts.TITLE), (key, title.group(1))
