"""The 会员分层 screen and GET /api/admin/segments read back the layering of a hand-built world: three members
(a loyal buyer, a new buyer, a member without orders) layered by the job, then the new buyer moving up; the
class sizes, their share of sales and the moves between classes; a bad date range is refused naming the field;
the member page names the member's class and since when; clerks do not see the screen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.console import texts
from scheduler.jobs import JobContext, rfm
from storage.clock import FrozenClock
from storage.models import PurchaseOrder
from tests.support.campaign_support import add_members
from tests.support.console_support import ConsoleWorld, console_world, row_of
from tests.support.fakes import ADMIN


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def _buy(world: ConsoleWorld, member_id: int, yuan: int, days_ago: int, n: int) -> None:
    now = world.wechat.services.clock.now()
    async with world.db.unit_of_work() as session:
        session.add(PurchaseOrder(order_id=f"SEG-{member_id}-{n}", member_id=member_id, amount_fen=yuan * 100,
                                  points=yuan, created_at=now - timedelta(days=days_ago)))


async def test_the_classes_their_sales_and_the_moves(world: ConsoleWorld, clock: FrozenClock) -> None:
    loyal, new, _none = await add_members(world.db, clock.now() - timedelta(days=400), 3, start=800)
    for n in range(9):
        await _buy(world, loyal.id or 0, 300, 10 * n + 1, n)  # 9 orders, ¥2,700: 高价值
    await _buy(world, new.id or 0, 300, 2, 0)  # one order: 潜力价值
    ctx = JobContext(world.db, world.wechat.services.ledger)
    assert await rfm(ctx, clock.now()) == 3
    clock.advance(days=1)
    for n in range(1, 6):
        await _buy(world, new.id or 0, 100, 0, n)  # six orders, ¥800 in all: R 5, F 4, M 3 -> 中价值
    assert await rfm(ctx, clock.now()) == 1

    analyst = await world.as_role("analyst")
    page = await analyst.get("/admin/segments")
    assert page.status_code == 200
    assert 'data-fig="members">1<' in row_of(page.text, "data-class", "高价值")
    assert 'data-fig="share">77.1%<' in row_of(page.text, "data-class", "高价值")  # 2,700 of 3,500
    assert 'data-fig="members">1<' in row_of(page.text, "data-class", "中价值")
    assert 'data-fig="members">0<' in row_of(page.text, "data-class", "潜力价值")
    assert 'data-fig="members">1<' in row_of(page.text, "data-class", "未消费")
    first, potential = row_of(page.text, "data-from", "first"), row_of(page.text, "data-from", "潜力价值")
    assert '<td class="num" data-to="高价值">1</td>' in first
    assert '<td class="num" data-to="潜力价值">1</td>' in first
    assert '<td class="num" data-to="中价值">1</td>' in potential
    assert texts.SEGMENTS_FLOWS_HINT.format(n=4) in page.text

    api = await world.wechat.client.get("/api/admin/segments", headers=ADMIN)
    assert api.status_code == 200
    body = api.json()
    assert {c["name"]: c["members"] for c in body["classes"]} == {"高价值": 1, "中价值": 1, "潜力价值": 0,
                                                                  "流失风险": 0, "未消费": 1}
    assert {(f["from"], f["to"]): f["members"] for f in body["flows"]} == {
        (None, "高价值"): 1, (None, "潜力价值"): 1, (None, "未消费"): 1, ("潜力价值", "中价值"): 1}
    only_today = (await world.wechat.client.get(
        f"/api/admin/segments?from={body['to']}&to={body['to']}", headers=ADMIN)).json()
    assert [(f["from"], f["to"]) for f in only_today["flows"]] == [("潜力价值", "中价值")]

    member = await analyst.get(f"/admin/members/{new.id}")
    today = clock.now().astimezone(world.wechat.services.tz).date()
    assert texts.SEGMENT_SINCE.format(segment="中价值", day=today) in member.text


async def test_a_bad_range_is_refused_naming_the_field(world: ConsoleWorld) -> None:
    analyst = await world.as_role("analyst")
    bad = await analyst.get("/admin/segments?since=2026-12-01&until=2026-11-01")
    assert bad.status_code == 422
    assert f'data-error="since">{texts.SEGMENTS_BAD_RANGE.format(days=366)}<' in bad.text
    unreadable = await analyst.get("/admin/segments?until=yesterday")
    assert unreadable.status_code == 422
    assert f'data-error="until">{texts.BAD_DATE}<' in unreadable.text
    for query, field in (("from=2026-13-01", "`from`"), ("from=2026-12-01&to=2026-01-01", "`from` (2026-12-01)")):
        response = await world.wechat.client.get(f"/api/admin/segments?{query}", headers=ADMIN)
        assert response.status_code == 422
        assert field in response.json()["message"]
    clerk = await world.as_role("clerk")
    assert (await clerk.get("/admin/segments")).status_code == 403
