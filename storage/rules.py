"""Programme rules (TOML, validated at start-up) and the pure policy functions over them: tiers, expiry,
streaks, birthdays, quiet hours. No I/O beyond reading the rules file; no database."""

from __future__ import annotations

import calendar
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from storage.festivals import Festival, FestivalError, cap_on, festivals
from storage.menu import DEFAULT_MENU, Menu, MenuError, menus_from_dict, staff_menu_for
from storage.rfmrules import RfmRules, RfmRulesError, rfm_rules
from storage.sla import ServiceRules, ServiceRulesError, service_rules
from storage.winbackrules import WinbackRules, WinbackRulesError, winback_rules


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the key and the problem."""


@dataclass(frozen=True)
class Tier:
    name: str
    threshold: int
    multiplier: float


DEFAULT_TIERS = (
    Tier("普通", 0, 1.0),
    Tier("银卡", 1_000, 1.2),
    Tier("金卡", 5_000, 1.5),
    Tier("钻石", 20_000, 2.0),
)

DEFAULT_DISCOUNTS = (("银卡", 95), ("金卡", 90), ("钻石", 85))

EARNINGS = ("checkin", "purchase")  # what a [[multipliers]] rule may multiply
MAX_FACTOR = 10
MAX_MULTIPLIER_NAME = 20  # the name goes into the ledger row's reason and the member's replies


@dataclass(frozen=True)
class Multiplier:
    """A [[multipliers]] rule: on its days (a weekday, 1 = Monday, or a date: YYYY-MM-DD once, MM-DD every
    year) within its window, the earnings it names give `factor` times the points, rounded down."""

    name: str
    factor: Decimal
    earnings: frozenset[str]
    weekdays: frozenset[int] = frozenset()
    dates: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()  # empty: every tier
    valid_from: date | None = None
    valid_until: date | None = None

    def applies(self, day: date, earning: str, tier: str) -> bool:
        if earning not in self.earnings or (self.tiers and tier not in self.tiers):
            return False
        if (self.valid_from and day < self.valid_from) or (self.valid_until and day > self.valid_until):
            return False
        return day.isoweekday() in self.weekdays or f"{day:%Y-%m-%d}" in self.dates or f"{day:%m-%d}" in self.dates

    def apply(self, points: int) -> int:
        """The multiplied points, rounded down (points and factor are positive, so int() floors)."""
        return int(points * self.factor)

    @property
    def factor_text(self) -> str:
        """2, 1.5: the factor as a member reads it."""
        return format(self.factor.normalize(), "f")


@dataclass(frozen=True)
class Rules:
    signup_bonus: int = 100
    referral_bonus: int = 50
    referral_monthly_limit: int = 20
    checkin_points: int = 5
    streak_days: int = 7
    streak_bonus: int = 20
    points_per_yuan: int = 1
    point_value_fen: int = 1  # what one point costs the programme, in fen (the reports' yuan figures)
    tiers: tuple[Tier, ...] = DEFAULT_TIERS
    # The till's price for a tier, in percent of the list price (95 = 9.5折); unlisted tiers pay 100.
    tier_discounts: tuple[tuple[str, int], ...] = DEFAULT_DISCOUNTS
    tier_window_months: int = 12
    expiry_months: int = 12
    birthday_points: int = 200
    # [birthday_coupons] 金卡 = 3: a reward given on the birthday by tier, beside the points (grant per year).
    birthday_coupons: tuple[tuple[str, int], ...] = ()
    # [tier_gifts] 金卡 = 4: a reward given when a member reaches the tier (grant once per member and tier).
    tier_gifts: tuple[tuple[str, int], ...] = ()
    winback_after_days: int = 30
    winback_bonus: int = 50
    winback_valid_days: int = 7
    marketing_cap: int = 4
    marketing_window_days: int = 30
    quiet_start_hour: int = 21
    quiet_end_hour: int = 9
    daily_earn_cap: int = 500
    daily_redeem_alert: int = 10
    privacy_notice_version: str = "2026-01"
    menu: Menu = DEFAULT_MENU
    staff_menu: Menu = staff_menu_for(DEFAULT_MENU)
    service: ServiceRules = ServiceRules()  # [service]: ticket SLA per category, business hours, VIP hand-off
    multipliers: tuple[Multiplier, ...] = ()  # [[multipliers]]: member days and other point multipliers
    winback: WinbackRules = WinbackRules()  # [winback]: the staged win-back's gaps and its recall-2 coupon
    rfm: RfmRules = RfmRules()  # [rfm]: the RFM layering's quintile threshold and small-programme cut-offs
    festivals: tuple[Festival, ...] = ()  # [[festivals]]: local days the marketing cap is one higher
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    # --- tiers ---------------------------------------------------------------------------
    def tier_for(self, qualifying: int) -> Tier:
        """The highest tier whose threshold the qualifying points reach."""
        chosen = self.tiers[0]
        for tier in self.tiers:
            if qualifying >= tier.threshold:
                chosen = tier
        return chosen

    def tier_named(self, name: str) -> Tier:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        return self.tiers[0]

    def tier_rank(self, name: str) -> int:
        return next((i for i, t in enumerate(self.tiers) if t.name == name), 0)

    def discount_percent(self, name: str) -> int:
        """What a member of tier `name` pays at the till, in percent (100: no discount)."""
        return dict(self.tier_discounts).get(name, 100)

    def birthday_coupon(self, tier: str) -> int | None:
        """The reward id a member of `tier` is given on their birthday, if any."""
        return dict(self.birthday_coupons).get(tier)

    def tier_gift(self, tier: str) -> int | None:
        """The reward id a member is given on reaching `tier`, if any."""
        return dict(self.tier_gifts).get(tier)

    def next_tier(self, name: str) -> Tier | None:
        rank = self.tier_rank(name)
        return self.tiers[rank + 1] if rank + 1 < len(self.tiers) else None

    def one_level_down(self, name: str) -> Tier:
        return self.tiers[max(self.tier_rank(name) - 1, 0)]

    def purchase_points(self, amount_fen: int, tier_name: str) -> int:
        """Whole yuan paid x points per yuan x the tier multiplier, rounded down."""
        yuan = amount_fen // 100
        # Decimal of the written multiplier: 100 x 1.15 is 115, not the float 114.999...
        return int(yuan * self.points_per_yuan * Decimal(str(self.tier_named(tier_name).multiplier)))

    def multiplier_for(self, day: date, earning: str, tier: str) -> Multiplier | None:
        """The one multiplier for an earning of a member of `tier` on the local `day` (the rules refuse two
        that meet on a day; the largest factor would win). Multipliers never multiply each other."""
        best = None
        for rule in self.multipliers:
            if rule.applies(day, earning, tier) and (best is None or rule.factor > best.factor):
                best = rule
        return best

    def multipliers_on(self, day: date, tier: str) -> list[tuple[Multiplier, tuple[str, ...]]]:
        """What a member of `tier` earns multiplied on `day`: each rule that wins for some earning, with
        those earnings (in EARNINGS order); empty on an ordinary day."""
        found: dict[Multiplier, list[str]] = {}
        for earning in EARNINGS:
            rule = self.multiplier_for(day, earning, tier)
            if rule is not None:
                found.setdefault(rule, []).append(earning)
        return [(rule, tuple(earnings)) for rule, earnings in found.items()]

    # --- calendar ------------------------------------------------------------------------
    def lot_expiry(self, earned_at: datetime, tz: ZoneInfo) -> datetime:
        """A lot earned in month M expires at the end of month M + expiry_months (local),
        i.e. at local midnight starting the month after that."""
        local = earned_at.astimezone(tz)
        months = local.year * 12 + (local.month - 1) + self.expiry_months + 1
        first_after = datetime(months // 12, months % 12 + 1, 1, tzinfo=tz)
        return first_after

    def streak_bonus_for(self, streak: int) -> int:
        """The bonus on each `streak_days`-th consecutive day (7, 14, 21, ...)."""
        return self.streak_bonus if streak > 0 and streak % self.streak_days == 0 else 0

    @staticmethod
    def birthday_in(year: int, month: int, day: int) -> date:
        """This year's birthday; 29 February falls on 28 February in other years."""
        if month == 2 and day == 29 and not calendar.isleap(year):
            return date(year, 2, 28)
        return date(year, month, day)

    def day_start(self, day: date, tz: ZoneInfo) -> datetime:
        return datetime.combine(day, time(0), tzinfo=tz)

    def marketing_cap_at(self, at: datetime, tz: ZoneInfo) -> int:
        """The monthly marketing cap at `at`: one more on a festival's local day, never beyond 5."""
        return cap_on(self.marketing_cap, self.festivals, at.astimezone(tz).date())

    def in_quiet_hours(self, at: datetime, tz: ZoneInfo) -> bool:
        hour = at.astimezone(tz).hour
        return hour >= self.quiet_start_hour or hour < self.quiet_end_hour

    def next_send_time(self, at: datetime, tz: ZoneInfo) -> datetime:
        """`at` itself outside quiet hours, else the next quiet_end_hour:00 local."""
        if not self.in_quiet_hours(at, tz):
            return at
        local = at.astimezone(tz)
        day = local.date() if local.hour < self.quiet_end_hour else local.date() + timedelta(days=1)
        return datetime.combine(day, time(self.quiet_end_hour), tzinfo=tz)


