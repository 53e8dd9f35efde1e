"""The member API and the chat on one member: the same balance, one check-in a day across both doors,
history pages, rewards and redemption idempotent on request_id, coupons, campaigns, and sign-up
(phone from WeChat's phone-number API or typed)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from handlers import texts
from storage.campaigns import Campaigns
from storage.models import LedgerEntry, Redemption
from tests.support.member_support import sign_up
from tests.support.mp_support import MiniProgram, auth
from tests.support.redeem_support import add_reward, credit

MP_USER = "oMPuser000000000000000000001"
MP_OTHER = "oMPuser000000000000000000002"
OA_USER = "oOAfollower000000000000001"
UNION = "uUNION00000000000000000001"
PHONE = "13700001111"


async def linked_member(mp: MiniProgram) -> str:
    """An OA follower who signed up in the chat, then opened the Mini Program: the API token."""
    await mp.add_follower(OA_USER, UNION)
    await sign_up(mp.oa, OA_USER, phone=PHONE)
    await mp.pipeline.drain()
    return await mp.login(MP_USER, UNION)


async def balance_in_chat(mp: MiniProgram) -> int:
    said = await mp.oa.say(OA_USER, "积分")
    head = said.split("\n")[0]
    assert head.startswith("您的积分："), said
    return int(head.removeprefix("您的积分："))


async def ledger_count(mp: MiniProgram, kind: str) -> int:
    async with mp.services.db.sessions() as session:
        return int(await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == kind)) or 0)


async def reward(mp: MiniProgram, **fields: Any) -> int:
    return await add_reward(mp.services.db, mp.clock.now(), **fields)


async def campaign(mp: MiniProgram, *, kind: str = "join_bonus", points: int = 20, goal: int = 0, cap: int = 10,
                   days: int = 3) -> str:
    async with mp.services.db.unit_of_work() as session:
        made = await Campaigns(mp.services.ledger).create(
            session, kind=kind, title="周末加油", points=points, goal=goal, cap=cap,
            ends_at=mp.clock.now() + timedelta(days=days), created_by="oMANAGER", now=mp.clock.now(),
        )
        return made.code


# --- one member, two doors -----------------------------------------------------------------------------
async def test_balance_is_the_same_in_both_doors(mp: MiniProgram) -> None:
    token = await linked_member(mp)
    me = (await mp.get(token, "/me")).json()
    assert me["is_member"] is True
    assert me["balance"] == await balance_in_chat(mp) == 100
    await mp.oa.say(OA_USER, "签到")
    assert (await mp.get(token, "/me")).json()["balance"] == await balance_in_chat(mp) == 105
    reward_id = await reward(mp, cost=30)
    redeemed = await mp.post(token, "/redeem", {"reward_id": reward_id, "request_id": "req-balance-1"})
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["balance"] == 75
    assert (await mp.get(token, "/me")).json()["balance"] == await balance_in_chat(mp) == 75


async def test_me_shows_tier_progress_and_expiring_points(mp: MiniProgram) -> None:
    token = await mp.member_for(MP_USER, None, phone=PHONE)
    me = (await mp.get(token, "/me")).json()
    assert set(me) == {"member_id", "is_member", "balance", "tier", "next_tier", "points_to_next_tier",
                       "expiring_points", "expiring_on", "referral_code", "marketing_opt_out"}
    assert (me["balance"], me["tier"], me["expiring_points"], me["marketing_opt_out"]) == (100, "普通", 0, False)
    assert me["next_tier"] is not None
    assert me["points_to_next_tier"] > 0
    assert me["referral_code"]


async def test_check_in_api_then_chat_credits_once(mp: MiniProgram) -> None:
    token = await linked_member(mp)
    first = await mp.post(token, "/checkin")
    assert first.status_code == 200, first.text
    assert first.json()["points"] == 5
    assert first.json()["balance"] == 105
    assert "今天已经签过到啦" in await mp.oa.say(OA_USER, "签到")
    again = await mp.post(token, "/checkin")
    assert again.status_code == 409
    assert again.json() == {"error": "already_checked_in",
                            "message": texts.CHECKIN_ALREADY.format(streak=1, balance=105)}
    assert await ledger_count(mp, "checkin") == 1
    assert await balance_in_chat(mp) == 105


async def test_check_in_chat_then_api_credits_once_and_again_tomorrow(mp: MiniProgram) -> None:
    token = await linked_member(mp)
    assert "签到成功" in await mp.oa.say(OA_USER, "签到")
    refused = await mp.post(token, "/checkin")
    assert refused.status_code == 409
    assert refused.json()["error"] == "already_checked_in"
    mp.clock.advance(days=1)
    tomorrow = await mp.post(token, "/checkin")
    assert tomorrow.status_code == 200, tomorrow.text
    assert tomorrow.json()["streak"] == 2
    assert "今天已经签过到啦" in await mp.oa.say(OA_USER, "签到")
    assert await ledger_count(mp, "checkin") == 2


async def test_concurrent_check_ins_from_both_doors_credit_once(mp: MiniProgram) -> None:
    token = await linked_member(mp)
    results = await asyncio.gather(mp.post(token, "/checkin"), mp.oa.say(OA_USER, "签到"), mp.post(token, "/checkin"))
    statuses = sorted(r.status_code for r in results if not isinstance(r, str))
    chat = next(r for r in results if isinstance(r, str))
    assert statuses.count(200) + ("签到成功" in chat) == 1
    assert await ledger_count(mp, "checkin") == 1
    assert await balance_in_chat(mp) == 105


# --- history ---------------------------------------------------------------------------------------------
async def test_history_pages_with_a_cursor(mp: MiniProgram) -> None:
    token = await mp.member_for(MP_USER, None, phone=PHONE)
    member_id = (await mp.get(token, "/me")).json()["member_id"]
    for i in range(30):
        await credit(mp.services.db, mp.services.ledger, member_id, i + 1, mp.clock.now(), key=f"seed:{i}")
    seen: list[dict[str, Any]] = []
    cursor: int | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 12}
        if cursor is not None:
            params["cursor"] = cursor
        page = await mp.get(token, "/history", **params)
        assert page.status_code == 200, page.text
        body = page.json()
        seen.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert cursor == body["items"][-1]["id"]
    assert pages == 3  # 31 movements: 12 + 12 + 7
    ids = [item["id"] for item in seen]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 31
    assert [item["delta"] for item in seen[:3]] == [30, 29, 28]
    assert (seen[-1]["kind"], seen[-1]["label"], seen[-1]["delta"]) == ("signup", "注册奖励", 100)
    default = (await mp.get(token, "/history")).json()
    assert [i["id"] for i in default["items"]] == ids[:20]
    assert default["next_cursor"] == ids[19]
    last = (await mp.get(token, "/history", cursor=ids[-1])).json()
    assert last == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("params", [{"cursor": 0}, {"cursor": -5}, {"cursor": "abc"}, {"limit": 0},
                                    {"limit": 51}])
async def test_history_refuses_bad_paging(mp: MiniProgram, params: dict[str, Any]) -> None:
    token = await mp.member_for(MP_USER, None, phone=PHONE)
    response = await mp.get(token, "/history", **params)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid"


# --- rewards and redemption ---------------------------------------------------------------------------
async def test_rewards_list_marks_what_is_affordable(mp: MiniProgram) -> None:
    token = await mp.member_for(MP_USER, None, phone=PHONE)
    cheap = await reward(mp, name="咖啡券", cost=50)
    exact = await reward(mp, name="蛋糕券", cost=100)
    dear = await reward(mp, name="大礼包", cost=500)
    gone = await reward(mp, name="限量杯", cost=20, stock=0)
    await reward(mp, name="金卡专享", cost=10, min_tier="金卡")
    await reward(mp, name="下架券", cost=10, active=False)
    listed = (await mp.get(token, "/rewards")).json()
    assert [r["id"] for r in listed] == [gone, cheap, exact, dear]  # affordable first, then by cost
    flags = {r["id"]: (r["affordable"], r["in_stock"]) for r in listed}
    assert flags == {gone: (True, False), cheap: (True, True), exact: (True, True), dear: (False, True)}
    assert listed[1] == {"id": cheap, "name": "咖啡券", "description": "测试用", "cost": 50, "kind": "coupon",
                         "in_stock": True, "affordable": True}


async def test_redemption_is_idempotent_on_request_id(mp: MiniProgram) -> None:
    token = await linked_member(mp)
    reward_id = await reward(mp, name="咖啡券", cost=30)
    first = await mp.post(token, "/redeem", {"reward_id": reward_id, "request_id": "9b1c0e4a-redeem-1"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["reward"], body["balance"], body["repeated"]) == ("咖啡券", 70, False)
    again = await mp.post(token, "/redeem", {"reward_id": reward_id, "request_id": "9b1c0e4a-redeem-1"})
    assert again.status_code == 200
    assert again.json() == {**body, "repeated": True}
    assert await ledger_count(mp, "redeem") == 1
    assert await balance_in_chat(mp) == 70
    second = await mp.post(token, "/redeem", {"reward_id": reward_id, "request_id": "9b1c0e4a-redeem-2"})
    assert second.status_code == 200
    assert second.json()["code"] != body["code"]
    assert (second.json()["balance"], second.json()["repeated"]) == (40, False)
    assert await ledger_count(mp, "redeem") == 2
    coupons = (await mp.get(token, "/coupons")).json()
    assert sorted(c["code"] for c in coupons) == sorted([body["code"], second.json()["code"]])
    assert {c["reward"] for c in coupons} == {"咖啡券"}
    mine = await mp.oa.say(OA_USER, "我的券")  # the chat shows the same coupons
    assert body["code"] in mine
    assert second.json()["code"] in mine


async def test_concurrent_repeats_of_one_request_id_debit_once(mp: MiniProgram) -> None:
    token = await mp.member_for(MP_USER, None, phone=PHONE)
    reward_id = await reward(mp, cost=30, stock=5)
    request = {"reward_id": reward_id, "request_id": "req-concurrent-1"}
    results = await asyncio.gather(*(mp.post(token, "/redeem", request) for _ in range(4)))
    assert [r.status_code for r in results] == [200] * 4, [r.text for r in results]
    assert len({r.json()["code"] for r in results}) == 1
    assert sorted(r.json()["repeated"] for r in results) == [False, True, True, True]
    assert (await mp.get(token, "/me")).json()["balance"] == 70
    async with mp.services.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Redemption)) == 1


async def test_a_request_id_is_per_member(mp: MiniProgram) -> None:
    alice = await mp.member_for(MP_USER, None, phone=PHONE)
    bob = await mp.member_for(MP_OTHER, None, phone="13700002222")
    reward_id = await reward(mp, cost=30)
    request = {"reward_id": reward_id, "request_id": "same-request-id"}
    a = (await mp.post(alice, "/redeem", request)).json()
    b = (await mp.post(bob, "/redeem", request)).json()
    assert a["redemption_id"] != b["redemption_id"]
    assert (a["repeated"], b["repeated"]) == (False, False)


async def test_insufficient_points_is_409_with_the_chinese_text(mp: MiniProgram) -> None:
    token = await mp.member_for(MP_USER, None, phone=PHONE)
    reward_id = await reward(mp, name="大礼包", cost=180, stock=3)
    refused = await mp.post(token, "/redeem", {"reward_id": reward_id, "request_id": "req-too-dear"})
    assert refused.status_code == 409
    assert refused.json() == {"error": "insufficient_points",
                              "message": texts.insufficient_points.format(needed=180, balance=100, missing=80)}
    assert (await mp.get(token, "/me")).json()["balance"] == 100
    listed = (await mp.get(token, "/rewards")).json()
    assert listed[0]["in_stock"] is True  # the refused attempt took no stock
    assert await ledger_count(mp, "redeem") == 0


async def test_out_of_stock_is_409_and_takes_no_points(mp: MiniProgram) -> None:
    alice = await mp.member_for(MP_USER, None, phone=PHONE)
    bob = await mp.member_for(MP_OTHER, None, phone="13700002222")
    reward_id = await reward(mp, name="限量杯", cost=30, stock=1)
    assert (await mp.post(alice, "/redeem", {"reward_id": reward_id, "request_id": "req-alice-1"})).status_code == 200
    refused = await mp.post(bob, "/redeem", {"reward_id": reward_id, "request_id": "req-bob-1"})
    assert refused.status_code == 409
    assert refused.json() == {"error": "out_of_stock", "message": texts.out_of_stock.format(name="限量杯")}
    assert (await mp.get(bob, "/me")).json()["balance"] == 100


async def test_unknown_reward_is_404(mp: MiniProgram) -> None:
    token = await mp.member_for(MP_USER, None, phone=PHONE)
    refused = await mp.post(token, "/redeem", {"reward_id": 424242, "request_id": "req-unknown"})
    assert refused.status_code == 404
    assert refused.json() == {"error": "error_not_found", "message": texts.error_not_found}


@pytest.mark.parametrize("body", [
    {"reward_id": 1, "request_id": "short"},
    {"reward_id": 1, "request_id": "has spaces in it"},
    {"reward_id": 1, "request_id": "x" * 65},
    {"reward_id": "1", "request_id": "req-string-id"},
    {"reward_id": 1.5, "request_id": "req-float-id"},
    {"request_id": "req-no-reward"},
    {"reward_id": 1},
])
async def test_redeem_refuses_bad_input(mp: MiniProgram, body: dict[str, Any]) -> None:
    token = await mp.member_for(MP_USER, None, phone=PHONE)
    await reward(mp, cost=10)
    response = await mp.post(token, "/redeem", body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid"
    assert await ledger_count(mp, "redeem") == 0


async def test_coupons_list_only_live_coupons(mp: MiniProgram) -> None:
    token = await mp.member_for(MP_USER, None, phone=PHONE)
    assert (await mp.get(token, "/coupons")).json() == []
    short = await reward(mp, name="短券", cost=10, validity_days=1)
    long = await reward(mp, name="长券", cost=10, validity_days=30)
    for reward_id in (short, long):
        assert (await mp.post(token, "/redeem", {"reward_id": reward_id, "request_id": f"req-coupon-{reward_id}"})
                ).status_code == 200
    listed = (await mp.get(token, "/coupons")).json()
    assert [c["reward"] for c in listed] == ["短券", "长券"]  # soonest to expire first
    mp.clock.advance(days=3)
    assert [c["reward"] for c in (await mp.get(token, "/coupons")).json()] == ["长券"]


# --- campaigns ------------------------------------------------------------------------------------------
async def test_campaigns_list_and_join(mp: MiniProgram) -> None:
    token = await linked_member(mp)
    code = await campaign(mp, points=20, cap=10)
    listed = (await mp.get(token, "/campaigns")).json()
    assert [(c["code"], c["title"], c["kind"], c["points"], c["participants"], c["cap"]) for c in listed] == [
        (code, "周末加油", "join_bonus", 20, 0, 10)]
    joined = await mp.post(token, f"/campaigns/{code.lower()}/join")
    assert joined.status_code == 200, joined.text
    assert joined.json() == {"code": code, "participants": 1, "cap": 10, "points_now": 20}
    assert (await mp.get(token, "/me")).json()["balance"] == await balance_in_chat(mp) == 120
    twice = await mp.post(token, f"/campaigns/{code}/join")
    assert twice.status_code == 409
    assert twice.json() == {"error": "campaign_already_joined",
                            "message": texts.campaign_already_joined.format(title="周末加油")}
    assert "已经参加过" in await mp.oa.say(OA_USER, f"参加 {code}")  # the chat agrees
    assert await ledger_count(mp, "campaign") == 1


async def test_joining_in_the_chat_then_the_api_is_409(mp: MiniProgram) -> None:
    token = await linked_member(mp)
    code = await campaign(mp)
    await mp.oa.say(OA_USER, f"参加 {code}")
    refused = await mp.post(token, f"/campaigns/{code}/join")
    assert refused.status_code == 409
    assert refused.json()["error"] == "campaign_already_joined"


async def test_unknown_full_and_ended_campaigns_are_refused(mp: MiniProgram) -> None:
    alice = await mp.member_for(MP_USER, None, phone=PHONE)
    bob = await mp.member_for(MP_OTHER, None, phone="13700002222")
    unknown = await mp.post(alice, "/campaigns/ZZZZZ/join")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "campaign_unknown", "message": texts.campaign_unknown.format(code="ZZZZZ")}
    small = await campaign(mp, cap=1)
    assert (await mp.post(alice, f"/campaigns/{small}/join")).status_code == 200
    full = await mp.post(bob, f"/campaigns/{small}/join")
    assert full.status_code == 409
    assert full.json() == {"error": "campaign_full", "message": texts.campaign_full.format(title="周末加油", cap=1)}
    short = await campaign(mp, days=1)
    mp.clock.advance(days=2)
    assert short not in [c["code"] for c in (await mp.get(alice, "/campaigns")).json()]
    ended = await mp.post(alice, f"/campaigns/{short}/join")
    assert ended.status_code == 409
    assert ended.json()["error"] == "campaign_ended"
    assert (await mp.get(bob, "/me")).json()["balance"] == 100


async def test_campaign_code_longer_than_a_code_is_refused(mp: MiniProgram) -> None:
    token = await mp.member_for(MP_USER, None, phone=PHONE)
    response = await mp.post(token, "/campaigns/ABCDEFGHIJ/join")
    assert response.status_code in (404, 422)
    assert response.json()["error"] in ("campaign_unknown", "invalid")


# --- sign-up ---------------------------------------------------------------------------------------------
async def test_signup_with_a_phone_code_from_wechat(mp: MiniProgram) -> None:
    token = await mp.login(MP_USER, UNION)
    await mp.add_phone_code("phone-code-1", PHONE)
    response = await mp.post(token, "/signup", {"phone_code": "phone-code-1", "birthday": "1990-05-20",
                                                "consent": True})
    assert response.status_code == 200, response.text
    me = response.json()
    assert (me["is_member"], me["balance"]) == (True, 100)
    [call] = await mp.calls("/wxa/business/getuserphonenumber")
    assert call["body"] == {"code": "phone-code-1"}
    assert call["appid"] == mp.appid  # the Mini Program's access token, not the Official Account's
    member = await mp.member(mp_openid=MP_USER)
    assert member is not None
    assert member.phone_hash == mp.services.pii.lookup_hash(PHONE)
    assert member.phone_enc is not None
    assert PHONE not in member.phone_enc
    assert (member.birthday_month, member.birthday_day, member.birthday_year) == (5, 20, 1990)
    assert member.consent_at == mp.clock.now()
    assert PHONE not in response.text
    # the phone code is single-use
    reused = await mp.post(await mp.login(MP_OTHER, None), "/signup", {"phone_code": "phone-code-1", "consent": True})
    assert reused.status_code == 422
    assert reused.json()["error"] == "invalid_phone_code"


@pytest.mark.parametrize("typed", [PHONE, "+86 137-0000-1111", "0086 13700001111", "１３７００００１１１１"])
async def test_signup_with_a_typed_phone(mp: MiniProgram, typed: str) -> None:
    token = await mp.login(MP_USER, None)
    response = await mp.post(token, "/signup", {"phone": typed, "birthday": "5月20日", "consent": True})
    assert response.status_code == 200, response.text
    member = await mp.member(mp_openid=MP_USER)
    assert member is not None
    assert member.phone_hash == mp.services.pii.lookup_hash(PHONE)
    assert (member.birthday_month, member.birthday_day, member.birthday_year) == (5, 20, None)
    assert await mp.calls("/wxa/business/getuserphonenumber") == []


@pytest.mark.parametrize(("body", "error"), [
    ({"phone": PHONE, "consent": False}, "consent_required"),
    ({"phone": PHONE}, "invalid"),
    ({"phone": PHONE, "consent": "true"}, "invalid"),
    ({"phone": PHONE, "phone_code": "pc-1", "consent": True}, "invalid"),
    ({"consent": True}, "invalid"),
    ({"phone": PHONE, "birthday": "1990-13-45", "consent": True}, "invalid_birthday"),
    ({"phone": PHONE, "birthday": "2099-01-01", "consent": True}, "invalid_birthday"),
    ({"phone": PHONE, "birthday": "yesterday", "consent": True}, "invalid_birthday"),
    ({"phone": "12345678901", "consent": True}, "invalid_phone"),
    ({"phone": "1370000111", "consent": True}, "invalid"),
    ({"phone_code": "never-issued", "consent": True}, "invalid_phone_code"),
])
async def test_signup_refuses_bad_input(mp: MiniProgram, body: dict[str, Any], error: str) -> None:
    token = await mp.login(MP_USER, None)
    response = await mp.post(token, "/signup", body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == error
    assert response.json()["message"]
    member = await mp.member(mp_openid=MP_USER)
    assert member is not None
    assert member.joined_at is None
    assert await ledger_count(mp, "signup") == 0


async def test_signup_with_a_phone_bound_to_another_member_is_409(mp: MiniProgram) -> None:
    await sign_up(mp.oa, OA_USER, phone=PHONE)  # somebody else, in the chat
    token = await mp.login(MP_USER, None)
    response = await mp.post(token, "/signup", {"phone": PHONE, "consent": True})
    assert response.status_code == 409
    assert response.json() == {"error": "phone_taken", "message": texts.phone_taken}
    assert (await mp.get(token, "/me")).status_code == 403


async def test_signup_twice_is_409(mp: MiniProgram) -> None:
    token = await mp.member_for(MP_USER, None, phone=PHONE)
    again = await mp.post(token, "/signup", {"phone": "13700002222", "consent": True})
    assert again.status_code == 409
    assert again.json() == {"error": "already_member", "message": texts.already_member}
    assert await ledger_count(mp, "signup") == 1


async def test_signup_of_a_follower_already_member_in_the_chat_is_409(mp: MiniProgram) -> None:
    token = await linked_member(mp)
    again = await mp.post(token, "/signup", {"phone": PHONE, "consent": True})
    assert again.status_code == 409
    assert again.json()["error"] == "already_member"


async def test_signup_then_the_follower_writes_and_sees_the_balance(mp: MiniProgram) -> None:
    """The issue's whole journey through the API, ending in the Official Account chat."""
    token = await mp.login(MP_USER, UNION)
    await mp.add_phone_code("phone-code-2", PHONE)
    assert (await mp.post(token, "/signup", {"phone_code": "phone-code-2", "consent": True})).status_code == 200
    assert (await mp.post(token, "/checkin")).status_code == 200
    reward_id = await reward(mp, name="咖啡券", cost=50)
    redeemed = await mp.post(token, "/redeem", {"reward_id": reward_id, "request_id": "journey-redeem-1"})
    assert redeemed.status_code == 200
    code = await campaign(mp, points=20)
    assert (await mp.post(token, f"/campaigns/{code}/join")).status_code == 200
    balance = (await mp.get(token, "/me")).json()["balance"]
    assert balance == 100 + 5 - 50 + 20
    await mp.add_follower(OA_USER, UNION)
    await mp.oa.say(OA_USER, "你好")
    await mp.pipeline.drain()
    assert await balance_in_chat(mp) == balance
    assert redeemed.json()["code"] in await mp.oa.say(OA_USER, "我的券")


# --- members only ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/me", None),
    ("POST", "/checkin", None),
    ("GET", "/history", None),
    ("GET", "/rewards", None),
    ("POST", "/redeem", {"reward_id": 1, "request_id": "req-visitor"}),
    ("GET", "/coupons", None),
    ("POST", "/campaigns/ABCDE/join", None),
])
async def test_a_visitor_is_403_not_member(mp: MiniProgram, method: str, path: str, body: Any) -> None:
    token = await mp.login(MP_USER, None)
    response = await mp.client.request(method, f"/api/mp{path}", headers=auth(token), json=body)
    assert response.status_code == 403
    assert response.json() == {"error": "not_member", "message": texts.JOIN_FIRST.format(bonus=100)}
    assert await ledger_count(mp, "checkin") == 0
