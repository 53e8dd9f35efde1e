"""POST /api/mp/login against the fake WeChat API: code2session, our own session token (the
session_key stays on the server), one member behind both doors when the unionid matches whichever
door came first, logout, and the per-member rate limit."""

from __future__ import annotations

import hashlib

import pytest

from bot.api.miniprogram import RATE_PER_MINUTE, SESSION_TTL
from handlers import texts
from tests.support.member_support import sign_up
from tests.support.mp_support import MiniProgram, auth

MP_USER = "oMPuser000000000000000000001"
OA_USER = "oOAfollower000000000000001"
UNION = "uUNION00000000000000000001"
SESSION_KEY = "c2Vzc2lvbktleVNFQ1JFVDE2Yg=="


async def exchange(mp: MiniProgram, code: str) -> tuple[int, dict[str, object]]:
    response = await mp.client.post("/api/mp/login", json={"code": code})
    return response.status_code, response.json()


# --- new and returning users -----------------------------------------------------------------------------
async def test_new_user_gets_a_token_and_is_not_a_member_yet(mp: MiniProgram) -> None:
    await mp.add_code("code-new", MP_USER, UNION)
    status, body = await exchange(mp, "code-new")
    assert status == 200
    assert set(body) == {"token", "expires_in", "is_member"}
    assert body["expires_in"] == SESSION_TTL == 7 * 24 * 3600
    assert body["is_member"] is False
    token = str(body["token"])
    assert len(token) >= 32
    [member] = await mp.members()
    assert (member.mp_openid, member.openid, member.unionid, member.joined_at) == (MP_USER, None, UNION, None)
    # the session lives in the KV for 7 days, keyed by a hash of the token
    key = "wxbot:mpsess:" + hashlib.sha256(token.encode()).hexdigest()
    ttl = await mp.services.kv.ttl(key)
    assert ttl is not None
    assert SESSION_TTL - 60 < ttl <= SESSION_TTL
    me = await mp.get(token, "/me")
    assert me.status_code == 403
    assert me.json() == {"error": "not_member", "message": texts.JOIN_FIRST.format(bonus=100)}
    [call] = await mp.calls("/sns/jscode2session")
    assert call["query"]["js_code"] == "code-new"
    assert call["query"]["grant_type"] == "authorization_code"


async def test_returning_user_lands_on_the_same_member(mp: MiniProgram) -> None:
    first = await mp.login(MP_USER, UNION)
    joined = await mp.signup(first, "13700003333")
    mp.clock.advance(days=3)
    second = await mp.login(MP_USER, UNION)
    assert second != first
    status, body = await exchange(mp, (await mp.add_code("code-third", MP_USER, UNION))["code"])
    assert status == 200
    assert body["is_member"] is True
    [member] = await mp.members()
    assert member.id == joined["member_id"]
    for token in (first, second, str(body["token"])):  # every session of the user stays valid
        me = await mp.get(token, "/me")
        assert me.status_code == 200
        assert me.json()["member_id"] == member.id


async def test_a_code_works_once(mp: MiniProgram) -> None:
    await mp.add_code("code-once", MP_USER, None)
    assert (await exchange(mp, "code-once"))[0] == 200
    status, body = await exchange(mp, "code-once")
    assert status == 401
    assert body["error"] == "invalid_code"


async def test_an_expired_code_is_refused(mp: MiniProgram) -> None:
    await mp.add_code("code-late", MP_USER, None)
    mp.clock.advance(minutes=5, seconds=1)
    status, body = await exchange(mp, "code-late")
    assert (status, body["error"]) == (401, "invalid_code")
    assert await mp.members() == []


# --- unionid linking ----------------------------------------------------------------------------------
async def test_oa_follower_first_then_mini_program_login_lands_on_the_same_member(mp: MiniProgram) -> None:
    await mp.add_follower(OA_USER, UNION)
    await sign_up(mp.oa, OA_USER, phone="13700004444")
    await mp.pipeline.drain()  # the follower's unionid is learned through user/info, off the reply path
    follower = await mp.member(openid=OA_USER)
    assert follower is not None
    assert follower.unionid == UNION
    assert [c["query"]["openid"] for c in await mp.calls("/cgi-bin/user/info")] == [OA_USER]

    await mp.add_code("code-link", MP_USER, UNION)
    status, body = await exchange(mp, "code-link")
    assert status == 200
    assert body["is_member"] is True  # the membership from the chat
    token = str(body["token"])
    me = (await mp.get(token, "/me")).json()
    assert me["member_id"] == follower.id
    linked = await mp.member(mp_openid=MP_USER)
    assert linked is not None
    assert (linked.id, linked.openid, linked.unionid) == (follower.id, OA_USER, UNION)
    assert f"您的积分：{me['balance']}" in await mp.oa.say(OA_USER, "积分")
    # a check-in through the API counts for the chat too
    assert (await mp.post(token, "/checkin")).status_code == 200
    assert "今天已经签过到啦" in await mp.oa.say(OA_USER, "签到")


