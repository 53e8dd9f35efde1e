"""Check-in, balance, history and tiers in the chat, end to end through signed XML (issue 3 items 5-7),
with purchases arriving through the signed order webhook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from handlers import texts
from storage import members
from storage.clock import FrozenClock
from storage.models import Checkin
from tests.support.factories import anomalies_of, local
from tests.support.fakes import WeChat
from tests.support.member_support import (
    app_with_order_secret,
    assert_books_balance,
    entries,
    entry_by_key,
    joined,
    member_by_openid,
    pay,
    post_order,
    refund,
    sign_up,
)

ALICE = "oPOINTS_ALICE_000000000001"
VISITOR = "oPOINTS_VISITOR_0000000002"
JOIN_FIRST = texts.JOIN_FIRST.format(bonus=100)


@pytest.fixture
async def wechat(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[WeChat]:
    """The usual harness, with ORDER_WEBHOOK_SECRET set so purchases can move the tier."""
    async with app_with_order_secret(urls, clock) as harness:
        yield harness


def done(points: int, streak: int, balance: int, bonus: int = 0) -> str:
    extra = texts.CHECKIN_STREAK_BONUS.format(bonus=bonus) if bonus else ""
    return texts.CHECKIN_DONE.format(points=points, bonus=extra, streak=streak, balance=balance)


def balance_text(balance: int, tier: str, progress: str, expiring: str = texts.BALANCE_NO_EXPIRING) -> str:
    return texts.BALANCE.format(balance=balance, tier=tier, progress=progress, expiring=expiring)


def progress(gap: int, following: str) -> str:
    return texts.BALANCE_PROGRESS.format(gap=gap, next=following)


async def checkins(wechat: WeChat, member_id: int) -> list[Checkin]:
    async with wechat.services.db.sessions() as session:
        rows = await session.scalars(select(Checkin).where(Checkin.member_id == member_id).order_by(Checkin.day))
        return list(rows)


async def say_or_click(wechat: WeChat, word: str, menu_key: str) -> str:
    """ALICE's reply to the typed word, or to a click on the menu_key button when word is "click"."""
    if word != "click":
        return await wechat.say(ALICE, word)
    reply = await wechat.event(ALICE, "CLICK", menu_key)
    assert reply is not None
    return str(reply["Content"])


# --- check-in -----------------------------------------------------------------------------------

@pytest.mark.parametrize("word", ["签到", "checkin", "CHECKIN", " ＣｈｅｃｋＩｎ ", "打卡", "click"])
async def test_check_in_shows_points_streak_and_balance(wechat: WeChat, word: str) -> None:
    await sign_up(wechat, ALICE)
    text = await say_or_click(wechat, word, "CHECKIN")
    assert text == done(5, 1, 105)
    member = await joined(wechat, ALICE)
    entry = await entry_by_key(wechat, f"checkin:{member.id}:2026-11-22")
    assert entry is not None
    assert (entry.kind, entry.delta, entry.balance_after) == ("checkin", 5, 105)
    assert [(c.day.isoformat(), c.streak) for c in await checkins(wechat, member.id)] == [("2026-11-22", 1)]  # type: ignore[arg-type]
    assert await assert_books_balance(wechat, member.id) == 105  # type: ignore[arg-type]


async def test_second_check_in_the_same_local_day_credits_nothing(wechat: WeChat, clock: FrozenClock) -> None:
    await sign_up(wechat, ALICE)
    member = await joined(wechat, ALICE)
    assert await wechat.say(ALICE, "签到") == done(5, 1, 105)
    before = len(await entries(wechat, member.id))  # type: ignore[arg-type]
    already = texts.CHECKIN_ALREADY.format(streak=1, balance=105)
    assert await wechat.say(ALICE, "签到") == already
    reply = await wechat.event(ALICE, "CLICK", "CHECKIN")
    assert reply is not None
    assert reply["Content"] == already
    clock.set(local(2026, 11, 22, 23, 59, 59))  # still the 22nd in Shanghai (15:59:59 UTC)
    assert await wechat.say(ALICE, "checkin") == already
    assert len(await entries(wechat, member.id)) == before  # type: ignore[arg-type]
    assert await assert_books_balance(wechat, member.id) == 105  # type: ignore[arg-type]

    clock.set(local(2026, 11, 23, 0, 0, 0))  # a new day in Shanghai, still the 22nd in UTC
    assert await wechat.say(ALICE, "签到") == done(5, 2, 110)
    assert [c.streak for c in await checkins(wechat, member.id)] == [1, 2]  # type: ignore[arg-type]


