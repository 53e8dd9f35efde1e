"""The satisfaction surveys screen: an operator creates a survey through the form (audited) and pauses it (a
paused survey records no ask); each bad field comes back on the form with its message and nothing saved;
analysts read, clerks do not see it; and the figures (NPS, CSAT mean and share of 4-5, by touchpoint, by
reward and by campaign) on a hand-built set of answers, worked out below."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.console import texts
from handlers import texts as chat_texts
from scheduler.jobs import JobContext, kpi_snapshot
from storage import reports, surveys
from storage.audit import Actor
from storage.clock import FrozenClock
from storage.models import AuditEntry, Survey, SurveyAsk
from tests.support.campaign_support import add_members, new_campaign
from tests.support.console_support import ConsoleWorld, console_world, row_of
from tests.support.member_support import ORDER_SECRET, pay
from tests.support.redeem_support import add_reward

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock, order_webhook_secret=ORDER_SECRET) as found:
        yield found


async def stored(world: ConsoleWorld) -> list[Survey]:
    async with world.db.sessions() as session:
        return list((await session.scalars(select(Survey).order_by(Survey.id))).all())  # type: ignore[arg-type]


async def survey_audits(world: ConsoleWorld) -> list[tuple[str, str, str]]:
    async with world.db.sessions() as session:
        rows = (await session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("survey.%")).order_by(AuditEntry.id)  # type: ignore[attr-defined]
        )).all()
    return [(r.action, r.target, r.actor) for r in rows]


def cell(row: str, fig: str) -> str:
    found = re.search(rf'data-fig="{fig}">([^<]*)<', row)
    assert found, f"no {fig} in {row}"
    return found.group(1)


async def test_an_operator_creates_and_pauses_a_survey_and_a_paused_one_asks_nobody(world: ConsoleWorld) -> None:
    operator = await world.as_role("operator")
    page = await operator.get("/admin/surveys")
    assert page.status_code == 200
    assert texts.SURVEYS_EMPTY in page.text
    assert texts.SURVEY_NPS_FIXED.format(question=chat_texts.SURVEY_NPS_QUESTION) in page.text
    created = await operator.post("/admin/surveys", {
        "name": HOSTILE, "kind": "nps", "question": "ignored for NPS", "followup": "有什么建议？",
        "touchpoint": "order", "thanks_points": "5",
    })
    assert created.status_code == 303
    [survey] = await stored(world)
    assert (survey.name, survey.kind, survey.question, survey.followup, survey.touchpoint, survey.thanks_points,
            survey.status) == (HOSTILE, "nps", chat_texts.SURVEY_NPS_QUESTION, "有什么建议？", "order", 5, "active")
    listed = await operator.get("/admin/surveys?done=created")
    assert texts.SURVEY_DONE["created"] in listed.text
    assert HOSTILE not in listed.text  # escaped
    row = row_of(listed.text, "data-survey", survey.id)
    assert "&lt;script&gt;" in row
    assert texts.SURVEY_STATUS["active"] in row

    paused = await operator.post(f"/admin/surveys/{survey.id}/status", {"status": "paused"})
    assert paused.status_code == 303
    [survey] = await stored(world)
    assert survey.status == "paused"
    assert await survey_audits(world) == [("survey.create", f"survey:{survey.id}", "operator"),
                                          ("survey.pause", f"survey:{survey.id}", "operator")]
    # A paid order while paused records no ask (the POS's signed webhook).
    [buyer] = await add_members(world.db, world.wechat.services.clock.now(), 1, start=900)
    await pay(world.wechat, "C-1", 3_000, openid=str(buyer.openid))
    async with world.db.sessions() as session:
        assert (await session.scalars(select(SurveyAsk))).all() == []
    await operator.post(f"/admin/surveys/{survey.id}/status", {"status": "active"})
    await pay(world.wechat, "C-2", 3_000, openid=str(buyer.openid))
    async with world.db.sessions() as session:
        [ask] = (await session.scalars(select(SurveyAsk))).all()
    assert (ask.trigger_key, ask.state) == ("order:C-2", "pending")


async def test_a_bad_field_comes_back_on_the_form_and_nothing_is_saved(world: ConsoleWorld) -> None:
    operator = await world.as_role("operator")
    bad = await operator.post("/admin/surveys", {
        "name": "", "kind": "csat", "question": "", "followup": "问" * 201, "touchpoint": "sample",
        "sample_percent": "0", "thanks_points": "99",
    })
    assert bad.status_code == 422
    assert texts.FORM_INVALID in bad.text
    for field, message in (
        ("name", texts.SURVEY_NAME_INVALID), ("question", texts.SURVEY_QUESTION_INVALID),
        ("followup", texts.SURVEY_FOLLOWUP_INVALID), ("sample_percent", texts.SURVEY_SAMPLE_INVALID),
        ("thanks_points", texts.SURVEY_THANKS_INVALID.format(high=surveys.MAX_THANKS)),
    ):
        assert f'<span class="field-error" data-error="{field}">{message}</span>' in bad.text
    assert 'data-error="kind"' not in bad.text
    assert 'data-error="touchpoint"' not in bad.text
    assert 'value="问问' in bad.text  # the typed values are kept on the form
    unknown = await operator.post("/admin/surveys", {"name": "x", "kind": "stars", "touchpoint": "weather"})
    assert unknown.status_code == 422
    assert f'data-error="kind">{texts.SURVEY_KIND_INVALID}' in unknown.text
    assert f'data-error="touchpoint">{texts.SURVEY_TOUCHPOINT_INVALID}' in unknown.text
    assert await stored(world) == []
    assert await survey_audits(world) == []
    no_csrf = await operator.post("/admin/surveys", {"name": "x", "kind": "nps", "touchpoint": "order"}, csrf="")
    assert no_csrf.status_code == 403
    assert await stored(world) == []


async def test_analysts_read_and_clerks_do_not_see_it(world: ConsoleWorld) -> None:
    analyst = await world.as_role("analyst")
    page = await analyst.get("/admin/surveys")
    assert page.status_code == 200
    assert 'id="new-survey"' not in page.text
    refused = await analyst.post("/admin/surveys", {"name": "x", "kind": "nps", "touchpoint": "order"})
    assert refused.status_code == 403
    assert await stored(world) == []
    clerk = await world.as_role("clerk")
    assert (await clerk.get("/admin/surveys")).status_code == 403
    counter = await clerk.get("/admin/verify")
    assert counter.status_code == 200
    assert 'href="/admin/verify"' in counter.text
    assert "/admin/surveys" not in counter.text


async def test_figures_on_a_hand_built_set_of_answers(world: ConsoleWorld) -> None:
    """NPS survey at the till, two rewards:
         A: 10 10 9 8 7 -> 3 promoters, 2 passives, 0 detractors -> NPS (3 - 0) / 5 = +60.0
         B:  6  3 0 9 10 -> 2 promoters, 0 passives, 3 detractors -> NPS (2 - 3) / 5 = -20.0
         all ten: 5 promoters, 3 detractors -> (5 - 3) / 10 = +20.0
       CSAT survey at the campaign's end, two campaigns:
         X: 5 5 4 4 4 -> mean 22 / 5 = 4.40, share of 4-5 5 / 5 = 100%
         Y: 3 2 1 5 3 -> mean 14 / 5 = 2.80, share of 4-5 1 / 5 = 20%
         all ten: mean 36 / 10 = 3.60, share 6 / 10 = 60%, detractors (1-2) 2
       Asks not answered (declined, dropped, pending) count in no figure."""
    now = world.wechat.services.clock.now()
    people = await add_members(world.db, now, 23)
    reward_a = await add_reward(world.db, now, name="拿铁券", cost=10)
    reward_b = await add_reward(world.db, now, name="蛋糕券", cost=10)
    campaigns = world.wechat.services.campaigns
    x = await new_campaign(world.db, campaigns, now, kind="join_bonus", title="开业礼", ends_at=now + timedelta(days=3))
    y = await new_campaign(world.db, campaigns, now, kind="join_bonus", title="周年庆", ends_at=now + timedelta(days=3))
    actor = Actor("admin", "admin")
    async with world.db.unit_of_work() as session:
        nps = await surveys.create(session, actor, surveys.Draft("门店 NPS", "nps", chat_texts.SURVEY_NPS_QUESTION,
                                                                 None, "coupon"), now)
        csat = await surveys.create(session, actor, surveys.Draft("活动 CSAT", "csat", "满意吗？", None, "campaign"),
                                    now)
    answers = ([(nps.id, reward_a, None, s) for s in (10, 10, 9, 8, 7)]
               + [(nps.id, reward_b, None, s) for s in (6, 3, 0, 9, 10)]
               + [(csat.id, None, x.id, s) for s in (5, 5, 4, 4, 4)]
               + [(csat.id, None, y.id, s) for s in (3, 2, 1, 5, 3)])
    async with world.db.unit_of_work() as session:
        for n, (survey_id, reward_id, campaign_id, score) in enumerate(answers):
            session.add(SurveyAsk(survey_id=survey_id, member_id=people[n].id, trigger_key=f"k{n}",
                                  touchpoint="coupon" if reward_id else "campaign", reward_id=reward_id,
                                  campaign_id=campaign_id, triggered_at=now, state="answered", asked_at=now,
                                  score=score, answered_at=now))
        for n, state in enumerate(("declined", "dropped", "pending"), start=20):
            session.add(SurveyAsk(survey_id=nps.id, member_id=people[n].id, trigger_key=f"k{n}", touchpoint="coupon",
                                  reward_id=reward_a, triggered_at=now, state=state,
                                  asked_at=None if state == "pending" else now))

    async with world.db.sessions() as session:
        nps_report = await surveys.report(session, int(nps.id or 0))
        csat_report = await surveys.report(session, int(csat.id or 0))
    assert (nps_report.figures.answers, nps_report.figures.promoters, nps_report.figures.passives,
            nps_report.figures.detractors, nps_report.figures.nps) == (10, 5, 2, 3, 20.0)
    assert [(name, f.answers, f.nps) for name, f in nps_report.by_reward] == [("拿铁券", 5, 60.0), ("蛋糕券", 5, -20.0)]
    assert nps_report.states == {"answered": 10, "declined": 1, "dropped": 1, "pending": 1}
    assert (csat_report.figures.answers, csat_report.figures.csat_mean, csat_report.figures.csat_top_share,
            csat_report.figures.detractors) == (10, 3.6, 0.6, 2)
    assert [(t, f.csat_mean, f.csat_top_share) for t, f in csat_report.by_campaign] == [
        ("周年庆", 2.8, 0.2), ("开业礼", 4.4, 1.0)]

    analyst = await world.as_role("analyst")
    listed = (await analyst.get("/admin/surveys")).text
    assert cell(row_of(listed, "data-survey", nps.id), "nps") == "20.0"
    assert cell(row_of(listed, "data-survey", csat.id), "csat_mean") == "3.60"
    assert cell(row_of(listed, "data-survey", csat.id), "csat_top") == "60%"
    assert cell(row_of(listed, "data-touchpoint", "nps:coupon"), "nps") == "20.0"
    assert cell(row_of(listed, "data-touchpoint", "csat:campaign"), "csat_top") == "60%"
    page = (await analyst.get(f"/admin/surveys/{nps.id}")).text
    assert re.search(r'id="fig-nps">20\.0<', page)
    assert re.search(r'id="fig-detractors">3<', page)
    assert cell(row_of(page, "data-reward", "蛋糕券"), "nps") == "-20.0"
    assert cell(row_of(page, "data-reward", "拿铁券"), "nps") == "60.0"
    page = (await analyst.get(f"/admin/surveys/{csat.id}")).text
    assert cell(row_of(page, "data-campaign", "开业礼"), "csat_mean") == "4.40"
    assert cell(row_of(page, "data-campaign", "周年庆"), "csat_top") == "20%"
    assert (await analyst.get("/admin/surveys/999999")).status_code == 404
    member_page = (await analyst.get(f"/admin/members/{people[6].id}")).text  # the member's 360 lists answers
    assert re.search(r'<tr data-ask="\d+"><td><a href="/admin/surveys/\d+">门店 NPS</a>.*?data-score>3<', member_page)
    assert texts.SURVEY_MEMBER_NONE in (await analyst.get(f"/admin/members/{people[22].id}")).text  # pending only

    # The dashboard's experience area: the night's KPI snapshot carries the NPS of the 30 days.
    await kpi_snapshot(JobContext(world.db, world.wechat.services.ledger), now + timedelta(days=1))
    async with world.db.sessions() as session:
        [(_, figures)] = await reports.series(session, now.date() - timedelta(days=1), now.date() + timedelta(days=1))
    assert (figures["nps_30d"], figures["nps_answers_30d"]) == (20.0, 10)
    dashboard = (await analyst.get("/admin")).text
    tile = re.search(r'data-figure="nps_30d">\s*<h3>[^<]*</h3>\s*<p class="kpi-value" data-value>([^<]*)<', dashboard)
    assert tile, "no NPS tile on the dashboard"
    assert tile.group(1) == "20.00"


async def test_a_detractors_follow_up_ticket_is_in_the_console_queue(world: ConsoleWorld) -> None:
    operator = await world.as_role("operator")
    await operator.post("/admin/surveys", {"name": "订单满意度", "kind": "csat", "question": "这次购物满意吗？",
                                           "touchpoint": "order"})
    [buyer] = await add_members(world.db, world.wechat.services.clock.now(), 1, start=700)
    await pay(world.wechat, "C-9", 3_000, openid=str(buyer.openid))
    assert "这次购物满意吗？" in await world.wechat.say(str(buyer.openid), "积分")
    answered = await world.wechat.say(str(buyer.openid), "1")
    found = re.search(r"T-[2-9A-HJKMNP-Z]{6}", answered)
    assert found, answered
    queue = (await operator.get("/admin/tickets?kind=survey")).text
    assert found.group(0) in queue
    assert texts.TICKET_KINDS["survey"] in queue
    assert found.group(0) not in (await operator.get("/admin/tickets?kind=ticket")).text
