"""Regressions in the monthly cap of 4 marketing pushes:
- the row being decided counted itself (it is already `sending`, claimed_at = now, when the policy
  runs), so only 3 marketing pushes a month went out, not 4;
- rows claimed together in one batch counted each other, though none of them had been sent;
- outbox.claim picked the highest priority first but handed the batch back in id order, so a
  win-back took the last slot of the month before an expiry reminder claimed with it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage import outbox
from tests.support.factories import add_member, local
from tests.support.push_support import TEMPLATES, PushWorld, push_world

NOW = local(2026, 6, 10, 10, 0)


@pytest.fixture
async def world(urls: tuple[str, str]) -> AsyncIterator[PushWorld]:
    async with push_world(urls, at=NOW, wechat_template_ids=TEMPLATES) as w:
        yield w


async def queue(world: PushWorld, member: int, key: str, kind: str = "campaign") -> None:
    await world.queue(key, member_id=member, openid=f"o{member:027d}", kind=kind, category=outbox.MARKETING,
                      payload={"params": {"points": 1}})


async def test_four_marketing_pushes_a_month_are_sent_one_by_one(world: PushWorld) -> None:
    member = await add_member(world.db, NOW, openid="o" + "1".zfill(27))
    for i in range(5):
        await queue(world, member, f"campaign:{i}")
        await world.drain()
        world.clock.advance(days=1)
    statuses = [(await world.row(f"campaign:{i}")).status for i in range(5)]
    assert statuses == ["sent"] * 4 + ["dropped"]  # a campaign waits for nothing: over the cap, dropped
    assert len(await world.delivered()) == 4


async def test_four_marketing_pushes_claimed_in_one_batch_are_all_sent(world: PushWorld) -> None:
    member = await add_member(world.db, NOW, openid="o" + "2".zfill(27))
    for i in range(4):
        await queue(world, member, f"campaign:{i}")
    await world.drain()
    assert [(await world.row(f"campaign:{i}")).status for i in range(4)] == ["sent"] * 4


async def test_the_higher_priority_push_wins_the_last_slot_in_a_batch(world: PushWorld) -> None:
    member = await add_member(world.db, NOW, openid="o" + "3".zfill(27))
    for i in range(3):
        await queue(world, member, f"campaign:{i}")
        await world.drain()
    await queue(world, member, "winback:late", kind="winback")
    await queue(world, member, "expiry:late", kind="expiry")
    await world.drain()
    assert (await world.row("expiry:late")).status == "sent"
    assert (await world.row("winback:late")).status == "dropped"
    assert len(await world.delivered()) == 4
