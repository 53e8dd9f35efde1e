"""The ticket SLA on a simulated clock: first answer and resolution due times with and without business
hours (the clock pauses outside them), the `ticket_sla` job escalating a late ticket once (robot message
`ticket_sla:<id>`, the breach recorded), and the queue's figures on a hand-built set of tickets."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.console import texts as console_texts
from bot.wechat.pushtexts import robot_text
from scheduler.jobs import JOBS, SCHEDULE, JobContext, ticket_sla
from storage import ticketsla
from storage.clock import FrozenClock
from storage.models import Member, Ticket
from storage.rules import RulesError, rules_from_dict
from storage.sla import ServiceRules, Sla
from tests.e2e.test_redeem_chat import join
from tests.support.fakes import WeChat
from tests.support.ticket_support import add_staff, open_ticket, outbox_rows, ticket

TZ = ZoneInfo("Asia/Shanghai")
ALICE = "oALICE0000000000000000sla"
AGENT = "oAGENT0000000000000000sla"
ROBOT = "robot-key-service"


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


def job(wechat: WeChat) -> JobContext:
    return JobContext(wechat.services.db, wechat.services.ledger, "", ROBOT)


async def test_without_business_hours_a_ticket_unanswered_for_two_hours_is_escalated_once(
    wechat: WeChat, clock: FrozenClock,
) -> None:
    clock.set(local(23, 17))
    await join(wechat, ALICE)
    code = await open_ticket(wechat, ALICE)
    row = await ticket(wechat, code)
    assert row.answer_due_at == local(23, 19)
    assert row.resolve_due_at == local(25, 17)
    clock.set(local(23, 18, 59))
    assert await ticket_sla(job(wechat), clock.now()) == 0
    clock.set(local(23, 19, 1))
    assert await ticket_sla(job(wechat), clock.now()) == 1
    assert await ticket_sla(job(wechat), clock.now()) == 0  # once
    clock.advance(days=3)  # past the resolution time too: still once
    assert await ticket_sla(job(wechat), clock.now()) == 0
    row = await ticket(wechat, code)
    assert (row.breach, row.escalated_at) == ("answer", local(23, 19, 1))
    [posted] = await outbox_rows(wechat, kind="ticket", dedupe_key=f"ticket_sla:{row.id}")
    assert posted.source == "wecom"
    expected = console_texts.TICKET_ANNOUNCE["sla_answer"].format(code=code, category="商品",
                                                                  path=f"/admin/tickets/{row.id}")
    assert robot_text(posted.kind, json.loads(posted.payload)) == expected


async def test_with_business_hours_the_clock_pauses_overnight(wechat: WeChat, clock: FrozenClock) -> None:
    services = wechat.services
    services.rules = replace(services.rules, service=ServiceRules(business_hours=(time(9), time(18))))
    clock.set(local(23, 17))  # one business hour left today: the second runs from 09:00 tomorrow
    await join(wechat, ALICE)
    code = await open_ticket(wechat, ALICE)
    row = await ticket(wechat, code)
    assert row.answer_due_at == local(24, 10)
    assert row.resolve_due_at == local(29, 11)  # 48 business hours: 1 today, 9 x 5 (24th-28th), 2 on the 29th
    clock.set(local(23, 21))  # four wall hours later: not late in business time
    assert await ticket_sla(job(wechat), clock.now()) == 0
    clock.set(local(24, 10, 1))
    assert await ticket_sla(job(wechat), clock.now()) == 1
    assert await ticket_sla(job(wechat), clock.now()) == 0
    assert (await ticket(wechat, code)).breach == "answer"


async def test_an_answered_ticket_is_escalated_when_resolution_runs_late(wechat: WeChat, clock: FrozenClock) -> None:
    await join(wechat, ALICE)
    await add_staff(wechat, AGENT)
    code = await open_ticket(wechat, ALICE)
    clock.advance(hours=1)
    await wechat.say(AGENT, f"回复 {code} 正在处理")
    clock.advance(hours=10)
    assert await ticket_sla(job(wechat), clock.now()) == 0  # answered in time; resolution not due yet
    clock.advance(hours=38)
    assert await ticket_sla(job(wechat), clock.now()) == 1
    assert (await ticket(wechat, code)).breach == "resolve"


def test_the_job_runs_every_minute() -> None:
    assert JOBS["ticket_sla"] is ticket_sla
    assert SCHEDULE["ticket_sla"] == {"minute": "*"}


def test_category_rules_and_business_time_arithmetic() -> None:
    rules = ServiceRules(categories={"配送": Sla(1, 24)}, business_hours=(time(9), time(18)))
    assert rules.sla("配送") == Sla(1, 24)
    assert rules.sla("商品") == Sla(2, 48)
    assert rules.due(local(23, 7), 2, TZ) == local(23, 11)  # before opening: from 09:00
    assert rules.due(local(23, 20), 1.5, TZ) == local(24, 10, 30)  # after closing: from tomorrow 09:00
    assert rules.due(local(23, 16), 2, TZ) == local(23, 18)  # ends exactly at closing time
    assert ServiceRules().due(local(23, 20), 2, TZ) == local(23, 22)


async def test_figures_on_a_hand_built_set(wechat: WeChat, clock: FrozenClock) -> None:
    now = local(24, 12)
    async with wechat.services.db.unit_of_work() as session:
        member = Member(openid=ALICE, created_at=now, joined_at=now)
        session.add(member)
        await session.flush()
        base = local(24, 8)
        # (category, state, answered after h, resolved after h, rating, escalated)
        specs = [("商品", "resolved", 1, 10, 5, False), ("商品", "resolved", 3, 50, 2, True),
                 ("配送", "answered", 0.5, None, None, False), ("配送", "open", None, None, None, True),
                 ("其他", "resolved", 2, 20, 4, False)]
        for n, (category, state, answered, resolved, rating, escalated) in enumerate(specs):
            session.add(Ticket(
                code=f"T-FIG00{n}", member_id=int(member.id or 0), openid=ALICE, source="oa", category=category,
                state=state, created_at=base, answer_due_at=base + timedelta(hours=2),
                resolve_due_at=base + timedelta(hours=48), rating=rating,
                first_answer_at=None if answered is None else base + timedelta(hours=answered),
                resolved_at=None if resolved is None else base + timedelta(hours=resolved),
                escalated_at=now if escalated else None,
            ))
    async with wechat.services.db.sessions() as session:
        fig = await ticketsla.figures(session, local(24, 0), local(25, 0), now)
        outside = await ticketsla.figures(session, local(25, 0), local(26, 0), now)
    assert fig.total == 5
    assert fig.by_category == {"其他": {"resolved": 1}, "商品": {"resolved": 2}, "配送": {"answered": 1, "open": 1}}
    assert (fig.first_answer.count, fig.first_answer.median, fig.first_answer.p90) == (4, 1, 3)
    assert (fig.resolution.count, fig.resolution.median, fig.resolution.p90) == (3, 20, 50)
    assert fig.answer_within_sla == 3 / 5  # four answered (three in time) and one overdue unanswered
    assert fig.resolve_within_sla == 2 / 3  # the open ones are not due yet
    assert fig.escalated == 2
    assert fig.ratings == {2: 1, 4: 1, 5: 1}
    assert fig.rating_mean == 11 / 3
    assert outside.total == 0
    assert outside.first_answer.median is None
    assert outside.answer_within_sla is None
    async with wechat.services.db.sessions() as session:
        assert len((await session.scalars(select(Ticket).where(col(Ticket.openid) == ALICE))).all()) == 5


def test_the_rules_files_service_section() -> None:
    rules = rules_from_dict({"service": {
        "answer_hours": 4, "business_hours": "09:00-18:00", "max_open": 5, "vip_tiers": ["金卡"],
        "vip_kf_account": "vip@brand", "categories": {"配送": {"answer_hours": 1}},
    }})
    assert rules.service.sla("配送") == Sla(1, 48)
    assert rules.service.sla("其他") == Sla(4, 48)
    assert (rules.service.business_hours, rules.service.max_open) == ((time(9), time(18)), 5)
    assert (rules.service.vip_tiers, rules.service.vip_kf_account) == (("金卡",), "vip@brand")
    assert rules_from_dict({}).service == ServiceRules()
    for bad, named in (({"answer_hours": 0}, "service.answer_hours"), ({"business_hours": "18:00-09:00"}, "business"),
                       ({"categories": {"鞋子": {}}}, "service.categories.鞋子"), ({"max_open": 0}, "max_open"),
                       ({"colour": 1}, "service.colour")):
        with pytest.raises(RulesError, match=named):
            rules_from_dict({"service": bad})
