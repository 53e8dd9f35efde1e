"""Satisfaction surveys through signed XML (issue 18 item 5): a paid order (the POS's signed webhook)
records a pending ask; the member's next message within 7 days carries the question in its one passive
reply (nothing in the outbox for it); asked at most once per 90 days across surveys; never after 7 days;
a member who writes something else is not stuck (the ask is dropped and the message handled as usual);
out of the scale re-asks once then lets go; 取消 declines; the open follow-up takes the next text whole;
a detractor opens a follow-up ticket in the queue; the thank-you is credited once under the daily cap;
and no survey text reaches a log line."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlmodel import col

from handlers import texts
from storage import surveys
from storage.audit import Actor
from storage.clock import FrozenClock
from storage.models import LedgerEntry, Member, SurveyAsk, Ticket
from tests.e2e.test_redeem_chat import join
from tests.support import logcheck
from tests.support.fakes import WeChat
from tests.support.member_support import app_with_order_secret, pay
from tests.support.ticket_support import add_staff, outbox_rows, thread

ALICE = "oSURVEY_ALICE_00000000000001"
BOB = "oSURVEY_BOB_0000000000000002"
AGENT = "oSURVEY_AGENT_00000000000003"
NPS_ASK = texts.SURVEY_ASK.format(question=texts.SURVEY_NPS_QUESTION, scale=texts.SURVEY_SCALES["nps"])


@pytest.fixture
async def wechat(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[WeChat]:
    async with app_with_order_secret(urls, clock) as harness:
        yield harness


async def define(wechat: WeChat, kind: str = "nps", *, touchpoint: str = "order", followup: str | None = None,
                 thanks: int = 0, question: str = "") -> int:
    """A survey as an operator defines it (the console form is tested in tests/e2e/console)."""
    draft = surveys.Draft(name=f"{kind} 调查", kind=kind, touchpoint=touchpoint, followup=followup,
                          question=question or texts.SURVEY_NPS_QUESTION, thanks_points=thanks)
    async with wechat.services.db.unit_of_work() as session:
        survey = await surveys.create(session, Actor("运营小王", "operator"), draft, wechat.services.clock.now())
    return int(survey.id or 0)


async def asks_of(wechat: WeChat, member_id: int) -> list[SurveyAsk]:
    async with wechat.services.db.sessions() as session:
        return list((await session.scalars(select(SurveyAsk).where(col(SurveyAsk.member_id) == member_id)
                                           .order_by(col(SurveyAsk.id)))).all())


async def survey_rows_in_outbox(wechat: WeChat) -> list[str]:
    """Every outbox payload that carries a survey's words (there must be none: never a push)."""
    words = (texts.SURVEY_NPS_QUESTION, "满意度调查", texts.SURVEY_SCALES["nps"], texts.SURVEY_SCALES["csat"])
    return [r.payload for r in await outbox_rows(wechat) if any(w in r.payload for w in words)]


