"""Signed pushes through the whole app for every message and event type of wechat-protocol.md §2, in
plaintext and safe mode; URL verification; compatible mode; the official vectors over HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.crypto import Envelope, sha1_signature
from bot.inbound.parse import parse_xml
from devtools.simclient import xml_message
from handlers import texts
from storage.clock import FrozenClock
from storage.models import Member
from tests.support.fakes import ACCOUNT, AES_KEY, APPID, TOKEN, WeChat, make_app, make_settings, serving
from tests.support.helpers import (
    count_rows,
    member_rows,
    member_status,
    open_reply,
    post_raw,
    post_signed,
    safe_push,
    sender_ids,
)
from tests.support.vectors import A_APPID, A_ENCRYPT, C_ENCRYPT

MODES = [pytest.param(False, id="plain"), pytest.param(True, id="safe")]
OPENID = "oQx7d5Kp2LmN9sTuVw3yZaBcDeF1"
TICKET = "gQF08TzAAAAAAAAAAS5vZmFrZXRpY2tldA=="
SUCCESS = "success"
TRANSFER = "transfer_customer_service"


def _now(wechat: WeChat) -> int:
    return int(wechat.side.now())


async def exchange(
    wechat: WeChat, fields: dict[str, Any], *, encrypted: bool
) -> tuple[bytes, dict[str, Any] | None]:
    push = wechat.side.sign(fields, encrypted=encrypted)
    response = await post_signed(wechat, push)
    reply = open_reply(response, push, encrypted=encrypted, now=_now(wechat), openid=fields["FromUserName"])
    return response.content, reply


def outcome(reply: dict[str, Any] | None) -> str:
    """What the member sees: the text, the reply type for other replies, `success` for nothing."""
    if reply is None:
        return SUCCESS
    if reply["MsgType"] == "text":
        return str(reply["Content"])
    return str(reply["MsgType"])


# --------------------------------------------------------------------------- message types

Build = Callable[[WeChat, str], dict[str, Any]]


def _msg(wechat: WeChat, openid: str, kind: str, msg_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "ToUserName": ACCOUNT, "FromUserName": openid, "CreateTime": _now(wechat),
        "MsgType": kind, **extra, "MsgId": msg_id,
    }


MESSAGES: list[tuple[str, Build, str]] = [
    ("text-help", lambda w, o: _msg(w, o, "text", 1001, Content="帮助"), texts.HELP_VISITOR),
    ("text-unknown", lambda w, o: _msg(w, o, "text", 1002, Content="今天天气怎么样"), texts.HELP_VISITOR),
    ("text-agent", lambda w, o: _msg(w, o, "text", 1003, Content="人工"), TRANSFER),
    ("image", lambda w, o: _msg(w, o, "image", 1004, PicUrl="http://mmbiz.qpic.cn/x.jpg", MediaId="m_img"),
     texts.NON_TEXT),
    ("voice-no-recognition", lambda w, o: _msg(w, o, "voice", 1005, MediaId="m_v", Format="amr"),
     texts.NON_TEXT),
    ("voice-empty-recognition",
     lambda w, o: _msg(w, o, "voice", 1006, MediaId="m_v", Format="amr", Recognition=""), texts.NON_TEXT),
    ("voice-recognition-help",
     lambda w, o: _msg(w, o, "voice", 1007, MediaId="m_v", Format="speex", Recognition="帮助。"), texts.HELP_VISITOR),
    ("voice-recognition-agent",
     lambda w, o: _msg(w, o, "voice", 1008, MediaId="m_v", Format="amr", Recognition="客服"), TRANSFER),
    ("video", lambda w, o: _msg(w, o, "video", 1009, MediaId="m_vid", ThumbMediaId="m_th"), texts.NON_TEXT),
    ("shortvideo", lambda w, o: _msg(w, o, "shortvideo", 1010, MediaId="m_sv", ThumbMediaId="m_th"),
     texts.NON_TEXT),
    ("location", lambda w, o: _msg(w, o, "location", 1011, Location_X="23.134521", Location_Y="113.358803",
                                Scale=20, Label="广州市天河区"), texts.LOCATION),
    ("link", lambda w, o: _msg(w, o, "link", 1012, Title="公众平台", Description="官网",
                            Url="https://mp.weixin.qq.com/"), texts.NON_TEXT),
]


def _evt(wechat: WeChat, openid: str, event: str, **extra: Any) -> dict[str, Any]:
    return {
        "ToUserName": ACCOUNT, "FromUserName": openid, "CreateTime": _now(wechat),
        "MsgType": "event", "Event": event, **extra,
    }


EVENTS: list[tuple[str, Build, str]] = [
    ("subscribe", lambda w, o: _evt(w, o, "subscribe"), texts.WELCOME),
    ("subscribe-qrscene", lambda w, o: _evt(w, o, "subscribe", EventKey="qrscene_store_0042", Ticket=TICKET),
     texts.WELCOME),
    ("subscribe-other-key", lambda w, o: _evt(w, o, "subscribe", EventKey="last_trade_no_4000"),
     texts.WELCOME),
    ("SCAN", lambda w, o: _evt(w, o, "SCAN", EventKey="store_0042", Ticket=TICKET), texts.HELP_VISITOR),
    ("unsubscribe", lambda w, o: _evt(w, o, "unsubscribe"), SUCCESS),
    ("LOCATION", lambda w, o: _evt(w, o, "LOCATION", Latitude="23.137466", Longitude="113.352425",
                                Precision="119.385040"), SUCCESS),
    ("CLICK-HELP", lambda w, o: _evt(w, o, "CLICK", EventKey="HELP"), texts.HELP_VISITOR),
    ("VIEW", lambda w, o: _evt(w, o, "VIEW", EventKey="https://shop.example.com/", MenuId="123"), SUCCESS),
    ("TEMPLATESENDJOBFINISH",
     lambda w, o: _evt(w, o, "TEMPLATESENDJOBFINISH", MsgID=3100000000000000001, Status="failed:user block"),
     SUCCESS),
    ("subscribe_msg_popup_event", lambda w, o: _evt(w, o, "subscribe_msg_popup_event",
                                                    SubscribeMsgPopupEvent={
        "List": [
            {"TemplateId": "TPL_points_expiry_01", "SubscribeStatusString": "accept", "PopupScene": 2},
            {"TemplateId": "TPL_order_status_02", "SubscribeStatusString": "reject", "PopupScene": 2},
        ]}), SUCCESS),
    ("subscribe_msg_change_event", lambda w, o: _evt(w, o, "subscribe_msg_change_event",
                                                     SubscribeMsgChangeEvent={
        "List": {"TemplateId": "TPL_points_expiry_01", "SubscribeStatusString": "reject"}}), SUCCESS),
    ("subscribe_msg_sent_event", lambda w, o: _evt(w, o, "subscribe_msg_sent_event", SubscribeMsgSentEvent={
        "List": {"TemplateId": "TPL_points_expiry_01", "MsgID": 1700827132819554304, "ErrorCode": 0,
                 "ErrorStatus": "success"}}), SUCCESS),
]


async def run_cases(
    wechat: WeChat, cases: list[tuple[str, Build, str]], encrypted: bool
) -> dict[str, tuple[str, str | None]]:
    """Each case from its own sender: what the member saw, and the sender's member status after."""
    seen: dict[str, tuple[str, str | None]] = {}
    for name, build, _ in cases:
        fields = build(wechat, f"{OPENID}-{name}"[:64])
        raw, reply = await exchange(wechat, fields, encrypted=encrypted)
        if reply is None:
            assert raw == b"success", name  # never encrypted, never an XML reply with empty content
        seen[name] = (outcome(reply), await member_status(wechat, fields["FromUserName"]))
    return seen