async def test_seventh_day_bonus_and_a_missed_day_breaks_the_streak(wechat: WeChat, clock: FrozenClock) -> None:
    await sign_up(wechat, ALICE)
    balance = 100
    for day in range(1, 8):
        clock.set(local(2026, 11, 21 + day, 9, 30))
        balance += 5 + (20 if day == 7 else 0)
        assert await wechat.say(ALICE, "签到") == done(5, day, balance, bonus=20 if day == 7 else 0)
    member = await joined(wechat, ALICE)
    streak = await entry_by_key(wechat, f"streak:{member.id}:2026-11-28")
    assert streak is not None
    assert (streak.kind, streak.delta) == ("streak", 20)
    clock.set(local(2026, 11, 30, 9, 30))  # the 29th was missed
    assert await wechat.say(ALICE, "签到") == done(5, 1, balance + 5)
    assert await assert_books_balance(wechat, member.id) == balance + 5  # type: ignore[arg-type]


async def test_check_in_over_the_daily_cap_says_so(wechat: WeChat) -> None:
    await sign_up(wechat, ALICE)  # +100 today
    member = await joined(wechat, ALICE)
    services = wechat.services
    now = services.clock.now()
    for index in range(8):  # eight referrals today: +400, the day's 500 is reached
        openid = f"oPOINTS_FRIEND_{index:012d}"
        async with services.db.unit_of_work() as session:
            await members.record_referrer(session, openid, "oa", member.referral_code or "", now)
        async with services.db.unit_of_work() as session:
            await members.sign_up(
                session, services.ledger, services.pii, openid=openid, source="oa",
                phone=f"1370000{index:04d}", birthday=None, now=now,
            )
    reply = await wechat.say(ALICE, "签到")
    assert reply == done(0, 1, 500) + texts.CHECKIN_CAPPED.format(cap=500)
    assert await assert_books_balance(wechat, member.id) == 500  # type: ignore[arg-type]
    assert [a.kind for a in await anomalies_of(services.db, member.id)] == ["daily_cap"]  # type: ignore[arg-type]


# --- visitors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("word", ["签到", "积分", "余额", "balance", "明细", "history", "积分明细", "打卡"])
async def test_visitor_is_invited_to_sign_up(wechat: WeChat, word: str) -> None:
    assert await wechat.say(VISITOR, word) == JOIN_FIRST
    visitor = await member_by_openid(wechat, VISITOR)
    assert visitor is not None
    assert visitor.joined_at is None
    assert await entries(wechat, visitor.id) == []  # type: ignore[arg-type]
    assert await checkins(wechat, visitor.id) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["CHECKIN", "BALANCE"])
async def test_visitor_menu_clicks_are_invited_to_sign_up(wechat: WeChat, key: str) -> None:
    reply = await wechat.event(VISITOR, "CLICK", key)
    assert reply is not None
    assert reply["Content"] == JOIN_FIRST


# --- balance ------------------------------------------------------------------------------------

@pytest.mark.parametrize("word", ["积分", "余额", "balance", "BALANCE", " ｂａｌａｎｃｅ ", "我的积分", "click"])
async def test_balance_shows_tier_and_progress(wechat: WeChat, word: str) -> None:
    await sign_up(wechat, ALICE)
    text = await say_or_click(wechat, word, "BALANCE")
    assert text == balance_text(100, "普通", progress(900, "银卡"))


async def test_balance_shows_points_expiring_within_thirty_days(wechat: WeChat, clock: FrozenClock) -> None:
    # Lots earned in November 2026 expire at the end of November 2027 (local).
    await sign_up(wechat, ALICE)
    assert await wechat.say(ALICE, "签到") == done(5, 1, 105)
    clock.set(local(2026, 12, 5, 10, 0))  # a December lot expires a month later
    assert await wechat.say(ALICE, "签到") == done(5, 1, 110)
    member = await joined(wechat, ALICE)

    clock.set(local(2027, 10, 31, 23, 59))  # 1 December 00:00 is 30 days and a minute away
    assert await wechat.say(ALICE, "积分") == balance_text(110, "普通", progress(890, "银卡"))

    clock.set(local(2027, 11, 1, 0, 0))
    expiring = texts.BALANCE_EXPIRING.format(points=105, date="2027-11-30")
    assert await wechat.say(ALICE, "积分") == balance_text(110, "普通", progress(890, "银卡"), expiring)
    # On the last day the November 2026 points still count in the balance, but have left the
    # 12-month tier window.
    clock.set(local(2027, 11, 30, 23, 59))
    assert await wechat.say(ALICE, "余额") == balance_text(110, "普通", progress(995, "银卡"), expiring)
    assert await assert_books_balance(wechat, member.id) == 110  # type: ignore[arg-type]

    # At midnight they lapse: asking for the balance writes the expiry entries.
    clock.set(local(2027, 12, 1, 0, 0))
    assert await wechat.say(ALICE, "积分") == balance_text(5, "普通", progress(995, "银卡"))
    assert await assert_books_balance(wechat, member.id) == 5  # type: ignore[arg-type]
    expired = [e for e in await entries(wechat, member.id) if e.kind == "expire"]  # type: ignore[arg-type]
    assert sorted(e.delta for e in expired) == [-100, -5]
    # Each lot lapses on its own entry, dated the moment it lapsed; the signup lot went first.
    assert (await wechat.say(ALICE, "明细")).splitlines()[1:3] == ["12-01 积分过期 -5", "12-01 积分过期 -100"]