async def test_asked_with_the_next_reply_never_pushed_answered_once_and_not_again_for_90_days(
    wechat: WeChat,
) -> None:
    alice = await join(wechat, ALICE)
    await define(wechat, thanks=5)
    await pay(wechat, "S-1", 5_000, openid=ALICE)
    await pay(wechat, "S-1", 5_000, openid=ALICE)  # the POS retries: one ask per trigger
    [ask] = await asks_of(wechat, alice)
    assert (ask.state, ask.touchpoint, ask.trigger_key) == ("pending", "order", "order:S-1")
    assert await survey_rows_in_outbox(wechat) == []  # the trigger pushes nothing

    reply = await wechat.say(ALICE, "积分")
    head, asked = reply.rsplit("\n\n", 1)
    assert head.startswith("您的积分：")  # the answer to what she asked first (texts.BALANCE) ...
    assert asked == NPS_ASK  # ... and the question in the same passive reply
    assert await survey_rows_in_outbox(wechat) == []  # never a customer-service or push message

    balance = (await _member(wechat, alice)).balance
    assert await wechat.say(ALICE, "9") == texts.SURVEY_THANKS + texts.SURVEY_THANKS_POINTS.format(points=5)
    [ask] = await asks_of(wechat, alice)
    assert (ask.state, ask.score, ask.thanked, ask.ticket_id) == ("answered", 9, 5, None)
    assert (await _member(wechat, alice)).balance == balance + 5
    [entry] = await _entries(wechat, alice, "survey")
    assert (entry.idempotency_key, entry.delta) == (f"survey:{ask.id}", 5)

    # A digit is then just a digit (not a second answer), and a new trigger within 90 days asks nothing.
    assert await wechat.say(ALICE, "9") == texts.HELP_MEMBER  # any text: the menu
    wechat.services.clock.advance(days=30)
    await pay(wechat, "S-2", 5_000, openid=ALICE)
    assert texts.SURVEY_NPS_QUESTION not in await wechat.say(ALICE, "积分")
    assert [a.state for a in await asks_of(wechat, alice)] == ["answered"]  # none recorded within 90 days
    # Across surveys too: a CSAT survey on the same touchpoint waits out the 90 days as well.
    await define(wechat, "csat", question="您对这次购物满意吗？")
    wechat.services.clock.advance(days=59)  # day 89 after the ask
    await pay(wechat, "S-3", 5_000, openid=ALICE)
    assert "满意度调查" not in await wechat.say(ALICE, "积分")
    wechat.services.clock.advance(days=2)  # day 91
    await pay(wechat, "S-4", 5_000, openid=ALICE)
    csat_ask = texts.SURVEY_ASK.format(question="您对这次购物满意吗？", scale=texts.SURVEY_SCALES["csat"])
    assert (await wechat.say(ALICE, "积分")).endswith(csat_ask)  # the newest of the two asks
    assert [a.state for a in await asks_of(wechat, alice)] == ["answered", "skipped", "asked"]
    assert await survey_rows_in_outbox(wechat) == []


async def test_asked_only_within_7_days_of_the_trigger(wechat: WeChat) -> None:
    alice = await join(wechat, ALICE)
    await define(wechat)
    await pay(wechat, "S-OLD", 5_000, openid=ALICE)
    wechat.services.clock.advance(days=7, seconds=1)
    reply = await wechat.say(ALICE, "积分")
    assert texts.SURVEY_NPS_QUESTION not in reply
    assert [a.state for a in await asks_of(wechat, alice)] == ["pending"]  # the row says nothing is due
    assert (await _member(wechat, alice)).survey_due_until is not None
    await pay(wechat, "S-NEW", 5_000, openid=ALICE)
    wechat.services.clock.advance(days=6, hours=23)  # just inside the new trigger's 7 days
    assert (await wechat.say(ALICE, "积分")).endswith(NPS_ASK)
    assert [a.state for a in await asks_of(wechat, alice)] == ["expired", "asked"]


async def test_a_member_who_writes_something_else_is_not_stuck(wechat: WeChat) -> None:
    alice = await join(wechat, ALICE)
    await define(wechat)
    await pay(wechat, "S-1", 5_000, openid=ALICE)
    assert (await wechat.say(ALICE, "帮助")).endswith(NPS_ASK)
    checked_in = await wechat.say(ALICE, "签到")  # not an answer: handled as usual, the ask dropped
    assert checked_in.startswith("签到成功！+")
    [ask] = await asks_of(wechat, alice)
    assert (ask.state, ask.score) == ("dropped", None)
    assert await wechat.say(ALICE, "8") == texts.HELP_MEMBER  # the digit afterwards answers nothing
    assert (await asks_of(wechat, alice))[0].score is None
    # A flow entry right after the question starts that flow.
    bob = await join(wechat, BOB, phone="13800138001")
    await pay(wechat, "S-2", 5_000, openid=BOB)
    assert (await wechat.say(BOB, "积分")).endswith(NPS_ASK)
    assert await wechat.say(BOB, "投诉") == texts.TICKET_ASK_CATEGORY
    assert await wechat.say(BOB, "2") == texts.TICKET_ASK_TEXT  # the ticket flow's step, not the survey
    assert [a.state for a in await asks_of(wechat, bob)] == ["dropped"]


