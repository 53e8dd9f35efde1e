"""The 流失预警 screen and GET /api/admin/winback read back a hand-built win-back history: steps in each stage
dated inside and outside the asked local days (one held out by an experiment), the members' interaction days
and paid orders after them; each stage's reached / recalled (a day within 7) / reactivated (a paid order
within 30) and rates, how many stand in each stage now, and who they are, newest first, 50 a page; a bogus
stage or a backwards range is refused naming the field; analysts read, clerks do not see the screen."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.console import texts
from storage.clock import FrozenClock
from storage.models import InteractionDay, Member, MemberSegment, PurchaseOrder, WinbackStep
from tests.support.campaign_support import add_members
from tests.support.console_support import ConsoleWorld, console_world, row_of
from tests.support.fakes import ADMIN

SINCE, UNTIL = "2026-10-01", "2026-10-31"  # the asked local days; the clock stands at 2026-11-22 10:00
BULK = 52  # members warned yesterday, past one page of the list with the others in a stage


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


def local(world: ConsoleWorld, day: str, hour: int = 12, minute: int = 0) -> datetime:
    """An instant given as the programme's local day and time (Asia/Shanghai), in UTC."""
    return datetime.combine(date.fromisoformat(day), time(hour, minute), world.wechat.services.tz).astimezone(UTC)


@dataclass(frozen=True)
class History:
    people: list[Member]  # m[0]..m[9] of the story below
    bulk: list[Member]
    standing: dict[int, tuple[str, datetime]]  # member id -> (stage now, since)


async def _history(world: ConsoleWorld, clock: FrozenClock) -> History:
    """Ten members with a win-back story each, and BULK more warned yesterday.

    m0: warn 10-02 (wrote 10-05, paid 10-20), then recall1 10-09 -- both reactivated, only the warn recalled
    m1: warn 10-03; wrote the same day and 8 days after; a refunded order 10-10, a paid one 31 days after
    m2: warn 10-10 held out (wrote and paid after: counted nowhere)
    m3: recall1 2026-09-30 23:30, just before the range (wrote 10-02)
    m4: recall1 2026-10-01 00:30, the range's first half hour; m5: recall1 10-31 23:30, its last
    m6: recall1 2026-11-01 00:30, just after the range
    m7: recall1 10-08 (wrote 10-15, the 7th day; a half-refunded order 29 days 23 hours after)
    m8: recall2 10-12 (paid an hour later, never wrote)
    m9: dormant 10-20, nothing after
    """
    start = clock.now() - timedelta(days=400)
    people = await add_members(world.db, start, 10, start=900)
    bulk = await add_members(world.db, start, BULK, start=950)
    m = [int(p.id or 0) for p in people]
    steps = [  # (member, stage, at, held_out)
        (m[0], "warn", local(world, "2026-10-02"), False), (m[0], "recall1", local(world, "2026-10-09"), False),
        (m[1], "warn", local(world, "2026-10-03"), False),
        (m[2], "warn", local(world, "2026-10-10"), True),
        (m[3], "recall1", local(world, "2026-09-30", 23, 30), False),
        (m[4], "recall1", local(world, "2026-10-01", 0, 30), False),
        (m[5], "recall1", local(world, "2026-10-31", 23, 30), False),
        (m[6], "recall1", local(world, "2026-11-01", 0, 30), False),
        (m[7], "recall1", local(world, "2026-10-08"), False),
        (m[8], "recall2", local(world, "2026-10-12"), False),
        (m[9], "dormant", local(world, "2026-10-20"), False),
    ]
    days = [(m[0], "2026-10-05"), (m[1], "2026-10-03"), (m[1], "2026-10-11"), (m[2], "2026-10-12"),
            (m[3], "2026-10-02"), (m[7], "2026-10-15")]
    orders = [  # (member, at, amount fen, refunded fen)
        (m[0], local(world, "2026-10-20"), 8800, 0),
        (m[1], local(world, "2026-10-10"), 5000, 5000),
        (m[1], local(world, "2026-11-03"), 5000, 0),
        (m[2], local(world, "2026-10-13"), 5000, 0),
        (m[7], local(world, "2026-11-07", 11), 10000, 5000),
        (m[8], local(world, "2026-10-12", 13), 3000, 0),
    ]
    yesterday = clock.now() - timedelta(days=1)
    standing: dict[int, tuple[str, datetime]] = {
        m[1]: ("dormant", local(world, "2026-10-24")), m[2]: ("warn", local(world, "2026-10-10")),
        m[3]: ("recall2", local(world, "2026-10-07")), m[4]: ("recall1", local(world, "2026-10-01", 0, 30)),
        m[5]: ("recall1", local(world, "2026-10-31", 23, 30)), m[6]: ("recall1", local(world, "2026-11-01", 0, 30)),
        m[9]: ("dormant", local(world, "2026-10-20")),
    } | {int(b.id or 0): ("warn", yesterday) for b in bulk}
    async with world.db.unit_of_work() as session:
        for n, (member_id, stage, at, held_out) in enumerate(steps):
            session.add(WinbackStep(key=f"winback:{member_id}:{stage}:{n}", member_id=member_id, stage=stage, at=at,
                                    held_out=held_out))
        session.add_all(InteractionDay(member_id=member_id, day=date.fromisoformat(day)) for member_id, day in days)
        for n, (member_id, at, fen, refunded) in enumerate(orders):
            session.add(PurchaseOrder(order_id=f"WB-{n}", member_id=member_id, amount_fen=fen, points=fen // 100,
                                      refunded_fen=refunded, created_at=at))
        for member_id, (stage, since) in standing.items():
            member = await session.get(Member, member_id)
            assert member is not None
            member.churn_stage, member.churn_stage_at, member.churn_risk = stage, since, True
        session.add(MemberSegment(member_id=m[6], segment="流失风险", since=date(2026, 11, 1)))
    return History(people, bulk, standing)


