"""Redemption in the chat, end to end through signed XML: the list (paged, affordable first), a choice,
the quote, `是` and the code; `兑换 N`; `否`, `取消` and the 5-minute timeout spending nothing; every
refusal text; retries; and the anomaly for a redemption spree."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select

from handlers import texts
from storage.clock import FrozenClock
from storage.models import Anomaly, LedgerEntry, Member, Redemption
from storage.rewards import Rewards
from tests.e2e.test_member_journey import sign_up
from tests.support.factories import anomalies_of
from tests.support.fakes import ADMIN, WeChat
from tests.support.invariants import assert_points_consistent
from tests.support.redeem_support import add_reward, credit, redemptions_of, reward_row

ALICE = "oALICE0000000000000000redeem"
BOB = "oBOB00000000000000000redeem"
LINE = re.compile(r"^(\d+)\. (\S+)  (\d+) 积分(.*)$", re.MULTILINE)
EXPIRES = "2026-12-22"  # the fixture clock's local day (2026-11-22) + 30 days


async def join(wechat: WeChat, openid: str = ALICE, phone: str = "13800138000") -> int:
    """A member holding the 100-point sign-up bonus; returns the member id. (The sign-up flow itself is
    tested elsewhere and once below; writing the row directly keeps this file fast.)"""
    services = wechat.services
    now = services.clock.now()
    async with services.db.unit_of_work() as session:
        member = Member(
            openid=openid, phone_enc=services.pii.encrypt(phone), phone_hash=services.pii.lookup_hash(phone),
            referral_code=secrets.token_hex(4).upper(), joined_at=now, consent_at=now, created_at=now,
            last_interaction_at=now,
        )
        session.add(member)
        await session.flush()
        assert member.id is not None
        await services.ledger.earn(session, member.id, 100, key=f"signup:{member.id}", kind="signup", now=now)
        return member.id


async def give(wechat: WeChat, member_id: int, points: int) -> None:
    await credit(wechat.services.db, wechat.services.ledger, member_id, points, wechat.services.clock.now())


async def reward(wechat: WeChat, **fields: object) -> int:
    return await add_reward(wechat.services.db, wechat.services.clock.now(), **fields)


async def redemptions(wechat: WeChat, member_id: int) -> list[Redemption]:
    return await redemptions_of(wechat.services.db, member_id=member_id)


async def balance(wechat: WeChat, member_id: int) -> int:
    return (await assert_points_consistent(wechat.services.db, [member_id]))[member_id]


async def nothing_spent(wechat: WeChat, member_id: int, expected_balance: int = 100) -> None:
    assert await redemptions(wechat, member_id) == []
    assert await balance(wechat, member_id) == expected_balance
    async with wechat.services.db.sessions() as session:
        spent = (await session.scalars(
            select(LedgerEntry).where(LedgerEntry.member_id == member_id).where(LedgerEntry.kind == "redeem")
        )).all()
    assert spent == []


def listed(reply: str) -> list[tuple[int, str, int, str]]:
    return [(int(n), name, int(cost), note) for n, name, cost, note in LINE.findall(reply)]


def again(refusal: str, count: int = 1) -> str:
    """A refusal at the choice step: why, then how to pick another of the `count` listed or leave."""
    return refusal + "\n" + texts.REDEEM_CHOOSE_AGAIN.format(count=count)


def quote(name: str, cost: int, after: int, description: str = "测试用") -> str:
    return texts.REDEEM_QUOTE.format(name=name, description=description, cost=cost, after=after)


# --- the happy path -------------------------------------------------------------------------------

@pytest.mark.parametrize("encrypted", [False, True], ids=["plaintext", "safe-mode"])
async def test_list_choose_quote_confirm_and_see_the_code(wechat: WeChat, encrypted: bool) -> None:
    assert "注册成功" in await sign_up(wechat, ALICE)
    async with wechat.services.db.sessions() as session:
        member = await session.scalar(select(Member.id).where(Member.openid == ALICE))
    assert member is not None
    reward_id = await reward(wechat, name="5元券", description="全场通用", cost=50, stock=3)

    listing = await wechat.say(ALICE, "兑换", encrypted=encrypted)
    assert listing.splitlines()[0] == texts.REDEEM_HEAD.format(balance=100)
    assert listed(listing) == [(1, "5元券", 50, "")]
    assert texts.REDEEM_MORE not in listing
    assert await wechat.say(ALICE, "1", encrypted=encrypted) == quote("5元券", 50, 50, "全场通用")

    done = await wechat.say(ALICE, "是", encrypted=encrypted)

    (redemption,) = await redemptions(wechat, member)
    assert done == texts.REDEEM_DONE.format(
        name="5元券", code=redemption.code, expires=EXPIRES, usage=texts.USAGE_COUPON, cost=50, balance=50,
    )
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{10}", redemption.code)
    assert re.fullmatch(r"quote:\d+", redemption.request_key)  # the quote row is the redemption key
    assert await balance(wechat, member) == 50
    assert (await reward_row(wechat.services.db, reward_id)).stock == 2
    mine = texts.COUPONS_HEAD + "\n" + texts.COUPONS_LINE.format(name="5元券", code=redemption.code, expires=EXPIRES)
    assert await wechat.say(ALICE, "我的券", encrypted=encrypted) == mine
    assert await wechat.say(ALICE, "coupons", encrypted=encrypted) == mine


async def test_list_pages_eight_at_a_time_affordable_first(wechat: WeChat) -> None:
    await join(wechat)
    for cost in (300, 20, 500, 40, 60, 80, 90, 150, 30, 200):
        await reward(wechat, name=f"礼品{cost}", cost=cost)

    first = await wechat.say(ALICE, "积分商城")

    assert first.splitlines()[0] == texts.REDEEM_HEAD.format(balance=100)
    assert [(n, cost) for n, _, cost, _ in listed(first)] == [
        (1, 20), (2, 30), (3, 40), (4, 60), (5, 80), (6, 90), (7, 150), (8, 200),
    ]
    notes = {cost: note for _, _, cost, note in listed(first)}
    assert notes[90] == ""
    assert notes[150] == texts.REDEEM_NOTE_SHORT.format(missing=50)
    assert notes[200] == texts.REDEEM_NOTE_SHORT.format(missing=100)
    assert first.endswith(texts.REDEEM_FOOT + "\n" + texts.REDEEM_MORE)

    second = await wechat.say(ALICE, "下一页")
    assert second.splitlines()[0] == texts.REDEEM_HEAD.format(balance=100)
    assert [(n, cost) for n, _, cost, _ in listed(second)] == [(9, 300), (10, 500)]
    assert texts.REDEEM_MORE not in second
    assert await wechat.say(ALICE, "下一页") == texts.REDEEM_NO_MORE

    assert await wechat.say(ALICE, "2") == quote("礼品30", 30, 70)  # numbers stay those of the list
    assert "兑换成功！礼品30" in await wechat.say(ALICE, "是")


async def test_exactly_eight_items_need_no_next_page_and_the_menu_opens_the_list(wechat: WeChat) -> None:
    await join(wechat)
    for cost in range(10, 90, 10):
        await reward(wechat, name=f"礼品{cost}", cost=cost)
    listing = await wechat.say(ALICE, "redeem")
    assert len(listed(listing)) == 8
    assert texts.REDEEM_MORE not in listing
    assert await wechat.say(ALICE, "下一页") == texts.REDEEM_NO_MORE
    await wechat.say(ALICE, "取消")
    click = await wechat.event(ALICE, "CLICK", "REDEEM")  # the menu button opens the same list
    assert click is not None
    assert click["Content"] == listing


async def test_gift_and_pool_rewards_say_how_to_use_them(wechat: WeChat) -> None:
    member = await join(wechat)
    await reward(wechat, name="门店礼品", cost=30, kind="gift", validity_days=14)
    pool_id = await reward(wechat, name="电影券", cost=40, kind="code_pool", validity_days=60)
    async with wechat.services.db.unit_of_work() as session:
        await Rewards(wechat.services.ledger).import_codes(session, pool_id, ["POS-0001"])

    await wechat.say(ALICE, "兑换 1")
    gift = await wechat.say(ALICE, "是")
    await wechat.say(ALICE, "兑换 2")
    pool = await wechat.say(ALICE, "是")

    first, second = await redemptions(wechat, member)
    assert gift == texts.REDEEM_DONE.format(
        name="门店礼品", code=first.code, expires="2026-12-06", usage=texts.USAGE_GIFT, cost=30, balance=70,
    )
    assert second.code == "POS-0001"
    assert pool == texts.REDEEM_DONE.format(
        name="电影券", code="POS-0001", expires="2027-01-21", usage=texts.USAGE_POOL, cost=40, balance=30,
    )


async def test_redeem_n_quotes_item_n_at_once(wechat: WeChat) -> None:
    member = await join(wechat)
    await reward(wechat, name="礼品20", cost=20)
    await reward(wechat, name="礼品30", cost=30)
    for command in ("兑换 2", "兑换2", "redeem 2", "REDEEM 2", "积分商城 2", " 兑换 ２ "):
        assert await wechat.say(ALICE, command) == quote("礼品30", 30, 70), command
        assert await wechat.say(ALICE, "否") == texts.REDEEM_DECLINED
    await wechat.say(ALICE, "兑换 1")
    assert "兑换成功！礼品20" in await wechat.say(ALICE, "是")
    assert [r.cost for r in await redemptions(wechat, member)] == [20]


async def test_redeem_n_with_no_such_item(wechat: WeChat) -> None:
    member = await join(wechat)
    await reward(wechat, name="礼品20", cost=20)
    await reward(wechat, name="礼品30", cost=30)
    for item in ("0", "3", "99", "abc"):
        assert await wechat.say(ALICE, f"兑换 {item}") == texts.REDEEM_NO_SUCH_ITEM.format(n=item), item
        assert await wechat.say(ALICE, "是") == texts.HELP_MEMBER  # no quote is pending
    await nothing_spent(wechat, member)


# --- leaving without spending -----------------------------------------------------------------------

async def test_no_spends_nothing(wechat: WeChat) -> None:
    member = await join(wechat)
    await reward(wechat, name="5元券", cost=50)
    await wechat.say(ALICE, "兑换")
    await wechat.say(ALICE, "1")
    assert await wechat.say(ALICE, "也许") == texts.REDEEM_CONFIRM_AGAIN
    assert await wechat.say(ALICE, "否") == texts.REDEEM_DECLINED
    assert await wechat.say(ALICE, "是") == texts.HELP_MEMBER  # the quote is gone with the flow
    assert await wechat.say(ALICE, "我的券") == texts.COUPONS_EMPTY
    await nothing_spent(wechat, member)


async def test_cancel_in_either_step_spends_nothing(wechat: WeChat) -> None:
    member = await join(wechat)
    await reward(wechat, name="5元券", cost=50)
    for word in ("取消", "cancel", "CANCEL"):
        await wechat.say(ALICE, "兑换")
        assert await wechat.say(ALICE, word) == texts.CANCELLED
        await wechat.say(ALICE, "兑换")
        await wechat.say(ALICE, "1")
        assert await wechat.say(ALICE, word) == texts.CANCELLED
        assert await wechat.say(ALICE, "是") == texts.HELP_MEMBER
    await nothing_spent(wechat, member)


async def test_a_quote_older_than_five_minutes_expires(wechat: WeChat, clock: FrozenClock) -> None:
    member = await join(wechat)
    await reward(wechat, name="5元券", cost=50)
    await wechat.say(ALICE, "兑换 1")
    clock.advance(minutes=6)
    assert await wechat.say(ALICE, "是") == again(texts.quote_expired)
    assert await wechat.say(ALICE, "是") == texts.REDEEM_BAD_CHOICE.format(count=1)  # still choosing
    await nothing_spent(wechat, member)

    await wechat.say(ALICE, "兑换 1")  # a fresh quote, confirmed just in time
    clock.advance(minutes=4, seconds=59)
    assert "兑换成功" in await wechat.say(ALICE, "是")
    assert len(await redemptions(wechat, member)) == 1


async def test_a_bad_choice_reprompts(wechat: WeChat) -> None:
    member = await join(wechat)
    await reward(wechat, name="礼品20", cost=20)
    await reward(wechat, name="礼品30", cost=30)
    await wechat.say(ALICE, "兑换")
    for answer in ("0", "99", "abc", "2.5", "-1", "3"):
        assert await wechat.say(ALICE, answer) == texts.REDEEM_BAD_CHOICE.format(count=2), answer
    assert await wechat.say(ALICE, "1") == quote("礼品20", 20, 80)
    await nothing_spent(wechat, member)


# --- refusals -----------------------------------------------------------------------------------------

async def test_not_enough_points_at_the_quote(wechat: WeChat) -> None:
    member = await join(wechat)
    reward_id = await reward(wechat, name="50元券", cost=180, stock=2, total_limit=5)
    listing = await wechat.say(ALICE, "兑换")
    assert listed(listing) == [(1, "50元券", 180, texts.REDEEM_NOTE_SHORT.format(missing=80))]
    refusal = await wechat.say(ALICE, "1")
    assert refusal == again(texts.insufficient_points_redeem.format(
        needed=180, balance=100, missing=80, checkin=5, referral=50,
    ))
    assert "还差 80 积分" in refusal
    assert "【签到】" in refusal
    assert await wechat.say(ALICE, "是") == texts.REDEEM_BAD_CHOICE.format(count=1)  # nothing was quoted
    assert await wechat.say(ALICE, "取消") == texts.CANCELLED
    short = texts.insufficient_points_redeem.format(needed=180, balance=100, missing=80, checkin=5, referral=50)
    assert await wechat.say(ALICE, "兑换 1") == short + "\n" + listing  # the list it was never shown
    await nothing_spent(wechat, member)
    row = await reward_row(wechat.services.db, reward_id)
    assert (row.stock, row.issued_count) == (2, 0)


async def test_not_enough_points_at_confirmation(wechat: WeChat, clock: FrozenClock) -> None:
    member = await join(wechat)
    await reward(wechat, name="5元券", cost=80)
    assert await wechat.say(ALICE, "兑换 1") == quote("5元券", 80, 20)
    async with wechat.services.db.unit_of_work() as session:  # spent elsewhere meanwhile
        await wechat.services.ledger.spend(session, member, 30, key="elsewhere", kind="redeem", now=clock.now())
    assert await wechat.say(ALICE, "是") == again(texts.insufficient_points_redeem.format(
        needed=80, balance=70, missing=10, checkin=5, referral=50,
    ))
    assert await redemptions(wechat, member) == []
    assert await balance(wechat, member) == 70


async def test_out_of_stock(wechat: WeChat) -> None:
    member = await join(wechat)
    reward_id = await reward(wechat, name="限量杯", cost=50, stock=0)
    listing = await wechat.say(ALICE, "兑换")
    assert listed(listing) == [(1, "限量杯", 50, texts.REDEEM_NOTE_SOLD_OUT)]
    assert await wechat.say(ALICE, "1") == again(texts.out_of_stock.format(name="限量杯"))  # refused before 是
    assert await wechat.say(ALICE, "是") == texts.REDEEM_BAD_CHOICE.format(count=1)
    await nothing_spent(wechat, member)
    assert (await reward_row(wechat.services.db, reward_id)).stock == 0


async def test_out_of_stock_between_quote_and_yes(wechat: WeChat) -> None:
    await join(wechat, ALICE, "13800138000")
    bob = await join(wechat, BOB, "13900139000")
    await reward(wechat, name="最后一件", cost=50, stock=1)
    await wechat.say(BOB, "兑换 1")
    await wechat.say(ALICE, "兑换 1")
    assert "兑换成功" in await wechat.say(ALICE, "是")
    assert await wechat.say(BOB, "是") == again(texts.out_of_stock.format(name="最后一件"))
    await nothing_spent(wechat, bob)


async def test_per_member_limit(wechat: WeChat) -> None:
    member = await join(wechat)
    await give(wechat, member, 100)
    reward_id = await reward(wechat, name="新人券", cost=50, per_member_limit=1, stock=10)
    await wechat.say(ALICE, "兑换 1")
    assert "兑换成功" in await wechat.say(ALICE, "是")
    listing = await wechat.say(ALICE, "兑换")
    limit = texts.limit_reached.format(name="新人券", limit=1)
    assert await wechat.say(ALICE, "1") == again(limit)  # refused at the choice, before any quote
    await wechat.say(ALICE, "取消")
    assert await wechat.say(ALICE, "兑换 1") == limit + "\n" + listing
    assert len(await redemptions(wechat, member)) == 1
    assert await balance(wechat, member) == 150
    assert (await reward_row(wechat.services.db, reward_id)).stock == 9


async def test_tier_too_low(wechat: WeChat) -> None:
    member = await join(wechat)
    await give(wechat, member, 3000)
    reward_id = await reward(wechat, name="金卡礼盒", cost=200, min_tier="金卡")
    await reward(wechat, name="5元券", cost=50)
    assert [name for _, name, _, _ in listed(await wechat.say(ALICE, "兑换"))] == ["5元券"]
    await wechat.say(ALICE, "取消")

    async with wechat.services.db.unit_of_work() as session:
        gold = await session.get(Member, member)
        assert gold is not None
        gold.tier = "金卡"
    assert [name for _, name, _, _ in listed(await wechat.say(ALICE, "兑换"))] == ["5元券", "金卡礼盒"]
    assert await wechat.say(ALICE, "2") == quote("金卡礼盒", 200, 2900)
    async with wechat.services.db.unit_of_work() as session:  # the monthly review moved them down
        silver = await session.get(Member, member)
        assert silver is not None
        silver.tier = "银卡"
    assert await wechat.say(ALICE, "是") == again(texts.tier_too_low.format(name="金卡礼盒", tier="金卡"), 2)
    await nothing_spent(wechat, member, 3100)
    assert (await reward_row(wechat.services.db, reward_id)).issued_count == 0


async def test_tier_raised_by_the_operator_between_quote_and_yes(wechat: WeChat) -> None:
    member = await join(wechat)
    reward_id = await reward(wechat, name="5元券", cost=50)
    await wechat.say(ALICE, "兑换 1")
    edited = await wechat.client.patch(f"/api/admin/rewards/{reward_id}", json={"min_tier": "金卡"}, headers=ADMIN)
    assert edited.status_code == 200, edited.text
    assert await wechat.say(ALICE, "是") == again(texts.tier_too_low.format(name="5元券", tier="金卡"))
    await nothing_spent(wechat, member)


async def test_ended_and_future_rewards_are_not_listed(wechat: WeChat, clock: FrozenClock) -> None:
    member = await join(wechat)
    await reward(wechat, name="过期券", cost=50, ends_at=clock.now() - timedelta(seconds=1))
    await reward(wechat, name="未开始券", cost=50, starts_at=clock.now() + timedelta(days=1))
    await reward(wechat, name="下架券", cost=50, active=False)
    assert await wechat.say(ALICE, "兑换") == texts.REDEEM_EMPTY
    assert await wechat.say(ALICE, "兑换 1") == texts.REDEEM_EMPTY
    await nothing_spent(wechat, member)


async def test_reward_ends_or_is_deactivated_between_quote_and_yes(wechat: WeChat, clock: FrozenClock) -> None:
    member = await join(wechat)
    await reward(wechat, name="限时券", cost=50, ends_at=clock.now() + timedelta(minutes=2))
    withdrawn = await reward(wechat, name="下架券", cost=60)
    await wechat.say(ALICE, "兑换 1")
    clock.advance(minutes=3)
    assert await wechat.say(ALICE, "是") == again(texts.reward_ended.format(name="限时券"), 2)

    assert await wechat.say(ALICE, "兑换 1") == quote("下架券", 60, 40)  # the ended one is off the list
    response = await wechat.client.post(f"/api/admin/rewards/{withdrawn}/deactivate", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert await wechat.say(ALICE, "是") == again(texts.reward_ended.format(name="下架券"))
    await nothing_spent(wechat, member)


async def test_a_non_member_is_invited_to_sign_up(wechat: WeChat) -> None:
    await reward(wechat, name="5元券", cost=50)
    for command in ("兑换", "兑换 1", "redeem", "积分商城", "我的券", "coupons"):
        assert await wechat.say(BOB, command) == texts.JOIN_FIRST.format(bonus=100), command
    click = await wechat.event(BOB, "CLICK", "REDEEM")
    assert click is not None
    assert click["Content"] == texts.JOIN_FIRST.format(bonus=100)
    async with wechat.services.db.sessions() as session:
        assert (await session.scalars(select(Redemption))).all() == []


# --- retries and anomalies -------------------------------------------------------------------------------

async def test_a_retried_yes_gets_the_same_reply_and_redeems_once(wechat: WeChat) -> None:
    member = await join(wechat)
    await reward(wechat, name="5元券", cost=50, stock=5)
    await wechat.say(ALICE, "兑换 1")
    yes = wechat.side.text(ALICE, "是", msg_id=7_300_000_000_000_001)

    first = await wechat.send(yes)
    retry = await wechat.send(yes)

    assert first is not None
    assert retry is not None
    assert "兑换成功" in first["Content"]
    assert retry["Content"] == first["Content"]
    (redemption,) = await redemptions(wechat, member)
    assert redemption.code in first["Content"]
    assert await balance(wechat, member) == 50


async def test_more_than_ten_redemptions_a_day_is_an_anomaly(wechat: WeChat) -> None:
    member = await join(wechat)
    await give(wechat, member, 1000)
    await reward(wechat, name="1元券", cost=10)

    async def spree_rows() -> list[Anomaly]:
        return await anomalies_of(wechat.services.db, member, "redeem_spree")

    for n in range(1, 13):
        await wechat.say(ALICE, "兑换 1")
        assert "兑换成功" in await wechat.say(ALICE, "是")
        assert len(await spree_rows()) == (0 if n <= 10 else 1), n
    (row,) = await spree_rows()
    assert "2026-11-22" in row.detail
    assert len(await redemptions(wechat, member)) == 12
    assert await balance(wechat, member) == 1100 - 120


# --- a refusal keeps the member at the choice (issue 21) ---------------------------------------------

async def test_refused_choice_then_the_affordable_one_gets_its_quote(wechat: WeChat) -> None:
    member = await join(wechat)
    await reward(wechat, name="5元券", cost=50)
    await reward(wechat, name="20元券", cost=175)
    listing = await wechat.say(ALICE, "兑换")
    assert [(n, name) for n, name, _, _ in listed(listing)] == [(1, "5元券"), (2, "20元券")]
    refusal = await wechat.say(ALICE, "2")
    assert refusal == again(texts.insufficient_points_redeem.format(
        needed=175, balance=100, missing=75, checkin=5, referral=50,
    ), 2)
    assert "还差 75 积分" in refusal
    assert "【取消】" in refusal
    assert await wechat.say(ALICE, "1") == quote("5元券", 50, 50)
    assert "兑换成功！5元券" in await wechat.say(ALICE, "是")
    assert await balance(wechat, member) == 50


async def test_the_command_a_refusal_suggests_runs_and_other_text_re_asks(wechat: WeChat) -> None:
    """Not enough points says 【签到】 earns them: typed at the list, it checks in (the flow ends); text no
    route takes stays with the list."""
    member = await join(wechat)
    await reward(wechat, name="20元券", cost=175)
    await wechat.say(ALICE, "兑换")
    assert "【签到】" in await wechat.say(ALICE, "1")
    assert await wechat.say(ALICE, "随便看看") == texts.REDEEM_BAD_CHOICE.format(count=1)
    checked_in = await wechat.say(ALICE, "签到")
    assert checked_in == texts.CHECKIN_DONE.format(points=5, bonus="", streak=1, balance=105)
    assert await balance(wechat, member) == 105
    assert await wechat.say(ALICE, "1") == texts.HELP_MEMBER  # the list is gone with the flow


async def test_a_command_typed_at_a_quote_runs_and_nothing_is_spent(wechat: WeChat) -> None:
    member = await join(wechat)
    await reward(wechat, name="5元券", cost=50)
    assert await wechat.say(ALICE, "兑换 1") == quote("5元券", 50, 50)
    assert await wechat.say(ALICE, "好的吧") == texts.REDEEM_CONFIRM_AGAIN
    assert "签到成功" in await wechat.say(ALICE, "签到")
    assert await wechat.say(ALICE, "是") == texts.HELP_MEMBER  # the quote was left: nothing to confirm
    assert await balance(wechat, member) == 105
    assert await redemptions(wechat, member) == []


async def test_each_refusal_is_followed_by_the_next_natural_answer(wechat: WeChat) -> None:
    member = await join(wechat)
    await give(wechat, member, 100)
    await reward(wechat, name="5元券", cost=50)
    await reward(wechat, name="售罄杯", cost=60, stock=0)
    await reward(wechat, name="新人券", cost=70, per_member_limit=1)
    await wechat.say(ALICE, "兑换 3")
    assert "兑换成功！新人券" in await wechat.say(ALICE, "是")
    await wechat.say(ALICE, "兑换")
    assert await wechat.say(ALICE, "2") == again(texts.out_of_stock.format(name="售罄杯"), 3)
    assert await wechat.say(ALICE, "3") == again(texts.limit_reached.format(name="新人券", limit=1), 3)
    assert await wechat.say(ALICE, "1") == quote("5元券", 50, 80)
    assert "兑换成功！5元券" in await wechat.say(ALICE, "是")


async def test_a_refused_yes_goes_back_to_the_list_and_another_number_is_quoted(wechat: WeChat) -> None:
    member = await join(wechat)
    await reward(wechat, name="5元券", cost=50)
    gold = await reward(wechat, name="8元券", cost=60)
    await wechat.say(ALICE, "兑换")
    assert await wechat.say(ALICE, "2") == quote("8元券", 60, 40)
    edited = await wechat.client.patch(f"/api/admin/rewards/{gold}", json={"min_tier": "金卡"}, headers=ADMIN)
    assert edited.status_code == 200, edited.text
    assert await wechat.say(ALICE, "是") == again(texts.tier_too_low.format(name="8元券", tier="金卡"), 2)
    assert await wechat.say(ALICE, "1") == quote("5元券", 50, 50)
    assert await wechat.say(ALICE, "取消") == texts.CANCELLED
    await nothing_spent(wechat, member)