async def test_out_of_range_re_asks_once_then_lets_go(wechat: WeChat) -> None:
    alice = await join(wechat, ALICE)
    await define(wechat, "csat", question="您对这次服务满意吗？")
    await pay(wechat, "S-1", 5_000, openid=ALICE)
    assert "您对这次服务满意吗？" in await wechat.say(ALICE, "积分")
    assert await wechat.say(ALICE, "7") == texts.SURVEY_OUT_OF_RANGE.format(low=1, high=5)
    assert await wechat.say(ALICE, "0") == texts.SURVEY_LET_GO
    [ask] = await asks_of(wechat, alice)
    assert (ask.state, ask.score) == ("dropped", None)
    assert await wechat.say(ALICE, "4") == texts.HELP_MEMBER  # let go: nothing answers any more
    # Re-asked once, then a score in range still answers.
    bob = await join(wechat, BOB, phone="13800138001")
    await pay(wechat, "S-2", 5_000, openid=BOB)
    await wechat.say(BOB, "积分")
    assert await wechat.say(BOB, "11") == texts.SURVEY_OUT_OF_RANGE.format(low=1, high=5)
    assert await wechat.say(BOB, "5") == texts.SURVEY_THANKS
    assert [(a.state, a.score) for a in await asks_of(wechat, bob)] == [("answered", 5)]


async def test_cancel_declines_and_the_follow_up_can_be_skipped(wechat: WeChat) -> None:
    alice = await join(wechat, ALICE)
    await define(wechat, followup="有什么可以做得更好？")
    await pay(wechat, "S-1", 5_000, openid=ALICE)
    assert (await wechat.say(ALICE, "积分")).endswith(NPS_ASK)
    assert await wechat.say(ALICE, "取消") == texts.SURVEY_DECLINED
    [ask] = await asks_of(wechat, alice)
    assert (ask.state, ask.score) == ("declined", None)
    assert await wechat.say(ALICE, "取消") == texts.NOTHING_TO_CANCEL + "\n" + texts.help_menu(member=True, staff=False)

    bob = await join(wechat, BOB, phone="13800138001")
    await pay(wechat, "S-2", 5_000, openid=BOB)
    await wechat.say(BOB, "积分")
    assert await wechat.say(BOB, "10") == texts.SURVEY_THANKS + "\n" + texts.SURVEY_FOLLOWUP.format(
        question="有什么可以做得更好？")
    assert await wechat.say(BOB, "取消") == texts.SURVEY_FOLLOWUP_SKIPPED
    [ask] = await asks_of(wechat, bob)
    assert (ask.state, ask.score, ask.followup_enc) == ("answered", 10, None)


async def test_a_detractor_opens_a_follow_up_ticket_and_the_open_answer_is_kept_whole(wechat: WeChat) -> None:
    alice = await join(wechat, ALICE)
    await add_staff(wechat, AGENT)
    await define(wechat, followup="哪里让您不满意？")
    await pay(wechat, "S-1", 5_000, openid=ALICE)
    await wechat.say(ALICE, "积分")
    reply = await wechat.say(ALICE, "3")
    [ticket] = await _tickets(wechat, alice)
    assert (ticket.kind, ticket.category, ticket.state) == ("survey", surveys.FOLLOWUP_CATEGORY, "open")
    assert reply == (texts.SURVEY_THANKS + texts.SURVEY_SORRY.format(code=ticket.code) + "\n"
                     + texts.SURVEY_FOLLOWUP.format(question="哪里让您不满意？"))
    long_words = "送货太慢了，包装也破了。" * 120  # 1,440 characters, kept whole
    assert await wechat.say(ALICE, long_words) == texts.SURVEY_FOLLOWUP_THANKS
    [ask] = await asks_of(wechat, alice)
    assert (ask.state, ask.score, ask.ticket_id) == ("answered", 3, ticket.id)
    assert ask.followup_enc is not None
    assert wechat.services.pii.decrypt(ask.followup_enc) == long_words
    assert long_words not in ask.followup_enc  # encrypted at rest
    bodies = [body for _, body in await thread(wechat, ticket.code)]
    assert bodies[-1] == long_words  # on the follow-up ticket's thread too
    assert ticket.code in await wechat.say(AGENT, "工单")  # in the service staff's queue
    # A promoter or passive opens none.
    bob = await join(wechat, BOB, phone="13800138001")
    await pay(wechat, "S-2", 5_000, openid=BOB)
    await wechat.say(BOB, "积分")
    await wechat.say(BOB, "7")
    assert await _tickets(wechat, bob) == []


