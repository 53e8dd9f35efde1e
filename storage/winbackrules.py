"""The staged win-back's rules (the rules file's [winback] section, beside the older top-level
winback_after_days / winback_bonus / winback_valid_days keys, which keep their meaning). Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class WinbackRulesError(ValueError):
    """A [winback] section that cannot be used; the message names the key."""


@dataclass(frozen=True)
class WinbackRules:
    """stage_gap_days between two stages (warn -> recall1 -> recall2 -> dormant: at most one push a week, so
    an episode costs at most three of the month's four marketing pushes); one_order_days: a member with a
    single paid order is at risk this long after it; recall_reward: the reward id granted as a coupon at
    recall 2 (none: the points offer again)."""

    stage_gap_days: int = 7
    one_order_days: int = 60
    recall_reward: int | None = None


def winback_rules(data: Any) -> WinbackRules:
    if not isinstance(data, dict):
        raise WinbackRulesError("winback must be a table")
    if unknown := set(data) - {"stage_gap_days", "one_order_days", "recall_reward"}:
        raise WinbackRulesError(f"unknown key winback.{sorted(unknown)[0]}")
    values: dict[str, Any] = {}
    for key, low in (("stage_gap_days", 1), ("one_order_days", 1), ("recall_reward", 1)):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise WinbackRulesError(f"winback.{key} must be a whole number >= {low}")
            values[key] = value
    return WinbackRules(**values)
