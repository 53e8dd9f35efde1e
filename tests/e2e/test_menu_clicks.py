"""Menu CLICKs (issue 21): each default key answers like its keyword; the staff menu's keys work for staff
and give anyone else the help menu, exactly as the typed staff commands do."""

from __future__ import annotations

import pytest

from handlers import texts
from storage.rules import Rules
from tests.support.campaign_support import make_staff
from tests.support.fakes import WeChat
from tests.support.member_support import sign_up

CLICKER, TYPIST = "oCLICKER000000000000000000001", "oTYPIST0000000000000000000001"
STRANGER = "oSTRANGER00000000000000000001"
KEYWORDS = {"SIGNUP": "注册", "CHECKIN": "签到", "BALANCE": "积分", "REDEEM": "兑换", "COUPONS": "我的券",
            "CAMPAIGNS": "活动", "HELP": "帮助"}
# How each key's reply starts for a fresh member, so a click and a keyword that both fall back to the
# help menu cannot pass as "answering alike".
EXPECTED_START = {"SIGNUP": texts.already_member, "CHECKIN": "签到成功", "BALANCE": "您的积分：",
                  "REDEEM": texts.REDEEM_EMPTY, "COUPONS": texts.COUPONS_EMPTY, "CAMPAIGNS": texts.CAMPAIGNS_NONE,
                  "HELP": texts.HELP_MEMBER.split("\n")[0]}


def content(reply: dict[str, object] | None) -> str:
    assert reply is not None
    return str(reply.get("Content", ""))


def default_keys() -> list[str]:
    return [sub.key for top in Rules().menu.buttons for sub in top.sub_button]


def test_every_default_key_has_its_keyword() -> None:
    assert sorted(default_keys()) == sorted(KEYWORDS)


async def test_each_default_menu_click_answers_like_its_keyword(wechat: WeChat) -> None:
    await sign_up(wechat, CLICKER, phone="13800138001")
    await sign_up(wechat, TYPIST, phone="13800138002")
    for key in default_keys():
        clicked = content(await wechat.event(CLICKER, "CLICK", key))
        typed = await wechat.say(TYPIST, KEYWORDS[key])
        assert clicked == typed, key
        assert clicked, key
        if key != "HELP":
            assert clicked != texts.HELP_MEMBER, key
            assert not clicked.startswith(texts.HELP_MEMBER), key
        assert clicked.startswith(EXPECTED_START[key]), (key, clicked)
        await wechat.say(CLICKER, "取消")
        await wechat.say(TYPIST, "取消")


@pytest.mark.parametrize("key", ["STAFF_NEW_CAMPAIGN", "STAFF_CAMPAIGNS"])
async def test_a_staff_menu_click_by_a_non_staff_member_gets_the_help_menu(wechat: WeChat, key: str) -> None:
    assert content(await wechat.event(STRANGER, "CLICK", key)) == texts.help_menu(member=False, staff=False)
    assert await wechat.say(STRANGER, "发起活动") == texts.help_menu(member=False, staff=False)  # as the typed command


async def test_staff_menu_clicks_send_the_staff_commands(wechat: WeChat) -> None:
    await make_staff(wechat, STRANGER)
    assert content(await wechat.event(STRANGER, "CLICK", "STAFF_NEW_CAMPAIGN")) == texts.CAMPAIGN_ASK_KIND
    assert await wechat.say(STRANGER, "取消") == texts.CANCELLED
    assert content(await wechat.event(STRANGER, "CLICK", "STAFF_CAMPAIGNS")) == texts.CAMPAIGNS_NONE
