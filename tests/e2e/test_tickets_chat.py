"""Tickets in the chat through signed XML: the whole life (open, answer inside and outside the 48-hour
window, resolve, rate, reopen on a low rating), every bad input of issue 18, the fourth open ticket
refused kindly, 人工 as a measured (and VIP) hand-off, and no ticket text in any log line."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import update
from sqlmodel import col

from handlers import texts
from storage import cswindow, outbox
from storage.models import Outbox
from storage.sla import ServiceRules
from tests.e2e.test_redeem_chat import join
from tests.support import logcheck
from tests.support.fakes import WeChat
from tests.support.ticket_support import (
    CODE,
    add_order,
    add_staff,
    open_ticket,
    outbox_rows,
    thread,
    ticket,
    tickets_of,
)

ALICE = "oALICE00000000000000tickets"
BOB = "oBOB0000000000000000tickets"
AGENT = "oAGENT000000000000000tickets"
MANAGER = "oMANAGER00000000000000tickets"


async def test_open_a_ticket_with_every_bad_input_on_the_way(wechat: WeChat) -> None:
    alice, bob = await join(wechat, ALICE), await join(wechat, BOB, phone="13800138001")
    await add_order(wechat, alice, "ORD-A1")
    await add_order(wechat, bob, "ORD-B1")
    await add_staff(wechat, AGENT)
    assert await wechat.say(ALICE, "投诉") == texts.TICKET_ASK_CATEGORY
    assert await wechat.say(ALICE, "9") == texts.TICKET_BAD_CATEGORY
    assert await wechat.say(ALICE, "4") == texts.TICKET_ASK_TEXT
    assert await wechat.say(ALICE, "   ") == texts.TICKET_EMPTY_TEXT  # an empty description re-prompts
    reply = await wechat.send(wechat.side.image(ALICE, "https://mmbiz.example/pic.jpg", "MEDIA-1"))
    assert reply is not None
    assert reply["Content"] == texts.TICKET_IMAGE_TAKEN  # attached, not the non-text answer
    long_text = "快递外箱破损，" * 200  # 1,400 characters: kept whole
    assert await wechat.say(ALICE, long_text) == texts.TICKET_ASK_ORDER
    assert await wechat.say(ALICE, "ORD-B1") == texts.TICKET_BAD_ORDER.format(order="ORD-B1")  # Bob's order
    done = await wechat.say(ALICE, "ORD-A1")
    found = CODE.search(done)
    assert found is not None
    code = found.group(0)
    assert done == texts.TICKET_OPENED.format(code=code, category="配送", due="11-22 12:00")

    row = await ticket(wechat, code)
    assert (row.state, row.category, row.order_id, row.kind) == ("open", "配送", "ORD-A1", "ticket")
    assert row.member_id == alice
    [(first, body)] = await thread(wechat, code)
    assert body == long_text
    assert first.media == "MEDIA-1|https://mmbiz.example/pic.jpg"
    assert long_text not in first.body_enc  # encrypted at rest
    staff_rows = await outbox_rows(wechat, kind="ticket_staff")
    assert [r.openid for r in staff_rows] == [AGENT]
    listed = await wechat.say(ALICE, "我的工单")
    assert code in listed
    assert "待处理" in listed


async def test_the_whole_life_answer_inside_and_outside_the_window_resolve_and_rate(wechat: WeChat) -> None:
    await join(wechat, ALICE)
    await add_staff(wechat, AGENT)
    code = await open_ticket(wechat, ALICE)
    queue = await wechat.say(AGENT, "工单")
    assert queue.startswith(texts.STAFF_TICKETS_HEAD)
    assert code in queue
    assert "商品有破损" in queue

    # Inside the window (Alice just wrote): a customer-service message in the outbox.
    assert await wechat.say(AGENT, f"回复 {code} 您好，已为您安排补发") == texts.STAFF_ANSWERED.format(code=code)
    [sent] = await outbox_rows(wechat, kind="ticket_answer")
    assert (sent.openid, sent.status, sent.category) == (ALICE, outbox.PENDING, outbox.TRANSACTIONAL)
    row = await ticket(wechat, code)
    assert row.state == "answered"
    assert row.first_answer_at == wechat.services.clock.now()
    async with wechat.services.db.unit_of_work() as session:  # the sender delivered it
        await session.execute(update(Outbox).where(col(Outbox.id) == sent.id).values(status=outbox.SENT))
    assert "已为您安排补发" not in await wechat.say(ALICE, "积分")  # delivered once, not again in the chat

    # Outside the window: nothing queued, and Alice reads it before the reply to her next message.
    await cswindow.close(wechat.services.kv, "oa", ALICE)
    await wechat.say(AGENT, f"回复 {code} 第二条答复：快递单号稍后发您")
    assert len(await outbox_rows(wechat, kind="ticket_answer")) == 1
    reply = await wechat.say(ALICE, "积分")
    assert reply.startswith(texts.TICKET_ANSWER.format(code=code, body="第二条答复：快递单号稍后发您"))
    assert "积分" in reply.split("\n\n", 1)[1]  # ... and then the answer to what she asked
    assert "第二条答复" not in await wechat.say(ALICE, "积分")  # never twice

    # Resolved outside the window: told (with the note) and asked to rate at her next message.
    await cswindow.close(wechat.services.kv, "oa", ALICE)
    assert await wechat.say(AGENT, f"解决 {code} 已补发新品") == texts.STAFF_RESOLVED.format(code=code)
    told = await wechat.say(ALICE, "帮助")
    assert told.startswith(texts.TICKET_RESOLVED.format(code=code, body="已补发新品"))
    assert await wechat.say(ALICE, "5") == texts.TICKET_THANKS
    row = await ticket(wechat, code)
    assert (row.state, row.rating) == ("resolved", 5)
    assert await wechat.say(ALICE, "5") == texts.HELP_MEMBER  # rated once; a digit is then any text: the menu

    # Bad staff input: an unknown ticket, a resolved one, no text: a clear answer, nothing sent.
    before = len(await thread(wechat, code))
    assert await wechat.say(AGENT, "回复 T-ZZZZZZ 你好") == texts.ticket_unknown.format(code="T-ZZZZZZ")
    assert await wechat.say(AGENT, f"回复 {code} 还有问题吗") == texts.ticket_resolved.format(code=code)
    assert await wechat.say(AGENT, f"回复 {code}") == texts.STAFF_REPLY_USAGE
    assert len(await thread(wechat, code)) == before


async def test_a_low_rating_reopens_the_ticket_for_a_supervisor(wechat: WeChat) -> None:
    await join(wechat, ALICE)
    await add_staff(wechat, AGENT)
    code = await open_ticket(wechat, ALICE)
    await wechat.say(AGENT, f"解决 {code}")  # inside the window: one transactional message with the ask
    [told] = await outbox_rows(wechat, kind="ticket_resolved")
    assert told.openid == ALICE
    assert await wechat.say(ALICE, "1") == texts.TICKET_LOW_RATING.format(code=code)
    row = await ticket(wechat, code)
    assert (row.state, row.rating, row.supervisor, row.reopens, row.resolved_at) == ("open", 1, True, 1, None)
    assert code in await wechat.say(AGENT, "工单")


async def test_only_service_staff_answer_and_nothing_is_sent_otherwise(wechat: WeChat) -> None:
    await join(wechat, ALICE)
    await join(wechat, BOB, phone="13800138001")
    await add_staff(wechat, MANAGER, "manager")
    code = await open_ticket(wechat, ALICE)
    for who in (MANAGER, BOB):
        assert await wechat.say(who, f"回复 {code} 我来回答") == texts.STAFF_ONLY_SERVICE
        assert await wechat.say(who, f"解决 {code}") == texts.STAFF_ONLY_SERVICE
    assert await wechat.say(MANAGER, "工单") == await wechat.say(MANAGER, "随便说点什么")  # not a command for them
    row = await ticket(wechat, code)
    assert (row.state, row.first_answer_at) == ("open", None)
    assert len(await thread(wechat, code)) == 1
    assert await outbox_rows(wechat, kind="ticket_answer") == []


async def test_a_fourth_open_ticket_is_refused_kindly(wechat: WeChat) -> None:
    alice = await join(wechat, ALICE)
    for n in range(3):
        await open_ticket(wechat, ALICE, text=f"问题 {n}")
    assert await wechat.say(ALICE, "建议") == texts.ticket_too_many.format(limit=3)
    assert await wechat.say(ALICE, "1") == texts.HELP_MEMBER  # no flow was started: a digit is any text
    assert len(await tickets_of(wechat, alice)) == 3


async def test_agent_opens_or_reuses_a_hand_off_ticket_and_vips_go_to_their_kf_account(wechat: WeChat) -> None:
    alice = await join(wechat, ALICE)
    assert await wechat.say(ALICE, "人工") == "transfer_customer_service"
    assert await wechat.say(ALICE, "人工") == "transfer_customer_service"
    [handoff] = await tickets_of(wechat, alice)
    assert (handoff.kind, handoff.state) == ("hand-off", "open")
    services = wechat.services
    services.rules = replace(services.rules, service=ServiceRules(vip_tiers=("普通",), vip_kf_account="vip@brand"))
    reply = await wechat.send(wechat.side.text(ALICE, "人工"))
    assert reply is not None
    assert reply["TransInfo"]["KfAccount"] == "vip@brand"
    assert len(await tickets_of(wechat, alice)) == 1


async def test_an_owed_answer_does_not_displace_the_hand_off(wechat: WeChat) -> None:
    await join(wechat, ALICE)
    await add_staff(wechat, AGENT)
    code = await open_ticket(wechat, ALICE)
    await cswindow.close(wechat.services.kv, "oa", ALICE)
    await wechat.say(AGENT, f"回复 {code} 请问订单号是多少")
    assert await wechat.say(ALICE, "人工") == "transfer_customer_service"  # still the passive reply
    [extra] = await outbox_rows(wechat, openid=ALICE, kind="reply")  # the answer follows as a message
    assert "请问订单号是多少" in extra.payload


async def test_ticket_texts_never_appear_in_a_log_line(wechat: WeChat) -> None:
    await join(wechat, ALICE)
    await add_staff(wechat, AGENT)
    secret, answer = "我家地址是幸福路九十九号XYZZY", "已收到您的地址QWERTY"
    with logcheck.WATCH.tap() as lines:
        code = await open_ticket(wechat, ALICE, text=secret)
        await wechat.say(AGENT, "工单")
        await cswindow.close(wechat.services.kv, "oa", ALICE)
        await wechat.say(AGENT, f"回复 {code} {answer}")
        await wechat.say(ALICE, "积分")
    assert len(lines) > 20  # the app did log (SQL with parameters) while the texts went through
    assert [line for _, line in lines if "XYZZY" in line or "幸福路" in line] == []
    assert [line for _, line in lines if "QWERTY" in line] == []
