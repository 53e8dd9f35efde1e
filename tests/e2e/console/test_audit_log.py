"""The audit log screen: entries newest first, filtered by actor, action, target and local dates, paged
by keyset, before/after as an escaped key/value diff; read only, for admins and analysts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from bot.console import auditlog, texts
from storage import audit
from storage.clock import FrozenClock
from tests.support.console_support import ConsoleWorld, console_world
from tests.support.factories import local
from tests.support.ledgerviews_support import EVIL


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def write(world: ConsoleWorld, at: datetime, actor: str, action: str, target: str, **change: object) -> None:
    async with world.db.unit_of_work() as session:
        await audit.record(session, audit.Actor(actor, "operator"), action, target, now=at, client="10.0.0.9",
                           **change)  # type: ignore[arg-type]


def ids_on(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-audit="(\d+)"', html)]


async def test_filters_by_actor_action_target_and_local_dates(world: ConsoleWorld) -> None:
    await write(world, local(2026, 11, 20, 9), "alice", "points.adjust", "member:1",
                before={"balance": 10}, after={"balance": 30, "reason": EVIL})
    await write(world, local(2026, 11, 22, 1), "bob", "tier.hold", "member:2", after={"until": "2026-12-31"})
    await write(world, local(2026, 11, 22, 23, 59), "alice", "anomaly.resolve", "anomaly:7", after={"note": EVIL})
    analyst = await world.as_role("analyst")
    everything = await analyst.get("/admin/audit")
    assert everything.status_code == 200
    assert len(ids_on(everything.text)) == 4  # and the analyst's own sign-in
    assert ids_on(everything.text) == sorted(ids_on(everything.text), reverse=True)
    alice = await analyst.get("/admin/audit", params={"actor": "alice"})
    assert len(ids_on(alice.text)) == 2
    assert "bob" not in re.sub(r"<header.*?</header>", "", alice.text, flags=re.S)
    by_target = await analyst.get("/admin/audit", params={"target": "member:2"})
    assert len(ids_on(by_target.text)) == 1
    assert '<td>设置等级与保级 <code class="muted">tier.hold</code></td>' in by_target.text  # read, and filterable
    by_action = await analyst.get("/admin/audit", params={"action": "points.adjust"})
    assert len(ids_on(by_action.text)) == 1
    # 01:00 on the 22nd in Shanghai is the 21st in UTC: the range is the operator's local days.
    day = await analyst.get("/admin/audit", params={"since": "2026-11-22", "until": "2026-11-22"})
    assert len(ids_on(day.text)) == 3  # with the sign-in, at 10:00
    assert "2026-11-22 01:00:00" in day.text
    assert "2026-11-22 23:59:00" in day.text
    assert len(ids_on((await analyst.get("/admin/audit", params={"until": "2026-11-21"})).text)) == 1


async def test_the_change_is_a_readable_escaped_diff(world: ConsoleWorld) -> None:
    await write(world, local(2026, 11, 22, 9), "alice", "points.adjust", "member:1",
                before={"balance": 10, "tier": "普通"}, after={"balance": 30, "tier": "普通", "reason": EVIL})
    page = await (await world.as_role("admin")).get("/admin/audit")
    assert re.search(r'<th>balance</th>\s*<td class="was">10</td><td class="now">30</td>', page.text)
    assert re.search(r'<th>tier</th>\s*<td colspan="2">普通</td>', page.text)
    assert '<td class="now">&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</td>' in page.text
    assert EVIL not in page.text
    assert "10.0.0.9" in page.text
    # Nothing on the page writes: the only form that posts is the sign-out.
    assert re.findall(r'<form[^>]*method="post"[^>]*>', page.text) == [
        '<form method="post" action="/admin/logout" class="inline">']


async def test_pages_go_back_by_keyset(world: ConsoleWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auditlog, "PAGE", 2)
    for n in range(5):
        await write(world, local(2026, 11, 22, 9) + timedelta(minutes=n), "carol", "x.y", f"t:{n}")
    me = await world.as_role("admin")
    seen: list[int] = []
    path: str | None = "/admin/audit?actor=carol"
    while path:
        page = await me.get(path)
        assert len(ids_on(page.text)) <= 2
        seen += ids_on(page.text)
        older = re.search(r'href="([^"]+)" id="older"', page.text)
        path = older.group(1).replace("&amp;", "&") if older else None
    assert len(seen) == 5
    assert seen == sorted(seen, reverse=True)


async def test_a_bad_date_shows_the_form_again(world: ConsoleWorld) -> None:
    page = await (await world.as_role("admin")).get("/admin/audit", params={"since": "2026-13-45", "actor": EVIL})
    assert page.status_code == 422
    assert texts.BAD_DATE in page.text
    assert 'id="since-error"' in page.text
    assert 'value="&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"' in page.text


@pytest.mark.parametrize("role", ["operator", "clerk"])
async def test_roles_without_the_right_are_refused(world: ConsoleWorld, role: str) -> None:
    refused = await (await world.as_role(role)).get("/admin/audit")
    assert refused.status_code == 403
    assert "管理员、分析师" in refused.text
