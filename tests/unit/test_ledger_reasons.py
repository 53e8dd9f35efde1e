"""Ledger reasons are stored as codes (storage/reasons.py) and put into words by handlers/texts.py: every code
has words, each reads as it did when storage wrote the Chinese itself, and free text is shown as it is."""

from __future__ import annotations

import pytest

from handlers import texts
from storage import reasons
from storage.reasons import Reason, yuan

# What storage wrote into the reason column before the codes, for the same facts.
AS_BEFORE = [
    (Reason.SIGNUP.stored(), "注册会员奖励"),
    (Reason.REFERRAL.stored(), "邀请好友注册奖励"),
    (Reason.CHECKIN.stored(), "每日签到"),
    (Reason.STREAK.stored(days=7), "连续签到 7 天奖励"),
    (Reason.WINBACK.stored(), "回归礼"),
    (Reason.CAMPAIGN.stored(title="周末拼团 {送} 积分"), "活动奖励：周末拼团 {送} 积分"),
    (Reason.PURCHASE.stored(yuan=yuan(12345)), "消费 123.45 元"),
    (Reason.REFUND.stored(yuan=yuan(5)), "退款 0.05 元"),
    (Reason.REDEEM.stored(reward="5元券"), "兑换 5元券"),
    (Reason.REDEEM_CANCELLED.stored(), "兑换取消，积分退回"),
    (Reason.BIRTHDAY.stored(year=2028), "2028 年生日礼"),
    (Reason.EXPIRE.stored(earned="2026-05", day="2027-05-31"), "2026-05 获得的积分于 2027-05-31 到期"),
    (Reason.SURVEY.stored(name="门店满意度"), "满意度调查感谢：门店满意度"),
]


def test_every_code_has_words_and_the_table_nothing_else() -> None:
    assert set(texts.LEDGER_REASONS) == set(Reason)


def test_every_code_is_exercised_here() -> None:
    assert {reasons.parse(stored)[0] for stored, _ in AS_BEFORE} == set(Reason)  # type: ignore[index]


@pytest.mark.parametrize(("stored", "shown"), AS_BEFORE)
def test_a_code_reads_as_storage_used_to_write_it(stored: str, shown: str) -> None:
    assert stored.startswith(reasons.MARK)
    assert texts.ledger_reason(stored) == shown


@pytest.mark.parametrize("free", [
    "", "兑换", "seed", "门店活动补偿（店长批准）", "消费 12.00 元", "#", "#no_such_code", "#streak {broken",
    '#streak {"weeks":3}', "#streak [7]", "#checkin trailing words", " #checkin",
])
def test_free_text_and_what_is_not_a_known_code_is_shown_as_it_is(free: str) -> None:
    assert texts.ledger_reason(free) == free


def test_the_stored_form_fits_the_column_with_the_longest_facts() -> None:
    longest = Reason.CAMPAIGN.stored(title="活" * 40)  # campaign titles and reward names are ≤ 40 chars
    assert len(longest) <= 200
    assert reasons.parse(longest) == (Reason.CAMPAIGN, {"title": "活" * 40})


def test_a_multiplied_earning_names_its_multiplier_after_the_words() -> None:
    assert texts.ledger_reason(Reason.CHECKIN.stored(boost="会员日双倍积分")) == "每日签到（会员日双倍积分）"
    stored = Reason.PURCHASE.stored(yuan=yuan(12345), boost="会员日双倍积分")
    assert texts.ledger_reason(stored) == "消费 123.45 元（会员日双倍积分）"
    assert texts.boost_of(stored) == "会员日双倍积分"
    assert texts.boost_of(Reason.PURCHASE.stored(yuan=yuan(12345))) is None
    assert texts.boost_of("会员日双倍积分") is None  # free text names no multiplier
    longest = Reason.PURCHASE.stored(yuan=yuan(10_000_000), boost="会" * 20)  # the largest order, the longest name
    assert len(longest) <= 200
