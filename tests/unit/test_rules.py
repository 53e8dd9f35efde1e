"""The programme rules' pure functions at every boundary, and the rules file's validation."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from storage.rules import DEFAULT_TIERS, Rules, RulesError, Tier, load_rules, rules_from_dict
from tests.support.factories import TZ, local

RULES = Rules()


# --- tiers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qualifying", "tier"),
    [
        (0, "普通"), (999, "普通"), (1_000, "银卡"), (4_999, "银卡"), (5_000, "金卡"),
        (19_999, "金卡"), (20_000, "钻石"), (10**9, "钻石"),
    ],
)
def test_tier_for_thresholds(qualifying: int, tier: str) -> None:
    assert RULES.tier_for(qualifying).name == tier


def test_tier_navigation() -> None:
    assert [RULES.tier_rank(t.name) for t in DEFAULT_TIERS] == [0, 1, 2, 3]
    assert RULES.next_tier("普通") == Tier("银卡", 1_000, 1.2)
    assert RULES.next_tier("钻石") is None
    assert RULES.one_level_down("钻石").name == "金卡"
    assert RULES.one_level_down("普通").name == "普通"
    assert RULES.tier_named("no such tier").name == "普通"


# --- purchases -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fen", "tier", "points"),
    [
        (0, "普通", 0), (99, "普通", 0), (100, "普通", 1), (199, "普通", 1), (12_345, "普通", 123),
        (99, "银卡", 0), (100, "银卡", 1),  # 1.2 rounds down to 1
        (400, "银卡", 4),  # 4.8 -> 4
        (500, "银卡", 6), (12_345, "银卡", 147),  # 123 x 1.2 = 147.6 -> 147
        (100, "金卡", 1), (300, "金卡", 4),  # 4.5 -> 4
        (12_399, "钻石", 246),  # 123 whole yuan x 2, the 99 fen earn nothing
    ],
)
def test_purchase_points_whole_yuan_times_multiplier_rounded_down(fen: int, tier: str, points: int) -> None:
    assert RULES.purchase_points(fen, tier) == points


def test_purchase_points_per_yuan_from_rules() -> None:
    assert Rules(points_per_yuan=3).purchase_points(1_050, "银卡") == 36  # 10 yuan x 3 x 1.2


def test_purchase_points_exact_for_decimal_multipliers() -> None:
    rules = rules_from_dict({"tiers": [{"name": "a", "threshold": 0, "multiplier": 1.15}]})
    assert rules.purchase_points(10_000, "a") == 115


# --- expiry ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earned", "expires"),
    [
        (local(2026, 11, 1), local(2027, 12, 1)),  # first instant of the month
        (local(2026, 11, 22, 10), local(2027, 12, 1)),
        (local(2026, 11, 30, 23, 59, 59), local(2027, 12, 1)),  # last second of the month
        (local(2026, 12, 1), local(2028, 1, 1)),  # next month: one month later, across the year
        (local(2026, 12, 31, 23, 59, 59), local(2028, 1, 1)),  # December rolls the year over
        (local(2027, 1, 1), local(2028, 2, 1)),
        (local(2028, 2, 29, 12), local(2029, 3, 1)),
    ],
)
def test_lot_expiry_end_of_month_twelve_months_on(earned: datetime, expires: datetime) -> None:
    assert RULES.lot_expiry(earned, TZ) == expires


def test_lot_expiry_uses_the_local_month_not_the_utc_one() -> None:
    # 2026-11-30 16:00 UTC is already 1 December in Shanghai; one second earlier is still November.
    assert RULES.lot_expiry(datetime(2026, 11, 30, 16, 0, tzinfo=UTC), TZ) == local(2028, 1, 1)
    assert RULES.lot_expiry(datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC), TZ) == local(2027, 12, 1)


def test_lot_expiry_is_local_midnight() -> None:
    expiry = RULES.lot_expiry(local(2026, 11, 22, 10), TZ).astimezone(TZ)
    assert (expiry.year, expiry.month, expiry.day, expiry.hour, expiry.minute) == (2027, 12, 1, 0, 0)
    assert expiry.astimezone(UTC) == datetime(2027, 11, 30, 16, 0, tzinfo=UTC)


def test_lot_expiry_follows_expiry_months() -> None:
    assert Rules(expiry_months=1).lot_expiry(local(2026, 12, 5), TZ) == local(2027, 2, 1)
    assert Rules(expiry_months=24).lot_expiry(local(2026, 12, 5), TZ) == local(2029, 1, 1)


# --- streaks and birthdays -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("streak", "bonus"), [(0, 0), (1, 0), (6, 0), (7, 20), (8, 0), (13, 0), (14, 20), (21, 20)]
)
def test_streak_bonus_on_every_seventh_day(streak: int, bonus: int) -> None:
    assert RULES.streak_bonus_for(streak) == bonus


@pytest.mark.parametrize(
    ("year", "birthday"),
    [(2024, date(2024, 2, 29)), (2028, date(2028, 2, 29)), (2000, date(2000, 2, 29)),
     (2025, date(2025, 2, 28)), (2026, date(2026, 2, 28)), (2100, date(2100, 2, 28))],
)
def test_birthday_29_february(year: int, birthday: date) -> None:
    assert Rules.birthday_in(year, 2, 29) == birthday


def test_other_birthdays_are_unchanged() -> None:
    assert Rules.birthday_in(2026, 2, 28) == date(2026, 2, 28)
    assert Rules.birthday_in(2026, 12, 31) == date(2026, 12, 31)


# --- quiet hours -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "minute", "quiet"),
    [(20, 59, False), (21, 0, True), (23, 59, True), (0, 0, True), (8, 59, True), (9, 0, False),
     (12, 0, False)],
)
def test_in_quiet_hours(hour: int, minute: int, quiet: bool) -> None:
    assert RULES.in_quiet_hours(local(2026, 11, 22, hour, minute), TZ) is quiet


@pytest.mark.parametrize(
    ("at", "send"),
    [
        (local(2026, 11, 22, 20, 59), local(2026, 11, 22, 20, 59)),
        (local(2026, 11, 22, 21, 0), local(2026, 11, 23, 9, 0)),
        (local(2026, 11, 22, 23, 59, 59), local(2026, 11, 23, 9, 0)),
        (local(2026, 11, 23, 0, 0), local(2026, 11, 23, 9, 0)),
        (local(2026, 11, 23, 8, 59), local(2026, 11, 23, 9, 0)),
        (local(2026, 11, 23, 9, 0), local(2026, 11, 23, 9, 0)),
        (local(2026, 12, 31, 22, 0), local(2027, 1, 1, 9, 0)),
    ],
)
def test_next_send_time(at: datetime, send: datetime) -> None:
    assert RULES.next_send_time(at, TZ) == send


def test_quiet_hours_are_judged_in_local_time() -> None:
    # 13:00 UTC is 21:00 in Shanghai.
    assert RULES.in_quiet_hours(datetime(2026, 11, 22, 13, 0, tzinfo=UTC), TZ)
    assert not RULES.in_quiet_hours(datetime(2026, 11, 22, 12, 59, tzinfo=UTC), TZ)


# --- the rules file ------------------------------------------------------------------------------------


def test_no_file_means_the_defaults() -> None:
    assert load_rules(None) == Rules()
    assert load_rules("") == Rules()
    assert rules_from_dict({}) == Rules()


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"checkin_point": 5}, "checkin_point"),
        ({"checkin_points": -1}, "checkin_points"),
        ({"daily_earn_cap": 1.5}, "daily_earn_cap"),
        ({"signup_bonus": "100"}, "signup_bonus"),
        ({"streak_bonus": True}, "streak_bonus"),
        ({"privacy_notice_version": ""}, "privacy_notice_version"),
        ({"privacy_notice_version": 2026}, "privacy_notice_version"),
        ({"quiet_start_hour": 24}, "quiet_start_hour"),
        ({"streak_days": 0}, "streak_days"),
        ({"expiry_months": 0}, "expiry_months"),
        ({"tiers": []}, "tiers"),
        ({"tiers": {"name": "x"}}, "tiers"),
        ({"tiers": [{"name": "a", "threshold": 0}]}, "tiers[0]"),
        ({"tiers": [{"name": "", "threshold": 0, "multiplier": 1}]}, "tiers[0].name"),
        ({"tiers": [{"name": "a", "threshold": -5, "multiplier": 1}]}, "tiers[0].threshold"),
        ({"tiers": [{"name": "a", "threshold": 0, "multiplier": 0}]}, "tiers[0].multiplier"),
        ({"tiers": [{"name": "a", "threshold": 10, "multiplier": 1}]}, "tiers[0].threshold"),
        (
            {"tiers": [{"name": "a", "threshold": 0, "multiplier": 1},
                       {"name": "b", "threshold": 100, "multiplier": 1.5},
                       {"name": "c", "threshold": 100, "multiplier": 2}]},
            "tiers",
        ),
        (
            {"tiers": [{"name": "a", "threshold": 0, "multiplier": 1},
                       {"name": "b", "threshold": 500, "multiplier": 1.5},
                       {"name": "c", "threshold": 400, "multiplier": 2}]},
            "tiers",
        ),
    ],
)
def test_bad_rules_name_the_key(data: dict[str, object], names: str) -> None:
    with pytest.raises(RulesError) as caught:
        rules_from_dict(data)
    assert names in str(caught.value)


def test_non_increasing_thresholds_say_so() -> None:
    tiers = [{"name": "a", "threshold": 0, "multiplier": 1}, {"name": "b", "threshold": 0, "multiplier": 2}]
    with pytest.raises(RulesError, match="strictly increasing"):
        rules_from_dict({"tiers": tiers})


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(RulesError, match="does not exist") as caught:
        load_rules(missing)
    assert str(missing) in str(caught.value)


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("checkin_points = = 5\n", encoding="utf-8")
    with pytest.raises(RulesError, match="not valid TOML"):
        load_rules(path)


def test_bad_value_in_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("checkin_points = 5\nbirthday_points = -200\n", encoding="utf-8")
    with pytest.raises(RulesError, match="birthday_points"):
        load_rules(path)


def test_valid_override_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        """
checkin_points = 10
streak_days = 5
daily_earn_cap = 800
privacy_notice_version = "2027-03"

