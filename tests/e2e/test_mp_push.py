"""The Mini Program message push, GET|POST /miniprogram/push: verification, JSON and XML bodies in
plaintext and safe mode (the official worked example of wechat-protocol.md §3.5 A byte for byte),
the subscribe-message events with the `List` as an object or an array, the customer-service session
and text messages (answered `success`, the replies queued as customer-service messages), and
exactly-once handling of WeChat's retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from bot.crypto import sha1_signature
from handlers import texts
from storage import cswindow, outbox
from storage.clock import FrozenClock
from tests.support import vectors
from tests.support.mp_support import PUSH, MiniProgram, custom_text, mini_program

MODES = [pytest.param(False, id="plaintext"), pytest.param(True, id="safe")]
FORMATS = ["json", "xml"]
USER = "oMPuser000000000000000000001"
TPL_EXPIRY = "TPL_points_expiry_01"
TPL_ORDER = "TPL_order_status_02"
TPL_BIRTHDAY = "TPL_birthday_03"


@pytest.fixture
async def official(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[MiniProgram]:
    """Configured as the official message-push example: token AAAAA, key 43 × A, its appid, and no
    signature age check (the example's timestamps are from 2024)."""
    async with mini_program(urls, clock, token=vectors.A_TOKEN, appid=vectors.A_APPID, aes_key=vectors.A_AES_KEY,
                            signature_max_age=0) as world:
        yield world


def popup(mp: MiniProgram, items: object, *, fmt: str = "json", **extra: object) -> dict[str, object]:
    """subscribe_msg_popup_event: `List` at the top in JSON, under the wrapper in XML."""
    if fmt == "xml":
        return mp.event(USER, "subscribe_msg_popup_event", SubscribeMsgPopupEvent={"List": items}, **extra)
    return mp.event(USER, "subscribe_msg_popup_event", List=items, **extra)


# --- verification ---------------------------------------------------------------------------------------
async def test_get_verification_echoes_echostr_for_the_official_example(official: MiniProgram) -> None:
    params = {"signature": "f464b24fc39322e44b38aa78f5edd27bd1441696", "timestamp": "1714036504",
              "nonce": "1514711492", "echostr": "4375120948345356249"}
    response = await official.client.get(PUSH, params=params)
    assert response.status_code == 200
    assert response.text == "4375120948345356249"  # exactly echostr: no quotes, no XML
    bad = await official.client.get(PUSH, params={**params, "signature": "f464b24fc39322e44b38aa78f5edd27bd1441697"})
    assert bad.status_code == 403
    assert "4375120948345356249" not in bad.text
    # the Official Account door has its own token: the Mini Program's signature does not open it
    assert (await official.client.get("/wechat", params=params)).status_code == 403


async def test_get_verification_with_a_wrong_token_or_without_echostr(mp: MiniProgram) -> None:
    signed = mp.sign("{}").params
    assert (await mp.client.get(PUSH, params={**signed, "echostr": "42"})).text == "42"
    assert (await mp.client.get(PUSH, params=signed)).status_code == 400
    params = {**signed, "signature": "0" * 40, "echostr": "42"}
    assert (await mp.client.get(PUSH, params=params)).status_code == 403


# --- the official safe-mode example, byte for byte ------------------------------------------------------
OFFICIAL_QUERY = {
    "signature": "6c5c811b55cc85e0e1b54100749188c20beb3f5d", "timestamp": "1714112445", "nonce": "415670741",
    "openid": "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", "encrypt_type": "aes",
    "msg_signature": "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3",
}
OFFICIAL_BODY = ('{\n    "ToUserName": "gh_97417a04a28d",\n    "Encrypt": "' + vectors.A_ENCRYPT + '"\n}').encode()


async def test_official_safe_mode_json_example_is_decrypted_and_acked(official: MiniProgram) -> None:
    response = await official.client.post(PUSH, params=OFFICIAL_QUERY, content=OFFICIAL_BODY,
                                          headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.content == b"success"  # debug_demo is no event we know; `success` is never encrypted
    sender = await official.member(mp_openid="o9AgO5Kd5ggOC-bXrbNODIiE3bGY")
    assert sender is not None  # the decrypted message reached the pipeline: its sender is on record
    assert sender.openid is None  # a Mini Program user, not an Official Account follower
    assert await official.outbox() == []
    # WeChat's retry of the same push is answered the same way and does nothing more
    again = await official.client.post(PUSH, params=OFFICIAL_QUERY, content=OFFICIAL_BODY)
    assert again.content == b"success"
    assert len(await official.members()) == 1


@pytest.mark.parametrize(("param", "value", "status"), [
    ("msg_signature", "146e02f8204d34f8ba5fa3b1db94908f3df2e9b3", 403),
    ("signature", "7c5c811b55cc85e0e1b54100749188c20beb3f5d", 403),
    ("nonce", "415670742", 403),
])
async def test_official_example_tampered_is_refused(official: MiniProgram, param: str, value: str, status: int) -> None:
    response = await official.client.post(PUSH, params={**OFFICIAL_QUERY, param: value}, content=OFFICIAL_BODY)
    assert response.status_code == status
    assert await official.members() == []


async def test_official_example_under_another_appid_does_not_decrypt(urls: tuple[str, str], clock: FrozenClock) -> None:
    async with mini_program(urls, clock, token=vectors.A_TOKEN, appid="wx0000000000000000", aes_key=vectors.A_AES_KEY,
                            signature_max_age=0) as other:
        response = await other.client.post(PUSH, params=OFFICIAL_QUERY, content=OFFICIAL_BODY)
        assert response.status_code == 400
        assert await other.members() == []


# --- both formats, both modes ------------------------------------------------------------------------------
@pytest.mark.parametrize("encrypted", MODES)
@pytest.mark.parametrize("fmt", FORMATS)
async def test_popup_with_one_item_adds_one_credit(mp: MiniProgram, fmt: str, encrypted: bool) -> None:
    item = {"TemplateId": TPL_EXPIRY, "SubscribeStatusString": "accept", "PopupScene": "0"}
    await mp.acked(popup(mp, item, fmt=fmt), fmt=fmt, encrypted=encrypted)
    assert await mp.credits(USER, TPL_EXPIRY) == 1
    mp.clock.advance(seconds=5)  # a second popup later: another one-time authorisation
    await mp.acked(popup(mp, item, fmt=fmt), fmt=fmt, encrypted=encrypted)
    assert await mp.credits(USER, TPL_EXPIRY) == 2
    assert (await mp.member(mp_openid=USER)) is not None


@pytest.mark.parametrize("encrypted", MODES)
@pytest.mark.parametrize("fmt", FORMATS)
async def test_popup_with_many_items_credits_accepts_and_records_rejects(
    mp: MiniProgram, fmt: str, encrypted: bool
) -> None:
    items = [
        {"TemplateId": TPL_EXPIRY, "SubscribeStatusString": "accept", "PopupScene": "0"},
        {"TemplateId": TPL_ORDER, "SubscribeStatusString": "reject", "PopupScene": "0"},
        {"TemplateId": TPL_BIRTHDAY, "SubscribeStatusString": "accept", "PopupScene": "0"},
    ]
    await mp.acked(popup(mp, items, fmt=fmt), fmt=fmt, encrypted=encrypted)
    assert await mp.credits(USER, TPL_EXPIRY) == 1
    assert await mp.credits(USER, TPL_BIRTHDAY) == 1
    assert await mp.credits(USER, TPL_ORDER) == 0
    rejected = await mp.credit_row(USER, TPL_ORDER)
    assert rejected is not None
    assert rejected.rejected_at == mp.clock.now()
    accepted = await mp.credit_row(USER, TPL_EXPIRY)
    assert accepted is not None
    assert accepted.rejected_at is None


async def test_popup_items_may_use_numbers_and_odd_case(mp: MiniProgram) -> None:
    items = [{"TemplateId": TPL_EXPIRY, "SubscribeStatusString": "Accept", "PopupScene": 0},
             {"TemplateId": TPL_ORDER, "SubscribeStatusString": "ban", "PopupScene": 0},
             {"SubscribeStatusString": "accept"}, "not an item"]
    await mp.acked(popup(mp, items))
    assert await mp.credits(USER, TPL_EXPIRY) == 1
    assert await mp.credit_row(USER, TPL_ORDER) is None  # neither accept nor reject: nothing recorded


async def test_popup_with_no_list_is_acked(mp: MiniProgram) -> None:
    await mp.acked(mp.event(USER, "subscribe_msg_popup_event"))
    await mp.acked(popup(mp, [], CreateTime=mp.now() + 1))
    assert await mp.credit_row(USER, TPL_EXPIRY) is None


async def test_a_reject_keeps_the_credits_already_held(mp: MiniProgram) -> None:
    await mp.acked(popup(mp, {"TemplateId": TPL_EXPIRY, "SubscribeStatusString": "accept", "PopupScene": "0"}))
    mp.clock.advance(seconds=3)
    await mp.acked(popup(mp, {"TemplateId": TPL_EXPIRY, "SubscribeStatusString": "reject", "PopupScene": "0"}))
    row = await mp.credit_row(USER, TPL_EXPIRY)
    assert row is not None
    assert (row.credits, row.rejected_at) == (1, mp.clock.now())


@pytest.mark.parametrize("fmt", FORMATS)
async def test_change_event_records_the_reject(mp: MiniProgram, fmt: str) -> None:
    await mp.acked(popup(mp, {"TemplateId": TPL_EXPIRY, "SubscribeStatusString": "accept", "PopupScene": "0"},
                         fmt=fmt), fmt=fmt)
    mp.clock.advance(minutes=10)
    item = {"TemplateId": TPL_EXPIRY, "SubscribeStatusString": "reject"}
    fields = (mp.event(USER, "subscribe_msg_change_event", SubscribeMsgChangeEvent={"List": item}) if fmt == "xml"
              else mp.event(USER, "subscribe_msg_change_event", List=item))
    await mp.acked(fields, fmt=fmt, encrypted=True)
    row = await mp.credit_row(USER, TPL_EXPIRY)
    assert row is not None
    assert row.rejected_at == mp.clock.now()
    assert row.credits == 1  # the credit WeChat granted before stays; a send would tell us otherwise (43101)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_sent_event_is_acked_and_changes_no_credit(mp: MiniProgram, fmt: str) -> None:
    await mp.acked(popup(mp, {"TemplateId": TPL_EXPIRY, "SubscribeStatusString": "accept", "PopupScene": "0"}))
    mp.clock.advance(seconds=30)
    items = [{"TemplateId": TPL_EXPIRY, "MsgID": "1700827132819554304", "ErrorCode": 0, "ErrorStatus": "success"},
             {"TemplateId": TPL_ORDER, "MsgID": "1700827132819554305", "ErrorCode": "43101",
              "ErrorStatus": "user refuse to accept the msg"}]
    fields = (mp.event(USER, "subscribe_msg_sent_event", SubscribeMsgSentEvent={"List": items}) if fmt == "xml"
              else mp.event(USER, "subscribe_msg_sent_event", List=items))
    await mp.acked(fields, fmt=fmt)
    assert await mp.credits(USER, TPL_EXPIRY) == 1
    assert await mp.credit_row(USER, TPL_ORDER) is None
    assert await mp.outbox() == []


@pytest.mark.parametrize("encrypted", MODES)
@pytest.mark.parametrize("fmt", FORMATS)
async def test_user_enter_tempsession_opens_the_customer_service_window(
    mp: MiniProgram, fmt: str, encrypted: bool
) -> None:
    kv = mp.services.kv
    assert not await cswindow.take(kv, "mp", USER)
    await mp.acked(mp.event(USER, "user_enter_tempsession", SessionFrom="points-page"), fmt=fmt, encrypted=encrypted)
    assert await cswindow.take(kv, "mp", USER)
    assert not await cswindow.take(kv, "oa", USER)  # the window belongs to the Mini Program door
    assert await mp.outbox() == []  # nothing to say to an event


# --- customer-service text messages ------------------------------------------------------------------------
@pytest.mark.parametrize("encrypted", MODES)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("said", "expected"), [
    ("帮助", texts.HELP_VISITOR),
    ("签到", texts.JOIN_FIRST.format(bonus=100)),
])
async def test_text_goes_through_the_router_and_the_reply_to_the_outbox(
    mp: MiniProgram, fmt: str, encrypted: bool, said: str, expected: str
) -> None:
    fields = mp.text(USER, said, msg_id=24000000000000001)
    await mp.acked(fields, fmt=fmt, encrypted=encrypted)
    rows = await mp.outbox()
    assert len(rows) == 1
    row = rows[0]
    assert (row.openid, row.source, row.kind, row.category, row.status) == (
        USER, "mp", "reply", outbox.TRANSACTIONAL, outbox.PENDING)
    assert custom_text(row) == expected
    assert row.dedupe_key.startswith("extra:mp:msg:24000000000000001:")
    assert await cswindow.take(mp.services.kv, "mp", USER)  # a message opens the 48-hour window


async def test_member_checks_in_from_the_customer_service_chat(mp: MiniProgram) -> None:
    token = await mp.member_for(USER, None, phone="13700002222")
    await mp.acked(mp.text(USER, "签到"))
    [row] = await mp.outbox(USER)
    assert "签到成功" in custom_text(row)
    assert (await mp.get(token, "/me")).json()["balance"] == 105
    again = await mp.post(token, "/checkin")
    assert again.status_code == 409
    assert again.json()["error"] == "already_checked_in"


@pytest.mark.parametrize("encrypted", MODES)
async def test_agent_request_is_the_one_passive_reply_and_comes_back_as_json(
    mp: MiniProgram, encrypted: bool
) -> None:
    signed = mp.sign(mp.text(USER, "人工"), encrypted=encrypted)
    response = await mp.client.post(PUSH, params=signed.params, content=signed.body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    reply = mp.open_json_reply(response, signed.params["nonce"])
    assert reply["MsgType"] == "transfer_customer_service"
    assert (reply["ToUserName"], reply["FromUserName"]) == (USER, mp.account)
    assert await mp.outbox() == []


async def test_create_time_may_be_a_string(mp: MiniProgram) -> None:
    fields = mp.text(USER, "帮助")
    fields["CreateTime"] = str(fields["CreateTime"])
    await mp.acked(fields)
    item = {"TemplateId": TPL_EXPIRY, "SubscribeStatusString": "accept", "PopupScene": "0"}
    event = popup(mp, item)
    event["CreateTime"] = str(mp.now() + 1)
    await mp.acked(event)
    assert len(await mp.outbox(USER)) == 1
    assert await mp.credits(USER, TPL_EXPIRY) == 1


async def test_msgid_may_be_a_string(mp: MiniProgram) -> None:
    await mp.acked(mp.text(USER, "帮助", msg_id="wx_cloud_1555684067"))
    [row] = await mp.outbox(USER)
    assert row.dedupe_key.startswith("extra:mp:msg:wx_cloud_1555684067:")


# --- retries ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encrypted", MODES)
async def test_text_retried_three_times_is_answered_once(mp: MiniProgram, encrypted: bool) -> None:
    fields = mp.text(USER, "帮助", msg_id=24000000000000777)
    for _ in range(3):
        await mp.acked(fields, encrypted=encrypted)
    assert len(await mp.outbox(USER)) == 1


async def test_concurrent_retries_are_answered_once(mp: MiniProgram) -> None:
    fields = mp.text(USER, "帮助", msg_id=24000000000000888)
    responses = await asyncio.gather(*(mp.push(fields) for _ in range(3)))
    assert [r.content for r in responses] == [b"success"] * 3
    assert len(await mp.outbox(USER)) == 1


async def test_popup_retried_adds_one_credit(mp: MiniProgram) -> None:
    fields = popup(mp, [{"TemplateId": TPL_EXPIRY, "SubscribeStatusString": "accept", "PopupScene": "0"}])
    await mp.acked(fields)
    await asyncio.gather(*(mp.acked(fields) for _ in range(2)))
    await mp.acked(fields, encrypted=True)
    assert await mp.credits(USER, TPL_EXPIRY) == 1


# --- refusals -------------------------------------------------------------------------------------------
async def test_bad_signature_is_403(mp: MiniProgram) -> None:
    signed = mp.sign(mp.text(USER, "帮助"))
    response = await mp.client.post(PUSH, params={**signed.params, "signature": "0" * 40}, content=signed.body)
    assert response.status_code == 403
    # signed with the Official Account's token instead of the Mini Program's
    oa_signed = mp.oa.side.sign(mp.text(USER, "帮助"))
    assert (await mp.client.post(PUSH, params=oa_signed.params, content=oa_signed.body)).status_code == 403
    assert await mp.members() == []


async def test_safe_mode_bad_msg_signature_is_403(mp: MiniProgram) -> None:
    signed = mp.sign(mp.text(USER, "帮助"), encrypted=True)
    params = {**signed.params, "msg_signature": "0" * 40}
    assert (await mp.client.post(PUSH, params=params, content=signed.body)).status_code == 403
    assert await mp.members() == []


@pytest.mark.parametrize("body", [
    b'{"ToUserName": "gh_mp0000000001", "FromUserName": ',
    b"{not json}",
    b'{"ToUserName": "gh_mp0000000001"}',
    b'{"FromUserName": {"a": 1}, "MsgType": "text"}',
    b'{"FromUserName": "oMP", "MsgType": "text", "CreateTime": "yesterday"}',
])
async def test_malformed_json_is_400(mp: MiniProgram, body: bytes) -> None:
    signed = mp.sign(body.decode())
    response = await mp.client.post(PUSH, params=signed.params, content=signed.body)
    assert response.status_code == 400
    assert await mp.members() == []


@pytest.mark.parametrize("envelope", [
    {"ToUserName": "gh_mp0000000001"},
    {"ToUserName": "gh_mp0000000001", "Encrypt": ""},
    {"ToUserName": "gh_mp0000000001", "Encrypt": ["x"]},
    {"ToUserName": "gh_mp0000000001", "Encrypt": "not base64!"},
])
async def test_malformed_safe_mode_envelope_is_refused(mp: MiniProgram, envelope: dict[str, object]) -> None:
    body = json.dumps(envelope)
    signed = mp.sign(body)
    encrypt = envelope.get("Encrypt")
    params = {**signed.params, "encrypt_type": "aes", "msg_signature": sha1_signature(
        mp.token, signed.params["timestamp"], signed.params["nonce"], encrypt if isinstance(encrypt, str) else "")}
    response = await mp.client.post(PUSH, params=params, content=signed.body)
    assert response.status_code == 400
    assert await mp.members() == []
