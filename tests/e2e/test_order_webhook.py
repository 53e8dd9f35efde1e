"""POST /hooks/orders end to end: HMAC-signed by the POS, paid orders credit points, refunds take them
back, and every refusal answers JSON {"error", "message"} and changes nothing (issue 3 item 8)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select, update

from handlers import texts
from storage.clock import FrozenClock
from storage.models import Anomaly, Member, PurchaseOrder
from tests.support.factories import anomalies_of
from tests.support.fakes import WeChat
from tests.support.member_support import (
    ORDER_SECRET,
    PHONE,
    app_with_order_secret,
    assert_books_balance,
    entries,
    entry_by_key,
    joined,
    paid,
    pay,
    post_order,
    refund,
    sign_up,
    signature,
    snapshot,
)

ALICE = "oORDERS_ALICE_000000000001"
VISITOR = "oORDERS_VISITOR_0000000002"


@pytest.fixture
async def wechat(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[WeChat]:
    async with app_with_order_secret(urls, clock) as harness:
        yield harness


@pytest.fixture
async def alice(wechat: WeChat) -> int:
    """A member with the 100-point sign-up bonus, signed up through the chat."""
    await sign_up(wechat, ALICE)
    return int((await joined(wechat, ALICE)).id)  # type: ignore[arg-type]


async def order_rows(wechat: WeChat, order_id: str | None = None) -> list[PurchaseOrder]:
    async with wechat.services.db.sessions() as session:
        query = select(PurchaseOrder).order_by(PurchaseOrder.id)
        if order_id is not None:
            query = query.where(PurchaseOrder.order_id == order_id)
        return list(await session.scalars(query))


async def set_member(wechat: WeChat, member_id: int, **values: Any) -> None:
    async with wechat.services.db.unit_of_work() as session:
        await session.execute(update(Member).where(Member.id == member_id).values(**values))


def refusal(response: Any, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message"}, body
    assert body["error"] == error
    assert isinstance(body["message"], str)
    assert body["message"]
    return str(body["message"])


# --- paid -------------------------------------------------------------------------------------------

async def test_paid_by_openid_credits_whole_yuan(wechat: WeChat, alice: int) -> None:
    response = await post_order(wechat, paid("P-1001", 12_399, openid=ALICE))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "order_id": "P-1001", "member_id": alice, "points": 123, "balance": 223, "repeated": False, "shortfall": 0,
    }
    [row] = await order_rows(wechat)
    assert (row.order_id, row.member_id, row.amount_fen, row.points) == ("P-1001", alice, 12_399, 123)
    entry = await entry_by_key(wechat, "order:P-1001")
    assert entry is not None
    assert (entry.member_id, entry.kind, entry.delta, entry.ref) == (alice, "purchase", 123, "P-1001")
    assert await assert_books_balance(wechat, alice) == 223
    assert "您的积分：223" in await wechat.say(ALICE, "积分")


@pytest.mark.parametrize("phone", [PHONE, "+86 138 0013 8000", "138-0013-8000", "008613800138000"])
async def test_paid_by_phone(wechat: WeChat, alice: int, phone: str) -> None:
    result = await pay(wechat, "P-PHONE", 5_000, phone=phone)
    assert (result["member_id"], result["points"], result["balance"]) == (alice, 50, 150)


async def test_paid_by_unionid(wechat: WeChat, alice: int) -> None:
    await set_member(wechat, alice, unionid="uORDERS_ALICE")  # as the Mini Program login links it
    result = await pay(wechat, "P-UNION", 7_000, unionid="uORDERS_ALICE")
    assert (result["member_id"], result["points"]) == (alice, 70)


@pytest.mark.parametrize(
    ("tier", "amount_fen", "points"),
    [("普通", 9_999, 99), ("普通", 99, 0), ("银卡", 10_050, 120), ("银卡", 300, 3), ("金卡", 10_000, 150),
     ("金卡", 101, 1), ("钻石", 199, 2), ("钻石", 10_000_000, 200_000)],
)
async def test_points_are_whole_yuan_times_the_tier_multiplier(
    wechat: WeChat, alice: int, tier: str, amount_fen: int, points: int
) -> None:
    await set_member(wechat, alice, tier=tier)
    result = await pay(wechat, "P-TIER", amount_fen, openid=ALICE)
    assert (result["points"], result["balance"]) == (points, 100 + points)
    assert (await order_rows(wechat))[0].points == points
    assert await assert_books_balance(wechat, alice) == 100 + points


async def test_repeated_delivery_credits_once(wechat: WeChat, alice: int, clock: FrozenClock) -> None:
    first = await pay(wechat, "P-2002", 20_000, openid=ALICE)
    assert (first["points"], first["repeated"]) == (200, False)
    clock.advance(minutes=3)
    again = await pay(wechat, "P-2002", 20_000, openid=ALICE)
    assert again == {**first, "repeated": True}
    # Even a repeat that disagrees with the first delivery returns the first result.
    different = await pay(wechat, "P-2002", 99_900, phone=PHONE)
    assert (different["points"], different["balance"], different["repeated"]) == (200, 300, True)
    assert len(await order_rows(wechat)) == 1
    assert [e.kind for e in await entries(wechat, alice)] == ["signup", "purchase"]
    assert await assert_books_balance(wechat, alice) == 300


async def test_concurrent_deliveries_of_one_order_credit_once(wechat: WeChat, alice: int) -> None:
    body = paid("P-RACE", 50_000, openid=ALICE)
    responses = await asyncio.gather(*(post_order(wechat, body) for _ in range(5)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert sorted(r.json()["repeated"] for r in responses) == [False, True, True, True, True]
    assert {r.json()["points"] for r in responses} == {500}
    assert len(await order_rows(wechat)) == 1
    assert await assert_books_balance(wechat, alice) == 600


async def test_signature_with_sha256_prefix_is_accepted(wechat: WeChat, alice: int) -> None:
    body = json.dumps(paid("P-PREFIX", 1_000, openid=ALICE)).encode()
    ts = str(int(wechat.services.clock.now().timestamp()))
    response = await post_order(wechat, body, timestamp=ts, sig="sha256=" + signature(ORDER_SECRET, ts, body).upper())
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("age", [-300, 300])
async def test_timestamp_within_five_minutes_is_accepted(wechat: WeChat, alice: int, age: int) -> None:
    now = int(wechat.services.clock.now().timestamp())
    response = await post_order(wechat, paid("P-EDGE", 1_000, openid=ALICE), timestamp=now - age)
    assert response.status_code == 200, response.text


# --- refunds ----------------------------------------------------------------------------------------

async def test_refunds_take_back_proportional_points_keyed_by_refund_id(wechat: WeChat, alice: int) -> None:
    await pay(wechat, "P-3003", 10_000, openid=ALICE)  # +100 -> 200
    first = await post_order(wechat, refund("P-3003", 10_000, "R-1", 3_333))
    assert first.status_code == 200, first.text
    assert first.json() == {
        "order_id": "P-3003", "member_id": alice, "points": -33, "balance": 167, "repeated": False, "shortfall": 0,
    }
    again = await post_order(wechat, refund("P-3003", 10_000, "R-1", 3_333))
    assert again.json() == {**first.json(), "repeated": True}
    assert await assert_books_balance(wechat, alice) == 167

    rest = await post_order(wechat, refund("P-3003", 10_000, "R-2", 6_667))
    assert rest.status_code == 200, rest.text
    assert (rest.json()["points"], rest.json()["balance"]) == (-67, 100)  # 100 in all, not 33 + 66
    [row] = await order_rows(wechat)
    assert (row.refunded_fen, row.refunded_points) == (10_000, 100)
    refund_entries = [e for e in await entries(wechat, alice) if e.kind == "refund"]
    assert [(e.idempotency_key, e.delta, e.ref) for e in refund_entries] == [
        ("refund:R-1", -33, "P-3003"), ("refund:R-2", -67, "P-3003"),
    ]
    # The order is fully refunded: one more fen is a conflict and changes nothing.
    before = await snapshot(wechat)
    over = await post_order(wechat, refund("P-3003", 10_000, "R-3", 1))
    refusal(over, 409, "conflict")
    assert await snapshot(wechat) == before


async def test_refund_of_a_silver_order_takes_back_what_it_earned(wechat: WeChat, alice: int) -> None:
    await set_member(wechat, alice, tier="银卡")
    assert (await pay(wechat, "P-SILVER", 10_000, openid=ALICE))["points"] == 120
    result = (await post_order(wechat, refund("P-SILVER", 10_000, "R-SILVER", 5_000))).json()
    assert (result["points"], result["balance"]) == (-60, 160)


async def test_refund_after_spending_stops_at_zero_and_raises_an_anomaly(wechat: WeChat, alice: int) -> None:
    await pay(wechat, "P-4004", 30_000, openid=ALICE)  # +300 -> 400
    services = wechat.services
    async with services.db.unit_of_work() as session:  # a redemption spends most of it
        await services.ledger.spend(
            session, alice, 350, key="redeem:test-1", kind="redeem", now=services.clock.now(), reason="兑换",
        )
    response = await post_order(wechat, refund("P-4004", 30_000, "R-4004", 30_000))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "order_id": "P-4004", "member_id": alice, "points": -50, "balance": 0, "repeated": False, "shortfall": 250,
    }
    assert await assert_books_balance(wechat, alice) == 0
    anomalies = await anomalies_of(services.db, alice)
    assert [(a.kind, a.dedupe_key) for a in anomalies] == [("refund_shortfall", "shortfall:refund:R-4004")]
    assert "250" in anomalies[0].detail
    again = await post_order(wechat, refund("P-4004", 30_000, "R-4004", 30_000))
    assert (again.json()["balance"], again.json()["repeated"]) == (0, True)
    assert "您的积分：0" in await wechat.say(ALICE, "积分")


# --- refusals: 404 ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "who",
    [{"openid": "oNOBODY"}, {"phone": "13900000000"}, {"unionid": "uNOBODY"}, {"openid": VISITOR}],
)
async def test_unknown_member_is_404_and_changes_nothing(wechat: WeChat, alice: int, who: dict[str, str]) -> None:
    await wechat.say(VISITOR, "你好")  # a follower who never signed up is not a member
    before = await snapshot(wechat)
    message = refusal(await post_order(wechat, paid("P-404", 10_000, **who)), 404, "not_found")
    assert "member" in message
    assert await snapshot(wechat) == before
    assert await order_rows(wechat, "P-404") == []


async def test_deleted_member_is_404(wechat: WeChat, alice: int) -> None:
    await wechat.say(ALICE, "注销")
    assert await wechat.say(ALICE, "确认注销") == texts.DELETED
    before = await snapshot(wechat)
    for who in ({"openid": ALICE}, {"phone": PHONE}):
        refusal(await post_order(wechat, paid("P-GONE", 10_000, **who)), 404, "not_found")
    assert await snapshot(wechat) == before


async def test_refund_of_an_unknown_order_is_404(wechat: WeChat, alice: int) -> None:
    before = await snapshot(wechat)
    message = refusal(await post_order(wechat, refund("P-NEVER", 10_000, "R-NEVER", 100)), 404, "not_found")
    assert "P-NEVER" in message
    assert await snapshot(wechat) == before


# --- refusals: 401 and 503 ---------------------------------------------------------------------------

def forged(wechat: WeChat, case: str) -> dict[str, Any]:
    body = json.dumps(paid("P-401", 10_000, openid=ALICE)).encode()
    now = int(wechat.services.clock.now().timestamp())
    good = signature(ORDER_SECRET, str(now), body)
    other = json.dumps(paid("P-401", 99_999, openid=ALICE)).encode()
    return {
        "wrong secret": {"payload": body, "secret": "not-the-secret"},
        "signature of another body": {"payload": body, "sig": signature(ORDER_SECRET, str(now), other)},
        "signature of another timestamp": {"payload": body, "timestamp": now - 1, "sig": good},
        "garbage signature": {"payload": body, "sig": "xyz"},
        "empty signature": {"payload": body, "sig": ""},
        "older than five minutes": {"payload": body, "timestamp": now - 301},
        "an hour old": {"payload": body, "timestamp": now - 3600},
        "from the future": {"payload": body, "timestamp": now + 301},
        "timestamp not a number": {"payload": body, "timestamp": "yesterday"},
        "no headers": {"payload": body, "headers": {}},
        "no signature header": {"payload": body, "headers": {"X-Wxbot-Timestamp": str(now)}},
        "no timestamp header": {"payload": body, "headers": {"X-Wxbot-Signature": good}},
    }[case]


@pytest.mark.parametrize(
    "case",
    ["wrong secret", "signature of another body", "signature of another timestamp", "garbage signature",
     "empty signature", "older than five minutes", "an hour old", "from the future", "timestamp not a number",
     "no headers", "no signature header", "no timestamp header"],
)
async def test_bad_signature_or_stale_timestamp_is_401(wechat: WeChat, alice: int, case: str) -> None:
    before = await snapshot(wechat)
    refusal(await post_order(wechat, **forged(wechat, case)), 401, "unauthorized")
    assert await snapshot(wechat) == before
    assert await order_rows(wechat) == []


async def test_empty_secret_refuses_everything_with_503(
    urls: tuple[str, str], clock: FrozenClock
) -> None:
    async with app_with_order_secret(urls, clock, secret="") as shop:
        await sign_up(shop, ALICE)
        before = await snapshot(shop)
        for secret in ("", ORDER_SECRET):
            response = await post_order(shop, paid("P-503", 10_000, openid=ALICE), secret=secret)
            assert response.status_code == 503, response.text
            assert "ORDER_WEBHOOK_SECRET" in response.json()["message"]
        assert await snapshot(shop) == before


# --- refusals: 422 -----------------------------------------------------------------------------------

def _without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != key}


GOOD = paid("P-422", 10_000, openid=ALICE)
GOOD_REFUND = refund("P-422", 10_000, "R-422", 5_000)
INVALID: dict[str, bytes | dict[str, Any] | list[Any]] = {
    "negative amount": {**GOOD, "amount_fen": -100},
    "zero amount": {**GOOD, "amount_fen": 0},
    "over ten million fen": {**GOOD, "amount_fen": 10_000_001},
    "absurd amount": {**GOOD, "amount_fen": 10**30},
    "amount as a string": {**GOOD, "amount_fen": "10000"},
    "amount as a float": {**GOOD, "amount_fen": 100.5},
    "amount as a boolean": {**GOOD, "amount_fen": True},
    "amount null": {**GOOD, "amount_fen": None},
    "missing order_id": _without(GOOD, "order_id"),
    "missing amount_fen": _without(GOOD, "amount_fen"),
    "missing status": _without(GOOD, "status"),
    "paid without a member": _without(GOOD, "openid"),
    "empty order_id": {**GOOD, "order_id": ""},
    "order_id with spaces": {**GOOD, "order_id": "P 422"},
    "order_id too long": {**GOOD, "order_id": "P" * 65},
    "empty openid": {**GOOD, "openid": ""},
    "phone not a mobile number": {**GOOD, "openid": None, "phone": "12345678901"},
    "unknown status": {**GOOD, "status": "cancelled"},
    "status in capitals": {**GOOD, "status": "PAID"},
    "refund without refund_id": _without(GOOD_REFUND, "refund_id"),
    "refund without refund_amount_fen": _without(GOOD_REFUND, "refund_amount_fen"),
    "refund larger than the order": {**GOOD_REFUND, "refund_amount_fen": 10_001},
    "refund of zero": {**GOOD_REFUND, "refund_amount_fen": 0},
    "negative refund": {**GOOD_REFUND, "refund_amount_fen": -1},
    "refund amount as a string": {**GOOD_REFUND, "refund_amount_fen": "5000"},
    "malformed JSON": b'{"order_id": "P-422", "status": "paid",',
    "not JSON at all": b"order_id=P-422&amount_fen=10000",
    "empty body": b"",
    "JSON array": [GOOD],
    "JSON string": b'"paid"',
    "JSON null": b"null",
}


@pytest.mark.parametrize("case", list(INVALID))
async def test_invalid_body_is_422_and_changes_nothing(wechat: WeChat, alice: int, case: str) -> None:
    await pay(wechat, "P-EXISTING", 10_000, openid=ALICE)  # so a refund case has an order it could touch
    payload = INVALID[case]
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    before = await snapshot(wechat)
    refusal(await post_order(wechat, body), 422, "invalid")
    assert await snapshot(wechat) == before
    assert await order_rows(wechat, "P-422") == []
    assert await assert_books_balance(wechat, alice) == 200


async def test_invalid_refund_of_an_existing_order_changes_nothing(wechat: WeChat, alice: int) -> None:
    await pay(wechat, "P-5005", 10_000, openid=ALICE)
    before = await snapshot(wechat)
    too_large = refund("P-5005", 10_000, "R-5005", 10_001)
    no_refund_id = _without(refund("P-5005", 10_000, "R-5005", 1), "refund_id")
    for bad in (too_large, no_refund_id):
        refusal(await post_order(wechat, bad), 422, "invalid")
    assert await snapshot(wechat) == before
    async with wechat.services.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Anomaly)) == 0


async def test_amount_of_exactly_ten_million_fen_is_accepted(wechat: WeChat, alice: int) -> None:
    result = await pay(wechat, "P-MAX", 10_000_000, openid=ALICE)
    assert result["points"] == 100_000
