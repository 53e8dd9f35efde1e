"""The RFM layering's rules (the rules file's [rfm] section): when the scores come from quintiles of the
programme's buyers and the fixed cut-offs a small programme uses instead. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class RfmRulesError(ValueError):
    """An [rfm] section that cannot be used; the message names the key."""


@dataclass(frozen=True)
class RfmRules:
    """Fewer buyers than `min_buyers_for_quintiles` make quintiles meaningless (five members split five ways),
    so scores come from fixed cut-offs, each list the upper bounds of scores 1-4 (above the last: 5), chosen for
    a typical retail programme: bought within a month is very recent, a year ago is lapsed (R, in days, where
    fewer days score higher); one or two orders a year is casual, more than eight loyal (F); ¥100 to ¥2,000 a
    year spans casual to valuable (M, in yuan)."""

    min_buyers_for_quintiles: int = 500
    recency_days: tuple[int, ...] = (30, 90, 180, 365)  # at most 30 days: R 5; at most 90: 4; ... over 365: 1
    frequency: tuple[int, ...] = (1, 2, 4, 8)  # orders in 12 months: at most 1: F 1; 2: 2; 3-4: 3; 5-8: 4; more: 5
    monetary_yuan: tuple[int, ...] = (100, 300, 800, 2000)  # net paid in 12 months: at most ¥100: M 1; ...


def _bounds(data: dict[str, Any], key: str, default: tuple[int, ...]) -> tuple[int, ...]:
    value = data.get(key, list(default))
    if (not isinstance(value, list) or len(value) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
            or any(a >= b for a, b in zip(value, value[1:], strict=False))):
        raise RfmRulesError(f"rfm.{key} must be four increasing whole numbers")
    return tuple(value)


def rfm_rules(data: Any) -> RfmRules:
    """The [rfm] section: min_buyers_for_quintiles, recency_days, frequency, monetary_yuan."""
    if not isinstance(data, dict):
        raise RfmRulesError("rfm must be a table")
    base = RfmRules()
    if unknown := set(data) - {"min_buyers_for_quintiles", "recency_days", "frequency", "monetary_yuan"}:
        raise RfmRulesError(f"unknown key rfm.{sorted(unknown)[0]}")
    least = data.get("min_buyers_for_quintiles", base.min_buyers_for_quintiles)
    if isinstance(least, bool) or not isinstance(least, int) or least < 5:
        raise RfmRulesError("rfm.min_buyers_for_quintiles must be a whole number >= 5")
    return RfmRules(least, _bounds(data, "recency_days", base.recency_days),
                    _bounds(data, "frequency", base.frequency), _bounds(data, "monetary_yuan", base.monetary_yuan))