async def test_a_resolved_ticket_triggers_and_its_rating_goes_first(wechat: WeChat) -> None:
    from tests.support.ticket_support import open_ticket

    alice = await join(wechat, ALICE)
    await add_staff(wechat, AGENT)
    await define(wechat, "csat", touchpoint="ticket", question="您对客服的处理满意吗？")
    code = await open_ticket(wechat, ALICE)
    await wechat.say(AGENT, f"解决 {code} 已处理")
    [ask] = await asks_of(wechat, alice)
    assert (ask.touchpoint, ask.state) == ("ticket", "pending")
    assert "满意度调查" not in await wechat.say(ALICE, "帮助")  # the ticket's rating is asked: it comes first
    assert await wechat.say(ALICE, "5") == texts.TICKET_THANKS
    assert "您对客服的处理满意吗？" in await wechat.say(ALICE, "积分")
    assert await wechat.say(ALICE, "4") == texts.SURVEY_THANKS


async def test_the_thank_you_counts_under_the_daily_cap(wechat: WeChat) -> None:
    alice = await join(wechat, ALICE)  # the sign-up bonus is not capped here; fill the day's cap first
    cap = wechat.services.rules.daily_earn_cap
    await define(wechat, thanks=10)
    async with wechat.services.db.unit_of_work() as session:
        await wechat.services.ledger.earn(session, alice, cap, key="checkin:test", kind="checkin",
                                          now=wechat.services.clock.now())
    await pay(wechat, "S-1", 5_000, openid=ALICE)
    await wechat.say(ALICE, "积分")
    assert await wechat.say(ALICE, "10") == texts.SURVEY_THANKS  # nothing credited over the cap
    [ask] = await asks_of(wechat, alice)
    assert ask.thanked == 0
    assert [e.delta for e in await _entries(wechat, alice, "survey")] == [0]


async def test_survey_texts_never_appear_in_a_log_line(wechat: WeChat) -> None:
    await join(wechat, ALICE)
    await define(wechat, followup="还有什么想说的？")
    secret = "我住在幸福路九十九号XYZZY"
    with logcheck.WATCH.tap() as lines:
        await pay(wechat, "S-1", 5_000, openid=ALICE)
        await wechat.say(ALICE, "积分")
        await wechat.say(ALICE, "2")
        await wechat.say(ALICE, secret)
    assert len(lines) > 20  # the app did log (SQL with parameters) while the texts went through
    assert [line for _, line in lines if "XYZZY" in line or "幸福路" in line] == []
    app = [line for name, line in lines if name.startswith("wxbot")]
    assert any("survey answered" in line for line in app)  # the app logged the survey's moves ...
    assert [line for line in app if texts.SURVEY_NPS_QUESTION in line or "还有什么想说的" in line] == []  # not words


async def _member(wechat: WeChat, member_id: int) -> Member:
    async with wechat.services.db.sessions() as session:
        found = await session.get(Member, member_id)
    assert found is not None
    return found


async def _entries(wechat: WeChat, member_id: int, kind: str) -> list[LedgerEntry]:
    async with wechat.services.db.sessions() as session:
        return list((await session.scalars(select(LedgerEntry).where(col(LedgerEntry.member_id) == member_id)
                                           .where(col(LedgerEntry.kind) == kind))).all())


async def _tickets(wechat: WeChat, member_id: int) -> list[Ticket]:
    async with wechat.services.db.sessions() as session:
        return list((await session.scalars(select(Ticket).where(col(Ticket.member_id) == member_id))).all())

