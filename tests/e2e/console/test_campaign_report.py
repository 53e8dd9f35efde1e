"""The campaign report (issue 15 item 4) on a small world built by hand: members signed up and joining
through signed XML, orders and refunds through the signed order webhook, an early end through the
console. Every figure is worked out below and read back from the console's report page, the campaigns
side by side, `活动数据 CODE` in the chat and GET /api/admin/campaigns/{code}/report.

The world (local days, Asia/Shanghai; one point costs 5 fen by the rules file):
    10-15  A, B, C, D, E, F sign up (all 普通; F is then made 金卡)
    10-20  B pays 40.00                       (before campaign 1's 28 days: not counted)
    11-01  D pays 50.00
    11-10  A pays 80.00
    11-22  campaign 1 "报名有礼" opens (join bonus 20, ends 11-24 22:00); A and B join; A pays 100.00
    11-23  C joins; A is refunded 30.00 of the 100.00; B pays 150.00; D pays 90.00; F pays 500.00
    11-24  C pays 50.00, refunded in full      (no paid order)
    11-25  00:30 C pays 20.00                  (the first instant after campaign 1's last day)
    11-26  campaign 2 "拼团" opens (group buy of 5, 10 points, ends 11-28); E joins (no payout)
    11-27  an operator ends campaign 2 early  (its last day: 11-27)
    11-30  A pays 60.00
    12-09  00:00 C pays 100.00                 (one day after campaign 1's 14 days)

Campaign 1: days 11-22..11-24, after 11-25..12-08, before 10-25..11-21. Participants A, B, C (tier 普通).
    before: A 80.00 -> 1 order, 80.00; during: A 70.00 net, B 150.00 -> 2 orders, 220.00;
    after: C 20.00, A 60.00 -> 2 orders, 80.00. Sales (during + after) 300.00, 100.00 per participant.
    Comparison (普通, not in it): D and E -> before 1 order 50.00; campaign + 14: D 90.00 -> 45.00 each.
    Incremental (100.00 - 45.00) x 3 = 165.00; points 3 x 20 = 60, cost 60 x 5 fen = 3.00; ROI 55.00.
Campaign 2: days 11-26..11-27, after to 12-11, before 10-29..11-25. Participant E: no orders, 0 points.
    Comparison A, B, C, D: before A 80 + 70, B 150, C 20, D 50 + 90 = 6 orders, 460.00;
    in 11-26..12-11: A 60.00, C 100.00 = 2 orders, 160.00 -> 40.00 each. Incremental (0 - 40) x 1 = -40.00;
    cost 0: ROI —.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from bot.console import texts
from handlers import texts as chat_texts
from storage.clock import FrozenClock
from storage.models import Campaign, Member
from tests.conftest import START
from tests.support.campaign_support import MANAGER, add_members, campaign_row, make_staff, new_campaign
from tests.support.console_support import ConsoleWorld, console_world, row_of
from tests.support.fakes import ADMIN, WeChat
from tests.support.member_support import ORDER_SECRET, joined, paid, post_order, refund, sign_up

TZ = ZoneInfo("Asia/Shanghai")
PEOPLE = {name: f"oCAMPREPORT{name}{'0' * 16}" for name in "ABCDEF"}


def local(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ).astimezone(UTC)


@dataclass(frozen=True)
class World:
    console: ConsoleWorld
    first: Campaign
    second: Campaign


async def _pay(world: ConsoleWorld, who: str, order_id: str, fen: int) -> None:
    response = await post_order(world.wechat, paid(order_id, fen, openid=PEOPLE[who]))
    assert response.status_code == 200, response.text


async def _refund(world: ConsoleWorld, order_id: str, fen: int, refund_id: str, refund_fen: int) -> None:
    response = await post_order(world.wechat, refund(order_id, fen, refund_id, refund_fen))
    assert response.status_code == 200, response.text


async def _join(world: ConsoleWorld, who: str, code: str) -> None:
    reply = await world.wechat.say(PEOPLE[who], f"参加 {code}")
    assert reply.startswith("已加入活动"), reply


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock, tmp_path: Path) -> AsyncIterator[World]:
    rules = tmp_path / "rules.toml"
    rules.write_text("point_value_fen = 5\n", encoding="utf-8")
    async with console_world(urls, clock, order_webhook_secret=ORDER_SECRET, rules_file=str(rules)) as cw:
        services = cw.wechat.services
        await make_staff(cw.wechat)
        clock.set(local(10, 15))
        for n, who in enumerate(PEOPLE.values()):
            await sign_up(cw.wechat, who, f"1390000100{n}")
        async with cw.db.unit_of_work() as session:
            await session.execute(update(Member).where(Member.openid == PEOPLE["F"]).values(tier="金卡"))  # type: ignore[arg-type]
        clock.set(local(10, 20))
        await _pay(cw, "B", "B-old", 4000)
        clock.set(local(11, 1))
        await _pay(cw, "D", "D-before", 5000)
        clock.set(local(11, 10))
        await _pay(cw, "A", "A-before", 8000)
        clock.set(local(11, 22))
        first = await new_campaign(services.db, services.campaigns, clock.now(), kind="join_bonus", points=20,
                                   cap=10, ends_at=local(11, 24, 22), title="报名有礼")
        await _join(cw, "A", first.code)
        await _join(cw, "B", first.code)
        clock.set(local(11, 22, 12))
        await _pay(cw, "A", "A-during", 10000)
        clock.set(local(11, 23))
        await _join(cw, "C", first.code)
        await _refund(cw, "A-during", 10000, "A-during-r1", 3000)
        await _pay(cw, "B", "B-during", 15000)
        await _pay(cw, "D", "D-during", 9000)
        await _pay(cw, "F", "F-during", 50000)
        clock.set(local(11, 24))
        await _pay(cw, "C", "C-refunded", 5000)
        await _refund(cw, "C-refunded", 5000, "C-refunded-r1", 5000)
        clock.set(local(11, 25, 0, 30))
        await _pay(cw, "C", "C-after", 2000)
        clock.set(local(11, 26))
        second = await new_campaign(services.db, services.campaigns, clock.now(), kind="group_buy", points=10,
                                    goal=5, cap=10, ends_at=local(11, 28, 20), title="拼团")
        await _join(cw, "E", second.code)
        clock.set(local(11, 27))
        ended = await (await cw.as_role("operator")).post(f"/admin/campaigns/{second.id}/end")
        assert ended.status_code == 303
        clock.set(local(11, 30))
        await _pay(cw, "A", "A-after", 6000)
        clock.set(local(12, 9, 0, 0))
        await _pay(cw, "C", "C-late", 10000)
        clock.set(local(12, 20))
        assert await services.campaigns.finalize_due(cw.db, clock.now()) == 1  # campaign 1, after its end
        yield World(cw, await campaign_row(cw.db, first.id or 0), await campaign_row(cw.db, second.id or 0))


def figure(html: str, name: str) -> str:
    found = re.search(rf'<dd data-figure="{name}">([^<]*)</dd>', html)
    assert found, name
    return found.group(1)


def cells(row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]


async def test_the_report_page_shows_every_figure(world: World) -> None:
    first = world.first
    assert (first.status, first.paid_out, first.participants) == ("settled", 60, 3)
    page = await (await world.console.as_role("analyst")).get(f"/admin/campaigns/{first.id}/report")
    assert page.status_code == 200
    html = page.text
    assert texts.CAMPAIGN_REPORT_TITLE.format(title="报名有礼") in html
    assert texts.CAMPAIGN_REPORT_DAYS.format(first="2026-11-22", last="2026-11-24", after="2026-12-08",
                                             before="2026-10-25") in html
    shown = {name: figure(html, name) for name in (
        "participants", "tiers", "points_paid", "cost", "sales", "per_participant", "comparison_members",
        "per_comparison", "incremental", "roi")}
    assert shown == {
        "participants": "3", "tiers": "普通", "points_paid": "60", "cost": "¥3.00", "sales": "¥300.00",
        "per_participant": "¥100.00", "comparison_members": "2", "per_comparison": "¥45.00",
        "incremental": "¥165.00", "roi": "55.00",
    }
    table = {key: cells(row_of(html, "data-row", key))[2:] for key in (
        "participants-before", "participants-during", "participants-after", "participants-total",
        "comparison-before", "comparison-total")}
    assert table == {
        "participants-before": ["3", "1", "¥80.00", "¥26.67"],
        "participants-during": ["3", "2", "¥220.00", "¥73.33"],
        "participants-after": ["3", "2", "¥80.00", "¥26.67"],
        "participants-total": ["3", "4", "¥300.00", "¥100.00"],
        "comparison-before": ["2", "1", "¥50.00", "¥25.00"],
        "comparison-total": ["2", "1", "¥90.00", "¥45.00"],
    }
    joins = html.split('<table id="joins">', 1)[1].split("</table>", 1)[0]
    assert [cells(r) for r in re.findall(r"<tr>(.*?)</tr>", joins, flags=re.S)[1:]] == [
        ["2026-11-22", "2"], ["2026-11-23", "1"]]
    assert '"days": ["2026-11-22", "2026-11-23"]' in html  # the chart's data
    assert '"joins": [2, 1]' in html
    assert 'id="joins-chart"' in html
    assert "/admin/static/campaign_report.js" in html
    assert texts.CAMPAIGN_REPORT_NOTE.format(fen=5) in html
    assert (await world.console.browser().client.get("/admin/static/campaign_report.js")).status_code == 200


async def test_a_campaign_without_cost_has_no_roi(world: World) -> None:
    second = world.second
    assert (second.status, second.paid_out, second.settled_at) == ("settled", 0, local(11, 27))
    html = (await (await world.console.as_role("operator")).get(f"/admin/campaigns/{second.id}/report")).text
    assert texts.CAMPAIGN_REPORT_DAYS.format(first="2026-11-26", last="2026-11-27", after="2026-12-11",
                                             before="2026-10-29") in html
    assert [figure(html, n) for n in ("participants", "points_paid", "cost", "sales", "comparison_members",
                                      "per_comparison", "incremental", "roi")] == [
        "1", "0", "¥0.00", "¥0.00", "4", "¥40.00", "-¥40.00", "—"]
    assert cells(row_of(html, "data-row", "comparison-before"))[2:] == ["4", "6", "¥460.00", "¥115.00"]
    assert cells(row_of(html, "data-row", "comparison-total"))[2:] == ["4", "2", "¥160.00", "¥40.00"]


async def test_the_campaigns_screen_links_each_report_and_the_side_by_side(world: World) -> None:
    me = await world.console.as_role("operator")
    listed = (await me.get("/admin/campaigns")).text
    for c in (world.first, world.second):
        assert f'href="/admin/campaigns/{c.id}/report"' in row_of(listed, "data-campaign", c.id)
    assert 'href="/admin/campaigns/compare"' in listed
    campaign_page = (await me.get(f"/admin/campaigns/{world.first.id}")).text
    assert f'href="/admin/campaigns/{world.first.id}/report"' in campaign_page

    page = await me.get("/admin/campaigns/compare")
    assert page.status_code == 200
    assert cells(row_of(page.text, "data-campaign", world.first.id)) == [
        "报名有礼", world.first.code, "2026-11-22 – 2026-11-24", "3", "¥3.00", "¥165.00", "55.00"]
    assert cells(row_of(page.text, "data-campaign", world.second.id)) == [
        "拼团", world.second.code, "2026-11-26 – 2026-11-27", "1", "¥0.00", "-¥40.00", "—"]

    def shown(html: str) -> list[str]:
        return re.findall(r'<tr data-campaign="(\d+)">', html)

    only_second = (await me.get("/admin/campaigns/compare?since=2026-11-25")).text
    assert shown(only_second) == [str(world.second.id)]
    only_first = (await me.get("/admin/campaigns/compare?since=2026-11-20&until=2026-11-25")).text
    assert shown(only_first) == [str(world.first.id)]
    both = (await me.get("/admin/campaigns/compare?since=2026-11-24&until=2026-11-26")).text
    assert shown(both) == [str(world.second.id), str(world.first.id)]  # newest first
    none = await me.get("/admin/campaigns/compare?since=2026-12-01")
    assert (none.status_code, shown(none.text)) == (200, [])
    assert texts.CAMPAIGN_COMPARE_EMPTY in none.text


async def test_bad_dates_give_the_form_again_with_the_fields_error(world: World) -> None:
    me = await world.console.as_role("analyst")
    bad = await me.get("/admin/campaigns/compare?since=2026-13-01")
    assert bad.status_code == 422
    assert f'<span class="field-error" id="since-error">{texts.BAD_DATE}</span>' in bad.text
    assert 'value="2026-13-01"' in bad.text
    backwards = await me.get("/admin/campaigns/compare?since=2026-11-30&until=2026-11-01")
    assert backwards.status_code == 422
    assert f'<span class="field-error" id="until-error">{texts.CAMPAIGN_BAD_RANGE}</span>' in backwards.text
    assert 'data-campaign=' not in backwards.text


async def test_rights_and_an_unknown_campaign(world: World) -> None:
    clerk = await world.console.as_role("clerk")
    for path in (f"/admin/campaigns/{world.first.id}/report", "/admin/campaigns/compare"):
        refused = await clerk.get(path)
        assert refused.status_code == 403, path
        assert "¥165.00" not in refused.text
    anonymous = await world.console.browser().get(f"/admin/campaigns/{world.first.id}/report")
    assert (anonymous.status_code, anonymous.headers.get("location")) == (
        303, f"/admin/login?next=/admin/campaigns/{world.first.id}/report")
    assert "¥165.00" not in anonymous.text
    missing = await (await world.console.as_role("admin")).get("/admin/campaigns/999999/report")
    assert missing.status_code == 404
    assert texts.NOT_FOUND in missing.text


async def test_campaign_stats_in_the_chat_gain_the_money_lines(world: World) -> None:
    wechat = world.console.wechat
    stats = await wechat.say(MANAGER, f"活动数据 {world.first.code}")
    assert "参加人数：3/10\n已发放积分：60\n" in stats  # the existing lines stay
    assert "每日参加：11-22 2 人，11-23 1 人\n" in stats
    assert stats.endswith(chat_texts.CAMPAIGN_STATS_MONEY.format(cost="3.00", incremental="¥165.00", roi="55.00"))
    assert len(stats.encode()) < 2048  # WeChat's text reply limit
    second = await wechat.say(MANAGER, f"活动数据 {world.second.code.lower()}")
    assert second.endswith("积分成本：¥0.00\n增量销售：-¥40.00\nROI：—")
    assert await wechat.say(MANAGER, "活动数据 QQQQQ") == chat_texts.campaign_unknown.format(code="QQQQQ")
    member = await wechat.say(PEOPLE["A"], f"活动数据 {world.first.code}")
    assert member == chat_texts.HELP_MEMBER  # staff only


async def test_the_json_report(world: World) -> None:
    client = world.console.wechat.client
    got = await client.get(f"/api/admin/campaigns/{world.first.code}/report", headers=ADMIN)
    assert got.status_code == 200, got.text
    body = got.json()
    assert {k: body[k] for k in ("participants", "points_paid", "cost_yuan", "comparison_members",
                                 "sales_per_participant_yuan", "sales_per_comparison_member_yuan",
                                 "incremental_sales_yuan", "roi", "first_day", "last_day", "tiers")} == {
        "participants": 3, "points_paid": 60, "cost_yuan": 3.0, "comparison_members": 2,
        "sales_per_participant_yuan": 100.0, "sales_per_comparison_member_yuan": 45.0,
        "incremental_sales_yuan": 165.0, "roi": 55.0, "first_day": "2026-11-22", "last_day": "2026-11-24",
        "tiers": ["普通"],
    }
    assert (body["before"], body["during"], body["after"]) == (
        {"orders": 1, "sales_yuan": 80.0}, {"orders": 2, "sales_yuan": 220.0}, {"orders": 2, "sales_yuan": 80.0})
    assert body["joins_per_day"] == [{"day": "2026-11-22", "joins": 2}, {"day": "2026-11-23", "joins": 1}]
    second = (await client.get(f"/api/admin/campaigns/{world.second.code}/report", headers=ADMIN)).json()
    assert (second["cost_yuan"], second["incremental_sales_yuan"], second["roi"]) == (0.0, -40.0, None)
    missing = await client.get("/api/admin/campaigns/QQQQQ/report", headers=ADMIN)
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert (await client.get(f"/api/admin/campaigns/{world.first.code}/report")).status_code == 401
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/api/admin/campaigns/{code}/report"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "CampaignReportOut")
    assert spec["components"]["schemas"]["CampaignReportOut"]["examples"][0]["roi"] == 29.17


async def test_a_member_of_another_tier_or_who_left_is_no_comparison(world: World) -> None:
    """F (金卡, 500.00 in campaign 1's days) is outside the comparison group; so is a 普通 member who
    deleted their membership before the campaign ended (their orders would otherwise count)."""
    assert (await joined(world.console.wechat, PEOPLE["F"])).tier == "金卡"
    html = (await (await world.console.as_role("analyst")).get(f"/admin/campaigns/{world.first.id}/report")).text
    assert figure(html, "comparison_members") == "2"
    async with world.console.db.unit_of_work() as session:
        await session.execute(update(Member).where(Member.openid == PEOPLE["D"]).values(  # type: ignore[arg-type]
            status="deleted", deleted_at=local(11, 23, 12)))
    html = (await (await world.console.as_role("analyst")).get(f"/admin/campaigns/{world.first.id}/report")).text
    assert [figure(html, n) for n in ("comparison_members", "per_comparison", "incremental", "roi")] == [
        "1", "¥0.00", "¥300.00", "100.00"]


async def test_campaign_stats_stay_short_and_say_dash_without_a_comparison_group(
    wechat: WeChat, clock: FrozenClock,
) -> None:
    """Joins on 12 days: the chat lists the latest 10 after an ellipsis. Every member joined, so there is
    nobody to compare with: incremental sales and ROI are —, the cost is still 12 x 30 points x 1 fen."""
    services = wechat.services
    await make_staff(wechat)
    campaign = await new_campaign(services.db, services.campaigns, clock.now(), kind="join_bonus", points=30,
                                  cap=50, ends_at=clock.now() + timedelta(days=20), title="长" * 40)
    people = await add_members(services.db, clock.now(), 12)
    for member in people:
        async with services.db.unit_of_work() as session:
            fresh = await session.get(Member, member.id)
            assert fresh is not None
            await services.campaigns.join(session, campaign.code, fresh, clock.now())
        clock.advance(days=1)
    stats = await wechat.say(MANAGER, f"活动数据 {campaign.code}")
    days = [f"{(START + timedelta(days=n)).astimezone(TZ):%m-%d} 1 人" for n in range(2, 12)]
    assert f"每日参加：…，{'，'.join(days)}\n" in stats
    assert "11-22 1 人" not in stats
    assert stats.endswith("积分成本：¥3.60\n增量销售：—\nROI：—")
    assert len(stats.encode()) < 2048
