"""Browser fixtures: one headless Chromium per session, a fresh context (cookies, storage) per test, and a
record of any request that tried to leave the machine. Without Chromium or Playwright the tests skip,
except in CI (WXBOT_REQUIRE_SERVICES=1), where they must run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import browser as support

REASON = support.missing()
if REASON and os.environ.get("WXBOT_REQUIRE_SERVICES") == "1":
    raise RuntimeError(f"browser tests are required here but cannot run: {REASON}")


def _in_browser(item: pytest.Item) -> bool:
    return "tests/browser/" in str(item.fspath).replace(os.sep, "/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Last: the sync Playwright session keeps its event loop current in the main thread until the session
    # ends, and every pytest-asyncio test after it failed with "cannot be called from a running event loop".
    items.sort(key=_in_browser)
    if REASON:
        for item in items:
            if _in_browser(item):
                item.add_marker(pytest.mark.skip(reason=REASON))


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # launch() gives the browser a fresh, temporary user-data directory of its own.
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=support.CHROMIUM, headless=True, args=support.CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def outbound() -> support.Outbound:
    return support.Outbound()


@pytest.fixture
def page(chromium: Any, outbound: support.Outbound) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.on("request", outbound)
    yield tab
    context.close()