@pytest.mark.parametrize("encrypted", MODES)
async def test_every_message_type(wechat: WeChat, encrypted: bool) -> None:
    seen = await run_cases(wechat, MESSAGES, encrypted)
    assert seen == {name: (expected, "active") for name, _, expected in MESSAGES}
    assert len({openid for (openid,) in await sender_ids(wechat)}) == len(MESSAGES)


@pytest.mark.parametrize("encrypted", MODES)
async def test_every_event_type(wechat: WeChat, encrypted: bool) -> None:
    """Every sender is on record from the first contact on; an unfollow marks them unsubscribed."""
    seen = await run_cases(wechat, EVENTS, encrypted)
    assert seen == {
        name: (expected, "unsubscribed" if name == "unsubscribe" else "active")
        for name, _, expected in EVENTS
    }


HELP_WORDS = ["帮助", "菜单", "?", "？", "help", "HELP", "ＨＥＬＰ", "  Help ", "\t菜单\n", "menu", "Menu"]
AGENT_WORDS = ["人工", "客服", "agent", " AGENT ", "ａｇｅｎｔ", "Agent", " 人工 "]


@pytest.mark.parametrize("encrypted", MODES)
async def test_help_keywords_are_trimmed_casefolded_and_width_folded(wechat: WeChat, encrypted: bool) -> None:
    seen = {said: await wechat.say("oKEYWORD", said, encrypted=encrypted) for said in HELP_WORDS}
    assert seen == dict.fromkeys(HELP_WORDS, texts.HELP_VISITOR)


