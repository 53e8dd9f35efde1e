"""The survey touchpoints other than the paid order (tested through the webhook in tests/e2e): a coupon used
at a store records an ask with its reward (one used without a store records none), a campaign settled one
per participant with the campaign, each once; and the weekly sample job draws the survey's share of the
members active in the last 30 days, stably (the same draw on a re-run, once per ISO week)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlmodel import col

from handlers import texts
from scheduler.jobs import JOBS, SCHEDULE, JobContext, survey_sample
from storage import surveys
from storage.audit import Actor
from storage.models import Member, SurveyAsk
from tests.support.campaign_support import add_members, new_campaign
from tests.support.fakes import WeChat
from tests.support.redeem_support import add_reward, credit

ACTOR = Actor("admin", "admin")


async def define(wechat: WeChat, touchpoint: str, *, share: int = 0) -> int:
    draft = surveys.Draft(name=touchpoint, kind="nps", question=texts.SURVEY_NPS_QUESTION, followup=None,
                          touchpoint=touchpoint, sample_percent=share)
    async with wechat.services.db.unit_of_work() as session:
        return int((await surveys.create(session, ACTOR, draft, wechat.services.clock.now())).id or 0)


async def asks(wechat: WeChat) -> list[SurveyAsk]:
    async with wechat.services.db.sessions() as session:
        return list((await session.scalars(select(SurveyAsk).order_by(col(SurveyAsk.id)))).all())


async def test_a_coupon_used_at_a_store_records_an_ask_with_its_reward(wechat: WeChat) -> None:
    services, now = wechat.services, wechat.services.clock.now()
    await define(wechat, "coupon")
    [alice, bob] = await add_members(services.db, now, 2)
    reward = await add_reward(services.db, now, name="拿铁券", cost=1)
    codes = []
    for who in (alice, bob):
        await credit(services.db, services.ledger, int(who.id or 0), 10, now)
        async with services.db.unit_of_work() as session:
            issued = await services.rewards.redeem(session, int(who.id or 0), reward, request_key=f"r{who.id}",
                                                   now=now)
            codes.append(issued.redemption.code)
    async with services.db.unit_of_work() as session:
        used = await services.rewards.use(session, codes[0], now, store="S001", by="clerk")
        await services.rewards.use(session, codes[1], now)  # no store: not the till
    [ask] = await asks(wechat)
    assert (ask.member_id, ask.touchpoint, ask.reward_id, ask.trigger_key) == (
        alice.id, "coupon", reward, f"coupon:{used.id}")
    async with services.db.sessions() as session:
        marked = await session.get(Member, alice.id)
        unmarked = await session.get(Member, bob.id)
    assert marked is not None
    assert unmarked is not None
    assert marked.survey_due_until is not None
    assert unmarked.survey_due_until is None


async def test_a_settled_campaign_records_one_ask_per_participant_once(wechat: WeChat) -> None:
    services, now = wechat.services, wechat.services.clock.now()
    await define(wechat, "campaign")
    people = await add_members(services.db, now, 3)
    campaign = await new_campaign(services.db, services.campaigns, now, kind="join_bonus",
                                  ends_at=now + timedelta(days=1))
    async with services.db.unit_of_work() as session:
        for member in people[:2]:
            await services.campaigns.join(session, campaign.code, member, now)
    services.clock.advance(days=2)
    assert await services.campaigns.finalize_due(services.db, services.clock.now()) == 1
    assert await services.campaigns.finalize_due(services.db, services.clock.now()) == 0
    found = await asks(wechat)
    assert sorted(a.member_id for a in found) == sorted(int(m.id or 0) for m in people[:2])
    assert {(a.touchpoint, a.campaign_id, a.trigger_key) for a in found} == {
        ("campaign", campaign.id, f"campaign:{campaign.id}")}
    async with services.db.unit_of_work() as session:  # settling again (a second worker) adds nothing
        assert await surveys.trigger_campaign(session, int(campaign.id or 0), services.clock.now()) == 0


async def test_the_weekly_sample_draws_its_share_of_active_members_stably(wechat: WeChat) -> None:
    services, now = wechat.services, wechat.services.clock.now()
    survey = await define(wechat, "sample", share=25)
    people = await add_members(services.db, now, 200)
    idle = await add_members(services.db, now - timedelta(days=40), 20, start=500)  # wrote 40 days ago
    job = JobContext(services.db, services.ledger)
    week = surveys.week_of(now, services.tz)
    expected = sorted(int(m.id or 0) for m in people if surveys.sampled(survey, week, int(m.id or 0), 25))
    assert 30 <= len(expected) <= 70  # about a quarter of 200
    assert await survey_sample(job, now) == len(expected)
    assert await survey_sample(job, now + timedelta(hours=1)) == 0  # once per week: the re-run adds nothing
    drawn = await asks(wechat)
    assert sorted(a.member_id for a in drawn) == expected
    assert {a.trigger_key for a in drawn} == {f"sample:{week}"}
    assert not {int(m.id or 0) for m in idle} & {a.member_id for a in drawn}
    # The next week draws afresh: a different set, as stable.
    later = now + timedelta(days=7)
    next_week = surveys.week_of(later, services.tz)
    assert next_week != week
    again = {int(m.id or 0) for m in people if surveys.sampled(survey, next_week, int(m.id or 0), 25)}
    assert again != set(expected)
    assert await survey_sample(job, later) == len(again)  # the job draws next week's set, as recorded
    assert sorted(a.member_id for a in await asks(wechat) if a.trigger_key == f"sample:{next_week}") == sorted(again)
    assert "survey_sample" in JOBS
    assert SCHEDULE["survey_sample"] == {"day_of_week": "mon", "hour": "8", "minute": "0"}
