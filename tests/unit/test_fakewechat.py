"""The fake WeChat API: token rules, access_token checks, scripted answers, recorded calls, one-time
codes, QR validation, slow answers and the `wxbot fake-wechat` subcommand."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bot.cli import main
from devtools.fakewechat import (
    CODE_TTL,
    STABLE_ROTATE_BEFORE,
    TOKEN_TTL,
    create_fake_wechat,
    derived_openid,
    derived_unionid,
    fake_of,
)

APPID = "wx0000000000000001"
SECRET = "s3cret"
CUSTOM = "/cgi-bin/message/custom/send"
TEXT = {"touser": "oUSER0001", "msgtype": "text", "text": {"content": "hi"}}


class ManualClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def app(manual_clock: ManualClock) -> FastAPI:
    return create_fake_wechat(clock=manual_clock)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        yield client


async def stable(client: httpx.AsyncClient, *, force: bool = False, appid: str = APPID) -> dict[str, Any]:
    body = {"grant_type": "client_credential", "appid": appid, "secret": SECRET, "force_refresh": force}
    return (await client.post("/cgi-bin/stable_token", json=body)).json()


async def plain(client: httpx.AsyncClient) -> dict[str, Any]:
    params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    return (await client.get("/cgi-bin/token", params=params)).json()


async def send(client: httpx.AsyncClient, token: str, body: Any = None, path: str = CUSTOM) -> dict[str, Any]:
    response = await client.post(path, params={"access_token": token}, json=TEXT if body is None else body)
    assert response.status_code == 200
    return response.json()


async def token_for(client: httpx.AsyncClient) -> str:
    return str((await stable(client))["access_token"])


# --- tokens --------------------------------------------------------------------------------------------


async def test_stable_token_is_reused_until_force_refresh(client: httpx.AsyncClient) -> None:
    first = await stable(client)
    assert first["expires_in"] == TOKEN_TTL
    assert len(first["access_token"]) > 100
    assert (await stable(client))["access_token"] == first["access_token"]
    refreshed = await stable(client, force=True)
    assert refreshed["access_token"] != first["access_token"]
    assert (await send(client, first["access_token"]))["errcode"] == 40001
    assert (await send(client, refreshed["access_token"])) == {"errcode": 0, "errmsg": "ok"}


async def test_stable_tokens_are_per_appid(client: httpx.AsyncClient) -> None:
    one, other = await stable(client), await stable(client, appid="wx0000000000000002")
    assert one["access_token"] != other["access_token"]
    assert (await send(client, one["access_token"]))["errcode"] == 0


async def test_stable_token_rotates_before_expiry_and_old_one_lives_on(
    client: httpx.AsyncClient, manual_clock: ManualClock
) -> None:
    first = await stable(client)
    manual_clock.now += TOKEN_TTL - STABLE_ROTATE_BEFORE - 100
    assert (await stable(client)) == {"access_token": first["access_token"], "expires_in": 400}
    manual_clock.now += 101
    rotated = await stable(client)
    assert rotated["access_token"] != first["access_token"]
    assert (await send(client, first["access_token"]))["errcode"] == 0
    manual_clock.now += STABLE_ROTATE_BEFORE
    assert (await send(client, first["access_token"]))["errcode"] == 42001
    assert (await send(client, rotated["access_token"]))["errcode"] == 0


async def test_cgi_bin_token_rotates_on_every_call(client: httpx.AsyncClient) -> None:
    first, second = await plain(client), await plain(client)
    assert first["access_token"] != second["access_token"]
    assert (await send(client, first["access_token"]))["errcode"] == 40001
    assert (await send(client, second["access_token"]))["errcode"] == 0
    # the two token APIs are independent
    stable_token = await token_for(client)
    await plain(client)
    assert (await send(client, stable_token))["errcode"] == 0


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"grant_type": "password", "appid": APPID, "secret": SECRET}, 40002),
        ({"grant_type": "client_credential", "appid": "", "secret": SECRET}, 40013),
        ({"grant_type": "client_credential", "appid": APPID}, 40125),
    ],
)
async def test_stable_token_validates_credentials(
    client: httpx.AsyncClient, body: dict[str, Any], errcode: int
) -> None:
    response = await client.post("/cgi-bin/stable_token", json=body)
    assert response.status_code == 200
    assert response.json()["errcode"] == errcode


async def test_stable_token_needs_a_json_body(client: httpx.AsyncClient) -> None:
    assert (await client.post("/cgi-bin/stable_token")).json()["errcode"] == 44002
    assert (await client.post("/cgi-bin/stable_token", content=b"appid=x")).json()["errcode"] == 47001


async def test_unknown_missing_and_expired_tokens(
    client: httpx.AsyncClient, manual_clock: ManualClock
) -> None:
    assert (await send(client, "not-a-token"))["errcode"] == 40001
    assert (await client.post(CUSTOM, json=TEXT)).json()["errcode"] == 41001
    token = await token_for(client)
    manual_clock.now += TOKEN_TTL
    assert (await send(client, token))["errcode"] == 42001
    assert (await stable(client))["access_token"] != token


async def test_expire_tokens(client: httpx.AsyncClient) -> None:
    token = await token_for(client)
    answer = (await client.post("/_fake/expire_tokens")).json()
    assert answer == {"ok": True, "errcode": 42001, "tokens": 1}
    assert (await send(client, token))["errcode"] == 42001
    fresh = await token_for(client)
    assert fresh != token
    await client.post("/_fake/expire_tokens", json={"errcode": 40001})
    assert (await send(client, fresh))["errcode"] == 40001


# --- scripted answers and recording ------------------------------------------------------------------


async def test_scripted_errors_come_in_order_then_normal_answers(client: httpx.AsyncClient) -> None:
    token = await token_for(client)
    scripted = await client.post("/_fake/script", json={"path": CUSTOM, "errcodes": [45015, 0, 45047, -1]})
    assert scripted.json() == {"ok": True, "path": CUSTOM, "pending": [45015, 0, 45047, -1]}
    codes = [(await send(client, token))["errcode"] for _ in range(5)]
    assert codes == [45015, 0, 45047, -1, 0]
    # other paths are unaffected
    template = {"touser": "oUSER0001", "template_id": "TPL1", "data": {"thing1": {"value": "x"}}}
    assert (await send(client, token, template, "/cgi-bin/message/template/send"))["errcode"] == 0


@pytest.mark.parametrize("errcode", [40001, 42001, 45015, 45047, 45009, 45011, 43101, 47003, 40003, -1])
async def test_every_supported_code_can_be_scripted(client: httpx.AsyncClient, errcode: int) -> None:
    token = await token_for(client)
    path = "/cgi-bin/message/subscribe/send"
    await client.post("/_fake/script", json={"path": path, "errcodes": [errcode]})
    body = {"touser": "oMP1", "template_id": "TPL", "data": {"thing1": {"value": "x"}}}
    answer = await send(client, token, body, path)
    assert answer["errcode"] == errcode
    assert answer["errmsg"]


async def test_scripted_40001_kills_the_token_so_the_caller_must_refresh(client: httpx.AsyncClient) -> None:
    token = await token_for(client)
    await client.post("/_fake/script", json={"path": CUSTOM, "errcodes": [40001]})
    assert (await send(client, token))["errcode"] == 40001
    assert (await send(client, token))["errcode"] == 40001  # still dead: a retry without refresh fails
    fresh = await token_for(client)  # normal mode issues a new one, the old is no longer valid
    assert fresh != token
    assert (await send(client, fresh))["errcode"] == 0


async def test_an_invalid_token_does_not_use_up_the_script(client: httpx.AsyncClient) -> None:
    await client.post("/_fake/script", json={"path": CUSTOM, "errcodes": [45015]})
    assert (await send(client, "bogus"))["errcode"] == 40001
    assert (await send(client, await token_for(client)))["errcode"] == 45015


async def test_script_rejects_unknown_paths(client: httpx.AsyncClient) -> None:
    response = await client.post("/_fake/script", json={"path": "/cgi-bin/nope", "errcodes": [0]})
    assert response.status_code == 400


async def test_calls_are_recorded_without_the_token(
    app: FastAPI, client: httpx.AsyncClient, manual_clock: ManualClock
) -> None:
    token = await token_for(client)
    await client.post("/_fake/script", json={"path": CUSTOM, "errcodes": [45047]})
    manual_clock.now += 5
    await send(client, token)
    await client.post(CUSTOM, params={"access_token": token, "extra": "1"}, json=TEXT)
    await send(client, "bogus")

    calls = (await client.get("/_fake/calls", params={"path": CUSTOM})).json()
    assert [call["errcode"] for call in calls] == [45047, 0, 40001]
    first, second, third = calls
    assert first["method"] == "POST"
    assert first["query"] == {}
    assert second["query"] == {"extra": "1"}
    assert first["body"] == TEXT
    assert first["time"] == manual_clock.now
    assert first["appid"] == APPID
    assert third["appid"] is None
    assert first["response"] == {"errcode": 45047, "errmsg": "out of response count limit"}
    assert len((await client.get("/_fake/calls")).json()) == 4  # plus the stable_token call
    assert fake_of(app).calls[-1] == third


async def test_reset_forgets_everything(client: httpx.AsyncClient) -> None:
    token = await token_for(client)
    await client.post("/_fake/script", json={"path": CUSTOM, "errcodes": [45015]})
    assert (await client.post("/_fake/reset")).json() == {"ok": True}
    assert (await client.get("/_fake/calls")).json() == []
    assert (await send(client, token))["errcode"] == 40001
    assert (await send(client, await token_for(client)))["errcode"] == 0


async def test_apps_do_not_share_state() -> None:
    one, two = create_fake_wechat(), create_fake_wechat()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=one), base_url="http://one") as client:
        token = await token_for(client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=two), base_url="http://two") as client:
        assert (await send(client, token))["errcode"] == 40001
    assert len(fake_of(one).calls) == 1
    assert len(fake_of(two).calls) == 1


# --- sends ---------------------------------------------------------------------------------------------


async def test_template_and_subscribe_sends_return_increasing_msgids(client: httpx.AsyncClient) -> None:
    token = await token_for(client)
    body = {"touser": "oUSER0001", "template_id": "TPL1", "data": {"thing1": {"value": "Order 8841"}}}
    first = await send(client, token, body, "/cgi-bin/message/template/send")
    second = await send(client, token, body, "/cgi-bin/message/subscribe/send")
    assert first["errcode"] == 0
    assert first["msgid"] > 0
    assert second["msgid"] == first["msgid"] + 1


@pytest.mark.parametrize(
    ("path", "body", "errcode"),
    [
        (CUSTOM, {"msgtype": "text", "text": {"content": "x"}}, 40003),
        (CUSTOM, {"touser": "o1", "text": {"content": "x"}}, 40008),
        (CUSTOM, {"touser": "o1", "msgtype": "text"}, 47001),
        ("/cgi-bin/message/template/send", {"touser": "o1", "data": {"a": {"value": "x"}}}, 40037),
        ("/cgi-bin/message/template/send", {"touser": "o1", "template_id": "T", "data": {"a": 1}}, 47003),
        (
            "/cgi-bin/message/subscribe/send",
            {"touser": "o1", "template_id": "T", "data": {"thing1": {"value": "x" * 21}}},
            47003,
        ),
    ],
)
async def test_send_validation(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], errcode: int
) -> None:
    assert (await send(client, await token_for(client), body, path))["errcode"] == errcode


async def test_47003_names_the_field(client: httpx.AsyncClient) -> None:
    body = {"touser": "o1", "template_id": "T", "data": {"thing1": {"value": "x" * 21}}}
    answer = await send(client, await token_for(client), body, "/cgi-bin/message/subscribe/send")
    assert "data.thing1.value" in answer["errmsg"]


# --- QR codes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expire"),
    [
        ({"expire_seconds": 604800, "action_name": "QR_STR_SCENE",
          "action_info": {"scene": {"scene_str": "store_0042"}}}, 604800),
        ({"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 123}}}, 60),
        ({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100000}}}, None),
        ({"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "s" * 64}}}, None),
    ],
)
async def test_qrcode_create(client: httpx.AsyncClient, body: dict[str, Any], expire: int | None) -> None:
    answer = await send(client, await token_for(client), body, "/cgi-bin/qrcode/create")
    assert answer["ticket"]
    assert answer["url"].startswith("http://weixin.qq.com/q/")
    assert answer.get("expire_seconds") == expire


@pytest.mark.parametrize(
    "body",
    [
        {"action_name": "QR_FOREVER", "action_info": {"scene": {"scene_id": 1}}},
        {"action_name": "QR_SCENE"},
        {"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 0}}},
        {"action_name": "QR_SCENE", "action_info": {"scene": {"scene_str": "abc"}}},
        {"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 1}}, "expire_seconds": 2_592_001},
        {"action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": ""}}},
        {"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100001}}},
        {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "s" * 65}}},
    ],
)
async def test_qrcode_create_rejects_bad_requests(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await send(client, await token_for(client), body, "/cgi-bin/qrcode/create")
    assert answer["errcode"] == 40097


# --- Mini Program login and phone numbers ----------------------------------------------------------------


async def code2session(client: httpx.AsyncClient, code: str) -> dict[str, Any]:
    params = {"appid": APPID, "secret": SECRET, "js_code": code, "grant_type": "authorization_code"}
    return (await client.get("/sns/jscode2session", params=params)).json()


async def test_code2session_with_a_registered_code(client: httpx.AsyncClient) -> None:
    registered = await client.post("/_fake/codes", json={"code": "c1", "openid": "oMP1", "unionid": "uU1"})
    assert registered.json()["openid"] == "oMP1"
    answer = await code2session(client, "c1")
    assert (answer["openid"], answer["unionid"]) == ("oMP1", "uU1")
    assert answer["session_key"]
    assert (await code2session(client, "c1"))["errcode"] == 40029  # single use
    assert (await code2session(client, "never-registered"))["errcode"] == 40029


async def test_code2session_derives_ids_and_honours_a_null_unionid(client: httpx.AsyncClient) -> None:
    await client.post("/_fake/codes", json={"code": "c2"})
    await client.post("/_fake/codes", json={"code": "c3", "unionid": None})
    derived = await code2session(client, "c2")
    assert derived["openid"] == derived_openid("c2")
    assert derived["unionid"] == derived_unionid("c2")
    assert "unionid" not in await code2session(client, "c3")


async def test_code2session_codes_expire_and_parameters_are_checked(
    client: httpx.AsyncClient, manual_clock: ManualClock
) -> None:
    await client.post("/_fake/codes", json={"code": "late"})
    manual_clock.now += CODE_TTL
    assert (await code2session(client, "late"))["errcode"] == 40029
    params = {"appid": APPID, "secret": SECRET, "js_code": "x", "grant_type": "client_credential"}
    assert (await client.get("/sns/jscode2session", params=params)).json()["errcode"] == 40002


async def test_scripted_code2session_error_keeps_the_code(client: httpx.AsyncClient) -> None:
    await client.post("/_fake/codes", json={"code": "c4", "openid": "oMP4"})
    await client.post("/_fake/script", json={"path": "/sns/jscode2session", "errcodes": [-1]})
    assert (await code2session(client, "c4"))["errcode"] == -1
    assert (await code2session(client, "c4"))["openid"] == "oMP4"


async def test_phone_number(client: httpx.AsyncClient) -> None:
    token = await token_for(client)
    path = "/wxa/business/getuserphonenumber"
    await client.post("/_fake/phone_codes", json={"code": "p1", "phone": "13800000000"})
    answer = await send(client, token, {"code": "p1"}, path)
    assert answer["errcode"] == 0
    info = answer["phone_info"]
    assert (info["phoneNumber"], info["purePhoneNumber"], info["countryCode"]) == (
        "13800000000", "13800000000", "86"
    )
    assert info["watermark"]["appid"] == APPID
    assert (await send(client, token, {"code": "p1"}, path))["errcode"] == 40029
    assert (await send(client, token, {"code": "nope"}, path))["errcode"] == 40029
    assert (await send(client, "bogus", {"code": "p1"}, path))["errcode"] == 40001


# --- slow answers --------------------------------------------------------------------------------------


async def test_slow_answers(client: httpx.AsyncClient) -> None:
    token = await token_for(client)
    answer = await client.post("/_fake/slow", json={"path": CUSTOM, "seconds": 0.2})
    assert answer.json() == {"ok": True, "path": CUSTOM, "seconds": 0.2}
    started = time.perf_counter()
    assert (await send(client, token))["errcode"] == 0
    assert time.perf_counter() - started >= 0.2
    started = time.perf_counter()
    await token_for(client)  # other paths answer at once
    assert time.perf_counter() - started < 0.2
    await client.post("/_fake/slow", json={"path": CUSTOM, "seconds": 0})
    started = time.perf_counter()
    await send(client, token)
    assert time.perf_counter() - started < 0.2


# --- CLI -----------------------------------------------------------------------------------------------


def test_cli_fake_wechat_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["fake-wechat", "--help"])
    assert exited.value.code == 0
    assert "--port" in capsys.readouterr().out