async def test_oa_visitor_first_then_mini_program_login_shares_one_row(mp: MiniProgram) -> None:
    await mp.add_follower(OA_USER, UNION)
    assert await mp.oa.say(OA_USER, "帮助") == texts.HELP_VISITOR
    await mp.pipeline.drain()
    follower = await mp.member(openid=OA_USER)
    assert follower is not None
    token = await mp.login(MP_USER, UNION)
    linked = await mp.member(mp_openid=MP_USER)
    assert linked is not None
    assert linked.id == follower.id
    await mp.signup(token, "13700005555")
    assert "您的积分：100" in await mp.oa.say(OA_USER, "积分")


async def test_mini_program_first_then_oa_follower_ends_up_on_the_mp_member(mp: MiniProgram) -> None:
    token = await mp.login(MP_USER, UNION)
    joined = await mp.signup(token, "13700006666")
    checked = await mp.post(token, "/checkin")
    assert checked.status_code == 200
    balance = checked.json()["balance"]
    assert balance == 105

    await mp.add_follower(OA_USER, UNION)
    await mp.oa.say(OA_USER, "你好")  # first contact: user/info in the background
    await mp.pipeline.drain()
    member = await mp.member(openid=OA_USER)
    assert member is not None
    assert (member.id, member.mp_openid, member.unionid) == (joined["member_id"], MP_USER, UNION)
    assert f"您的积分：{balance}" in await mp.oa.say(OA_USER, "积分")
    assert "今天已经签过到啦" in await mp.oa.say(OA_USER, "签到")
    assert (await mp.get(token, "/me")).json()["balance"] == balance
    # one membership: the follower's visitor row handed its door over and holds nothing
    assert [m.id for m in await mp.members() if m.joined_at is not None] == [joined["member_id"]]


async def test_mini_program_user_without_unionid_stays_mini_program_only(mp: MiniProgram) -> None:
    token = await mp.login(MP_USER, None)
    await mp.signup(token, "13700007777")
    await mp.add_follower(OA_USER, UNION)  # the follower has a unionid, the Mini Program user none
    await mp.oa.say(OA_USER, "你好")
    await mp.pipeline.drain()
    mp_member = await mp.member(mp_openid=MP_USER)
    oa_member = await mp.member(openid=OA_USER)
    assert mp_member is not None
    assert oa_member is not None
    assert mp_member.id != oa_member.id
    assert (mp_member.openid, mp_member.unionid) == (None, None)
    assert oa_member.unionid == UNION
    assert await mp.oa.say(OA_USER, "积分") == texts.JOIN_FIRST.format(bonus=100)


async def test_different_unionids_stay_apart(mp: MiniProgram) -> None:
    await mp.add_follower(OA_USER, "uSOMEBODYELSE0000000000001")
    await mp.oa.say(OA_USER, "你好")
    await mp.pipeline.drain()
    await mp.login(MP_USER, UNION)
    mp_member = await mp.member(mp_openid=MP_USER)
    assert mp_member is not None
    assert mp_member.openid is None


# --- refusals ---------------------------------------------------------------------------------------------
async def test_invalid_code_is_401_with_a_clear_message(mp: MiniProgram) -> None:
    status, body = await exchange(mp, "never-issued")
    assert status == 401
    assert body["error"] == "invalid_code"
    message = str(body["message"])
    assert "40029" in message
    assert "wx.login" in message
    assert await mp.members() == []


@pytest.mark.parametrize("errcode", [40029, 40163, 45011, 40226])
async def test_codes_wechat_refuses_are_401(mp: MiniProgram, errcode: int) -> None:
    await mp.add_code("code-refused", MP_USER, None)
    script = await mp.fake.post("/_fake/script", json={"path": "/sns/jscode2session", "errcodes": [errcode]})
    script.raise_for_status()
    status, body = await exchange(mp, "code-refused")
    assert (status, body["error"]) == (401, "invalid_code")
    assert str(errcode) in str(body["message"])


async def test_wechat_busy_is_503_and_the_code_still_works(mp: MiniProgram) -> None:
    await mp.add_code("code-busy", MP_USER, None)
    await mp.fake.post("/_fake/script", json={"path": "/sns/jscode2session", "errcodes": [-1]})
    status, body = await exchange(mp, "code-busy")
    assert (status, body["error"]) == (503, "wechat_unavailable")
    assert (await exchange(mp, "code-busy"))[0] == 200


