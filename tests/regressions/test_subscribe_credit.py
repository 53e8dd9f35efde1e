"""Regression: the sender worked out every legal channel before trying the first, so a push that went
by customer service still spent the member's Mini Program subscription credit (a one-time permission
WeChat gives per popup accept), and a subscribe send WeChat answered with -1 (nothing sent, retried
later) spent it too, so the retry found no credit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage import cswindow, outbox, subscriptions
from tests.support.factories import add_member, local
from tests.support.push_support import SUBSCRIBE, PushWorld, push_world

NOW = local(2026, 5, 20, 10, 0)
OPENID, MP_OPENID = "oCREDIT000000000000000000001", "oMPCREDIT0000000000000000001"
TEMPLATE = "MPT_expiry_0001"


@pytest.fixture
async def world(urls: tuple[str, str]) -> AsyncIterator[PushWorld]:
    async with push_world(urls, at=NOW, miniprogram_subscribe_template_ids={"expiry": TEMPLATE}) as w:
        yield w


async def setup(world: PushWorld, credits: int) -> str:
    member = await add_member(world.db, NOW, openid=OPENID, mp_openid=MP_OPENID)
    async with world.db.unit_of_work() as session:
        for _ in range(credits):
            await subscriptions.record_choice(session, MP_OPENID, TEMPLATE, True, NOW)
    await world.queue("expiry:1", member_id=member, openid=OPENID, kind="expiry", category=outbox.MARKETING,
                      payload={"params": {"points": 80, "date": "2026-05-31"}})
    return "expiry:1"


async def credits(world: PushWorld) -> int:
    async with world.db.sessions() as session:
        return await subscriptions.credits(session, MP_OPENID, TEMPLATE)


async def test_a_customer_service_send_keeps_the_subscribe_credit(world: PushWorld) -> None:
    key = await setup(world, 1)
    await cswindow.opened_by_message(world.kv, "oa", OPENID)
    await world.drain()
    assert (await world.row(key)).channel == "cs"
    assert await credits(world) == 1


async def test_subscribe_busy_gives_the_credit_back(world: PushWorld) -> None:
    key = await setup(world, 1)
    await world.script(SUBSCRIBE, -1)
    await world.drain()
    assert (await world.row(key)).status == "pending"
    assert await credits(world) == 1
    world.clock.advance(minutes=1)
    await world.drain()
    row = await world.row(key)
    assert (row.status, row.channel) == ("sent", "subscribe")
    assert await credits(world) == 0