[[tiers]]
name = "普通"
threshold = 0
multiplier = 1

[[tiers]]
name = "黑卡"
threshold = 3000
multiplier = 2.5
""",
        encoding="utf-8",
    )
    rules = load_rules(str(path))
    assert rules.checkin_points == 10
    assert rules.streak_days == 5
    assert rules.daily_earn_cap == 800
    assert rules.privacy_notice_version == "2027-03"
    assert rules.tiers == (Tier("普通", 0, 1.0), Tier("黑卡", 3000, 2.5))
    assert rules.signup_bonus == 100  # untouched keys keep their defaults
    assert rules.streak_bonus_for(5) == 20
    assert rules.streak_bonus_for(7) == 0
    assert rules.tier_for(2999).name == "普通"
    assert rules.tier_for(3000).name == "黑卡"
    assert rules.purchase_points(1_000, "黑卡") == 25


def test_tier_discounts_default_and_can_be_changed_by_the_rules_file(tmp_path: Path) -> None:
    assert [Rules().discount_percent(t) for t in ("普通", "银卡", "金卡", "钻石")] == [100, 95, 90, 85]
    path = tmp_path / "rules.toml"
    path.write_text('[tier_discounts]\n"金卡" = 88\n"钻石" = 80\n', encoding="utf-8")
    changed = load_rules(path)
    assert [changed.discount_percent(t) for t in ("普通", "银卡", "金卡", "钻石")] == [100, 100, 88, 80]


@pytest.mark.parametrize(("value", "problem"), [
    ({"金卡": 0}, "tier_discounts.金卡"),
    ({"金卡": 101}, "tier_discounts.金卡"),
    ({"金卡": 9.5}, "tier_discounts.金卡"),
    ({"黑卡": 90}, "do not exist: 黑卡"),
    (90, "tier_discounts must be a table"),
])
def test_bad_tier_discounts_refuse_start_up_naming_the_key(value: object, problem: str) -> None:
    with pytest.raises(RulesError) as caught:
        rules_from_dict({"tier_discounts": value})
    assert problem in str(caught.value)