_INT_KEYS = {f.name for f in fields(Rules) if f.type in ("int", int)}


def load_rules(path: str | Path | None) -> Rules:
    """Defaults, overridden by the TOML file at `path` (flat keys, [[tiers]] tables and a [menu] section)."""
    if not path:
        return Rules()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(f"RULES_FILE {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"RULES_FILE {path} is not valid TOML: {exc}") from None
    return rules_from_dict(data)


# Sections whose area parses them (each refusal names its key); a new one is one line here and one field.
_SECTIONS: dict[str, tuple[Callable[[Any], Any], type[ValueError]]] = {
    "service": (service_rules, ServiceRulesError), "festivals": (festivals, FestivalError),
    "winback": (winback_rules, WinbackRulesError), "rfm": (rfm_rules, RfmRulesError),
}


def rules_from_dict(data: dict[str, Any]) -> Rules:
    known = {f.name for f in fields(Rules)} - set(_SECTIONS) - {
        "extra", "tiers", "menu", "staff_menu", "tier_discounts", "multipliers", "birthday_coupons", "tier_gifts",
    }
    updates: dict[str, Any] = {}
    for key, value in data.items():
        if key == "tiers":
            updates["tiers"] = _tiers(value)
        elif key == "menu":
            updates["menu"], updates["staff_menu"] = _menus(value)
        elif key in _SECTIONS:
            parse, refusal = _SECTIONS[key]
            try:
                updates[key] = parse(value)
            except refusal as exc:
                raise RulesError(str(exc)) from None
        elif key == "tier_discounts":
            updates["tier_discounts"] = _discounts(value)
        elif key == "multipliers":
            updates["multipliers"] = _multipliers(value)
        elif key in ("birthday_coupons", "tier_gifts"):
            updates[key] = _rewards_by_tier(key, value)
        elif key not in known:
            raise RulesError(f"unknown key {key!r}")
        elif key in _INT_KEYS:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise RulesError(f"{key} must be a whole number >= 0, got {value!r}")
            updates[key] = value
        elif not isinstance(value, str) or not value:
            raise RulesError(f"{key} must be a non-empty string")
        else:
            updates[key] = value
    rules = replace(Rules(), **updates)
    names = {t.name for t in rules.tiers}
    unknown = sorted({name for name, _ in rules.tier_discounts} - names)
    if unknown and "tier_discounts" in updates:
        raise RulesError(f"tier_discounts names tiers that do not exist: {', '.join(unknown)}")
    for key in ("birthday_coupons", "tier_gifts"):
        strangers = sorted({name for name, _ in getattr(rules, key)} - names)
        if strangers:
            raise RulesError(f"{key} names tiers that do not exist: {', '.join(strangers)}")
    if unknown:  # own tiers and no discounts of their own: the defaults of the tiers that remain
        rules = replace(rules, tier_discounts=tuple(d for d in rules.tier_discounts if d[0] in names))
    for i, rule in enumerate(rules.multipliers):
        if missing := sorted(rule.tiers - names):
            raise RulesError(f"multipliers[{i}].tiers names tiers that do not exist: {', '.join(missing)}")
    _refuse_overlaps(rules.multipliers, names)
    for key in ("quiet_start_hour", "quiet_end_hour"):
        if not 0 <= getattr(rules, key) <= 23:
            raise RulesError(f"{key} must be an hour from 0 to 23")
    for key in ("streak_days", "expiry_months", "marketing_window_days"):
        if getattr(rules, key) < 1:
            raise RulesError(f"{key} must be at least 1")
    return rules


def _menus(value: Any) -> tuple[Menu, Menu]:
    try:
        return menus_from_dict(value)
    except MenuError as exc:
        raise RulesError(str(exc)) from None


def _tiers(value: Any) -> tuple[Tier, ...]:
    if not isinstance(value, list) or not value:
        raise RulesError("tiers must be a non-empty array of tables")
    tiers = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"name", "threshold", "multiplier"}:
            raise RulesError(f"tiers[{i}] needs exactly name, threshold and multiplier")
        name, threshold, mult = item["name"], item["threshold"], item["multiplier"]
        if not isinstance(name, str) or not name:
            raise RulesError(f"tiers[{i}].name must be a non-empty string")
        if not isinstance(threshold, int) or threshold < 0:
            raise RulesError(f"tiers[{i}].threshold must be a whole number >= 0")
        if not isinstance(mult, int | float) or not 0 < mult <= 10:
            raise RulesError(f"tiers[{i}].multiplier must be a number in (0, 10]")
        tiers.append(Tier(name, threshold, float(mult)))
    if tiers[0].threshold != 0:
        raise RulesError("tiers[0].threshold must be 0 (everyone has a tier)")
    if any(b.threshold <= a.threshold for a, b in zip(tiers, tiers[1:], strict=False)):
        raise RulesError("tiers must have strictly increasing thresholds")
    return tuple(tiers)


