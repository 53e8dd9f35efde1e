"""Seeding for the console's read screens (pushes, audit log, exports, verification): members signed up
in the chat, coupons redeemed through Rewards, outbox rows through the outbox's own writers."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select

from storage import outbox
from storage.models import Member, Outbox, Redemption
from tests.support.console_support import ConsoleWorld
from tests.support.member_support import sign_up
from tests.support.redeem_support import add_reward

EVIL = '<script>alert("x")</script>'
FULL_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


async def member(world: ConsoleWorld, openid: str, phone: str) -> int:
    """A member signed up through the chat; returns its id."""
    await sign_up(world.wechat, openid, phone)
    async with world.db.sessions() as session:
        found = await session.scalar(select(Member).where(Member.openid == openid))
    assert found is not None
    assert found.id is not None
    return found.id


async def coupon(world: ConsoleWorld, member_id: int, now: datetime, *, name: str = "拿铁券",
                 key: str = "r1", **reward: Any) -> Redemption:
    """A coupon the member redeemed with points (Rewards.redeem, as the chat does)."""
    reward_id = await add_reward(world.db, now, name=name, cost=50, **reward)
    async with world.db.unit_of_work() as session:
        issued = await world.wechat.services.rewards.redeem(session, member_id, reward_id, request_key=key, now=now)
    return issued.redemption


async def push(world: ConsoleWorld, key: str, now: datetime, *, kind: str = "campaign_reward",
               member_id: int | None = None, text: str | None = None, openid: str = "oPUSHxyz") -> int:
    payload: dict[str, Any] = {"text": text} if text is not None else {"params": {"points": 5}}
    async with world.db.unit_of_work() as session:
        await outbox.enqueue(session, dedupe_key=key, openid=openid, kind=kind, payload=payload, now=now,
                             member_id=member_id)
        row = await session.scalar(select(Outbox).where(Outbox.dedupe_key == key))
    assert row is not None
    assert row.id is not None
    return row.id