@pytest.mark.parametrize("encrypted", MODES)
async def test_agent_keywords_hand_over_to_customer_service(wechat: WeChat, encrypted: bool) -> None:
    for said in AGENT_WORDS:
        _, reply = await exchange(wechat, wechat.side.text("oAGENT", said), encrypted=encrypted)
        assert reply is not None, said
        assert reply["MsgType"] == TRANSFER, said
        assert set(reply) == {"ToUserName", "FromUserName", "CreateTime", "MsgType"}


async def test_keywords_match_whole_messages_only(wechat: WeChat) -> None:
    """Not a keyword: the unknown-text answer (the menu), never the agent hand-over."""
    near = ["帮助一下", "help me", "人工智能", "agents", "h e l p"]
    seen = {said: await wechat.say("oNEAR", said) for said in near}
    assert seen == dict.fromkeys(near, texts.HELP_VISITOR)


@pytest.mark.parametrize("encrypted", MODES)
async def test_unsubscribe_marks_the_member_and_subscribe_reactivates(
    wechat: WeChat, clock: FrozenClock, encrypted: bool
) -> None:
    openid = "oFOLLOWER"
    _, reply = await exchange(wechat, wechat.side.event(openid, "subscribe"), encrypted=encrypted)
    assert outcome(reply) == texts.WELCOME
    assert await member_status(wechat, openid) == "active"

    clock.advance(seconds=5)
    raw, reply = await exchange(wechat, wechat.side.event(openid, "unsubscribe"), encrypted=encrypted)
    assert raw == b"success"
    assert await member_status(wechat, openid) == "unsubscribed"

    clock.advance(seconds=5)
    _, reply = await exchange(wechat, wechat.side.event(openid, "subscribe"), encrypted=encrypted)
    assert outcome(reply) == texts.WELCOME
    assert await member_status(wechat, openid) == "active"
    assert await count_rows(wechat.app, Member) == 1


async def test_unsubscribe_of_a_stranger_records_them_unsubscribed(wechat: WeChat) -> None:
    raw, _ = await exchange(wechat, wechat.side.event("oNEVERSEEN", "unsubscribe"), encrypted=False)
    assert raw == b"success"
    assert await member_status(wechat, "oNEVERSEEN") == "unsubscribed"


async def test_other_members_are_not_touched_by_an_unsubscribe(wechat: WeChat, clock: FrozenClock) -> None:
    await wechat.say("oSTAYS", "帮助")
    await exchange(wechat, wechat.side.event("oLEAVES", "unsubscribe"), encrypted=True)
    assert await member_status(wechat, "oSTAYS") == "active"
    assert await member_status(wechat, "oLEAVES") == "unsubscribed"


