"""`数据概览` (issue 15 item 6) through signed XML: a manager or admin gets the latest snapshot's headline
figures against the seeds' targets in one short message (under WeChat's 2048-byte text limit), the staff
menu click the same; with no snapshot a clear answer; a member or a clerk saying it gets the usual member
fallback, as for any word the bot does not know."""

from __future__ import annotations

import json
from datetime import date

from handlers import texts
from handlers.core.reply import MAX_TEXT_BYTES
from storage import staff
from storage.clock import FrozenClock
from storage.models import KpiSnapshot
from tests.support.fakes import WeChat
from tests.support.member_support import sign_up

MANAGER = "oOVERVIEWmanagerAAAAAAAAAAA"
ADMIN_STAFF = "oOVERVIEWadminBBBBBBBBBBBBB"
CLERK = "oOVERVIEWclerkCCCCCCCCCCCCC"
MEMBER = "oOVERVIEWmemberDDDDDDDDDDDD"
# The clock starts 2026-11-22 10:00 local (tests/conftest.py START): yesterday is 2026-11-21.
FIGURES = {
    "members": 1200, "signups": 3, "active_members": 480, "redemption_rate_12m": 0.42, "touches_mean": 3.2,
    "push_conversion_7d": 0.18, "top1_share_365d": 0.5, "push_reach": 0.65, "interactions_per_active": 2.5,
    "yoy_growth": None, "orders": 40,
}
EXPECTED = "\n".join([
    "数据概览（2026-11-21）",
    "会员 1,200（当日新增 3）｜30 天活跃 480",
    "积分兑换率（12 个月）：42.0%｜目标 ≥ 50.0% ✗未达标",
    "月均营销触达：3.20｜目标 3–5 ✓达标",
    "推送 7 日转化率：18.0%｜目标 ≥ 15.0% ✓达标",
    "前 1% 会员销售占比：50.0%｜目标 ≥ 55.0% ✗未达标",
    "推送可达率：65.0%｜目标 ≥ 60.0% ✓达标",
    "活跃会员月互动天数：2.50｜目标 ≥ 3 ✗未达标",
    "详见后台「运营数据看板」/admin",
])  # no year-on-year line: there is no year of data yet


async def _staff(wechat: WeChat, clock: FrozenClock) -> None:
    async with wechat.services.db.unit_of_work() as session:
        await staff.add(session, MANAGER, "manager", "test", clock.now())
        await staff.add(session, ADMIN_STAFF, "admin", "test", clock.now())
        await staff.add(session, CLERK, "clerk", "test", clock.now(), store="S01")


async def _click(wechat: WeChat, openid: str) -> str:
    """The staff menu's 数据概览 button: the reply's text."""
    reply = await wechat.event(openid, "CLICK", "STAFF_OVERVIEW")
    assert reply is not None
    return str(reply["Content"])


async def _snapshot(wechat: WeChat, day: date, figures: dict[str, object], clock: FrozenClock) -> None:
    async with wechat.services.db.unit_of_work() as session:
        session.add(KpiSnapshot(day=day, figures=json.dumps(figures), computed_at=clock.now()))


async def test_staff_read_yesterdays_figures_against_the_targets(wechat: WeChat, clock: FrozenClock) -> None:
    await _staff(wechat, clock)
    await _snapshot(wechat, date(2026, 11, 20), {**FIGURES, "members": 1}, clock)
    await _snapshot(wechat, date(2026, 11, 21), FIGURES, clock)
    said = await wechat.say(MANAGER, "数据概览")
    assert said == EXPECTED
    assert len(said.encode()) < MAX_TEXT_BYTES
    assert await wechat.say(ADMIN_STAFF, " 数据概览 ", encrypted=True) == EXPECTED
    assert await _click(wechat, MANAGER) == EXPECTED
    assert "【数据概览】" in await wechat.say(MANAGER, "帮助")


async def test_a_year_of_data_adds_the_growth_line_and_an_old_snapshot_says_so(
    wechat: WeChat, clock: FrozenClock,
) -> None:
    await _staff(wechat, clock)
    await _snapshot(wechat, date(2026, 11, 18), {**FIGURES, "yoy_growth": 0.3}, clock)
    said = await wechat.say(MANAGER, "数据概览")
    assert said.startswith("数据概览（2026-11-18）\n")
    assert "会员数同比增长：+30.0%｜目标 ≥ +25.0% ✓达标\n" in said
    assert said.endswith(f"{texts.OVERVIEW_STALE}\n{texts.OVERVIEW_FOOT}")


async def test_no_snapshot_yet_is_a_clear_answer(wechat: WeChat, clock: FrozenClock) -> None:
    await _staff(wechat, clock)
    assert await wechat.say(MANAGER, "数据概览") == texts.OVERVIEW_NONE


async def test_a_member_or_a_clerk_gets_the_usual_fallback(wechat: WeChat, clock: FrozenClock) -> None:
    await _staff(wechat, clock)
    await _snapshot(wechat, date(2026, 11, 21), FIGURES, clock)
    await sign_up(wechat, MEMBER, "13800138009")
    unknown = await wechat.say(MEMBER, "随便看看")
    said = await wechat.say(MEMBER, "数据概览")
    assert said == unknown
    assert "数据概览（" not in said
    assert await wechat.say(CLERK, "数据概览") == await wechat.say(CLERK, "随便看看")
    unknown_key = await wechat.event(MEMBER, "CLICK", "NO_SUCH_BUTTON")
    assert unknown_key is not None
    assert await _click(wechat, MEMBER) == unknown_key["Content"]