@pytest.mark.parametrize("payload", [{}, {"code": ""}, {"code": 123}, {"code": "x" * 129}, None])
async def test_login_without_a_usable_code_is_422(mp: MiniProgram, payload: object) -> None:
    response = await mp.client.post("/api/mp/login", json=payload)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid"
    assert await mp.calls("/sns/jscode2session") == []


async def test_the_session_key_never_leaves_the_server(mp: MiniProgram) -> None:
    await mp.fake.post("/_fake/codes", json={"code": "code-key", "openid": MP_USER, "unionid": UNION,
                                             "session_key": SESSION_KEY})
    login = await mp.client.post("/api/mp/login", json={"code": "code-key"})
    token = login.json()["token"]
    responses = [login]
    responses.append(await mp.get(token, "/me"))
    responses.append(await mp.client.post("/api/mp/signup", headers=auth(token),
                                          json={"phone": "13700008888", "consent": True}))
    for path in ("/me", "/history", "/rewards", "/coupons", "/campaigns"):
        responses.append(await mp.get(token, path))
    responses.append(await mp.post(token, "/checkin"))
    responses.append(await mp.post(token, "/checkin"))
    responses.append(await mp.post(token, "/redeem", {"reward_id": 999, "request_id": "req-000001"}))
    responses.append(await mp.client.delete("/api/mp/session", headers=auth(token)))
    responses.append(await mp.get(token, "/me"))
    for response in responses:
        assert SESSION_KEY not in response.text
        assert SESSION_KEY not in str(response.headers)
    # stored encrypted, under a hash of the token
    stored = [await mp.services.kv.get(k) async for k in mp.services.kv.redis.scan_iter("wxbot:mpsess:*")]
    assert stored == []  # logged out above
    other = await mp.fake.post("/_fake/codes", json={"code": "code-key2", "openid": MP_USER, "unionid": UNION,
                                                     "session_key": SESSION_KEY})
    other.raise_for_status()
    token2 = (await mp.client.post("/api/mp/login", json={"code": "code-key2"})).json()["token"]
    keys = [k async for k in mp.services.kv.redis.scan_iter("wxbot:mpsess:*")]
    assert len(keys) == 1
    raw = await mp.services.kv.get(keys[0])
    assert raw is not None
    assert SESSION_KEY not in raw
    assert token2 not in raw
    assert token2 not in keys[0]


# --- logout and tokens ------------------------------------------------------------------------------------
async def test_logout_revokes_only_that_token(mp: MiniProgram) -> None:
    token = await mp.member_for(MP_USER, UNION, phone="13700009999")
    other = await mp.login(MP_USER, UNION)  # the same user on a second device
    bye = await mp.client.delete("/api/mp/session", headers=auth(token))
    assert bye.status_code == 200
    assert bye.json() == {"revoked": True}
    after = await mp.get(token, "/me")
    assert after.status_code == 401
    assert after.json()["error"] == "session_expired"
    assert (await mp.client.delete("/api/mp/session", headers=auth(token))).status_code == 401
    assert (await mp.get(other, "/me")).status_code == 200


@pytest.mark.parametrize(("header", "error"), [
    (None, "unauthorized"),
    ("", "unauthorized"),
    ("Bearer", "unauthorized"),
    ("Bearer ", "unauthorized"),
    ("Basic dXNlcjpwYXNz", "unauthorized"),
    ("Bearer not-a-token-we-issued", "session_expired"),
    ("Bearer " + "A" * 4000, "session_expired"),
])
async def test_missing_or_garbage_token_is_401(mp: MiniProgram, header: str | None, error: str) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, path in (("GET", "/me"), ("POST", "/checkin"), ("GET", "/history"), ("DELETE", "/session"),
                         ("POST", "/campaigns/ABCDE/join")):
        response = await mp.client.request(method, f"/api/mp{path}", headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        body = response.json()
        assert body["error"] == error
        assert body["message"]


async def test_bearer_scheme_is_case_insensitive(mp: MiniProgram) -> None:
    token = await mp.login(MP_USER, None)
    response = await mp.client.get("/api/mp/coupons", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 403  # past the token: not a member yet


# --- rate limit -----------------------------------------------------------------------------------------
async def test_the_61st_request_within_a_minute_is_429(mp: MiniProgram) -> None:
    token = await mp.member_for(MP_USER, None, phone="13700001234")  # sign-up is request 1
    neighbour = await mp.login("oMPuser000000000000000000002", None)
    for i in range(RATE_PER_MINUTE - 1):
        assert (await mp.get(token, "/me")).status_code == 200, i
    limited = await mp.get(token, "/me")
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert (await mp.post(token, "/checkin")).status_code == 429  # every endpoint shares the count
    assert (await mp.get(neighbour, "/campaigns")).status_code == 200  # another member is not slowed
    mp.clock.advance(minutes=1)
    assert (await mp.get(token, "/me")).status_code == 200