# --- history ------------------------------------------------------------------------------------

async def test_history_lists_the_last_ten_movements_newest_first(wechat: WeChat, clock: FrozenClock) -> None:
    await sign_up(wechat, ALICE)  # 11-22: 注册奖励 +100
    for offset in range(11):  # 11-22 .. 12-02: eleven check-ins, the 7th (11-28) with the bonus
        clock.set(local(2026, 11, 22, 12, 0) + timedelta(days=offset))
        await wechat.say(ALICE, "签到")
    expected = [
        texts.HISTORY_HEAD,
        "12-02 签到 +5", "12-01 签到 +5", "11-30 签到 +5", "11-29 签到 +5",
        "11-28 连签奖励 +20", "11-28 签到 +5",
        "11-27 签到 +5", "11-26 签到 +5", "11-25 签到 +5", "11-24 签到 +5",
    ]
    for word in ("明细", "history", " HISTORY ", "积分明细"):
        assert (await wechat.say(ALICE, word)).splitlines() == expected, word
    member = await joined(wechat, ALICE)
    assert len(await entries(wechat, member.id)) == 13  # type: ignore[arg-type]


async def test_history_labels_purchases_refunds_and_sign_up(wechat: WeChat, clock: FrozenClock) -> None:
    await sign_up(wechat, ALICE)
    await pay(wechat, "H-1", 12_345, openid=ALICE)  # 123 yuan
    clock.advance(days=1)
    response = await post_order(wechat, refund("H-1", 12_345, "H-1-R1", 2_345))
    assert response.status_code == 200, response.text
    assert response.json()["points"] == -23
    lines = (await wechat.say(ALICE, "明细")).splitlines()
    labels = texts.KIND_LABELS
    assert lines == [
        texts.HISTORY_HEAD,
        f"11-23 {labels['refund']} -23",
        f"11-22 {labels['purchase']} +123",
        f"11-22 {labels['signup']} +100",
    ]


# --- tiers --------------------------------------------------------------------------------------

async def test_check_in_that_crosses_the_threshold_congratulates(wechat: WeChat) -> None:
    await sign_up(wechat, ALICE)
    result = await pay(wechat, "T-1", 89_599, openid=ALICE)  # 895.99 yuan: 895 points at ×1.0
    assert (result["points"], result["balance"], result["repeated"]) == (895, 995, False)
    assert await wechat.say(ALICE, "积分") == balance_text(995, "普通", progress(5, "银卡"))

    reply = await wechat.say(ALICE, "签到")
    assert reply == done(5, 1, 1000) + texts.TIER_UP.format(tier="银卡", multiplier=1.2)
    member = await joined(wechat, ALICE)
    assert member.tier == "银卡"
    assert await wechat.say(ALICE, "积分") == balance_text(1000, "银卡", progress(4000, "金卡"))
    # Now purchases earn ×1.2, and nothing congratulates twice.
    assert (await pay(wechat, "T-2", 10_000, openid=ALICE))["points"] == 120
    assert "恭喜" not in await wechat.say(ALICE, "签到")


async def test_purchase_that_crosses_the_threshold_shows_in_the_balance(wechat: WeChat) -> None:
    await sign_up(wechat, ALICE)
    assert (await pay(wechat, "T-3", 100_000, openid=ALICE))["points"] == 1000
    member = await joined(wechat, ALICE)
    assert member.tier == "银卡"
    assert await wechat.say(ALICE, "积分") == balance_text(1100, "银卡", progress(3900, "金卡"))
    assert "恭喜" not in await wechat.say(ALICE, "签到")  # the upgrade already happened


async def test_top_tier_shows_no_progress(wechat: WeChat) -> None:
    await sign_up(wechat, ALICE)
    assert (await pay(wechat, "T-4", 2_000_000, openid=ALICE))["points"] == 20_000
    assert (await joined(wechat, ALICE)).tier == "钻石"
    assert await wechat.say(ALICE, "积分") == balance_text(20_100, "钻石", texts.BALANCE_TOP)
    assert (await pay(wechat, "T-5", 10_000, openid=ALICE))["points"] == 200
