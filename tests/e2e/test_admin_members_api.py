"""The admin JSON API's member 360 (bearer ADMIN_TOKEN, actor `token`): search, the member, ledger pages and
points adjustment — 401 without the token, 404 for an unknown member, 422 for bad values, 409 beyond the
balance, a repeated request id applied once; phones masked."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from storage.clock import FrozenClock
from storage.models import AuditEntry, LedgerEntry, Outbox
from tests.support.fakes import ADMIN, WeChat
from tests.support.invariants import assert_points_consistent
from tests.support.member_support import PHONE, app_with_order_secret, joined, pay, sign_up, snapshot

BOB = "oBOBapiMemberBBBBBBBBBBBBBBBB"


@pytest.fixture
async def wechat(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[WeChat]:
    async with app_with_order_secret(urls, clock) as harness:
        yield harness


@pytest.fixture
async def bob(wechat: WeChat) -> int:
    await sign_up(wechat, BOB, PHONE)
    member = await joined(wechat, BOB)
    assert member.id is not None
    return member.id


async def adjust(wechat: WeChat, member_id: int, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await wechat.client.post(f"/api/admin/members/{member_id}/adjust", json=body,
                                    headers=headers or ADMIN)


async def test_every_route_needs_the_admin_token(wechat: WeChat, bob: int) -> None:
    for token in ({}, {"Authorization": "Bearer wrong"}):
        for response in (
            await wechat.client.get("/api/admin/members", params={"q": BOB}, headers=token),
            await wechat.client.get(f"/api/admin/members/{bob}", headers=token),
            await wechat.client.get(f"/api/admin/members/{bob}/ledger", headers=token),
            await wechat.client.post(f"/api/admin/members/{bob}/adjust", headers=token,
                                     json={"points": 5, "reason": "没有令牌", "request_id": "r-401"}),
        ):
            assert response.status_code == 401
            assert response.json()["error"] == "unauthorized"
    assert (await wechat.client.get(f"/api/admin/members/{bob}", headers=ADMIN)).status_code == 200


async def test_search_and_the_member_in_json_with_the_phone_masked(wechat: WeChat, bob: int) -> None:
    await pay(wechat, "P-API", 5_000, openid=BOB)
    member = await joined(wechat, BOB)
    for query in (BOB, str(member.referral_code), "+86 138-0013-8000"):
        found = (await wechat.client.get("/api/admin/members", params={"q": query}, headers=ADMIN)).json()
        assert [(m["id"], m["phone"]) for m in found["members"]] == [(bob, "138****8000")], query
    posted = await wechat.client.post("/api/admin/members/search", json={"q": PHONE}, headers=ADMIN)
    assert [(m["id"], m["matched"]) for m in posted.json()["members"]] == [(bob, "phone")]
    assert (await wechat.client.post("/api/admin/members/search", json={"q": PHONE})).status_code == 401
    none = await wechat.client.get("/api/admin/members", params={"q": "oNOBODY"}, headers=ADMIN)
    assert none.json() == {"members": []}
    body = await wechat.client.get(f"/api/admin/members/{bob}", headers=ADMIN)
    assert body.status_code == 200
    assert PHONE not in body.text
    view = body.json()
    assert view["profile"]["phone"] == "138****8000"
    assert view["standing"] == {"tier": "普通", "tier_hold_until": None, "qualifying": 150, "next_tier": "银卡",
                                "gap": 850, "balance": 150, "rfm_class": None, "rfm_since": None}
    assert [(e["kind"], e["delta"], e["reason_text"]) for e in view["ledger"]["entries"]] == [
        ("purchase", 50, "消费 50.00 元"), ("signup", 100, "注册会员奖励")]
    assert [o["order_id"] for o in view["orders"]] == ["P-API"]
    assert sum(lot["remaining"] for lot in view["lots"]) == 150


async def test_an_unknown_member_is_404(wechat: WeChat) -> None:
    for response in (
        await wechat.client.get("/api/admin/members/987654", headers=ADMIN),
        await wechat.client.get("/api/admin/members/987654/ledger", headers=ADMIN),
        await adjust(wechat, 987654, {"points": 5, "reason": "没有这个人", "request_id": "r-404"}),
    ):
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


@pytest.mark.parametrize("body", [
    {"points": 0, "reason": "合理的原因", "request_id": "r-1"},
    {"points": 100_001, "reason": "合理的原因", "request_id": "r-1"},
    {"points": "5", "reason": "合理的原因", "request_id": "r-1"},
    {"points": 5.5, "reason": "合理的原因", "request_id": "r-1"},
    {"points": 5, "reason": " a ", "request_id": "r-1"},
    {"points": 5, "reason": "长" * 201, "request_id": "r-1"},
    {"points": 5, "reason": "合理的原因", "request_id": ""},
    {"points": 5, "reason": "合理的原因"},
    {"points": 5, "reason": "合理的原因", "request_id": "r-1", "extra": 1},
])
async def test_bad_values_are_422_and_change_nothing(wechat: WeChat, bob: int, body: dict[str, Any]) -> None:
    before = await snapshot(wechat)
    response = await adjust(wechat, bob, body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid"
    assert await snapshot(wechat) == before


async def test_adjusting_through_the_api_is_keyed_told_and_audited_as_the_token(wechat: WeChat, bob: int) -> None:
    body = {"points": 2_500, "reason": "补录线下消费", "request_id": "r-api-1"}
    first = await adjust(wechat, bob, body)
    again = await adjust(wechat, bob, body)
    assert first.status_code == again.status_code == 200
    assert first.json() == {"member_id": bob, "entry_id": first.json()["entry_id"], "points": 2_500,
                            "reason": "补录线下消费", "balance_before": 100, "balance_after": 2_600,
                            "repeated": False}
    assert again.json() == {**first.json(), "repeated": True}
    async with wechat.services.db.sessions() as session:
        entries = (await session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "adjust"))).all()
        pushes = (await session.scalars(select(Outbox).where(Outbox.kind == "points_adjusted"))).all()
        audits = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "points.adjust"))).all()
    assert [(e.delta, e.actor, e.idempotency_key) for e in entries] == [(2_500, "token", "adjust:r-api-1")]
    assert [p.dedupe_key for p in pushes] == ["adjust:r-api-1"]
    assert [(a.actor, a.actor_role, json.loads(a.before or "")) for a in audits] == [
        ("token", "token", {"balance": 100})]
    await assert_points_consistent(wechat.services.db)


async def test_taking_more_than_the_balance_is_409(wechat: WeChat, bob: int) -> None:
    before = await snapshot(wechat)
    refused = await adjust(wechat, bob, {"points": -101, "reason": "扣太多了", "request_id": "r-over"})
    assert refused.status_code == 409
    assert refused.json()["error"] == "over_balance"
    assert "balance=100" in refused.json()["message"]
    assert await snapshot(wechat) == before
    taken = await adjust(wechat, bob, {"points": -100, "reason": "全部扣回", "request_id": "r-all"})
    assert taken.json()["balance_after"] == 0
    # The same request again answers the first result, although the balance could not pay it now.
    assert (await adjust(wechat, bob, {"points": -100, "reason": "全部扣回", "request_id": "r-all"})).json()[
        "repeated"] is True
    await assert_points_consistent(wechat.services.db)


async def test_the_ledger_pages_with_before(wechat: WeChat, bob: int) -> None:
    for i in range(22):
        done = await adjust(wechat, bob, {"points": 1, "reason": f"第{i}笔", "request_id": f"r-{i}"})
        assert done.status_code == 200
    first = (await wechat.client.get(f"/api/admin/members/{bob}/ledger", headers=ADMIN)).json()
    assert len(first["entries"]) == 20
    assert first["entries"][0]["reason_text"] == "第21笔"
    rest = (await wechat.client.get(f"/api/admin/members/{bob}/ledger", params={"before": first["next_before"]},
                                    headers=ADMIN)).json()
    assert [e["kind"] for e in rest["entries"]] == ["adjust", "adjust", "signup"]
    assert rest["next_before"] is None
    bad = await wechat.client.get(f"/api/admin/members/{bob}/ledger", params={"before": 0}, headers=ADMIN)
    assert bad.status_code == 422