def _discounts(value: Any) -> tuple[tuple[str, int], ...]:
    """[tier_discounts] 银卡 = 95: percent of the list price, a whole number from 1 to 100."""
    if not isinstance(value, dict):
        raise RulesError("tier_discounts must be a table of tier name = percent")
    found = []
    for name, percent in value.items():
        if not isinstance(percent, int) or isinstance(percent, bool) or not 1 <= percent <= 100:
            raise RulesError(f"tier_discounts.{name} must be a whole percent from 1 to 100, got {percent!r}")
        found.append((str(name), percent))
    return tuple(found)


_FULL_DATE, _YEARLY_DATE = re.compile(r"\d{4}-\d{2}-\d{2}"), re.compile(r"\d{2}-\d{2}")
_MULTIPLIER_KEYS = {"name", "weekdays", "dates", "earnings", "factor", "tiers", "from", "until"}


OVERLAP_SPAN = 28 * 366  # weekdays and dates repeat with the calendar's 28-year cycle


def _refuse_overlaps(rules: tuple[Multiplier, ...], tiers: set[str]) -> None:
    """Two rules that would both multiply one earning of one tier on one day are refused, naming the
    later and the day: a member day means one factor, which the operator chose, not the larger of two."""
    for j, later in enumerate(rules):
        for i, earlier in enumerate(rules[:j]):
            shared = earlier.earnings & later.earnings
            common = (earlier.tiers or tiers) & (later.tiers or tiers)
            if not shared or not common:
                continue
            froms = [d for d in (earlier.valid_from, later.valid_from) if d is not None]
            first = max(froms) if froms else date(2024, 1, 1)
            bounds = [d for d in (earlier.valid_until, later.valid_until) if d is not None]
            last = min([*bounds, first + timedelta(days=OVERLAP_SPAN)])
            earning, tier = sorted(shared)[0], sorted(common)[0]
            day = first
            while day <= last:
                if earlier.applies(day, earning, tier) and later.applies(day, earning, tier):
                    raise RulesError(f"multipliers[{j}] overlaps multipliers[{i}] ({earning}, {day}): "
                                     "give each day of an earning one multiplier")
                day += timedelta(days=1)


