"""Member days (issue 17 item 4) end to end: a rules file with [[multipliers]], check-ins as signed WeChat XML,
orders through the signed order webhook, a frozen clock walked across local midnight. 2026-11-25 is a
Wednesday (the member day), 2026-11-27 a Friday (a 金卡-only day)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import update

from handlers import texts
from storage.clock import FrozenClock
from storage.models import Member
from tests.support.factories import anomalies_of, local
from tests.support.fakes import WeChat, make_app, make_settings, serving
from tests.support.member_support import (
    ORDER_SECRET,
    assert_books_balance,
    entries,
    entry_by_key,
    joined,
    pay,
    sign_up,
)
from tests.support.mp_support import mini_program

ALICE = "oMEMBERDAY_ALICE_000000001"
BOB = "oMEMBERDAY_BOB_00000000002"
DOUBLE = "会员日双倍积分"
GOLD = "金卡日"
RULES = f"""
[[multipliers]]
name = "{DOUBLE}"
weekdays = [3]
earnings = ["purchase", "checkin"]
factor = 2

[[multipliers]]
name = "{GOLD}"
dates = ["11-27"]
earnings = ["checkin"]
factor = 3
tiers = ["金卡"]
"""


@asynccontextmanager
async def app_with_rules(
    urls: tuple[str, str], clock: FrozenClock, tmp_path: Path, toml: str
) -> AsyncIterator[WeChat]:
    path = tmp_path / "rules.toml"
    path.write_text(toml, encoding="utf-8")
    settings = make_settings(*urls, order_webhook_secret=ORDER_SECRET, rules_file=str(path))
    async with serving(make_app(settings, clock), clock) as harness:
        yield harness


@pytest.fixture
async def wechat(urls: tuple[str, str], clock: FrozenClock, tmp_path: Path) -> AsyncIterator[WeChat]:
    async with app_with_rules(urls, clock, tmp_path, RULES) as harness:
        yield harness


def done(points: int, streak: int, balance: int) -> str:
    return texts.CHECKIN_DONE.format(points=points, bonus="", streak=streak, balance=balance)


def boosted(name: str, factor: str, points: int) -> str:
    return texts.CHECKIN_BOOST.format(name=name, factor=factor, points=points)


def member_day(name: str, earnings: str, factor: str) -> str:
    return "\n" + texts.MEMBER_DAY.format(name=name, earnings=earnings, factor=factor)


def balance_text(balance: int, tier: str = "普通") -> str:
    progress = texts.BALANCE_PROGRESS.format(gap=1_000 - balance, next="银卡") if tier == "普通" else ""
    return texts.BALANCE.format(balance=balance, tier=tier, progress=progress, expiring=texts.BALANCE_NO_EXPIRING)


async def member_id(wechat: WeChat, openid: str) -> int:
    return int((await joined(wechat, openid)).id)  # type: ignore[arg-type]


async def test_a_check_in_on_the_member_day_is_doubled_says_why_and_the_next_day_is_not(
    wechat: WeChat, clock: FrozenClock
) -> None:
    await sign_up(wechat, ALICE)  # Sunday the 22nd: +100
    alice = await member_id(wechat, ALICE)
    clock.set(local(2026, 11, 25, 9, 0))
    reply = await wechat.say(ALICE, "签到")
    # The check-in's doubling is told once; the purchase side of the same member day in one more line.
    assert reply == done(10, 1, 110) + boosted(DOUBLE, "2", 10) + member_day(DOUBLE, "消费", "2")
    entry = await entry_by_key(wechat, f"checkin:{alice}:2026-11-25")
    assert entry is not None
    assert (entry.kind, entry.delta) == ("checkin", 10)
    assert texts.ledger_reason(entry.reason) == f"每日签到（{DOUBLE}）"
    history = (await wechat.say(ALICE, "明细")).splitlines()
    assert history[:3] == [texts.HISTORY_HEAD, f"11-25 签到（{DOUBLE}） +10", "11-22 注册奖励 +100"]
    # Checked in already: the reply still mentions the day, all of it.
    assert await wechat.say(ALICE, "签到") == (
        texts.CHECKIN_ALREADY.format(streak=1, balance=110) + member_day(DOUBLE, "签到、消费", "2")
    )

    clock.set(local(2026, 11, 26, 0, 0, 1))  # Thursday, one second after local midnight
    assert await wechat.say(ALICE, "签到") == done(5, 2, 115)
    assert texts.ledger_reason((await entries(wechat, alice))[-1].reason) == "每日签到"
    assert (await wechat.say(ALICE, "明细")).splitlines()[1] == "11-26 签到 +5"
    assert await assert_books_balance(wechat, alice) == 115


async def test_balance_mentions_the_member_day_only_on_the_day(wechat: WeChat, clock: FrozenClock) -> None:
    await sign_up(wechat, ALICE)
    clock.set(local(2026, 11, 24, 23, 59, 59))  # Tuesday
    assert await wechat.say(ALICE, "积分") == balance_text(100)
    clock.set(local(2026, 11, 25, 0, 0, 0))
    assert await wechat.say(ALICE, "积分") == balance_text(100) + member_day(DOUBLE, "签到、消费", "2")
    clock.set(local(2026, 11, 26, 0, 0, 0))
    assert await wechat.say(ALICE, "余额") == balance_text(100)


async def test_an_order_paid_on_the_member_day_and_retried_the_next_day_credits_once_doubled(
    wechat: WeChat, clock: FrozenClock
) -> None:
    await sign_up(wechat, ALICE)
    alice = await member_id(wechat, ALICE)
    clock.set(local(2026, 11, 25, 23, 59, 58))  # Wednesday, two seconds before local midnight
    first = await pay(wechat, "PO-MD-1", 12_345, openid=ALICE)
    assert first == {"order_id": "PO-MD-1", "member_id": alice, "points": 246, "balance": 346,
                     "repeated": False, "shortfall": 0, "multiplier": DOUBLE}
    clock.set(local(2026, 11, 26, 0, 0, 5))  # the POS retries on Thursday: the first result, once
    again = await pay(wechat, "PO-MD-1", 12_345, openid=ALICE)
    assert again == first | {"repeated": True}
    after_midnight = await pay(wechat, "PO-MD-2", 12_345, openid=ALICE)  # a new order on Thursday: plain
    assert after_midnight == {"order_id": "PO-MD-2", "member_id": alice, "points": 123, "balance": 469,
                              "repeated": False, "shortfall": 0}
    purchases = [(e.idempotency_key, e.delta, texts.ledger_reason(e.reason))
                 for e in await entries(wechat, alice) if e.kind == "purchase"]
    assert purchases == [("order:PO-MD-1", 246, f"消费 123.45 元（{DOUBLE}）"),
                         ("order:PO-MD-2", 123, "消费 123.45 元")]
    assert (await wechat.say(ALICE, "明细")).splitlines()[1:3] == ["11-26 消费 +123", f"11-25 消费（{DOUBLE}） +246"]
    assert await assert_books_balance(wechat, alice) == 469


async def test_a_tier_restricted_multiplier_applies_to_that_tier_only(wechat: WeChat, clock: FrozenClock) -> None:
    await sign_up(wechat, ALICE)
    await sign_up(wechat, BOB, phone="13900139000")
    alice, bob = await member_id(wechat, ALICE), await member_id(wechat, BOB)
    async with wechat.services.db.unit_of_work() as session:  # Alice reached 金卡 (earned 5,000 before)
        await session.execute(update(Member).where(Member.id == alice).values(tier="金卡", earned_total=5_100))
    clock.set(local(2026, 11, 27, 10, 0))  # Friday the 27th: 金卡日
    assert await wechat.say(ALICE, "签到") == done(15, 1, 115) + boosted(GOLD, "3", 15)
    assert await wechat.say(BOB, "签到") == done(5, 1, 105)
    alice_on_the_day = await wechat.say(ALICE, "积分")
    assert await wechat.say(BOB, "积分") == balance_text(105)
    assert [texts.ledger_reason(e.reason) for e in await entries(wechat, bob) if e.kind == "checkin"] == ["每日签到"]
    clock.set(local(2026, 11, 28, 10, 0))
    alice_next_day = await wechat.say(ALICE, "积分")
    assert alice_next_day.startswith("您的积分：115\n会员等级：金卡")
    assert alice_on_the_day == alice_next_day + member_day(GOLD, "签到", "3")
    assert [texts.ledger_reason(e.reason) for e in await entries(wechat, alice) if e.kind == "checkin"] == [
        f"每日签到（{GOLD}）"
    ]
    assert await assert_books_balance(wechat, alice) == 115
    assert await assert_books_balance(wechat, bob) == 105


async def test_the_daily_cap_holds_for_a_multiplied_check_in(
    urls: tuple[str, str], clock: FrozenClock, tmp_path: Path
) -> None:
    clock.set(local(2026, 11, 25, 9, 0))  # the member day itself: the sign-up's 100 counts towards the cap
    async with app_with_rules(urls, clock, tmp_path, "daily_earn_cap = 105\n" + RULES) as wechat:
        await sign_up(wechat, ALICE)
        alice = await member_id(wechat, ALICE)
        reply = await wechat.say(ALICE, "签到")  # 5 x 2 = 10 asked, 5 left under the cap
        assert reply == (
            done(5, 1, 105) + boosted(DOUBLE, "2", 5) + member_day(DOUBLE, "消费", "2")
            + texts.CHECKIN_CAPPED.format(cap=105)
        )
        entry = await entry_by_key(wechat, f"checkin:{alice}:2026-11-25")
        assert entry is not None
        assert entry.delta == 5
        assert [a.kind for a in await anomalies_of(wechat.services.db, alice)] == ["daily_cap"]
        assert await assert_books_balance(wechat, alice) == 105


async def test_the_mini_program_check_in_on_the_member_day_is_doubled_too(
    urls: tuple[str, str], clock: FrozenClock, tmp_path: Path
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULES, encoding="utf-8")
    async with mini_program(urls, clock, rules_file=str(path)) as mp:
        await mp.add_follower(ALICE, "uMEMBERDAY_UNION_0000001")
        await sign_up(mp.oa, ALICE)
        await mp.pipeline.drain()
        token = await mp.login("oMEMBERDAY_MP_0000000001", "uMEMBERDAY_UNION_0000001")
        clock.set(local(2026, 11, 25, 9, 0))
        first = await mp.post(token, "/checkin")
        assert first.status_code == 200, first.text
        assert first.json() == {"points": 10, "streak_bonus": 0, "winback_bonus": 0, "streak": 1, "balance": 110,
                                "upgraded_to": None, "multiplier": DOUBLE}
        clock.set(local(2026, 11, 26, 9, 0))
        second = await mp.post(token, "/checkin")
        assert second.json() == {"points": 5, "streak_bonus": 0, "winback_bonus": 0, "streak": 2, "balance": 115,
                                 "upgraded_to": None, "multiplier": None}
        assert (await mp.oa.say(ALICE, "明细")).splitlines()[1:3] == ["11-26 签到 +5", f"11-25 签到（{DOUBLE}） +10"]
