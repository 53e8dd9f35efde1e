"""A member who deleted their membership (注销) left their complaint's words, picture and survey follow-up in
the tickets, readable by operators, and a staff answer written later would have reached whoever wrote from
that openid next. Now the member's words are erased (the ticket, its staff answers and the figures stay) and
the ticket no longer points at the released openid."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.console import texts as console_texts
from handlers import texts
from storage.models import Survey, SurveyAsk, Ticket
from tests.e2e.test_redeem_chat import join
from tests.support.console_support import ConsoleWorld, console_world
from tests.support.ticket_support import add_staff, open_ticket, thread, ticket

ALICE = "oALICE0000000000000deleted01"
AGENT = "oAGENT0000000000000deleted01"


@pytest.fixture
async def world(urls: tuple[str, str], clock):  # type: ignore[no-untyped-def]
    async with console_world(urls, clock) as found:
        yield found


async def test_a_deleted_members_words_leave_their_tickets(world: ConsoleWorld) -> None:
    chat = world.wechat
    alice = await join(chat, ALICE)
    await add_staff(chat, AGENT)
    code = await open_ticket(chat, ALICE, text="杯子有裂缝，电话13800138000")
    assert await chat.say(AGENT, f"回复 {code} 请寄回") == texts.STAFF_ANSWERED.format(code=code)
    found = await ticket(chat, code)
    now = chat.services.clock.now()
    async with chat.services.db.unit_of_work() as session:  # an answered survey with a follow-up text
        survey = Survey(name="服务满意度", kind="nps", question="推荐吗？", followup="为什么？", touchpoint="ticket",
                        created_at=now)
        session.add(survey)
        await session.flush()
        session.add(SurveyAsk(survey_id=survey.id or 0, member_id=alice, trigger_key=f"ticket:{found.id}",
                              touchpoint="ticket", triggered_at=now, state="answered", score=3, answered_at=now,
                              followup_enc=chat.services.pii.encrypt("店员态度很差")))
    operator = await world.as_role("operator")
    assert "杯子有裂缝" in (await operator.get(f"/admin/tickets/{found.id}")).text

    assert await chat.say(ALICE, "注销") == texts.DELETE_CONFIRM.format(balance=100)
    assert await chat.say(ALICE, "确认注销") == texts.DELETED

    page = (await operator.get(f"/admin/tickets/{found.id}")).text
    assert "杯子有裂缝" not in page
    assert console_texts.TICKET_ERASED in page
    assert "请寄回" in page  # the staff answer stays, as does the ticket
    bodies = [(m.author, body, m.openid) for m, body in await thread(chat, code)]
    assert [(author, body) for author, body, _ in bodies] == [("member", ""), ("staff", "请寄回")]
    assert {openid for _, _, openid in bodies} == {""}
    async with chat.services.db.sessions() as session:
        kept = await session.scalar(select(Ticket).where(Ticket.code == code))
        asks = (await session.scalars(select(SurveyAsk).where(SurveyAsk.member_id == alice))).all()
    assert kept is not None
    assert (kept.openid, kept.member_id, kept.category) == ("", alice, found.category)
    assert [(a.score, a.followup_enc) for a in asks] == [(3, None)]  # the score stays for NPS, not the words

    # The same person writing again is a new visitor: the old ticket is not theirs.
    assert await chat.say(ALICE, "我的工单") == await chat.say("oSOMEONEnew00000000deleted01", "我的工单")