def _multipliers(value: Any) -> tuple[Multiplier, ...]:
    """[[multipliers]] tables; every refusal names the table's index and the field."""
    if not isinstance(value, list):
        raise RulesError("multipliers must be an array of tables ([[multipliers]])")
    return tuple(_multiplier(i, item) for i, item in enumerate(value))


def _multiplier(i: int, item: Any) -> Multiplier:
    at = f"multipliers[{i}]"
    if not isinstance(item, dict):
        raise RulesError(f"{at} must be a table")
    if unknown := sorted(set(item) - _MULTIPLIER_KEYS):
        raise RulesError(f"{at}: unknown key {unknown[0]!r}")
    for key in ("name", "earnings", "factor"):
        if key not in item:
            raise RulesError(f"{at}.{key} is missing")
    name = item["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_MULTIPLIER_NAME:
        raise RulesError(f"{at}.name must be a non-empty string of at most {MAX_MULTIPLIER_NAME} characters")
    factor = item["factor"]
    if not isinstance(factor, int | float) or isinstance(factor, bool) or not 1 < factor <= MAX_FACTOR:
        raise RulesError(f"{at}.factor must be a number above 1 and at most {MAX_FACTOR}, got {factor!r}")
    earnings = _string_list(at, "earnings", item["earnings"])
    if not earnings:
        raise RulesError(f"{at}.earnings must name at least one of {', '.join(EARNINGS)}")
    if bad := [e for e in earnings if e not in EARNINGS]:
        raise RulesError(f"{at}.earnings: unknown earning {bad[0]!r} (one of {', '.join(EARNINGS)})")
    weekdays = item.get("weekdays", [])
    if not isinstance(weekdays, list) or any(
        not isinstance(d, int) or isinstance(d, bool) or not 1 <= d <= 7 for d in weekdays
    ):
        raise RulesError(f"{at}.weekdays must be a list of weekdays from 1 (Monday) to 7 (Sunday)")
    dates = [_day_of_year(at, text) for text in _string_list(at, "dates", item.get("dates", []))]
    if not weekdays and not dates:
        raise RulesError(f"{at}: give weekdays or dates (or both)")
    tiers = _string_list(at, "tiers", item.get("tiers", []))
    valid_from, valid_until = _window_day(at, "from", item.get("from")), _window_day(at, "until", item.get("until"))
    if valid_from and valid_until and valid_until < valid_from:
        raise RulesError(f"{at}.until is before {at}.from")
    return Multiplier(
        name.strip(), Decimal(str(factor)), frozenset(earnings), frozenset(weekdays), frozenset(dates),
        frozenset(tiers), valid_from, valid_until,
    )


def _string_list(at: str, key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or any(not isinstance(x, str) or not x for x in value):
        raise RulesError(f"{at}.{key} must be a list of non-empty strings")
    return value


def _day_of_year(at: str, text: str) -> str:
    """YYYY-MM-DD (that day) or MM-DD (that day every year; 02-29 only in leap years), as written."""
    try:
        if _FULL_DATE.fullmatch(text):
            date.fromisoformat(text)
            return text
        if _YEARLY_DATE.fullmatch(text):
            date.fromisoformat(f"2028-{text}")  # a leap year, so 02-29 is a day
            return text
    except ValueError:
        pass
    raise RulesError(f"{at}.dates: {text!r} is not a date (YYYY-MM-DD, or MM-DD for every year)")


def _window_day(at: str, key: str, value: Any) -> date | None:
    """from/until: a TOML date (2026-12-01) or the same as a string; both days are included."""
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _FULL_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise RulesError(f"{at}.{key} must be a date (YYYY-MM-DD), got {value!r}")


def _rewards_by_tier(key: str, value: Any) -> tuple[tuple[str, int], ...]:
    """[birthday_coupons] / [tier_gifts] 金卡 = 3: a tier name and a reward id (a whole number >= 1). Whether
    the reward exists is known only to the database: a grant of a missing one is logged and skipped."""
    if not isinstance(value, dict):
        raise RulesError(f"{key} must be a table of tier name = reward id")
    found = []
    for name, reward_id in value.items():
        if not isinstance(reward_id, int) or isinstance(reward_id, bool) or reward_id < 1:
            raise RulesError(f"{key}.{name} must be a reward id (a whole number >= 1), got {reward_id!r}")
        found.append((str(name), reward_id))
    return tuple(found)
