"""Community campaigns end to end through signed XML: a manager starts each kind in the chat, members
join by code, and the payouts land when the kind says (join, threshold, end); the 发起活动 flow's
every bad answer re-prompts; joining refuses clearly; staff commands are staff only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from handlers import texts
from handlers.core.dates import parse_end
from scheduler.jobs import JOBS, JobContext
from storage import staff
from storage.campaigns import Campaigns
from storage.clock import FrozenClock
from storage.members import sign_up as sign_up_in_storage
from storage.models import Campaign, CampaignMember, Checkin, LedgerEntry
from tests.support.campaign_support import (
    MANAGER,
    all_campaigns,
    balance,
    campaign_row,
    create_campaign,
    draw_record,
    flow_state,
    make_staff,
    member_id,
    openid,
    outbox_rows,
    participants,
    payouts,
    phone,
)
from tests.support.factories import TZ
from tests.support.fakes import WeChat
from tests.support.helpers import custom_message
from tests.support.invariants import assert_points_consistent
from tests.support.member_support import sign_up


async def members(wechat: WeChat, count: int, start: int = 0) -> list[str]:
    """Members signed up in storage (the chat sign-up has its own tests; one is signed up in the chat
    here so the path is covered), each with the 100 sign-up points."""
    services = wechat.services
    people = [openid(n) for n in range(start, start + count)]
    for n, who in enumerate(people, start=start):
        if n == start:
            assert "注册成功" in await sign_up(wechat, who, phone=phone(n))
            continue
        async with services.db.unit_of_work() as session:
            await sign_up_in_storage(session, services.ledger, services.pii, openid=who, source="oa",
                                     phone=phone(n), birthday=None, now=services.clock.now())
    return people


# --- each kind, creation to payout ---------------------------------------------------------------

async def test_join_bonus_pays_every_participant_at_join(wechat: WeChat) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    made = await create_campaign(wechat, kind="join_bonus", title="报名送积分", points=20, cap=3, end="3天")
    c = made.campaign
    assert "类型：报名有礼" in made.summary
    assert "最多发放积分（预算）：60" in made.summary
    assert f"活动码：{c.code}" in made.reply
    assert f"回复 参加 {c.code} 加入活动" in made.reply
    assert texts.CAMPAIGN_PITCH["join_bonus"].format(points=20, goal=0) in made.reply
    assert (c.kind, c.points, c.cap, c.budget, c.status, c.created_by) == ("join_bonus", 20, 3, 60, "open", MANAGER)
    assert c.ends_at == wechat.services.clock.now() + timedelta(days=3)
    assert 4 <= len(c.code) <= 6
    assert not set(c.code) & set("0O1IL")

    a, b = await members(wechat, 2)
    first = await wechat.say(a, f"参加 {c.code}")
    assert first == texts.CAMPAIGN_JOINED.format(
        title="报名送积分", count=1, cap=3, next=texts.CAMPAIGN_NEXT["join_bonus"].format(paid=20)
    )
    assert "已有 2/3 人参加" in await wechat.say(b, f"join {c.code}")
    assert await balance(db, a) == 120
    assert await balance(db, b) == 120
    paid = await payouts(db, c.id)  # type: ignore[arg-type]
    assert paid == {await member_id(db, a): [20], await member_id(db, b): [20]}
    assert await outbox_rows(db, kind="campaign_reward") == []  # the join reply itself says so

    stats = await wechat.say(MANAGER, f"活动数据 {c.code}")
    assert "参加人数：2/3" in stats
    assert "已发放积分：40" in stats
    assert "剩余预算：20" in stats
    day = wechat.services.clock.now().astimezone(TZ)
    assert f"每日参加：{day:%m-%d} 2 人" in stats
    assert "报名有礼" in stats
    assert "进行中" in stats
    await assert_points_consistent(db)


async def test_group_buy_pays_nobody_before_n_and_everyone_at_the_nth(wechat: WeChat) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    made = await create_campaign(wechat, kind="group_buy", title="三人拼团", points=30, goal=3, cap=5)
    c = made.campaign
    assert "成团人数：3" in made.summary
    assert "最多发放积分（预算）：150" in made.summary
    people = await members(wechat, 5)
    ids = [await member_id(db, p) for p in people]

    waiting = await wechat.say(people[0], f"参加 {c.code}")
    assert "已有 1/5 人参加" in waiting
    assert texts.CAMPAIGN_NEXT["group_buy_waiting"].format(goal=3, missing=2, code=c.code) in waiting
    assert "还差 1 人" in await wechat.say(people[1], f"参加 {c.code}")
    assert await payouts(db, c.id) == {}  # type: ignore[arg-type]
    assert [await balance(db, p) for p in people[:2]] == [100, 100]
    assert await outbox_rows(db, kind="campaign_reward") == []

    done = await wechat.say(people[2], f"参加 {c.code}")
    assert texts.CAMPAIGN_NEXT["group_buy_done"].format(paid=30) in done
    assert await payouts(db, c.id) == {ids[0]: [30], ids[1]: [30], ids[2]: [30]}  # type: ignore[arg-type]
    told = await outbox_rows(db, kind="campaign_reward")
    # the other participants learn it by a customer-service message; the N-th sees it in the reply
    assert sorted(r.member_id for r in told) == ids[:2]  # type: ignore[type-var]
    assert {r.dedupe_key for r in told} == {f"campaign-paid:{c.id}:{m}" for m in ids[:2]}
    assert {(r.openid, r.category, r.source, r.status) for r in told} == {
        (people[0], "transactional", "oa", "pending"), (people[1], "transactional", "oa", "pending")
    }

    later = await wechat.say(people[3], f"参加 {c.code}")  # after the threshold: paid at once
    assert "拼团成功！+30 积分已到账" in later
    assert "已有 4/5 人参加" in later
    assert len(await outbox_rows(db, kind="campaign_reward")) == 2
    assert [await balance(db, p) for p in people] == [130, 130, 130, 130, 100]
    assert "已经参加过" in await wechat.say(people[0], f"参加 {c.code}")
    assert (await campaign_row(db, c.id)).paid_out == 120  # type: ignore[arg-type]
    await assert_points_consistent(db)


async def test_checkin_challenge_pays_those_with_k_days_at_the_end(wechat: WeChat, clock: FrozenClock) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    made = await create_campaign(wechat, kind="checkin_challenge", title="三天打卡", points=50, goal=2, cap=10,
                                 end="3天")
    c = made.campaign
    assert "签到天数：2" in made.summary
    assert "最多发放积分（预算）：500" in made.summary
    steady, once, late, outsider = await members(wechat, 4)
    for who in (steady, once, late):
        joined = await wechat.say(who, f"参加 {c.code}")
        assert "签满 2 天即得 50 积分" in joined
        assert "11-25 10:00 结束" in joined
    assert await payouts(db, c.id) == {}  # type: ignore[arg-type]

    # day 1 (22 Nov): steady and once check in; the outsider too (not a participant)
    for who in (steady, once, outsider):
        assert "签到成功" in await wechat.say(who, "签到")
    clock.advance(days=1)  # 23 Nov
    for who in (steady, outsider):
        assert "签到成功" in await wechat.say(who, "签到")
    clock.advance(days=1)  # 24 Nov
    assert "签到成功" in await wechat.say(late, "签到")
    clock.advance(hours=23, minutes=59)  # 25 Nov 09:59, the last minute
    ctx = JobContext(db, wechat.services.ledger)
    assert await JOBS["campaigns"](ctx, clock.now()) == 0  # not due yet
    clock.advance(minutes=2)  # 25 Nov 10:01: over
    assert "已经结束" in await wechat.say(outsider, f"参加 {c.code}")
    assert await JOBS["campaigns"](ctx, clock.now()) == 1
    assert await JOBS["campaigns"](ctx, clock.now()) == 0  # a re-run settles nothing

    ids = {who: await member_id(db, who) for who in (steady, once, late, outsider)}
    assert await payouts(db, c.id) == {ids[steady]: [50]}  # type: ignore[arg-type]
    settled = await campaign_row(db, c.id)  # type: ignore[arg-type]
    assert (settled.status, settled.paid_out) == ("settled", 50)
    assert settled.settled_at == clock.now()
    told = await outbox_rows(db, kind="campaign_reward")
    assert [r.member_id for r in told] == [ids[steady]]
    stats = await wechat.say(MANAGER, f"活动数据 {c.code}")
    assert "已结束" in stats
    assert "已发放积分：50" in stats
    await assert_points_consistent(db)


async def test_checkin_challenge_ended_early_by_the_manager(wechat: WeChat, clock: FrozenClock) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="checkin_challenge", points=40, goal=2, cap=10, end="7天")).campaign
    keen, slow = await members(wechat, 2)
    for who in (keen, slow):
        await wechat.say(who, f"参加 {c.code}")
    for who in (keen, slow):
        await wechat.say(who, "签到")
    clock.advance(days=1)
    await wechat.say(keen, "签到")

    ended = await wechat.say(MANAGER, f"结束活动 {c.code}")
    assert ended == texts.CAMPAIGN_ENDED_BY_MANAGER.format(title=c.title, paid=40, total=40)
    assert await payouts(db, c.id) == {await member_id(db, keen): [40]}  # type: ignore[arg-type]
    assert await wechat.say(MANAGER, f"结束活动 {c.code.lower()}") == texts.CAMPAIGN_ALREADY_ENDED.format(
        title=c.title
    )
    clock.advance(days=1)
    await wechat.say(slow, "签到")  # a second day for slow, but the campaign is over
    assert await Campaigns(wechat.services.ledger).finalize_due(db, clock.now() + timedelta(days=30)) == 0
    assert await payouts(db, c.id) == {await member_id(db, keen): [40]}  # type: ignore[arg-type]
    assert "已经结束" in await wechat.say(slow, f"参加 {c.code}")


async def test_lucky_draw_pays_w_winners_at_the_end(wechat: WeChat, clock: FrozenClock) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    made = await create_campaign(wechat, kind="lucky_draw", title="周末抽奖", points=88, goal=2, cap=10, end="2天")
    c = made.campaign
    assert "获奖人数：2" in made.summary
    assert "最多发放积分（预算）：176" in made.summary  # only the W winners can be paid
    people = await members(wechat, 5)
    for who in people:
        joined = await wechat.say(who, f"参加 {c.code}")
        assert "11-24 10:00 开奖，抽出 2 位各得 88 积分" in joined
    assert await payouts(db, c.id) == {}  # type: ignore[arg-type]
    ids = sorted([await member_id(db, p) for p in people])

    clock.advance(days=2, seconds=1)
    assert await Campaigns(wechat.services.ledger).finalize_due(db, clock.now()) == 1
    settled = await campaign_row(db, c.id)  # type: ignore[arg-type]
    record = draw_record(settled)
    assert record["pool"] == ids
    assert len(record["winners"]) == 2
    assert set(record["winners"]) <= set(ids)
    assert record["source"] == "secrets.SystemRandom"
    assert record["drawn_at"] == clock.now().isoformat()
    paid = await payouts(db, c.id)  # type: ignore[arg-type]
    assert paid == {w: [88] for w in record["winners"]}
    assert settled.paid_out == 176 == settled.budget
    assert sorted(r.member_id for r in await outbox_rows(db, kind="campaign_reward")) == record["winners"]  # type: ignore[type-var]

    # settling again (the job, or the manager) neither re-draws nor pays more
    assert await Campaigns(wechat.services.ledger).finalize_due(db, clock.now()) == 0
    assert await wechat.say(MANAGER, f"结束活动 {c.code}") == texts.CAMPAIGN_ALREADY_ENDED.format(title=c.title)
    again = await campaign_row(db, c.id)  # type: ignore[arg-type]
    assert again.draw_record == settled.draw_record
    assert await payouts(db, c.id) == paid  # type: ignore[arg-type]
    await assert_points_consistent(db)


async def test_lucky_draw_with_fewer_participants_than_winners_pays_them_all(
    wechat: WeChat, clock: FrozenClock
) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="lucky_draw", points=10, goal=3, cap=5, end="1天")).campaign
    (only,) = await members(wechat, 1)
    await wechat.say(only, f"参加 {c.code}")
    ended = await wechat.say(MANAGER, f"结束活动 {c.code}")  # early end draws at once
    assert ended == texts.CAMPAIGN_ENDED_BY_MANAGER.format(title=c.title, paid=10, total=10)
    record = draw_record(await campaign_row(db, c.id))  # type: ignore[arg-type]
    assert record["pool"] == record["winners"] == [await member_id(db, only)]


# --- the 发起活动 flow ------------------------------------------------------------------------------

async def test_every_bad_answer_reprompts_and_no_creates_nothing(wechat: WeChat) -> None:
    await make_staff(wechat)
    say = wechat.say
    assert await say(MANAGER, "发起活动") == texts.CAMPAIGN_ASK_KIND
    for bad in ("5", "0", "abc", "1 2"):
        assert await say(MANAGER, bad) == texts.CAMPAIGN_BAD_KIND
    assert await say(MANAGER, "2") == texts.CAMPAIGN_ASK_TITLE
    for bad in ("拼" * 21, "A"):
        assert await say(MANAGER, bad) == texts.CAMPAIGN_BAD_TITLE
    assert await say(MANAGER, "拼" * 20) == texts.CAMPAIGN_ASK_POINTS
    for bad in ("0", "abc", "-5", "1001", "2.5"):
        assert await say(MANAGER, bad) == texts.CAMPAIGN_BAD_POINTS
    assert await say(MANAGER, "1000") == texts.CAMPAIGN_ASK_GOAL["group_buy"]
    for bad in ("1", "501", "十"):
        assert await say(MANAGER, bad) == texts.CAMPAIGN_BAD_GOAL.format(low=2, high=500)
    assert await say(MANAGER, "10") == texts.CAMPAIGN_ASK_CAP.format(low=10)
    for bad in ("9", "0", "10001", "many"):  # a cap below the goal could never reach it
        assert await say(MANAGER, bad) == texts.CAMPAIGN_BAD_CAP.format(low=10)
    assert await say(MANAGER, "10") == texts.CAMPAIGN_ASK_END
    for bad in ("明天吧", "2026-11-01", "11月21日", "91天", "100天", "0天", "2027-03-01", "2月30日", "12月31日 25:00"):
        assert await say(MANAGER, bad) == texts.CAMPAIGN_BAD_END, bad
    assert await say(MANAGER, "2026-12-31") == texts.CAMPAIGN_ASK_ROBOT
    for bad in ("bad key!", "短", "key with spaces", "钥匙钥匙钥匙钥匙钥匙", "a" * 65):
        assert await say(MANAGER, bad) == texts.CAMPAIGN_BAD_ROBOT
    summary = await say(MANAGER, "693a91f6-7b2c-4bc4-97a0-0ec2f1a5aaa1")
    assert "群播报：已设置" in summary
    assert "结束时间：2027-01-01 00:00" in summary  # a bare date ends at midnight after it
    assert "最多发放积分（预算）：10000" in summary
    assert await say(MANAGER, "好的") == texts.CAMPAIGN_CONFIRM_AGAIN
    assert await say(MANAGER, "否") == texts.CAMPAIGN_DECLINED
    assert await all_campaigns(wechat.services.db) == []
    assert await outbox_rows(wechat.services.db) == []  # not even the start announcement
    assert await flow_state(wechat, MANAGER) is None


async def test_cancel_at_any_step_leaves_nothing(wechat: WeChat) -> None:
    await make_staff(wechat)
    answers = ["3", "打卡挑战", "10", "2", "5", "3天", "跳过"]
    for depth in range(len(answers) + 1):
        assert await wechat.say(MANAGER, "发起活动") == texts.CAMPAIGN_ASK_KIND
        for answer in answers[:depth]:
            await wechat.say(MANAGER, answer)
        assert await wechat.say(MANAGER, "取消") == texts.CANCELLED
        assert await flow_state(wechat, MANAGER) is None
    assert await all_campaigns(wechat.services.db) == []
    # the flow is gone: a bare "3" is now just an unknown message
    assert await wechat.say(MANAGER, "3") == texts.help_menu(member=False, staff=True)


async def test_staff_removed_mid_flow_cannot_confirm(wechat: WeChat) -> None:
    await make_staff(wechat)
    for answer in ("发起活动", "1", "报名有礼", "10", "5", "3天"):
        await wechat.say(MANAGER, answer)
    assert (await wechat.say(MANAGER, "跳过")).startswith("请确认活动")
    async with wechat.services.db.unit_of_work() as session:
        await staff.remove(session, MANAGER)
    assert await wechat.say(MANAGER, "是") == texts.HELP_VISITOR
    assert await all_campaigns(wechat.services.db) == []
    assert await flow_state(wechat, MANAGER) is None


NOW = datetime(2026, 11, 22, 10, 0, tzinfo=TZ)


@pytest.mark.parametrize(("text", "now", "expected"), [
    ("3天", NOW, NOW + timedelta(days=3)),
    ("3 天", NOW, NOW + timedelta(days=3)),
    ("12月31日 20:00", NOW, datetime(2026, 12, 31, 20, 0, tzinfo=TZ)),
    ("１２月３１日　２０：００", NOW, datetime(2026, 12, 31, 20, 0, tzinfo=TZ)),  # full-width
    ("2026-12-31", NOW, datetime(2027, 1, 1, 0, 0, tzinfo=TZ)),  # midnight after that day
    ("12-31", NOW, datetime(2027, 1, 1, 0, 0, tzinfo=TZ)),
    ("12月1日", NOW, datetime(2026, 12, 2, 0, 0, tzinfo=TZ)),
    ("1月5日", datetime(2026, 12, 20, 10, 0, tzinfo=TZ), datetime(2027, 1, 6, 0, 0, tzinfo=TZ)),  # next year
    ("1月5日 09:30", datetime(2026, 12, 20, 10, 0, tzinfo=TZ), datetime(2027, 1, 5, 9, 30, tzinfo=TZ)),
    ("90天", NOW, NOW + timedelta(days=90)),
    ("11月22日 10:30", NOW, datetime(2026, 11, 22, 10, 30, tzinfo=TZ)),  # later today
])
def test_parse_end_reads_the_ends_managers_write(text: str, now: datetime, expected: datetime) -> None:
    assert parse_end(text, now.astimezone(UTC), TZ) == expected


@pytest.mark.parametrize("text", [
    "明天", "", "91天", "0天", "2026-11-01", "11月22日 09:00", "2月30日", "12月31日 24:00", "12月31日 20:60",
    "2027-03-01", "2025-12-31", "13月1日",
])
def test_parse_end_refuses_unreadable_past_and_far_ends(text: str) -> None:
    assert parse_end(text, NOW, TZ) is None


# --- joining -------------------------------------------------------------------------------------

async def test_join_spellings_refusals_and_once_per_member(wechat: WeChat, clock: FrozenClock) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="join_bonus", title="限额活动", points=5, cap=4)).campaign
    people = await members(wechat, 5)
    code = c.code
    for who, text in zip(people, [f"参加 {code}", f"join {code}", f"参加{code}", f"参加 {code.lower()}"], strict=False):
        assert "已加入活动「限额活动」" in await wechat.say(who, text), text
    assert len(await participants(db, c.id)) == 4  # type: ignore[arg-type]

    assert await wechat.say(people[4], f"参加 {code}") == texts.campaign_full.format(title="限额活动", cap=4)
    assert await wechat.say(people[4], "参加 ZZZZ9") == texts.campaign_unknown.format(code="ZZZZ9")
    assert await wechat.say(people[4], "join nope") == texts.campaign_unknown.format(code="NOPE")
    # `参加` alone is not a join; `join` alone is the sign-up alias (already a member)
    assert await wechat.say(people[4], "参加") == texts.HELP_MEMBER
    assert await wechat.say(people[4], "join") == texts.already_member
    assert await wechat.say(people[4], "参加 ") == texts.HELP_MEMBER
    assert (await campaign_row(db, c.id)).participants == 4  # type: ignore[arg-type]
    assert sum(len(v) for v in (await payouts(db, c.id)).values()) == 4  # type: ignore[arg-type]

    other = (await create_campaign(wechat, kind="group_buy", title="过期拼团", goal=2, cap=5, end="1天")).campaign
    assert "已加入" in await wechat.say(people[4], f"参加 {other.code}")
    assert await wechat.say(people[4], f"参加 {other.code}") == texts.campaign_already_joined.format(title="过期拼团")
    clock.advance(days=1)  # its end has come, not yet settled by the job
    assert await wechat.say(people[0], f"参加 {other.code}") == texts.campaign_ended.format(title="过期拼团")
    assert await participants(db, other.id) == [await member_id(db, people[4])]  # type: ignore[arg-type]


async def test_visitor_joining_by_code_signs_up_first(wechat: WeChat) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="join_bonus", title="新人礼", points=15, cap=10)).campaign
    visitor = openid(77, "oVISITOR")
    first = await wechat.say(visitor, f"参加 {c.code}")
    assert texts.CAMPAIGN_JOIN_SIGNUP.strip() in first
    assert first.endswith(texts.SIGNUP_ASK_PHONE)
    await wechat.say(visitor, phone(77))
    await wechat.say(visitor, "跳过")
    done = await wechat.say(visitor, "同意")
    assert "注册成功" in done
    assert "已加入活动「新人礼」！已有 1/10 人参加" in done
    assert await balance(db, visitor) == 115
    assert await participants(db, c.id) == [await member_id(db, visitor)]  # type: ignore[arg-type]


async def test_campaigns_lists_the_open_ones(wechat: WeChat, clock: FrozenClock) -> None:
    await make_staff(wechat)
    (member,) = await members(wechat, 1)
    assert await wechat.say(member, "活动") == texts.CAMPAIGNS_NONE
    soon = (await create_campaign(wechat, kind="join_bonus", title="马上结束", cap=5, end="1天")).campaign
    later = (await create_campaign(wechat, kind="group_buy", title="慢慢拼", goal=2, cap=8, end="5天")).campaign
    ended = (await create_campaign(wechat, kind="lucky_draw", title="提前结束", goal=1, cap=3, end="5天")).campaign
    await wechat.say(MANAGER, f"结束活动 {ended.code}")
    await wechat.say(member, f"参加 {later.code}")

    listing = await wechat.say(member, "活动")
    assert listing.splitlines() == [
        texts.CAMPAIGNS_HEAD,
        texts.CAMPAIGNS_LINE.format(code=soon.code, title="马上结束", kind="报名有礼", count=0, cap=5,
                                    ends="11-23 10:00"),
        texts.CAMPAIGNS_LINE.format(code=later.code, title="慢慢拼", kind="拼团", count=1, cap=8,
                                    ends="11-27 10:00"),
    ]
    assert await wechat.say(member, "campaigns") == listing
    assert (await wechat.event(member, "CLICK", "CAMPAIGNS") or {}).get("Content") == listing
    clock.advance(days=1)  # `soon` is past its end even before the job settles it
    assert soon.code not in await wechat.say(member, "活动")


# --- staff only ----------------------------------------------------------------------------------

async def test_non_staff_get_the_menu_and_nothing_changes(wechat: WeChat) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="lucky_draw", points=10, goal=1, cap=5)).campaign
    (member,) = await members(wechat, 1)
    await wechat.say(member, f"参加 {c.code}")
    stranger = openid(1, "oSTRANGER")
    for who, menu in ((member, texts.HELP_MEMBER), (stranger, texts.HELP_VISITOR)):
        assert await wechat.say(who, "发起活动") == menu
        assert await flow_state(wechat, who) is None
        assert await wechat.say(who, "1") == menu  # no flow was started
        assert await wechat.say(who, f"活动数据 {c.code}") == menu
        assert await wechat.say(who, f"结束活动 {c.code}") == menu
        assert await wechat.say(who, "结束活动") == menu
    after = await campaign_row(db, c.id)  # type: ignore[arg-type]
    assert (after.status, after.participants, after.paid_out, after.draw_record) == ("open", 1, 0, None)
    assert len(await all_campaigns(db)) == 1
    async with db.sessions() as session:
        assert await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "campaign")
        ) == 0

    # an admin is staff too; a manager's unknown code is refused clearly
    await make_staff(wechat, stranger, "admin")
    assert "参加人数：1/5" in await wechat.say(stranger, f"活动数据 {c.code.lower()}")
    assert await wechat.say(MANAGER, "活动数据 QQQQQ") == texts.campaign_unknown.format(code="QQQQQ")
    assert await wechat.say(MANAGER, "结束活动 QQQQQ") == texts.campaign_unknown.format(code="QQQQQ")


async def test_checkins_outside_the_window_do_not_count(wechat: WeChat, clock: FrozenClock) -> None:
    """Check-ins before the campaign's first day do not count towards K."""
    db = wechat.services.db
    await make_staff(wechat)
    (member,) = await members(wechat, 1)
    await wechat.say(member, "签到")  # 22 Nov, before the campaign exists
    clock.advance(days=1)
    c = (await create_campaign(wechat, kind="checkin_challenge", points=10, goal=2, cap=5, end="3天")).campaign
    await wechat.say(member, f"参加 {c.code}")
    await wechat.say(member, "签到")  # 23 Nov: one day in the window
    clock.advance(days=3, minutes=1)
    assert await Campaigns(wechat.services.ledger).finalize_due(db, clock.now()) == 1
    assert await payouts(db, c.id) == {}  # type: ignore[arg-type]
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Checkin)) == 2
        assert await session.scalar(select(func.count()).select_from(CampaignMember)) == 1
        assert (await session.get(Campaign, c.id)).status == "settled"  # type: ignore[union-attr]