# What the story gives over SINCE..UNTIL: (reached, recalled, reactivated, recall rate, reactivation rate).
EXPECTED = {
    "warn": (2, 1, 1, 0.5, 0.5),  # m0, m1; m2 held out
    "recall1": (4, 1, 2, 0.25, 0.5),  # m0, m4, m5, m7; m3 and m6 fall outside
    "recall2": (1, 0, 1, 0.0, 1.0),
    "dormant": (1, 0, 0, 0.0, 0.0),
}
NOW = {"warn": BULK + 1, "recall1": 3, "recall2": 1, "dormant": 2}


def _percent(rate: float | None) -> str:
    return texts.NONE if rate is None else f"{rate * 100:.1f}%"


def _members_on(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-member="(\d+)">', page)]


def _older_link(page: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" id="older">', page)
    return html.unescape(found.group(1)) if found else None


def _newest_first(history: History, stage: str | None = None) -> list[int]:
    return sorted((m for m, (s, _) in history.standing.items() if stage is None or s == stage), reverse=True)


async def _api(world: ConsoleWorld, query: str = "") -> Any:
    response = await world.wechat.client.get(f"/api/admin/winback{query}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


async def test_each_stage_reached_recalled_and_reactivated_over_the_days(world: ConsoleWorld,
                                                                        clock: FrozenClock) -> None:
    await _history(world, clock)
    analyst = await world.as_role("analyst")
    page = await analyst.get(f"/admin/winback?since={SINCE}&until={UNTIL}")
    assert page.status_code == 200
    assert texts.WINBACK_TITLE in page.text
    assert f'value="{SINCE}"' in page.text
    assert f'value="{UNTIL}"' in page.text
    for stage, (reached, recalled, reactivated, recall_rate, reactivation_rate) in EXPECTED.items():
        row = row_of(page.text, "data-stage", stage)
        assert texts.WINBACK_STAGES[stage] in row
        assert f'data-fig="now">{NOW[stage]}<' in row
        assert f'data-fig="reached">{reached}<' in row
        assert f'data-fig="recalled">{recalled}<' in row
        assert f'data-fig="reactivated">{reactivated}<' in row
        assert f'data-fig="recall_rate">{_percent(recall_rate)}<' in row
        assert f'data-fig="reactivation_rate">{_percent(reactivation_rate)}<' in row

    body = await _api(world, f"?from={SINCE}&to={UNTIL}")
    assert (body["from"], body["to"]) == (SINCE, UNTIL)
    assert {s["stage"]: (s["reached"], s["recalled"], s["reactivated"], s["recall_rate"], s["reactivation_rate"])
            for s in body["stages"]} == EXPECTED
    assert [s["stage"] for s in body["stages"]] == ["warn", "recall1", "recall2", "dormant"]
    assert body["now"] == NOW


async def test_a_stage_nobody_reached_shows_no_rate_and_the_default_is_the_last_30_days(
    world: ConsoleWorld, clock: FrozenClock,
) -> None:
    await _history(world, clock)
    analyst = await world.as_role("analyst")
    one_day = await analyst.get("/admin/winback?since=2026-10-12&until=2026-10-12")  # m8's recall2 only
    assert one_day.status_code == 200
    warn = row_of(one_day.text, "data-stage", "warn")
    assert 'data-fig="reached">0<' in warn
    assert f'data-fig="recall_rate">{texts.NONE}<' in warn
    assert f'data-fig="reactivation_rate">{texts.NONE}<' in warn
    recall2 = row_of(one_day.text, "data-stage", "recall2")
    assert 'data-fig="reached">1<' in recall2
    assert 'data-fig="reactivation_rate">100.0%<' in recall2
    assert f'data-fig="now">{NOW["warn"]}<' in warn  # who stands in a stage does not depend on the days
    body = await _api(world, "?from=2026-10-12&to=2026-10-12")
    assert [(s["stage"], s["reached"], s["recall_rate"]) for s in body["stages"]] == [
        ("warn", 0, None), ("recall1", 0, None), ("recall2", 1, 0.0), ("dormant", 0, None)]

    # No days asked: the 30 local days up to today (2026-10-24..2026-11-22): m5's and m6's recall1 only.
    default = await analyst.get("/admin/winback")
    assert default.status_code == 200
    assert 'value="2026-10-24"' in default.text
    assert 'value="2026-11-22"' in default.text
    assert 'data-fig="reached">2<' in row_of(default.text, "data-stage", "recall1")
    assert 'data-fig="reached">0<' in row_of(default.text, "data-stage", "dormant")
    body = await _api(world)
    assert (body["from"], body["to"]) == ("2026-10-24", "2026-11-22")
    assert {s["stage"]: s["reached"] for s in body["stages"]} == {"warn": 0, "recall1": 2, "recall2": 0,
                                                                  "dormant": 0}


async def test_who_stands_in_a_stage_newest_first_fifty_a_page(world: ConsoleWorld, clock: FrozenClock) -> None:
    history = await _history(world, clock)
    analyst = await world.as_role("analyst")
    everyone = _newest_first(history)
    assert len(everyone) == BULK + 7

    page = await analyst.get("/admin/winback")
    assert _members_on(page.text) == everyone[:50]
    older = _older_link(page.text)
    assert older == f"/admin/winback?before_id={everyone[49]}"
    second = await analyst.get(older)
    assert _members_on(second.text) == everyone[50:]
    assert _older_link(second.text) is None
    assert f'<a href="/admin/winback">{texts.NEWEST}</a>' in second.text

    warned = _newest_first(history, "warn")
    assert len(warned) == BULK + 1
    page = await analyst.get("/admin/winback?stage=warn")
    assert _members_on(page.text) == warned[:50]
    assert set(re.findall(r'<td data-stage="(\w+)">', page.text)) == {"warn"}
    older = _older_link(page.text)
    assert older == f"/admin/winback?stage=warn&before_id={warned[49]}"
    last = await analyst.get(older)
    assert _members_on(last.text) == warned[50:]
    assert _older_link(last.text) is None

    # One member's row: the stage, since when (local time), the tier and the RFM class.
    lapsing = int(history.people[6].id or 0)
    recall1 = await analyst.get("/admin/winback?stage=recall1")
    assert _members_on(recall1.text) == [lapsing, int(history.people[5].id or 0), int(history.people[4].id or 0)]
    row = row_of(recall1.text, "data-member", lapsing)
    assert f'href="/admin/members/{lapsing}"' in row
    assert f'<td data-stage="recall1">{texts.WINBACK_STAGES["recall1"]}</td>' in row
    assert "<td>2026-11-01 00:30:00</td>" in row
    assert "<td>普通</td><td>流失风险</td>" in row
    assert _older_link(recall1.text) is None
    assert texts.WINBACK_NONE not in recall1.text

    body = await _api(world)
    assert [m["id"] for m in body["members"]] == everyone[:50]
    assert body["next_before_id"] == everyone[49]
    body = await _api(world, f"?before_id={everyone[49]}")
    assert [m["id"] for m in body["members"]] == everyone[50:]
    assert body["next_before_id"] is None
    body = await _api(world, "?stage=warn")
    assert [m["id"] for m in body["members"]] == warned[:50]
    assert body["next_before_id"] == warned[49]
    assert {m["stage"] for m in body["members"]} == {"warn"}
    body = await _api(world, f"?stage=warn&before_id={warned[49]}")
    assert [m["id"] for m in body["members"]] == warned[50:]
    assert body["next_before_id"] is None
    [first, *_] = (await _api(world, "?stage=recall1"))["members"]
    assert first["id"] == lapsing
    assert (first["stage"], first["tier"], first["rfm_class"]) == ("recall1", "普通", "流失风险")
    assert datetime.fromisoformat(first["since"]).astimezone(UTC) == history.standing[lapsing][1]
    assert first["last_interaction_at"] is not None


async def test_nobody_in_a_stage_says_so(world: ConsoleWorld) -> None:
    analyst = await world.as_role("analyst")
    page = await analyst.get("/admin/winback")
    assert page.status_code == 200
    assert texts.WINBACK_NONE in page.text
    assert 'id="winback-members"' not in page.text
    for stage in EXPECTED:
        assert 'data-fig="now">0<' in row_of(page.text, "data-stage", stage)
    body = await _api(world)
    assert body["members"] == []
    assert body["now"] == dict.fromkeys(EXPECTED, 0)
    assert body["next_before_id"] is None


async def test_bad_input_is_refused_naming_the_field(world: ConsoleWorld, clock: FrozenClock) -> None:
    await _history(world, clock)
    analyst = await world.as_role("analyst")
    bogus = await analyst.get("/admin/winback?stage=bogus")
    assert bogus.status_code == 400
    assert texts.BAD_REQUEST.format(detail=texts.WINBACK_FIELDS["stage"]) in bogus.text
    assert 'id="winback-members"' not in bogus.text

    backwards = await analyst.get("/admin/winback?since=2026-10-31&until=2026-10-01")
    assert backwards.status_code == 422
    assert f'data-error="since">{texts.WINBACK_BAD_RANGE.format(days=366)}<' in backwards.text
    assert 'value="2026-10-31"' in backwards.text  # the typed days stay on the form
    assert "data-fig=" not in backwards.text  # no figures for a range that is not one
    too_long = await analyst.get("/admin/winback?since=2025-01-01&until=2026-10-31")
    assert too_long.status_code == 422
    assert 'data-error="since"' in too_long.text
    unreadable = await analyst.get("/admin/winback?until=yesterday")
    assert unreadable.status_code == 422
    assert f'data-error="until">{texts.BAD_DATE}<' in unreadable.text
    assert (await analyst.get("/admin/winback?before_id=0")).status_code == 422

    for query, named in (("stage=bogus", "`stage`"), ("from=2026-10-31&to=2026-10-01", "`from` (2026-10-31)"),
                         ("from=2025-01-01&to=2026-10-31", "at most 366 days"), ("to=2026-13-01", "`to`")):
        response = await world.wechat.client.get(f"/api/admin/winback?{query}", headers=ADMIN)
        assert response.status_code == 422, query
        assert named in response.json()["message"], response.json()
    assert (await world.wechat.client.get("/api/admin/winback?before_id=0", headers=ADMIN)).status_code == 422
    assert (await world.wechat.client.get("/api/admin/winback")).status_code == 401


async def test_analysts_read_and_clerks_do_not_see_it(world: ConsoleWorld) -> None:
    analyst = await world.as_role("analyst")
    home = await analyst.get("/admin")
    assert 'href="/admin/winback"' in home.text
    assert (await analyst.get("/admin/winback")).status_code == 200
    clerk = await world.as_role("clerk")
    assert (await clerk.get("/admin/winback")).status_code == 403
    assert (await clerk.get("/admin/winback?stage=warn")).status_code == 403
    assert 'href="/admin/winback"' not in (await clerk.get("/admin")).text


async def test_the_list_only_holds_members_in_a_stage(world: ConsoleWorld, clock: FrozenClock) -> None:
    history = await _history(world, clock)
    async with world.db.sessions() as session:
        out_of_it = set((await session.scalars(
            select(col(Member.id)).where(col(Member.churn_stage).is_(None))
        )).all())
    assert {int(history.people[n].id or 0) for n in (0, 7, 8)} <= out_of_it
    listed: set[int] = set()
    query = ""
    while True:
        body = await _api(world, query)
        listed.update(m["id"] for m in body["members"])
        if body["next_before_id"] is None:
            break
        query = f"?before_id={body['next_before_id']}"
    assert listed == set(history.standing)
    assert not listed & out_of_it


async def test_recalled_counts_local_days_after_a_step_taken_early_in_the_morning(
    world: ConsoleWorld, clock: FrozenClock,
) -> None:
    early, late = await add_members(world.db, clock.now() - timedelta(days=400), 2, start=1100)
    async with world.db.unit_of_work() as session:
        # Both stepped at 03:00 local on 10-05: the first wrote later that same local day only (not a return),
        # the second on 10-12, the 7th local day after (a return).
        session.add(WinbackStep(key="wb-early", member_id=early.id or 0, stage="warn",
                                at=local(world, "2026-10-05", 3)))
        session.add(InteractionDay(member_id=early.id or 0, day=date(2026, 10, 5)))
        session.add(WinbackStep(key="wb-late", member_id=late.id or 0, stage="recall1",
                                at=local(world, "2026-10-05", 3)))
        session.add(InteractionDay(member_id=late.id or 0, day=date(2026, 10, 12)))
    body = await _api(world, f"?from={SINCE}&to={UNTIL}")
    assert {s["stage"]: (s["reached"], s["recalled"]) for s in body["stages"]} == {
        "warn": (1, 0), "recall1": (1, 1), "recall2": (0, 0), "dormant": (0, 0)}
