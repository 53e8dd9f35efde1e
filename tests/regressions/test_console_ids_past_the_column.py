"""/admin/pushes/99999999999 and /admin/audit?before_id=99999999999 were a 500 on PostgreSQL (an integer
past the column's range reached the query): every console id is bounded like the API's, and a value that
names no record gets the console's "not found" page."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.console import texts
from storage.clock import FrozenClock
from tests.support.console_support import ConsoleWorld, console_world

TOO_BIG = "99999999999"


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


@pytest.mark.parametrize("path", [
    f"/admin/pushes/{TOO_BIG}", f"/admin/pushes?before_id={TOO_BIG}", f"/admin/audit?before_id={TOO_BIG}",
    "/admin/pushes/abc", f"/admin/members/{TOO_BIG}", f"/admin/anomalies?before={TOO_BIG}",
])
async def test_an_id_past_the_column_is_not_found_not_a_500(world: ConsoleWorld, path: str) -> None:
    admin = await world.as_role("admin")
    page = await admin.get(path)
    assert page.status_code == 422
    assert texts.NOT_FOUND in page.text
    assert "<!doctype html>" in page.text.lower()