async def test_a_group_buy_that_never_reaches_n_pays_nobody(wechat: WeChat, clock: FrozenClock) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="group_buy", points=30, goal=3, cap=5, end="1天")).campaign
    people = await members(wechat, 2)
    for who in people:
        assert "还差" in await wechat.say(who, f"参加 {c.code}")
    clock.advance(days=1)
    assert await Campaigns(wechat.services.ledger).finalize_due(db, clock.now()) == 1
    assert await payouts(db, c.id) == {}  # type: ignore[arg-type]
    row = await campaign_row(db, c.id)  # type: ignore[arg-type]
    assert (row.status, row.paid_out, row.participants) == ("settled", 0, 2)
    assert await outbox_rows(db, kind="campaign_reward") == []


async def answer_text(wechat: WeChat, reply: dict[str, object] | None) -> str:
    """The passive reply's text; when the first delivery missed WeChat's deadline (a loaded test
    machine) it answered `success` and the reply went to the outbox as a customer-service message."""
    if reply is not None:
        return str(reply.get("Content"))
    late = await outbox_rows(wechat.services.db, kind="reply", prefix="late:")
    assert late, "neither a passive reply nor a late one"
    return str(custom_message(late[-1])["text"]["content"])


async def test_wechat_retrying_a_message_creates_and_joins_once(wechat: WeChat) -> None:
    """WeChat repeats a message it got no answer for: the same reply, and no second effect."""
    db = wechat.services.db
    await make_staff(wechat)
    for answer in ("发起活动", "1", "重试活动", "10", "5", "3天", "跳过"):
        await wechat.say(MANAGER, answer)
    confirm = wechat.side.text(MANAGER, "是")
    first = await wechat.send(confirm)
    assert await wechat.send(confirm) == first
    await wechat.pipeline.drain()  # a reply that missed the deadline is finished and queued
    (c,) = await all_campaigns(db)
    assert f"活动码：{c.code}" in await answer_text(wechat, first)

    (member,) = await members(wechat, 1)
    join = wechat.side.text(member, f"参加 {c.code}")
    joined = await wechat.send(join)
    assert await wechat.send(join) == joined
    await wechat.pipeline.drain()
    assert "已有 1/5 人参加" in await answer_text(wechat, joined)
    assert await payouts(db, c.id) == {await member_id(db, member): [10]}  # type: ignore[arg-type]
