"""[[multipliers]] in the rules file (issue 17 item 4): what a table means, which one rule wins a day, and
every bad table refused naming its index and field."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from storage.rules import Rules, RulesError, load_rules, rules_from_dict

WEDNESDAY = date(2026, 11, 25)
THURSDAY = date(2026, 11, 26)


def table(**fields: Any) -> dict[str, Any]:
    return {"name": "会员日双倍积分", "weekdays": [3], "earnings": ["purchase", "checkin"], "factor": 2} | fields


def rules_with(*tables: dict[str, Any]) -> Rules:
    return rules_from_dict({"multipliers": list(tables)})


def test_a_weekday_rule_applies_on_that_weekday_to_its_earnings_only() -> None:
    rules = rules_with(table(earnings=["checkin"]))
    rule = rules.multiplier_for(WEDNESDAY, "checkin", "普通")
    assert rule is not None
    assert (rule.name, rule.factor) == ("会员日双倍积分", Decimal(2))
    assert rules.multiplier_for(WEDNESDAY, "purchase", "普通") is None
    assert rules.multiplier_for(THURSDAY, "checkin", "普通") is None
    assert Rules().multiplier_for(WEDNESDAY, "checkin", "普通") is None  # the defaults have none


def test_dates_once_or_every_year_and_the_window_includes_both_ends() -> None:
    rules = rules_with(
        {"name": "店庆", "dates": ["2026-12-12", "06-18"], "earnings": ["purchase"], "factor": 3},
        table(name="双周三", **{"from": date(2026, 12, 2), "until": "2026-12-09"}),
    )
    assert rules.multiplier_for(date(2026, 12, 12), "purchase", "普通").name == "店庆"  # type: ignore[union-attr]
    assert rules.multiplier_for(date(2027, 12, 12), "purchase", "普通") is None
    assert rules.multiplier_for(date(2031, 6, 18), "purchase", "普通").name == "店庆"  # type: ignore[union-attr]
    assert [rules.multiplier_for(date(2026, 12, d), "checkin", "普通") is not None for d in (2, 9, 16)] == [
        True, True, False,
    ]
    assert rules.multiplier_for(WEDNESDAY, "checkin", "普通") is None  # before `from`


def test_the_29th_of_february_is_a_date_that_comes_in_leap_years_only() -> None:
    rules = rules_with({"name": "闰日", "dates": ["02-29"], "earnings": ["checkin"], "factor": 2})
    assert rules.multiplier_for(date(2028, 2, 29), "checkin", "普通") is not None
    assert rules.multiplier_for(date(2027, 2, 28), "checkin", "普通") is None


def test_tiers_restrict_a_rule_to_those_tiers() -> None:
    rules = rules_with(table(name="金卡日", tiers=["金卡", "钻石"]))
    assert [rules.multiplier_for(WEDNESDAY, "checkin", t) is not None for t in ("普通", "银卡", "金卡", "钻石")] == [
        False, False, True, True,
    ]


def test_rules_for_different_earnings_on_one_day_are_each_their_own() -> None:
    rules = rules_with(table(name="三倍签到", factor=3, earnings=["checkin"]),
                       table(name="双倍消费", earnings=["purchase"]))
    assert rules.multiplier_for(WEDNESDAY, "checkin", "普通").apply(5) == 15  # type: ignore[union-attr]
    assert rules.multiplier_for(WEDNESDAY, "purchase", "普通").name == "双倍消费"  # type: ignore[union-attr]
    assert [(r.name, e) for r, e in rules.multipliers_on(WEDNESDAY, "普通")] == [
        ("三倍签到", ("checkin",)), ("双倍消费", ("purchase",)),
    ]


@pytest.mark.parametrize(("tables", "message"), [
    ([table(name="双倍"), table(name="三倍签到", factor=3, earnings=["checkin"])],
     "multipliers[1] overlaps multipliers[0] (checkin, 2024-01-03)"),
    ([table(), {"name": "店庆", "dates": ["12-12"], "earnings": ["purchase"], "factor": 3}],
     "multipliers[1] overlaps multipliers[0] (purchase, 2029-12-12)"),  # the first Wednesday 12 December
    ([table(tiers=["金卡"]), table(name="钻石日", tiers=["金卡", "钻石"]),],
     "multipliers[1] overlaps multipliers[0] (checkin, 2024-01-03)"),
    ([table(**{"until": "2026-12-31"}), table(name="新年", **{"from": "2026-12-30"})],
     "multipliers[1] overlaps multipliers[0] (checkin, 2026-12-30)"),
])
def test_two_rules_that_meet_on_a_day_for_one_earning_are_refused(tables: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(RulesError, match=re.escape(message)):
        rules_with(*tables)


def test_rules_that_never_meet_are_accepted() -> None:
    rules = rules_with(
        table(tiers=["金卡"]), table(name="银卡日", tiers=["银卡"]),  # other tiers
        table(name="周四", weekdays=[4]),  # another day
        table(name="年末", **{"from": "2026-12-01", "until": "2026-12-01"}),  # a Tuesday window
        {"name": "周三签到外", "weekdays": [3], "earnings": ["purchase"], "factor": 2, "tiers": ["钻石"]},
    )
    assert len(rules.multipliers) == 5


def test_a_fractional_factor_rounds_down_to_whole_points() -> None:
    rule = rules_with(table(factor=1.5)).multipliers[0]
    assert [rule.apply(p) for p in (5, 7, 1, 101)] == [7, 10, 1, 151]
    assert rule.factor_text == "1.5"
    assert rules_with(table(factor=2.0)).multipliers[0].factor_text == "2"


@pytest.mark.parametrize(("fields", "problem"), [
    ({"factor": 1}, "multipliers[0].factor must be a number above 1 and at most 10, got 1"),
    ({"factor": 0}, "multipliers[0].factor must be a number above 1 and at most 10, got 0"),
    ({"factor": -2}, "multipliers[0].factor must be a number above 1 and at most 10, got -2"),
    ({"factor": 10.5}, "multipliers[0].factor must be a number above 1 and at most 10, got 10.5"),
    ({"factor": "2"}, "multipliers[0].factor must be a number above 1 and at most 10, got '2'"),
    ({"factor": True}, "multipliers[0].factor must be a number above 1 and at most 10, got True"),
    ({"earnings": ["purchase", "signup"]}, "multipliers[0].earnings: unknown earning 'signup'"),
    ({"earnings": []}, "multipliers[0].earnings must name at least one of checkin, purchase"),
    ({"earnings": "checkin"}, "multipliers[0].earnings must be a list of non-empty strings"),
    ({"weekdays": [0]}, "multipliers[0].weekdays must be a list of weekdays from 1 (Monday) to 7 (Sunday)"),
    ({"weekdays": [8]}, "multipliers[0].weekdays must be a list of weekdays from 1 (Monday) to 7 (Sunday)"),
    ({"weekdays": []}, "multipliers[0]: give weekdays or dates (or both)"),
    ({"dates": ["2026-02-30"]}, "multipliers[0].dates: '2026-02-30' is not a date"),
    ({"dates": ["13-01"]}, "multipliers[0].dates: '13-01' is not a date"),
    ({"dates": ["2026-W48-3"]}, "multipliers[0].dates: '2026-W48-3' is not a date"),
    ({"tiers": ["黑卡"]}, "multipliers[0].tiers names tiers that do not exist: 黑卡"),
    ({"from": "12/01/2026"}, "multipliers[0].from must be a date (YYYY-MM-DD), got '12/01/2026'"),
    ({"from": "2026-12-09", "until": "2026-12-02"}, "multipliers[0].until is before multipliers[0].from"),
    ({"name": ""}, "multipliers[0].name must be a non-empty string of at most 20 characters"),
    ({"name": "会" * 21}, "multipliers[0].name must be a non-empty string of at most 20 characters"),
    ({"colour": "red"}, "multipliers[0]: unknown key 'colour'"),
])
def test_a_bad_table_is_refused_naming_its_index_and_field(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(RulesError) as caught:
        rules_with(table(), table(**fields))
    assert str(caught.value).startswith(problem.replace("multipliers[0]", "multipliers[1]")), caught.value


@pytest.mark.parametrize("key", ["name", "earnings", "factor"])
def test_a_table_without_a_required_field_is_refused(key: str) -> None:
    incomplete = table()
    del incomplete[key]
    with pytest.raises(RulesError, match=rf"^multipliers\[0\]\.{key} is missing$"):
        rules_with(incomplete)


def test_multipliers_must_be_tables() -> None:
    with pytest.raises(RulesError, match=r"^multipliers must be an array of tables"):
        rules_from_dict({"multipliers": {"name": "x"}})
    with pytest.raises(RulesError, match=r"^multipliers\[0\] must be a table$"):
        rules_from_dict({"multipliers": ["会员日"]})


def test_the_rules_file_refuses_a_bad_multiplier_at_start_up(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '[[multipliers]]\nname = "会员日双倍积分"\nweekdays = [3]\nearnings = ["checkin"]\nfactor = 11\n',
        encoding="utf-8",
    )
    with pytest.raises(RulesError, match=r"^multipliers\[0\]\.factor must be a number above 1 and at most 10"):
        load_rules(path)


def test_the_readme_example_loads(tmp_path: Path) -> None:
    """The example README's rules section documents, as written there."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("```toml\n[[multipliers]]")
    example = readme[start + len("```toml\n"): readme.index("```", start + 7)]
    path = tmp_path / "rules.toml"
    path.write_text(example, encoding="utf-8")
    rules = load_rules(path)
    assert [r.name for r in rules.multipliers] == ["会员日双倍积分", "金卡会员周年庆"]
    assert rules.multiplier_for(WEDNESDAY, "checkin", "普通").factor == 2  # type: ignore[union-attr]