async def test_compatible_mode_uses_the_signed_encrypted_part(wechat: WeChat) -> None:
    """Compatible mode: plain fields and Encrypt in one body, encrypt_type=aes. The Encrypt is what
    msg_signature covers, so it is what counts (here the plain copy was altered on the way)."""
    inner = wechat.side.text("oCOMPAT", "帮助", msg_id=777001)
    encrypt = Envelope([AES_KEY], APPID).encrypt(xml_message(inner).encode())
    plain_copy = {k: v for k, v in inner.items() if k != "ToUserName"}
    plain_copy["Content"] = "人工"
    push = safe_push(wechat, encrypt, extra_fields=plain_copy)
    response = await post_signed(wechat, push)
    reply = open_reply(response, push, encrypted=True, now=_now(wechat), openid="oCOMPAT")
    assert outcome(reply) == texts.HELP_VISITOR


async def test_compatible_mode_with_identical_copies(wechat: WeChat) -> None:
    inner = wechat.side.text("oCOMPAT2", "菜单", msg_id=777002)
    encrypt = Envelope([AES_KEY], APPID).encrypt(xml_message(inner).encode())
    push = safe_push(wechat, encrypt, extra_fields={k: v for k, v in inner.items() if k != "ToUserName"})
    response = await post_signed(wechat, push)
    assert outcome(open_reply(response, push, encrypted=True, now=_now(wechat))) == texts.HELP_VISITOR


async def test_plaintext_push_gets_a_plaintext_reply_on_a_safe_mode_app(wechat: WeChat) -> None:
    push = wechat.side.sign(wechat.side.text("oRAW", "帮助"))
    response = await post_signed(wechat, push, encrypt_type="raw")
    reply = parse_xml(response.content)
    assert "Encrypt" not in reply
    assert reply["Content"] == texts.HELP_VISITOR


async def test_retried_safe_mode_reply_echoes_each_nonce(wechat: WeChat) -> None:
    fields = wechat.side.text("oNONCE", "帮助", msg_id=888001)
    for _ in range(2):
        push = wechat.side.sign(fields, encrypted=True)
        response = await post_signed(wechat, push)
        assert outcome(open_reply(response, push, encrypted=True, now=_now(wechat))) == texts.HELP_VISITOR


async def test_member_text_that_could_close_cdata_is_harmless(wechat: WeChat) -> None:
    assert await wechat.say("oCDATA", "]]><MsgType>transfer_customer_service</MsgType>") == texts.HELP_VISITOR


# ---------------------------------------------------------------------------- URL verification


@pytest.mark.parametrize("echostr", ["4375120948345356249", "abc-XYZ_123", "回声"])
async def test_get_verification_echoes_echostr_exactly(wechat: WeChat, echostr: str) -> None:
    params = {**wechat.side.sign("").params, "echostr": echostr}
    response = await wechat.client.get("/wechat", params=params)
    assert response.status_code == 200
    assert response.text == echostr
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda p: {**p, "signature": "0" * 40}, id="bad-signature"),
        pytest.param(lambda p: {k: v for k, v in p.items() if k != "signature"}, id="no-signature"),
        pytest.param(lambda p: {**p, "nonce": p["nonce"] + "1"}, id="nonce-changed"),
        pytest.param(
            lambda p: {**p, "signature": sha1_signature("othertoken", p["timestamp"], p["nonce"])},
            id="other-token",
        ),
    ],
)
async def test_get_verification_refuses_a_bad_signature(wechat: WeChat, spoil: Any) -> None:
    params = spoil({**wechat.side.sign("").params, "echostr": "4375120948345356249"})
    response = await wechat.client.get("/wechat", params=params)
    assert response.status_code == 403
    assert "4375120948345356249" not in response.text


async def test_get_verification_refuses_an_old_timestamp(wechat: WeChat, clock: FrozenClock) -> None:
    params = {**wechat.side.sign("").params, "echostr": "42"}
    clock.advance(seconds=601)
    assert (await wechat.client.get("/wechat", params=params)).status_code == 403


# ---------------------------------------------------------------- official vectors over HTTP


@asynccontextmanager
async def official_app(
    urls: tuple[str, str], at: int, **overrides: Any
) -> AsyncIterator[WeChat]:
    settings = make_settings(*urls, **overrides)
    clock = FrozenClock(datetime.fromtimestamp(at, UTC))
    app = make_app(settings, clock)
    async with serving(app, clock) as harness:
        yield harness


