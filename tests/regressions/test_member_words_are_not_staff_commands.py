"""A member's "回复太慢了" got "只有客服人员可以处理工单。", and "解决不了…" typed as a ticket's description
cancelled the ticket: any text starting with 回复/解决 was taken for a staff command. Only a ticket code
(`T-…`), or service staff, make it one."""

from __future__ import annotations

from handlers import texts
from tests.e2e.test_redeem_chat import join
from tests.support.fakes import WeChat
from tests.support.ticket_support import CODE, ticket

CAROL = "oCAROL0000000000000staffcmd"


async def test_a_members_words_starting_with_reply_or_resolve_are_their_own(wechat: WeChat) -> None:
    await join(wechat, CAROL)
    reply = await wechat.say(CAROL, "回复太慢了")
    assert reply != texts.STAFF_ONLY_SERVICE
    assert reply == await wechat.say(CAROL, "随便说点什么")  # what any unrecognised text gets: the menu


async def test_a_description_starting_with_resolve_becomes_the_ticket(wechat: WeChat) -> None:
    await join(wechat, CAROL)
    await wechat.say(CAROL, "投诉")
    await wechat.say(CAROL, "1")
    await wechat.say(CAROL, "解决不了，质量太差")
    done = await wechat.say(CAROL, "跳过")
    found = CODE.search(done)
    assert found is not None, done
    assert (await ticket(wechat, found.group(0))).state == "open"


async def test_a_member_naming_a_ticket_code_is_still_told_it_is_for_staff(wechat: WeChat) -> None:
    await join(wechat, CAROL)
    assert await wechat.say(CAROL, "回复 T-ABC123 你好") == texts.STAFF_ONLY_SERVICE
