"""The reminder 3 days before an unused coupon lapses (issue 17 item 1): the daily coupon_lapse job queues one
marketing push per coupon on the day its last day is 3 days away, not for a used or cancelled coupon, nor for
one issued inside those 3 days, nor to a member who opted out; the sender delivers it once, outside quiet
hours, at a priority just under the points' expiry reminder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from scheduler.jobs import JOBS, SCHEDULE, coupon_lapse
from storage import outbox
from storage.clock import local_date
from storage.models import Outbox
from tests.support.factories import add_member, local
from tests.support.push_support import TEMPLATE, TEMPLATES, PushWorld, push_world
from tests.support.redeem_support import add_reward, credit

START = local(2026, 6, 1, 10, 15)  # the job's hour
IDS = {**TEMPLATES, "coupon_lapse": "TPL_coupon_lapse_01"}
ALICE = "oALICElapse00000000000000001"


@pytest.fixture
async def world(urls: tuple[str, str]) -> AsyncIterator[PushWorld]:
    async with push_world(urls, at=START, wechat_template_ids=IDS) as w:
        yield w


async def grant(world: PushWorld, member_id: int, reward_id: int, period: str):  # type: ignore[no-untyped-def]
    async with world.db.unit_of_work() as session:
        return await world.ctx.rewards.grant(session, member_id, reward_id, period=period, now=world.clock.now(),
                                             reason="operator")


async def lapse_rows(world: PushWorld) -> list[Outbox]:
    async with world.db.sessions() as session:
        return list((await session.scalars(
            select(Outbox).where(Outbox.kind == "coupon_lapse").order_by(Outbox.id))).all())


async def test_one_reminder_3_days_before_and_not_for_a_used_coupon(world: PushWorld) -> None:
    ten_days = await add_reward(world.db, START, name="咖啡券", validity_days=10)  # last day 2026-06-11
    two_days = await add_reward(world.db, START, name="短期券", validity_days=2)
    alice = await add_member(world.db, START, openid=ALICE)
    opted_out = await add_member(world.db, START, opt_out=True)
    kept = await grant(world, alice, ten_days, "kept")
    used = await grant(world, alice, ten_days, "used")
    cancelled = await grant(world, alice, ten_days, "cancelled")
    await grant(world, alice, two_days, "short")
    await grant(world, opted_out, ten_days, "quiet")
    await credit(world.db, world.ledger, alice, 100, START)
    async with world.db.unit_of_work() as session:
        bought = await world.ctx.rewards.redeem(session, alice, ten_days, request_key="bought", now=START)
        await world.ctx.rewards.use(session, used.redemption.code, START + timedelta(days=1), store="S001")
        await world.ctx.rewards.cancel(session, cancelled.redemption.id, START)

    queued_on: dict[date, int] = {}
    for day in range(15):  # every day at the job's hour, twice
        at = START + timedelta(days=day)
        world.clock.set(at)
        first = await coupon_lapse(world.ctx, at)
        assert await coupon_lapse(world.ctx, at) == 0
        if first:
            queued_on[local_date(at, world.ledger.tz)] = first
        await world.drain()

    assert queued_on == {date(2026, 6, 8): 2}  # the kept gift and the bought coupon, 3 days before 06-11
    rows = await lapse_rows(world)
    assert [r.dedupe_key for r in rows] == [f"coupon_lapse:{kept.redemption.id}",
                                            f"coupon_lapse:{bought.redemption.id}"]
    assert {(r.category, r.priority, r.status) for r in rows} == {("marketing", 7, "sent")}
    assert outbox.PRIORITY["birthday"] < outbox.PRIORITY["coupon_lapse"] < outbox.PRIORITY["expiry"]
    calls = [c for c in await world.delivered() if c["body"].get("template_id") == IDS["coupon_lapse"]]
    assert [(c["path"], c["body"]["touser"]) for c in calls] == [(TEMPLATE, ALICE), (TEMPLATE, ALICE)]
    assert calls[0]["body"]["data"]["thing1"]["value"] == "优惠券即将到期"
    assert calls[0]["body"]["data"]["date3"]["value"] == "2026-06-11"


async def test_a_catch_up_run_still_reminds_before_the_lapse_and_never_after(world: PushWorld) -> None:
    reward_id = await add_reward(world.db, START, name="咖啡券", validity_days=10)
    alice = await add_member(world.db, START, openid=ALICE)
    given = await grant(world, alice, reward_id, "r1")
    # The job did not run on 06-08; on 06-10 (one day left) it catches up, once.
    assert await coupon_lapse(world.ctx, local(2026, 6, 10, 10, 15)) == 1
    assert await coupon_lapse(world.ctx, local(2026, 6, 11, 10, 15)) == 0
    await grant(world, await add_member(world.db, START), reward_id, "late")
    assert await coupon_lapse(world.ctx, local(2026, 6, 12, 10, 15)) == 0  # lapsed at 06-12 00:00
    assert [r.dedupe_key for r in await lapse_rows(world)] == [f"coupon_lapse:{given.redemption.id}"]


async def test_a_reminder_queued_in_quiet_hours_waits_for_the_morning(world: PushWorld) -> None:
    reward_id = await add_reward(world.db, START, name="咖啡券", validity_days=10)
    alice = await add_member(world.db, START, openid=ALICE)
    await grant(world, alice, reward_id, "r1")
    night = local(2026, 6, 8, 22, 0)  # a manual run (`wxbot jobs run coupon_lapse`) at night
    world.clock.set(night)
    assert await coupon_lapse(world.ctx, night) == 1
    await world.drain()
    assert [c for c in await world.delivered() if c["body"].get("template_id") == IDS["coupon_lapse"]] == []
    world.clock.set(local(2026, 6, 9, 9, 0))
    await world.drain()
    assert len([c for c in await world.delivered() if c["body"].get("template_id") == IDS["coupon_lapse"]]) == 1


def test_the_job_is_scheduled_daily_after_the_expiry_reminders() -> None:
    assert JOBS["coupon_lapse"] is coupon_lapse
    assert SCHEDULE["coupon_lapse"] == {"hour": "10", "minute": "15"}