async def test_official_get_verification_vector(urls: tuple[str, str]) -> None:
    async with official_app(urls, 1714036504, wechat_token="AAAAA") as wechat:
        params = {
            "signature": "f464b24fc39322e44b38aa78f5edd27bd1441696",
            "timestamp": "1714036504", "nonce": "1514711492", "echostr": "4375120948345356249",
        }
        response = await wechat.client.get("/wechat", params=params)
        assert response.status_code == 200
        assert response.text == "4375120948345356249"


async def test_official_plaintext_push_signature(urls: tuple[str, str]) -> None:
    async with official_app(urls, 1714037059, wechat_token="AAAAA") as wechat:
        params = {
            "signature": "899cf89e464efb63f54ddac96b0a0a235f53aa78",
            "timestamp": "1714037059", "nonce": "486452656",
        }
        body = xml_message({
            "ToUserName": "gh_97417a04a28d", "FromUserName": "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
            "CreateTime": 1714037059, "MsgType": "text", "Content": "帮助", "MsgId": 24500000000000001,
        })
        response = await post_raw(wechat, params, body)
        reply = parse_xml(response.content)
        assert reply["Content"] == texts.HELP_VISITOR
        assert reply["ToUserName"] == "o9AgO5Kd5ggOC-bXrbNODIiE3bGY"
        assert reply["FromUserName"] == "gh_97417a04a28d"


async def test_official_safe_mode_json_push_decrypts_and_is_acknowledged(urls: tuple[str, str]) -> None:
    """Vector A as WeChat posts it (JSON envelope): both signatures check, the Encrypt opens with
    appid wxba5fad812f8e6fb9, and the unknown `debug_demo` event is acknowledged unencrypted."""
    async with official_app(
        urls, 1714112445, wechat_token="AAAAA", wechat_aes_key="A" * 43, wechat_appid=A_APPID
    ) as wechat:
        params = {
            "signature": "6c5c811b55cc85e0e1b54100749188c20beb3f5d",
            "timestamp": "1714112445", "nonce": "415670741", "encrypt_type": "aes",
            "msg_signature": "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3",
            "openid": "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
        }
        body = json.dumps({"ToUserName": "gh_97417a04a28d", "Encrypt": A_ENCRYPT})
        response = await post_raw(wechat, params, body)
        assert response.status_code == 200
        assert response.text == "success"
        assert [m.openid for m in await member_rows(wechat)] == ["o9AgO5Kd5ggOC-bXrbNODIiE3bGY"]

        tampered = {**params, "msg_signature": "046e02f8204d34f8ba5fa3b1db94908f3df2e9b4"}
        assert (await post_raw(wechat, tampered, body)).status_code == 403


async def test_vector_c_through_the_app(urls: tuple[str, str]) -> None:
    """Vector C is exactly the test account (token, key, appid): its push is accepted as is and the
    reply comes back encrypted, signed, to the sender."""
    async with official_app(urls, 1700000000) as wechat:
        params = {
            "signature": "36a0924c38f1082a8ba517a1237c541208ae33a7", "timestamp": "1700000000",
            "nonce": "987654321", "encrypt_type": "aes",
            "msg_signature": "61619de63f0b9f9d8c34e65a5bd752fe7d75f95a",
        }
        body = xml_message({"ToUserName": ACCOUNT, "Encrypt": C_ENCRYPT})
        response = await post_raw(wechat, params, body)
        envelope = parse_xml(response.content)
        assert envelope["Nonce"] == "987654321"
        assert envelope["TimeStamp"] == "1700000000"
        assert envelope["MsgSignature"] == sha1_signature(
            TOKEN, "1700000000", "987654321", envelope["Encrypt"]
        )
        reply = parse_xml(Envelope([AES_KEY], APPID).decrypt(envelope["Encrypt"]).message)
        assert reply["ToUserName"] == "oUSER0000000000000000000001"
        assert reply["FromUserName"] == ACCOUNT
        assert reply["MsgType"] == "text"
        assert reply["Content"]
