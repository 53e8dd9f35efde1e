"""The anomaly queue in the console and the admin API: listing newest first with filters (kind, state, local
dates) and keyset pages, one anomaly's page, acknowledge and resolve with a note (2-500 characters), the
wrong transitions refused with nothing changed, every move audited, roles and CSRF, and what operators or
the programme typed shown escaped."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.console import texts
from storage import anomalies
from storage.clock import FrozenClock
from storage.models import Anomaly, AuditEntry
from tests.support.console_support import ConsoleWorld, audit_entries, console_world, row_of
from tests.support.factories import add_member, local
from tests.support.fakes import ADMIN_TOKEN

HOSTILE = '<script>alert("x")</script>'
API = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def raise_one(world: ConsoleWorld, kind: str = "daily_cap", detail: str = "over the cap", *,
                    at: datetime | None = None, member: int | None = None, key: str | None = None) -> int:
    now = at or world.wechat.services.clock.now()
    async with world.db.unit_of_work() as session:
        await anomalies.record(session, kind=kind, detail=detail, now=now, member_id=member,
                               dedupe_key=key or f"test:{kind}:{now.isoformat()}:{detail[:20]}")
    async with world.db.sessions() as session:
        found = await session.scalar(select(Anomaly).order_by(Anomaly.id.desc()).limit(1))
    assert found is not None
    assert found.id is not None
    return found.id


async def stored(world: ConsoleWorld, anomaly_id: int) -> Anomaly:
    async with world.db.sessions() as session:
        found = await session.get(Anomaly, anomaly_id)
    assert found is not None
    return found


async def audits(world: ConsoleWorld, target: str) -> list[AuditEntry]:
    return await audit_entries(world.db, target=target)


async def test_the_queue_lists_every_anomaly_newest_first_in_chinese(world: ConsoleWorld) -> None:
    now = world.wechat.services.clock.now()
    member = await add_member(world.db, now)
    older = await raise_one(world, "refund_shortfall", "refund:R1: 30 of 50 points were already spent",
                            at=now - timedelta(hours=1), member=member)
    newer = await raise_one(world, "job_skipped", "定时任务 birthday 未补跑")
    analyst = await world.as_role("analyst")
    page = await analyst.get("/admin/anomalies")
    assert page.status_code == 200
    assert page.text.index(f'data-anomaly="{newer}"') < page.text.index(f'data-anomaly="{older}"')
    older_row, newer_row = row_of(page.text, "data-anomaly", older), row_of(page.text, "data-anomaly", newer)
    assert texts.ANOMALY_KINDS["refund_shortfall"] in older_row
    assert texts.ANOMALY_KINDS["job_skipped"] in newer_row
    assert f'href="/admin/members/{member}"' in older_row
    assert f'href="/admin/anomalies/{older}"' in older_row
    assert "refund:R1: 30 of 50 points were already spent" in older_row
    assert texts.ANOMALY_STATES["open"] in older_row


async def test_filters_by_kind_state_and_local_dates(world: ConsoleWorld) -> None:
    late = local(2026, 11, 20, 23, 30)  # 20 November in Shanghai, still the 20th's 15:30 in UTC
    cap = await raise_one(world, "daily_cap", "cap on the 20th", at=late)
    spree = await raise_one(world, "redeem_spree", "11 redemptions", at=local(2026, 11, 21, 0, 30))
    async with world.db.unit_of_work() as session:
        await anomalies.resolve(session, spree, by="admin", note="checked", now=world.wechat.services.clock.now())
    me = await world.as_role("operator")

    async def shown(query: str) -> set[int]:
        page = await me.get(f"/admin/anomalies?{query}")
        assert page.status_code == 200
        return {a for a in (cap, spree) if f'data-anomaly="{a}"' in page.text}

    assert await shown("") == {cap, spree}
    assert await shown("kind=daily_cap") == {cap}
    assert await shown("state=resolved") == {spree}
    assert await shown("state=open") == {cap}
    assert await shown("since=2026-11-20&until=2026-11-20") == {cap}
    assert await shown("since=2026-11-21") == {spree}
    assert await shown("until=2026-11-19") == set()
    bad = await me.get("/admin/anomalies?since=20-11-2026")
    assert bad.status_code == 400
    assert texts.ANOMALY_BAD_DATE in bad.text


async def test_keyset_pages_of_fifty(world: ConsoleWorld) -> None:
    start = world.wechat.services.clock.now()
    ids = [await raise_one(world, "daily_cap", f"n{n}", at=start + timedelta(seconds=n), key=f"k{n}")
           for n in range(53)]
    me = await world.as_role("analyst")
    first = await me.get("/admin/anomalies")
    assert sum(f'data-anomaly="{a}"' in first.text for a in ids) == 50
    assert f'data-anomaly="{ids[-1]}"' in first.text
    assert f'data-anomaly="{ids[2]}"' not in first.text
    assert f"before={ids[3]}" in first.text
    assert 'id="older"' in first.text
    second = await me.get(f"/admin/anomalies?before={ids[3]}")
    assert [a for a in ids if f'data-anomaly="{a}"' in second.text] == ids[:3]
    assert 'id="older"' not in second.text


async def test_acknowledge_then_resolve_with_notes_audited(world: ConsoleWorld) -> None:
    anomaly = await raise_one(world)
    me = await world.as_role("operator")
    page = await me.get(f"/admin/anomalies/{anomaly}")
    assert 'id="acknowledge-form"' in page.text
    done = await me.post(f"/admin/anomalies/{anomaly}/acknowledge", {"note": "  looking into it  "})
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/anomalies/{anomaly}?done=acknowledge"
    row = await stored(world, anomaly)
    assert (row.state, row.note, row.handled_by) == ("acknowledged", "looking into it", "operator")
    assert row.acknowledged_at == world.wechat.services.clock.now()
    shown = await me.get(done.headers["location"])
    assert texts.ANOMALY_ACKNOWLEDGED in shown.text
    assert 'id="acknowledge-form"' not in shown.text  # acknowledged: only resolving is left

    world.wechat.services.clock.advance(minutes=5)
    assert (await me.post(f"/admin/anomalies/{anomaly}/resolve", {"note": "a test member, fine"})).status_code == 303
    row = await stored(world, anomaly)
    assert (row.state, row.note, row.handled_by) == ("resolved", "a test member, fine", "operator")
    assert row.resolved_at == world.wechat.services.clock.now()
    entries = await audits(world, f"anomaly:{anomaly}")
    assert [(e.action, e.actor, e.actor_role) for e in entries] == [
        ("anomaly.acknowledge", "operator", "operator"), ("anomaly.resolve", "operator", "operator"),
    ]
    assert json.loads(entries[0].before or "")["state"] == "open"
    assert json.loads(entries[0].after or "") == {"state": "acknowledged", "note": "looking into it",
                                                  "handled_by": "operator"}
    assert json.loads(entries[1].before or "")["state"] == "acknowledged"
    assert json.loads(entries[1].after or "")["state"] == "resolved"
    assert entries[1].client is not None


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
async def test_wrong_transitions_are_refused_and_change_nothing(world: ConsoleWorld, action: str) -> None:
    anomaly = await raise_one(world)
    me = await world.as_role("admin")
    assert (await me.post(f"/admin/anomalies/{anomaly}/resolve", {"note": "done already"})).status_code == 303
    again = await me.post(f"/admin/anomalies/{anomaly}/{action}", {"note": "second time"})
    assert again.status_code == 409
    label = texts.ANOMALY_ACKNOWLEDGE if action == "acknowledge" else texts.ANOMALY_RESOLVE
    assert texts.ANOMALY_WRONG_STATE.format(state="已解决", action=label) in again.text
    row = await stored(world, anomaly)
    assert (row.state, row.note) == ("resolved", "done already")
    assert len(await audits(world, f"anomaly:{anomaly}")) == 1


async def test_acknowledging_twice_is_a_conflict(world: ConsoleWorld) -> None:
    anomaly = await raise_one(world)
    me = await world.as_role("operator")
    assert (await me.post(f"/admin/anomalies/{anomaly}/acknowledge", {"note": "first"})).status_code == 303
    assert (await me.post(f"/admin/anomalies/{anomaly}/acknowledge", {"note": "twice"})).status_code == 409
    assert (await stored(world, anomaly)).note == "first"


@pytest.mark.parametrize("note", ["", " ", "x", "  y  ", "长" * 501])
async def test_a_bad_note_shows_the_form_again_and_writes_nothing(world: ConsoleWorld, note: str) -> None:
    anomaly = await raise_one(world)
    me = await world.as_role("operator")
    answer = await me.post(f"/admin/anomalies/{anomaly}/resolve", {"note": note})
    assert answer.status_code == 422
    assert texts.ANOMALY_NOTE_INVALID in answer.text
    assert 'id="resolve-form"' in answer.text
    row = await stored(world, anomaly)
    assert (row.state, row.note, row.handled_by) == ("open", None, None)
    assert await audits(world, f"anomaly:{anomaly}") == []


async def test_details_and_notes_are_shown_escaped(world: ConsoleWorld) -> None:
    anomaly = await raise_one(world, "daily_cap", f"detail {HOSTILE}")
    me = await world.as_role("operator")
    listing = await me.get("/admin/anomalies")
    assert HOSTILE not in listing.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in listing.text
    bad = await me.post(f"/admin/anomalies/{anomaly}/resolve", {"note": "x" + HOSTILE * 30})
    assert bad.status_code == 422
    assert HOSTILE not in bad.text  # the typed note comes back escaped in the form
    assert (await me.post(f"/admin/anomalies/{anomaly}/resolve", {"note": f"note {HOSTILE}"})).status_code == 303
    page = await me.get(f"/admin/anomalies/{anomaly}")
    assert HOSTILE not in page.text
    assert page.text.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") == 2  # the detail and the note
    assert (await stored(world, anomaly)).note == f"note {HOSTILE}"


async def test_roles_analyst_reads_clerk_is_refused(world: ConsoleWorld) -> None:
    anomaly = await raise_one(world)
    analyst = await world.as_role("analyst")
    page = await analyst.get(f"/admin/anomalies/{anomaly}")
    assert page.status_code == 200
    assert 'id="resolve-form"' not in page.text
    for action in ("acknowledge", "resolve"):
        refused = await analyst.post(f"/admin/anomalies/{anomaly}/{action}", {"note": "not mine to do"})
        assert refused.status_code == 403
        assert "管理员、运营" in refused.text
    clerk = await world.as_role("clerk")
    for path in ("/admin/anomalies", f"/admin/anomalies/{anomaly}"):
        refused = await clerk.get(path)
        assert refused.status_code == 403
        assert "店员" in refused.text
    assert (await clerk.post(f"/admin/anomalies/{anomaly}/resolve", {"note": "clerk"})).status_code == 403
    signed_out = world.browser()
    assert (await signed_out.get("/admin/anomalies")).status_code == 303
    assert (await stored(world, anomaly)).state == "open"


@pytest.mark.parametrize("csrf", ["", "stale-token"])
async def test_a_missing_or_stale_csrf_token_changes_nothing(world: ConsoleWorld, csrf: str) -> None:
    anomaly = await raise_one(world)
    me = await world.as_role("admin")
    for action in ("acknowledge", "resolve"):
        refused = await me.post(f"/admin/anomalies/{anomaly}/{action}", {"note": "fine note"}, csrf=csrf)
        assert refused.status_code == 403
        assert texts.CSRF_FAILED in refused.text
    assert (await stored(world, anomaly)).state == "open"
    assert await audits(world, f"anomaly:{anomaly}") == []


async def test_an_unknown_anomaly_is_a_404_page(world: ConsoleWorld) -> None:
    me = await world.as_role("admin")
    for response in (await me.get("/admin/anomalies/999999"),
                     await me.post("/admin/anomalies/999999/resolve", {"note": "nothing here"})):
        assert response.status_code == 404
        assert texts.NOT_FOUND in response.text
    for path in ("/admin/anomalies/abc", "/admin/anomalies/99999999999999", "/admin/anomalies?before=99999999999999"):
        refused = await me.get(path)
        assert refused.status_code in (404, 422), path
        assert "<html" in refused.text


async def test_the_admin_api_lists_and_moves_anomalies_as_token(world: ConsoleWorld) -> None:
    client = world.wechat.client
    first = await raise_one(world, "daily_cap", "a")
    second = await raise_one(world, "redeem_spree", "b", key="other")
    assert (await client.get("/api/admin/anomalies")).status_code == 401
    listed = (await client.get("/api/admin/anomalies", headers=API)).json()
    assert [a["id"] for a in listed["items"]] == [second, first]
    only = (await client.get("/api/admin/anomalies", params={"kind": "daily_cap", "limit": 1}, headers=API)).json()
    assert [a["id"] for a in only["items"]] == [first]
    assert only["next_before"] is None
    paged = (await client.get("/api/admin/anomalies", params={"limit": 1}, headers=API)).json()
    assert paged["next_before"] == second

    acked = await client.post(f"/api/admin/anomalies/{first}/acknowledge", json={"note": "seen"}, headers=API)
    assert acked.status_code == 200
    assert (acked.json()["state"], acked.json()["handled_by"]) == ("acknowledged", "token")
    assert (await client.post(f"/api/admin/anomalies/{first}/resolve", json={"note": "x"},
                              headers=API)).status_code == 422
    assert (await client.post(f"/api/admin/anomalies/{first}/resolve", json={"note": "ok now"},
                              headers=API)).status_code == 200
    again = await client.post(f"/api/admin/anomalies/{first}/resolve", json={"note": "ok now"}, headers=API)
    assert again.status_code == 409
    assert (await client.post("/api/admin/anomalies/99999/resolve", json={"note": "ok now"},
                              headers=API)).status_code == 404
    state = (await client.get("/api/admin/anomalies", params={"state": "resolved"}, headers=API)).json()
    assert [a["id"] for a in state["items"]] == [first]
    assert [(e.action, e.actor) for e in await audits(world, f"anomaly:{first}")] == [
        ("anomaly.acknowledge", "token"), ("anomaly.resolve", "token"),
    ]
