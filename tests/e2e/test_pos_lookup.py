"""The till: POST /api/pos/members/lookup (signed like the order webhook; the phone travels in the body,
never in a URL) answers tier, the tier's discount from the rules, balance and usable coupons; `会员码`
gives a one-time code valid 60 s (injected clock) that cannot be replayed at another store; stale or
forged codes are 404; lookups are rate-limited per store; the order webhook stores store, channel and
items, validated."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from bot.api.pos import LOOKUPS_PER_MINUTE
from storage import stores
from storage.clock import FrozenClock
from storage.models import Member, OrderItem, PurchaseOrder
from tests.support.console_support import ConsoleWorld, console_world
from tests.support.ledgerviews_support import FULL_PHONE, coupon, member
from tests.support.member_support import ORDER_SECRET, paid, post_order, signature

PHONE = "13812345678"
CODE = re.compile(r"您的会员码：(\d+)")


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock, order_webhook_secret=ORDER_SECRET) as found:
        async with found.db.unit_of_work() as session:
            for code in ("S001", "S002"):
                await stores.add(session, code, f"{code} 店", "上海", clock.now())
        yield found


async def lookup(world: ConsoleWorld, body: dict[str, Any], *, secret: str = ORDER_SECRET) -> httpx.Response:
    raw = json.dumps(body).encode()
    ts = str(int(world.wechat.services.clock.now().timestamp()))
    headers = {"Content-Type": "application/json", "X-Wxbot-Timestamp": ts,
               "X-Wxbot-Signature": signature(secret, ts, raw)}
    return await world.wechat.client.post("/api/pos/members/lookup", content=raw, headers=headers)


async def member_code(world: ConsoleWorld, openid: str) -> str:
    reply = await world.wechat.say(openid, "会员码")
    found = CODE.search(reply)
    assert found, reply
    assert PHONE not in reply
    return found.group(1)


async def test_a_phone_lookup_answers_tier_discount_balance_and_usable_coupons(
    world: ConsoleWorld, clock: FrozenClock,
) -> None:
    member_id = await member(world, "oPOSmember01", PHONE)
    usable = (await coupon(world, member_id, clock.now(), name="拿铁券", key="r-pos-1")).code
    used = (await coupon(world, member_id, clock.now(), name="美式券", key="r-pos-2")).code
    async with world.db.unit_of_work() as session:
        await world.wechat.services.rewards.use(session, used, clock.now())
    first = await lookup(world, {"store": "S001", "phone": PHONE})
    assert first.status_code == 200, first.text
    body = first.json()
    async with world.db.sessions() as session:
        row = await session.get(Member, member_id)
    assert row is not None
    assert (body["tier"], body["discount_percent"], body["discount"]) == ("普通", 100, "无折扣")
    assert body["balance"] == row.balance
    assert body["phone"] == "138****5678"
    assert [(c["code"], c["reward"]) for c in body["coupons"]] == [(usable, "拿铁券")]
    assert not FULL_PHONE.search(first.text)

    async with world.db.unit_of_work() as session:
        await session.execute(update(Member).where(Member.id == member_id).values(tier="金卡"))  # type: ignore[arg-type]
    gold = (await lookup(world, {"store": "s002", "phone": PHONE})).json()
    assert (gold["tier"], gold["discount_percent"], gold["discount"]) == ("金卡", 90, "9折")


async def test_a_member_code_works_once_for_60_seconds(world: ConsoleWorld, clock: FrozenClock) -> None:
    await member(world, "oPOSmember02", PHONE)
    code = await member_code(world, "oPOSmember02")
    clock.advance(seconds=59)
    found = await lookup(world, {"store": "S001", "member_code": code})
    assert found.status_code == 200, found.text
    assert found.json()["phone"] == "138****5678"
    replayed = await lookup(world, {"store": "S002", "member_code": code})  # at another store
    assert replayed.status_code == 404
    assert (await lookup(world, {"store": "S001", "member_code": code})).status_code == 404

    stale = await member_code(world, "oPOSmember02")
    clock.advance(seconds=61)
    assert (await lookup(world, {"store": "S001", "member_code": stale})).status_code == 404

    fresh = await member_code(world, "oPOSmember02")
    forged = fresh[:-6] + f"{(int(fresh[-6:]) + 1) % 1_000_000:06d}"
    assert (await lookup(world, {"store": "S001", "member_code": forged})).status_code == 404
    replaced = await member_code(world, "oPOSmember02")  # a new code retires the one before
    assert (await lookup(world, {"store": "S001", "member_code": fresh})).status_code == 404
    assert (await lookup(world, {"store": "S001", "member_code": replaced})).status_code == 200


async def test_visitors_get_no_member_code(world: ConsoleWorld) -> None:
    reply = await world.wechat.say("oPOSvisitor01", "会员码")
    assert CODE.search(reply) is None


async def test_lookups_are_rate_limited_per_store(world: ConsoleWorld, clock: FrozenClock) -> None:
    clock.set(clock.now().replace(second=0, microsecond=0))
    await member(world, "oPOSmember03", PHONE)
    for _ in range(LOOKUPS_PER_MINUTE):
        assert (await lookup(world, {"store": "S001", "phone": "13900000000"})).status_code == 404
    limited = await lookup(world, {"store": "S001", "phone": PHONE})
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert (await lookup(world, {"store": "S002", "phone": PHONE})).status_code == 200  # its own budget
    clock.advance(seconds=60)
    assert (await lookup(world, {"store": "S001", "phone": PHONE})).status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ({"store": "S001"}, "exactly one of phone and member_code"),
    ({"store": "S001", "phone": PHONE, "member_code": "1123456"}, "exactly one"),
    ({"store": "S001", "phone": "12345678901"}, "phone is not a mainland mobile number"),
    ({"store": "S001", "member_code": "12ab"}, "member_code"),
    ({"store": "S9", "phone": PHONE}, "store: no store S9"),
    ({"phone": PHONE}, "store"),
    ({"store": "S001", "phone": PHONE, "extra": 1}, "extra"),
])
async def test_bad_lookups_are_422_naming_the_problem(world: ConsoleWorld, body: dict[str, Any], field: str) -> None:
    await member(world, "oPOSmember04", PHONE)
    answer = await lookup(world, body)
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["message"]


async def test_unsigned_or_forged_lookups_are_refused(world: ConsoleWorld) -> None:
    assert (await lookup(world, {"store": "S001", "phone": PHONE}, secret="wrong")).status_code == 401
    bare = await world.wechat.client.post("/api/pos/members/lookup", json={"store": "S001", "phone": PHONE})
    assert bare.status_code == 401


async def test_the_order_webhook_stores_store_channel_and_items(world: ConsoleWorld) -> None:
    await member(world, "oPOSmember05", PHONE)
    items = [{"sku": "LATTE-L", "category": "咖啡", "qty": 2, "amount_fen": 5600},
             {"sku": "CAKE", "qty": 1, "amount_fen": 2800}]
    answer = await post_order(world.wechat, {**paid("P-1", 8400, phone=PHONE), "store": "s001", "channel": "pos",
                                             "items": items})
    assert answer.status_code == 200, answer.text
    async with world.db.sessions() as session:
        order = await session.scalar(select(PurchaseOrder).where(PurchaseOrder.order_id == "P-1"))
        assert order is not None
        lines = (await session.scalars(select(OrderItem).where(OrderItem.order_id == order.id)
                                       .order_by(OrderItem.id))).all()  # type: ignore[arg-type]
    assert (order.store, order.channel) == ("S001", "pos")
    assert [(x.sku, x.category, x.qty, x.amount_fen) for x in lines] == [
        ("LATTE-L", "咖啡", 2, 5600), ("CAKE", "", 1, 2800),
    ]
    plain = await post_order(world.wechat, paid("P-2", 1000, phone=PHONE))  # all three stay optional
    assert plain.status_code == 200


@pytest.mark.parametrize(("extra", "problem"), [
    ({"store": "S404"}, "store: no store S404"),
    ({"store": "S 1"}, "store"),
    ({"channel": "x" * 33}, "channel"),
    ({"items": [{"sku": "A", "qty": 0, "amount_fen": 100}]}, "items.0.qty"),
    ({"items": [{"sku": "A", "qty": 1, "amount_fen": -1}]}, "items.0.amount_fen"),
    ({"items": [{"qty": 1, "amount_fen": 1}]}, "items.0.sku"),
    ({"items": [{"sku": "A", "qty": 1, "amount_fen": 9999}]}, "add up to more than"),
])
async def test_bad_order_extras_are_422_and_nothing_is_stored(
    world: ConsoleWorld, extra: dict[str, Any], problem: str,
) -> None:
    await member(world, "oPOSmember06", PHONE)
    answer = await post_order(world.wechat, {**paid("P-3", 1000, phone=PHONE), **extra})
    assert answer.status_code == 422, answer.text
    assert problem in answer.json()["message"]
    async with world.db.sessions() as session:
        assert await session.scalar(select(PurchaseOrder).where(PurchaseOrder.order_id == "P-3")) is None
