"""A lucky draw whose prize is a coupon (issue 17, item 1), through signed XML: a manager makes it in the
发起活动 chat (the prize step, each bad answer re-prompting and nothing created), members join, and the draw
grants each winner one coupon (`grant:draw:<member>:<campaign code>`) shown in 我的券; a second settlement
grants nothing; a coupon refused at the draw gives the fallback points, or with none, tells the winner and
raises an anomaly. The points invariant holds throughout."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot.wechat.pushtexts import announcement, text_for
from handlers import texts
from scheduler.jobs import JOBS, JobContext
from storage import drawprize
from storage.campaigns import Campaigns
from storage.clock import FrozenClock
from storage.members import sign_up as sign_up_in_storage
from storage.models import Anomaly, Reward
from tests.support.campaign_support import (
    MANAGER,
    all_campaigns,
    campaign_row,
    create_campaign,
    draw_record,
    flow_state,
    make_staff,
    member_id,
    openid,
    outbox_rows,
    payouts,
    phone,
)
from tests.support.fakes import WeChat
from tests.support.helpers import payload
from tests.support.invariants import assert_points_consistent
from tests.support.redeem_support import add_reward, balance_of, redeem, redemptions_of, reward_row

ROBOT = "693a91f6-7b2c-4bc4-97a0-0ec2f1a5aaa1"
COUPON = "满100减20券"


async def members(wechat: WeChat, count: int, start: int = 0) -> list[str]:
    """Joined members, each with the 100 sign-up points."""
    services = wechat.services
    people = [openid(n) for n in range(start, start + count)]
    for n, who in enumerate(people, start=start):
        async with services.db.unit_of_work() as session:
            await sign_up_in_storage(session, services.ledger, services.pii, openid=who, source="oa",
                                     phone=phone(n), birthday=None, now=services.clock.now())
    return people


async def join_all(wechat: WeChat, people: list[str], code: str) -> list[str]:
    return [await wechat.say(who, f"参加 {code}") for who in people]


async def settle_by_job(wechat: WeChat, clock: FrozenClock, days: int) -> int:
    clock.advance(days=days, seconds=1)
    return int(await JOBS["campaigns"](JobContext(wechat.services.db, wechat.services.ledger), clock.now()))


async def test_a_coupon_draw_made_in_the_chat_gives_each_winner_one_coupon(
    wechat: WeChat, clock: FrozenClock
) -> None:
    db = wechat.services.db
    reward = await add_reward(db, clock.now(), name=COUPON, stock=10, validity_days=30)
    await make_staff(wechat)
    made = await create_campaign(wechat, kind="lucky_draw", title="周末抽券", reward_id=reward, points=0, goal=2,
                                 cap=10, end="2天", robot=ROBOT)
    c = made.campaign
    assert f"奖品：每位获奖者「{COUPON}」一张" in made.summary
    assert "补偿积分（发券失败时）：无" in made.summary
    assert "最多发放积分（预算）：0" in made.summary  # the coupons are not points
    assert texts.CAMPAIGN_PITCH["lucky_draw_coupon"].format(goal=2, reward=COUPON) in made.reply
    assert (c.reward_id, c.points, c.budget, c.goal) == (reward, 0, 0, 2)
    (start,) = await outbox_rows(db, kind="announce")
    assert f"各送「{COUPON}」一张" in announcement(payload(start))

    people = await members(wechat, 5)
    for joined in await join_all(wechat, people, c.code):
        assert f"11-24 10:00 开奖，抽出 2 位各得「{COUPON}」一张" in joined
    assert f"奖品：「{COUPON}」\n" in await wechat.say(MANAGER, f"活动数据 {c.code}")

    assert await settle_by_job(wechat, clock, 2) == 1
    settled = await campaign_row(db, c.id)  # type: ignore[arg-type]
    record = draw_record(settled)
    winners = record["winners"]
    assert len(winners) == 2
    assert record["prizes"] == {str(w): "coupon" for w in winners}
    assert (settled.status, settled.paid_out) == ("settled", 0)
    assert await payouts(db, c.id) == {}  # type: ignore[arg-type]

    given = await redemptions_of(db)
    assert sorted(r.member_id for r in given) == winners
    assert {r.request_key for r in given} == {f"grant:draw:{w}:{c.code}" for w in winners}
    assert {(r.granted, r.cost, r.status, r.reward_id) for r in given} == {("draw", 0, "issued", reward)}
    assert (await reward_row(db, reward)).stock == 8

    ids = {await member_id(db, who): who for who in people}
    for member, who in ids.items():
        mine = await wechat.say(who, "我的券")
        if member in winners:
            (coupon,) = [r for r in given if r.member_id == member]
            assert mine.splitlines()[0] == texts.COUPONS_HEAD
            assert f"{COUPON}：{coupon.code}（有效期至 " in mine
            assert mine.count(COUPON) == 1
        else:
            assert mine == texts.COUPONS_EMPTY
        assert await balance_of(db, member) == 100  # a coupon prize moves no points

    told = await outbox_rows(db, kind="draw_coupon")
    assert sorted(r.member_id for r in told) == winners  # type: ignore[type-var]
    for row in told:
        (coupon,) = [r for r in given if r.member_id == row.member_id]
        said = text_for(row.kind, payload(row))
        assert said.startswith(f"恭喜您在活动「周末抽券」中获奖！奖品「{COUPON}」已发放，券码 {coupon.code}")
        assert (row.dedupe_key, row.category) == (coupon.request_key, "transactional")
    assert await outbox_rows(db, kind="campaign_reward") == []
    (end,) = await outbox_rows(db, prefix=f"announce:{c.id}:end")
    assert announcement(payload(end)) == texts.ANNOUNCE["end_coupon"].format(
        title="周末抽券", count=5, coupons=2, reward=COUPON)
    stats = await wechat.say(MANAGER, f"活动数据 {c.code}")
    assert f"奖品：「{COUPON}」，已发券 2 张，改发积分 0 位，未能发放 0 位" in stats

    # settling again (the job, the manager) grants nothing; nor does granting a winner's prize a second time
    assert await Campaigns(wechat.services.ledger).finalize_due(db, clock.now() + timedelta(days=1)) == 0
    assert await wechat.say(MANAGER, f"结束活动 {c.code}") == texts.CAMPAIGN_ALREADY_ENDED.format(title="周末抽券")
    campaigns = Campaigns(wechat.services.ledger)
    for w in winners:
        async with db.unit_of_work() as session:
            again = await drawprize.give(session, campaigns.rewards, await campaigns.by_code(session, c.code), w,
                                         clock.now())
        assert again.issued is not None
        assert again.issued.repeated
    assert [r.id for r in await redemptions_of(db)] == [r.id for r in given]
    assert len(await outbox_rows(db, kind="draw_coupon")) == 2
    assert (await reward_row(db, reward)).stock == 8
    assert (await campaign_row(db, c.id)).draw_record == settled.draw_record  # type: ignore[arg-type]
    await assert_points_consistent(db)


async def test_bad_prize_answers_reprompt_and_nothing_is_created(wechat: WeChat, clock: FrozenClock) -> None:
    db = wechat.services.db
    now = clock.now()
    good = await add_reward(db, now, name="好券", stock=3)
    hidden = await add_reward(db, now, name="下架券", stock=5, active=False)
    over = await add_reward(db, now, name="过期券", stock=5, ends_at=now - timedelta(hours=1))
    gone = await add_reward(db, now, name="兑完券", stock=0)
    soon = await add_reward(db, now, name="限时券", ends_at=now + timedelta(days=2))
    endless = await add_reward(db, now, name="不限券", total_limit=None)
    await make_staff(wechat)
    say = wechat.say
    assert await say(MANAGER, "发起活动") == texts.CAMPAIGN_ASK_KIND
    assert await say(MANAGER, "4") == texts.CAMPAIGN_ASK_TITLE
    asked = await say(MANAGER, "抽券活动")
    assert asked.startswith(texts.CAMPAIGN_ASK_PRIZE.split("{")[0])
    assert f"编号 {good}：好券（剩余 3 张）" in asked
    assert f"编号 {endless}：不限券（不限量）" in asked
    assert f"编号 {soon}：限时券" in asked
    for name in ("下架券", "过期券", "兑完券"):
        assert name not in asked

    assert await say(MANAGER, "好券") == texts.CAMPAIGN_BAD_PRIZE
    unknown = texts.draw_prize_unknown.format(reward_id=9999)
    assert await say(MANAGER, "9999") == f"{unknown}\n{texts.CAMPAIGN_BAD_PRIZE}"
    for reward, name in ((hidden, "下架券"), (over, "过期券")):
        ended = texts.draw_prize_ended.format(name=name)
        assert await say(MANAGER, str(reward)) == f"{ended}\n{texts.CAMPAIGN_BAD_PRIZE}"
    sold_out = texts.draw_prize_short.format(name="兑完券", left=0, winners=1)
    assert await say(MANAGER, f"#{gone}") == f"{sold_out}\n{texts.CAMPAIGN_BAD_PRIZE}"

    assert await say(MANAGER, f"券{good}") == texts.CAMPAIGN_ASK_FALLBACK.format(reward="好券")
    for bad in ("abc", "1001", "-1", "2.5"):
        assert await say(MANAGER, bad) == texts.CAMPAIGN_BAD_FALLBACK
    assert await say(MANAGER, "20") == texts.CAMPAIGN_ASK_GOAL["lucky_draw"]
    short = texts.draw_prize_short.format(name="好券", left=3, winners=5)
    assert await say(MANAGER, "5") == f"{short}\n{texts.CAMPAIGN_GOAL_SHORT.format(left=3)}"
    assert await say(MANAGER, "3") == texts.CAMPAIGN_ASK_CAP.format(low=3)
    assert await say(MANAGER, "10") == texts.CAMPAIGN_ASK_END
    assert await say(MANAGER, "3天") == texts.CAMPAIGN_ASK_ROBOT
    summary = await say(MANAGER, "跳过")
    assert "奖品：每位获奖者「好券」一张\n补偿积分（发券失败时）：20\n" in summary
    assert "最多发放积分（预算）：60" in summary  # only the fallback points

    # between the summary and 是, members redeem one of the three: the draw can no longer promise three
    async with db.unit_of_work() as session:
        await session.execute(update(Reward).where(Reward.id == good).values(stock=2))  # type: ignore[arg-type]
    changed = await say(MANAGER, "是")
    assert changed.startswith(f"{texts.draw_prize_short.format(name='好券', left=2, winners=3)}\n"
                              f"{texts.CAMPAIGN_PRIZE_AGAIN}")
    assert texts.CAMPAIGN_ASK_PRIZE.split("{")[0] in changed
    assert await all_campaigns(db) == []
    state = await flow_state(wechat, MANAGER)
    assert state is not None
    assert state.step == "prize"

    # a reward that ends before the draw is refused at the end step
    assert await say(MANAGER, str(soon)) == texts.CAMPAIGN_ASK_FALLBACK.format(reward="限时券")
    await say(MANAGER, "0")
    await say(MANAGER, "1")
    await say(MANAGER, "5")
    ends_early = texts.draw_prize_ends_early.format(name="限时券", ends="2026-11-24 10:00")
    assert await say(MANAGER, "3天") == f"{ends_early}\n{texts.CAMPAIGN_END_EARLIER}"
    assert await say(MANAGER, "1天") == texts.CAMPAIGN_ASK_ROBOT
    assert await say(MANAGER, "取消") == texts.CANCELLED
    assert await all_campaigns(db) == []
    assert await outbox_rows(db) == []


async def test_a_points_prize_is_still_one_answer_away(wechat: WeChat) -> None:
    await make_staff(wechat)
    made = await create_campaign(wechat, kind="lucky_draw", title="积分抽奖", points=30, goal=2, cap=5)
    assert (made.campaign.reward_id, made.campaign.budget) == (None, 60)
    assert "积分：每人 30" in made.summary
    assert texts.CAMPAIGN_PITCH["lucky_draw"].format(goal=2, points=30) in made.reply


async def test_stock_gone_by_the_draw_gives_the_fallback_points(wechat: WeChat, clock: FrozenClock) -> None:
    db = wechat.services.db
    ledger = wechat.services.ledger
    reward = await add_reward(db, clock.now(), name=COUPON, stock=3, cost=50)
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="lucky_draw", title="补偿抽奖", reward_id=reward, points=40, goal=3,
                               cap=5, end="2天")).campaign
    assert c.budget == 120
    people = await members(wechat, 4)
    await join_all(wechat, people[:3], c.code)
    shopper = await member_id(db, people[3])  # not in the draw: redeems two of the three with points
    campaigns = Campaigns(ledger)
    for n in range(2):
        await redeem(db, campaigns.rewards, shopper, reward, f"shop-{n}", clock.now())
    assert (await reward_row(db, reward)).stock == 1

    ended = await wechat.say(MANAGER, f"结束活动 {c.code}")
    assert ended == texts.CAMPAIGN_ENDED_DRAW_COUPON.format(title="补偿抽奖", reward=COUPON, coupons=1, points=2,
                                                            unpaid=0, paid=80)
    settled = await campaign_row(db, c.id)  # type: ignore[arg-type]
    prizes = draw_record(settled)["prizes"]
    assert sorted(prizes.values()) == ["coupon", "points", "points"]
    coupon_winner = next(int(m) for m, p in prizes.items() if p == "coupon")
    fallback = sorted(int(m) for m, p in prizes.items() if p == "points")
    assert await payouts(db, c.id) == {m: [40] for m in fallback}  # type: ignore[arg-type]
    assert settled.paid_out == 80
    assert [r.member_id for r in await redemptions_of(db) if r.granted == "draw"] == [coupon_winner]
    assert (await reward_row(db, reward)).stock == 0
    for m in fallback:
        assert await balance_of(db, m) == 140
    told = await outbox_rows(db, kind="draw_fallback")
    assert sorted(r.member_id for r in told) == fallback  # type: ignore[type-var]
    assert text_for(told[0].kind, payload(told[0])) == texts.PUSH_DRAW_FALLBACK.format(
        title="补偿抽奖", reward=COUPON, points=40)
    assert [r.member_id for r in await outbox_rows(db, kind="draw_coupon")] == [coupon_winner]
    assert await Campaigns(ledger).finalize_due(db, clock.now() + timedelta(days=3)) == 0
    assert await payouts(db, c.id) == {m: [40] for m in fallback}  # type: ignore[arg-type]
    await assert_points_consistent(db)


async def test_stock_gone_and_no_fallback_tells_the_winner_and_raises_an_anomaly(
    wechat: WeChat, clock: FrozenClock
) -> None:
    db = wechat.services.db
    ledger = wechat.services.ledger
    reward = await add_reward(db, clock.now(), name=COUPON, stock=2, cost=50)
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="lucky_draw", title="无补偿抽奖", reward_id=reward, points=0, goal=2,
                               cap=5, end="2天")).campaign
    people = await members(wechat, 3)
    await join_all(wechat, people[:2], c.code)
    await redeem(db, Campaigns(ledger).rewards, await member_id(db, people[2]), reward, "shop", clock.now())

    assert await settle_by_job(wechat, clock, 2) == 1
    prizes = draw_record(await campaign_row(db, c.id))["prizes"]  # type: ignore[arg-type]
    assert sorted(prizes.values()) == ["coupon", "unpaid:OutOfStockError"]
    left_out = next(int(m) for m, p in prizes.items() if p != "coupon")
    (told,) = await outbox_rows(db, kind="draw_unpaid")
    assert told.member_id == left_out
    assert text_for(told.kind, payload(told)) == texts.PUSH_DRAW_UNPAID.format(title="无补偿抽奖", reward=COUPON)
    async with db.sessions() as session:
        (anomaly,) = (await session.scalars(select(Anomaly).where(Anomaly.kind == "draw_prize_unpaid"))).all()
    assert (anomaly.member_id, anomaly.dedupe_key) == (left_out, f"draw-unpaid:{c.id}:{left_out}")
    assert c.code in anomaly.detail
    assert await payouts(db, c.id) == {}  # type: ignore[arg-type]
    stats = await wechat.say(MANAGER, f"活动数据 {c.code}")
    assert f"奖品：「{COUPON}」，已发券 1 张，改发积分 0 位，未能发放 1 位" in stats
    await assert_points_consistent(db)
