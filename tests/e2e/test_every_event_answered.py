"""Issue 21: every event answered, the help menu fits who asks, and a refusal keeps the member in the
flow. Through signed XML, the menu read as the member reads it, the counters read from /metrics."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from handlers import texts
from storage import staff
from tests.support.campaign_support import MANAGER, make_staff
from tests.support.fakes import WeChat
from tests.support.member_support import sign_up

VISITOR = "oVISITOR000000000000000000e21"
MEMBER = "oMEMBER0000000000000000000e21"
SUCCESS = None  # wechat.event() returns None for a bare `success`


async def unknown_count(wechat: WeChat, kind: str) -> float:
    response = await wechat.client.get("/metrics")
    assert response.status_code == 200
    families = [f for f in text_string_to_metric_families(response.text) if f.name == "wxbot_unknown_events"]
    assert families, "wxbot_unknown_events_total is missing from /metrics"
    for sample in families[0].samples:
        if sample.name == "wxbot_unknown_events_total" and sample.labels == {"kind": kind}:
            return sample.value
    return 0.0  # the counter is exported, this label has not been counted yet


def lines(text: str) -> list[str]:
    return text.splitlines()


# --- the help menu fits who asks ----------------------------------------------------------------------

async def test_a_visitor_sees_sign_up_first_and_what_a_member_gets(wechat: WeChat) -> None:
    menu = await wechat.say(VISITOR, "帮助")
    assert menu == texts.HELP_VISITOR
    assert len(lines(menu)) <= 12
    assert "【注册】" in lines(menu)[1]
    assert "【签到】" in menu
    assert "【兑换】" in menu
    assert "【发起活动】" not in menu
    assert "【帮助 更多】" in lines(menu)[-1]
    assert await wechat.say(VISITOR, "今天天气怎么样") == menu  # an unknown message too


async def test_a_member_sees_their_commands(wechat: WeChat) -> None:
    await sign_up(wechat, MEMBER)
    menu = await wechat.say(MEMBER, "help")
    assert menu == texts.HELP_MEMBER
    assert len(lines(menu)) <= 12
    for command in ("【签到】", "【积分】", "【明细】", "【兑换】", "【我的券】", "【活动】", "【取消】"):
        assert command in menu, command
    assert "【注册】" not in menu
    assert "【发起活动】" not in menu
    click = await wechat.event(MEMBER, "CLICK", "HELP")
    assert click is not None
    assert click["Content"] == menu


async def test_a_manager_also_sees_the_staff_commands(wechat: WeChat) -> None:
    await sign_up(wechat, MANAGER)
    await make_staff(wechat)
    menu = await wechat.say(MANAGER, "菜单")
    assert menu == texts.help_menu(member=True, staff=True)
    assert len(lines(menu)) <= 12
    assert lines(menu)[:-1] == lines(texts.HELP_MEMBER)[:-1] + [texts.HELP_STAFF_LINE]
    for command in ("【发起活动】", "活动数据 活动码", "结束活动 活动码"):
        assert command in menu, command
    assert lines(menu)[-1] == lines(texts.HELP_MEMBER)[-1]


async def test_the_staff_line_comes_and_goes_with_the_staff_table_message_by_message(wechat: WeChat) -> None:
    """Within a minute of the last message no interaction is due, and the menu's member row and staff role
    come in one lookup: being made staff, or no longer, shows in the very next menu."""
    await sign_up(wechat, MANAGER)
    assert await wechat.say(MANAGER, "帮助") == texts.HELP_MEMBER
    await make_staff(wechat)
    assert await wechat.say(MANAGER, "帮助") == texts.help_menu(member=True, staff=True)
    assert await wechat.say(MANAGER, "hello") == texts.help_menu(member=True, staff=True)
    async with wechat.services.db.unit_of_work() as session:
        assert await staff.remove(session, MANAGER)
    assert await wechat.say(MANAGER, "帮助") == texts.HELP_MEMBER
    assert await wechat.say(VISITOR, "帮助") == texts.HELP_VISITOR  # a first contact: no member row before
    await make_staff(wechat, VISITOR)
    assert await wechat.say(VISITOR, "帮助") == texts.help_menu(member=False, staff=True)


async def test_help_more_lists_everything(wechat: WeChat) -> None:
    everything = ("【注册】", "【签到】", "【积分】", "【明细】", "【兑换】", "【我的券】", "【活动】", "参加 活动码",
                  "【退订】", "订阅", "【我的数据】", "【注销】", "【人工】", "【取消】")
    for words in ("帮助 更多", "帮助更多", "help more", "HELP  MORE"):
        reply = await wechat.say(VISITOR, words)
        assert reply == texts.HELP_MORE, words
        for command in everything:
            assert command in reply, command
    await sign_up(wechat, MANAGER)
    await make_staff(wechat)
    assert await wechat.say(MANAGER, "帮助 更多") == texts.HELP_MORE + "\n" + texts.HELP_STAFF_LINE


async def test_nothing_to_cancel_shows_the_members_menu(wechat: WeChat) -> None:
    await sign_up(wechat, MEMBER)
    assert await wechat.say(MEMBER, "取消") == texts.NOTHING_TO_CANCEL + "\n" + texts.HELP_MEMBER


# --- every event answered -----------------------------------------------------------------------------

async def test_an_unknown_menu_key_gets_the_menu_and_is_counted(
    wechat: WeChat, caplog: pytest.LogCaptureFixture
) -> None:
    await sign_up(wechat, MEMBER)
    before = await unknown_count(wechat, "click")
    long_key = "PROMO_" + "X" * 200
    with caplog.at_level(logging.INFO):
        click = await wechat.event(MEMBER, "CLICK", long_key)
    assert click is not None
    assert click["Content"] == texts.HELP_MEMBER
    assert await unknown_count(wechat, "click") == before + 1
    logged = [r.getMessage().split("unknown click", 1)[1] for r in caplog.records if "unknown click" in r.getMessage()]
    assert len(logged) == 1
    assert f"key='{long_key[:64]}'" in logged[0]  # capped (the record's bound prefix is the delivery's key)
    response = await wechat.client.get("/metrics")
    assert long_key not in response.text  # the label is the kind, not the key
    known = await wechat.event(MEMBER, "CLICK", "CHECKIN")  # a registered key wins over the fallback
    assert known is not None
    assert known["Content"].startswith("签到成功")
    assert await unknown_count(wechat, "click") == before + 1


async def test_an_unknown_qr_scene_gets_the_menu_or_the_welcome_and_is_counted(wechat: WeChat) -> None:
    before = await unknown_count(wechat, "scene")
    scan = await wechat.event(VISITOR, "SCAN", "poster_spring_2026", Ticket="t")
    assert scan is not None
    assert scan["Content"] == texts.HELP_VISITOR
    assert await unknown_count(wechat, "scene") == before + 1
    newcomer = "oNEWCOMER00000000000000000e21"
    follow = await wechat.event(newcomer, "subscribe", "qrscene_poster_spring_2026", Ticket="t")
    assert follow is not None
    assert follow["Content"] == texts.WELCOME  # welcomed as any new follower
    assert await unknown_count(wechat, "scene") == before + 2


@pytest.mark.parametrize(
    ("event", "key", "extra"),
    [
        ("VIEW", "https://shop.example.com/", {}),
        ("LOCATION", None, {"Latitude": "23.1", "Longitude": "113.3", "Precision": "100"}),
        ("TEMPLATESENDJOBFINISH", None, {"MsgID": "3100000000000000009", "Status": "success"}),
        ("MASSSENDJOBFINISH", None, {"MsgID": "1000001625", "Status": "send success", "TotalCount": "1"}),
        ("subscribe_msg_sent_event", None, {}),
    ],
)
async def test_reports_stay_acknowledged(wechat: WeChat, event: str, key: str | None, extra: dict[str, str]) -> None:
    before = (await unknown_count(wechat, "click"), await unknown_count(wechat, "scene"))
    assert await wechat.event(VISITOR, event, key, **extra) is SUCCESS
    assert (await unknown_count(wechat, "click"), await unknown_count(wechat, "scene")) == before


# --- refusals keep the member in the flow ----------------------------------------------------------------

async def test_a_campaign_refusal_reasks_and_the_next_answer_goes_on(wechat: WeChat) -> None:
    await make_staff(wechat)
    assert await wechat.say(MANAGER, "发起活动") == texts.CAMPAIGN_ASK_KIND
    assert await wechat.say(MANAGER, "7") == texts.CAMPAIGN_BAD_KIND
    assert await wechat.say(MANAGER, "1") == texts.CAMPAIGN_ASK_TITLE
    assert await wechat.say(MANAGER, "好") == texts.CAMPAIGN_BAD_TITLE
    assert await wechat.say(MANAGER, "报名有礼") == texts.CAMPAIGN_ASK_POINTS
    assert await wechat.say(MANAGER, "5000") == texts.CAMPAIGN_BAD_POINTS
    assert await wechat.say(MANAGER, "10") == texts.CAMPAIGN_ASK_CAP.format(low=1)


async def test_a_deletion_refusal_reasks_and_the_confirmation_goes_on(wechat: WeChat) -> None:
    await sign_up(wechat, MEMBER)
    assert await wechat.say(MEMBER, "注销") == texts.DELETE_CONFIRM.format(balance=100)
    assert await wechat.say(MEMBER, "好的") == texts.DELETE_NEED_CONFIRM
    assert await wechat.say(MEMBER, "确认注销") == texts.DELETED
