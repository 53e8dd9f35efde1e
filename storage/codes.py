"""Short codes people read aloud or type from a screen: referral, campaign, coupon and ticket codes."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

UNAMBIGUOUS = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L


def random_code(length: int) -> str:
    return "".join(secrets.choice(UNAMBIGUOUS) for _ in range(length))


async def unused_code(session: AsyncSession, column: Any, length: int, prefix: str = "") -> str:
    """A random code (after `prefix`) that no row holds in `column` yet (its unique constraint still has the
    last word)."""
    while True:
        code = prefix + random_code(length)
        if await session.scalar(select(column).where(column == code).limit(1)) is None:
            return code
