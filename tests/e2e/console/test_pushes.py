"""The pushes screen: outbox rows by state and kind with the counts per state, newest first in keyset
pages, each row's attempts; push texts shown escaped with phones masked; refused to clerks."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from bot.console import pushes, texts
from storage import outbox
from storage.clock import FrozenClock
from tests.support.console_support import ConsoleWorld, console_world
from tests.support.ledgerviews_support import EVIL, FULL_PHONE, member, push


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def fail_one(world: ConsoleWorld, clock: FrozenClock) -> None:
    """The sender claims the due row, WeChat refuses it, the row ends failed (the sender's own steps)."""
    now = clock.now()
    [row] = await outbox.claim(world.db, now, by="test")
    async with world.db.unit_of_work() as session:
        await outbox.attempt(session, row, outbox.SendResult("template", 43004, EVIL), now)
        await outbox.finish(session, row, outbox.FAILED, now, reason=f"refused {EVIL}", channel="template")


async def test_rows_by_state_with_counts_attempts_and_the_member_link(world: ConsoleWorld, clock: FrozenClock) -> None:
    member_id = await member(world, "oPUSHmember", "13900001111")
    failed = await push(world, "p:failed", clock.now(), member_id=member_id, text=f"你好 {EVIL}")
    await fail_one(world, clock)
    pending = await push(world, "p:pending", clock.now(), kind="birthday")
    analyst = await world.as_role("analyst")
    page = await analyst.get("/admin/pushes")
    assert page.status_code == 200
    counts = dict(re.findall(r'data-state="(\w+)">[^<]*<span[^>]*>[^<]*</span>\s*<b class="num">(\d+)</b>', page.text))
    assert (counts["failed"], counts["pending"]) == ("1", "1")
    ids = [int(i) for i in re.findall(r'data-push="(\d+)"', page.text)]
    assert ids == sorted(ids, reverse=True)
    assert {failed, pending} <= set(ids)
    assert f'href="/admin/members/{member_id}"' in page.text
    assert "refused &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert EVIL not in page.text
    only_failed = await analyst.get("/admin/pushes", params={"status": "failed"})
    assert re.findall(r'data-push="(\d+)"', only_failed.text) == [str(failed)]
    births = await analyst.get("/admin/pushes", params={"kind": "birthday"})
    assert re.findall(r'data-push="(\d+)"', births.text) == [str(pending)]
    one = await analyst.get(f"/admin/pushes/{failed}")
    assert one.status_code == 200
    assert "43004" in one.text
    assert "&lt;script&gt;" in one.text
    assert EVIL not in one.text
    assert "你好 &lt;script&gt;" in one.text
    assert not FULL_PHONE.search(one.text + page.text)


@pytest.mark.phone_in_logs_on_purpose  # the payload holds a phone, and SQLAlchemy logs payloads
async def test_a_phone_in_a_push_text_is_masked(world: ConsoleWorld, clock: FrozenClock) -> None:
    row = await push(world, "p:phone", clock.now(), text="请致电 13900001111 领取")
    page = await (await world.as_role("admin")).get(f"/admin/pushes/{row}")
    assert "请致电 139****1111 领取" in page.text
    assert not FULL_PHONE.search(page.text)


async def test_pages_go_back_by_keyset(
    world: ConsoleWorld, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pushes, "PAGE", 2)
    made = [await push(world, f"p:{n}", clock.now(), kind="winback") for n in range(5)]
    me = await world.as_role("operator")
    seen: list[int] = []
    path: str | None = "/admin/pushes?kind=winback"
    while path:
        page = await me.get(path)
        ids = [int(i) for i in re.findall(r'data-push="(\d+)"', page.text)]
        assert len(ids) <= 2
        seen += ids
        older = re.search(r'href="([^"]+)" id="older"', page.text)
        path = older.group(1).replace("&amp;", "&") if older else None
    assert seen == sorted(made, reverse=True)


async def test_refusals_and_bad_input(world: ConsoleWorld, clock: FrozenClock) -> None:
    row = await push(world, "p:x", clock.now())
    clerk = await world.as_role("clerk")
    for path in ("/admin/pushes", f"/admin/pushes/{row}"):
        refused = await clerk.get(path)
        assert refused.status_code == 403
        assert "管理员、运营、分析师" in refused.text
    admin = await world.as_role("admin")
    missing = await admin.get("/admin/pushes/999999")
    assert missing.status_code == 404
    assert texts.NOT_FOUND in missing.text
    assert (await admin.get("/admin/pushes", params={"status": "bogus"})).status_code == 400
    assert (await admin.get("/admin/pushes", params={"before_id": "x"})).status_code == 422
    assert (await world.browser().get("/admin/pushes")).status_code == 303  # signed out: to sign-in
