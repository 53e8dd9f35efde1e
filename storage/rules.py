"""Programme rules (TOML, validated at start-up) and the pure policy functions over them: tiers, expiry,
streaks, birthdays, quiet hours. No I/O beyond reading the rules file; no database."""

from __future__ import annotations

import calendar
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from storage.menu import DEFAULT_MENU, Menu, MenuError, menus_from_dict, staff_menu_for
from storage.sla import ServiceRules, ServiceRulesError, service_rules


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


def rules_from_dict(data: dict[str, Any]) -> Rules:
    known = {f.name for f in fields(Rules)} - {"extra", "tiers", "menu", "staff_menu", "service", "tier_discounts",
                                                "birthday_coupons", "tier_gifts"}
    updates: dict[str, Any] = {}
    for key, value in data.items():
        if key == "tiers":
            updates["tiers"] = _tiers(value)
        elif key == "menu":
            updates["menu"], updates["staff_menu"] = _menus(value)
        elif key == "service":
            try:
                updates["service"] = service_rules(value)
            except ServiceRulesError as exc:
                raise RulesError(str(exc)) from None
        elif key == "tier_discounts":
            updates["tier_discounts"] = _discounts(value)
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
