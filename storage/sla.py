"""The member-service rules (the rules file's [service] section) and the SLA clock over them: due times
that count only business hours when those are set. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

CATEGORIES = ("商品", "服务", "积分与券", "配送", "其他")
HAND_OFF_CATEGORY = "服务"


class ServiceRulesError(ValueError):
    """A [service] section that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Sla:
    answer_hours: float = 2
    resolve_hours: float = 48


@dataclass(frozen=True)
class ServiceRules:
    """Defaults: first answer in 2 h, resolution in 48 h, around the clock; at most 3 open tickets."""

    default: Sla = Sla()
    categories: dict[str, Sla] = field(default_factory=dict)
    business_hours: tuple[time, time] | None = None  # the SLA clock runs only inside these, every day
    max_open: int = 3
    vip_tiers: tuple[str, ...] = ()
    vip_kf_account: str = ""

    def sla(self, category: str) -> Sla:
        return self.categories.get(category, self.default)

    def due(self, start: datetime, hours: float, tz: ZoneInfo) -> datetime:
        """`hours` of SLA time after `start`: wall time, or only business time when it is set."""
        if self.business_hours is None:
            return start + timedelta(hours=hours)
        opens, closes = self.business_hours
        left = timedelta(hours=hours)
        at = start.astimezone(tz)
        while True:
            day_open = datetime.combine(at.date(), opens, tzinfo=tz)
            day_close = datetime.combine(at.date(), closes, tzinfo=tz)
            if at < day_open:
                at = day_open
            if at < day_close:
                if at + left <= day_close:
                    return at + left
                left -= day_close - at
            at = datetime.combine(at.date() + timedelta(days=1), time(0), tzinfo=tz)


def _sla(value: Any, where: str, base: Sla) -> Sla:
    if not isinstance(value, dict) or not set(value) <= {"answer_hours", "resolve_hours"}:
        raise ServiceRulesError(f"{where} takes answer_hours and resolve_hours")
    for key, hours in value.items():
        if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
            raise ServiceRulesError(f"{where}.{key} must be a number of hours > 0")
    answer, resolve = value.get("answer_hours", base.answer_hours), value.get("resolve_hours", base.resolve_hours)
    return Sla(float(answer), float(resolve))


def _hours(value: Any) -> tuple[time, time]:
    try:
        first, last = (time.fromisoformat(part.strip()) for part in str(value).split("-"))
    except ValueError:
        raise ServiceRulesError("service.business_hours must look like 09:00-18:00") from None
    if first >= last:
        raise ServiceRulesError("service.business_hours must open before it closes")
    return first, last


def service_rules(data: Any) -> ServiceRules:
    """The [service] section: answer_hours, resolve_hours, business_hours, max_open, vip_tiers,
    vip_kf_account and [service.categories.<name>] overrides."""
    if not isinstance(data, dict):
        raise ServiceRulesError("service must be a table")
    known = {"answer_hours", "resolve_hours", "business_hours", "max_open", "vip_tiers", "vip_kf_account", "categories"}
    if unknown := set(data) - known:
        raise ServiceRulesError(f"unknown key service.{sorted(unknown)[0]}")
    default = _sla({k: data[k] for k in ("answer_hours", "resolve_hours") if k in data}, "service", Sla())
    categories = {}
    for name, value in (data.get("categories") or {}).items():
        if name not in CATEGORIES:
            raise ServiceRulesError(f"service.categories.{name} is not one of {CATEGORIES}")
        categories[name] = _sla(value, f"service.categories.{name}", default)
    max_open = data.get("max_open", 3)
    if isinstance(max_open, bool) or not isinstance(max_open, int) or max_open < 1:
        raise ServiceRulesError("service.max_open must be a whole number >= 1")
    tiers = data.get("vip_tiers", [])
    if not isinstance(tiers, list) or not all(isinstance(t, str) and t for t in tiers):
        raise ServiceRulesError("service.vip_tiers must be a list of tier names")
    hours = _hours(data["business_hours"]) if data.get("business_hours") else None
    return ServiceRules(default, categories, hours, max_open, tuple(tiers), str(data.get("vip_kf_account", "")))
