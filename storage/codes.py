"""Short codes people read aloud or type from a screen: referral, campaign and coupon codes."""

from __future__ import annotations

import secrets

UNAMBIGUOUS = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L


def random_code(length: int) -> str:
    return "".join(secrets.choice(UNAMBIGUOUS) for _ in range(length))
