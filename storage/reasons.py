"""Why a ledger row moved points, stored as a code and its facts (`#streak {"days":7}`) rather than words:
the words live in handlers/texts.py (LEDGER_REASONS). A reason that is not a code (rows written before the
codes, an operator's typed reason) is free text and is shown as it is."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

BOOST = "boost"  # the fact a multiplied earning (checkin, purchase) adds: the multiplier's name
MARK = "#"  # free text never needs to start with it, and rows written before the codes never did


class Reason(StrEnum):
    SIGNUP = "signup"
    REFERRAL = "referral"
    CHECKIN = "checkin"  # boost (a multiplier's name, when one applied)
    STREAK = "streak"  # days
    WINBACK = "winback"
    CAMPAIGN = "campaign"  # title
    PURCHASE = "purchase"  # yuan, boost (when a multiplier applied)
    REFUND = "refund"  # yuan
    REDEEM = "redeem"  # reward
    REDEEM_CANCELLED = "redeem_cancelled"
    BIRTHDAY = "birthday"  # year
    SURVEY = "survey"  # name (a satisfaction survey's thank-you)
    EXPIRE = "expire"  # earned (month), day (the last day it could be spent)

    def stored(self, **facts: str | int) -> str:
        """What the ledger row keeps: `#code`, or `#code {json facts}` (short: names and titles are ≤ 40 chars)."""
        if not facts:
            return MARK + self
        return f"{MARK}{self} {json.dumps(facts, ensure_ascii=False, separators=(',', ':'))}"


def yuan(fen: int) -> str:
    """An amount in fen as the facts carry it: yuan with two decimals."""
    return f"{fen / 100:.2f}"


def parse(stored: str) -> tuple[Reason, dict[str, Any]] | None:
    """The code and facts of a stored reason; None when it is free text (or a code this version does not know)."""
    if not stored.startswith(MARK):
        return None
    head, _, tail = stored[len(MARK):].partition(" ")
    try:
        code = Reason(head)
    except ValueError:
        return None
    if not tail:
        return code, {}
    try:
        facts = json.loads(tail)
    except ValueError:
        return None
    return (code, facts) if isinstance(facts, dict) else None
