"""Issue 2's "Bad input" list, case by case: each refusal has its status and leaves nothing behind (no
member row, no outbox row, no dedupe key or anything else in the KV); odd but legal input gets the
menu or `success`."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.crypto import Envelope, sha1_signature
from devtools.simclient import WeChatSide, xml_message
from handlers import texts
from storage.clock import FrozenClock
from tests.support.fakes import ACCOUNT, AES_KEY, APPID, TOKEN, WeChat, make_app, make_settings, serving
from tests.support.helpers import assert_untouched, kv_keys, plain_params, post_raw, post_signed, safe_push

MAX_BODY = 64 * 1024


def text_fields(wechat: WeChat, content: str = "帮助", msg_id: int = 5550001) -> dict[str, Any]:
    return wechat.side.text("oBAD", content, msg_id=msg_id)


async def refused(response: Any, status: int, wechat: WeChat, case: str = "") -> None:
    assert response.status_code == status, f"{case}: {response.status_code} {response.text[:200]}"
    assert response.headers["content-type"] == "application/json", case  # a clear answer, not a reply
    assert response.json()["error"], case
    await assert_untouched(wechat)


# ------------------------------------------------------------------------------- signatures


BAD_SIGNATURES = {
    "wrong": lambda p: {**p, "signature": "0" * 40},
    "missing": lambda p: {k: v for k, v in p.items() if k != "signature"},
    "empty": lambda p: {**p, "signature": ""},
    "nonce-swapped": lambda p: {**p, "nonce": "1" + p["nonce"]},
    "timestamp-swapped": lambda p: {**p, "timestamp": str(int(p["timestamp"]) - 1)},
    "other-token": lambda p: {**p, "signature": sha1_signature("wrongtoken", p["timestamp"], p["nonce"])},
    "no-query": lambda p: {},
}


async def test_bad_or_missing_signature_is_403(wechat: WeChat) -> None:
    for encrypted in (False, True):
        push = wechat.side.sign(text_fields(wechat), encrypted=encrypted)
        for name, spoil in BAD_SIGNATURES.items():
            response = await post_raw(wechat, spoil(push.params), push.body)
            await refused(response, 403, wechat, name)


async def test_signature_timestamp_too_far_from_now_is_403(wechat: WeChat, clock: FrozenClock) -> None:
    """Correctly signed, but SIGNATURE_MAX_AGE (600 s) away from now: a replay, refused."""
    for offset in (-601, -3600, 601, 86400):
        stale = WeChatSide(TOKEN, account=ACCOUNT, appid=APPID, aes_key=AES_KEY,
                           now=lambda offset=offset: clock.now().timestamp() + offset)
        for encrypted in (False, True):
            push = stale.sign(text_fields(wechat), encrypted=encrypted)
            response = await post_raw(wechat, push.params, push.body)
            await refused(response, 403, wechat, f"offset {offset}")


async def test_signature_exactly_at_the_max_age_is_accepted(wechat: WeChat, clock: FrozenClock) -> None:
    push = wechat.side.sign(text_fields(wechat))
    clock.advance(seconds=600)
    response = await post_raw(wechat, push.params, push.body)
    assert response.status_code == 200
    assert texts.HELP_VISITOR in response.text


async def test_non_numeric_timestamp_is_403(wechat: WeChat) -> None:
    params = {"timestamp": "soon", "nonce": "1", "signature": sha1_signature(TOKEN, "soon", "1")}
    response = await post_raw(wechat, params, xml_message(text_fields(wechat)))
    await refused(response, 403, wechat)


async def test_bad_msg_signature_is_403(wechat: WeChat) -> None:
    push = wechat.side.sign(text_fields(wechat), encrypted=True)
    for bad in ("0" * 40, "", push.params["signature"]):  # the plain signature does not cover the body
        response = await post_raw(wechat, {**push.params, "msg_signature": bad}, push.body)
        await refused(response, 403, wechat)
    no_msg_signature = {k: v for k, v in push.params.items() if k != "msg_signature"}
    await refused(await post_raw(wechat, no_msg_signature, push.body), 403, wechat)


async def test_msg_signature_covers_the_encrypt_field(wechat: WeChat) -> None:
    """A valid envelope whose Encrypt is swapped for another message's is refused."""
    first = wechat.side.sign(text_fields(wechat, "帮助", 1), encrypted=True)
    second = wechat.side.sign(text_fields(wechat, "人工", 2), encrypted=True)
    response = await post_raw(wechat, {**second.params, "msg_signature": first.params["msg_signature"]},
                              second.body)
    await refused(response, 403, wechat)


# -------------------------------------------------------------------------------- body size


def padded_text(wechat: WeChat, size: int) -> bytes:
    """A signed-able text message of exactly `size` bytes."""
    empty = xml_message(text_fields(wechat, "")).encode()
    body = xml_message(text_fields(wechat, "a" * (size - len(empty)))).encode()
    assert len(body) == size
    return body


async def test_body_over_64_kib_is_413(wechat: WeChat) -> None:
    body = padded_text(wechat, MAX_BODY + 1)
    response = await post_raw(wechat, plain_params(wechat), body)
    await refused(response, 413, wechat)


async def test_chunked_body_over_64_kib_is_413(wechat: WeChat) -> None:
    """No Content-Length to trust: the limit is enforced while reading."""
    body = padded_text(wechat, MAX_BODY * 4)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start:start + 4096]

    response = await wechat.client.post("/wechat", params=plain_params(wechat), content=chunks())
    await refused(response, 413, wechat)


async def test_lying_content_length_is_413(wechat: WeChat) -> None:
    response = await wechat.client.post(
        "/wechat", params=plain_params(wechat), content=b"<xml></xml>",
        headers={"content-length": str(MAX_BODY * 10)},
    )
    assert response.status_code == 413
    await assert_untouched(wechat)


async def test_body_of_exactly_64_kib_is_accepted(wechat: WeChat) -> None:
    response = await post_raw(wechat, plain_params(wechat), padded_text(wechat, MAX_BODY))
    assert response.status_code == 200
    assert texts.HELP_VISITOR in response.text  # a 60-KiB text is no command: the menu


# ---------------------------------------------------------------------------- malformed XML


MALFORMED: dict[str, bytes] = {
    "empty": b"",
    "not-xml": b"hello",
    "unclosed": b"<xml><ToUserName>gh</ToUserName>",
    "mismatched": b"<xml><Content>a</xml>",
    "two-roots": b"<xml></xml><xml></xml>",
    "wrong-root": b"<other><MsgType>text</MsgType></other>",
    "no-fields": b"<xml>text only</xml>",
    "no-sender": b"<xml><MsgType>text</MsgType><Content>hi</Content></xml>",
    "no-msgtype": b"<xml><FromUserName>o1</FromUserName><Content>hi</Content></xml>",
    "bad-createtime": (
        b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><CreateTime>yesterday</CreateTime></xml>"
    ),
    "nested-sender": b"<xml><FromUserName><a>o1</a></FromUserName><MsgType>text</MsgType></xml>",
    "binary": b"\xff\xfe<\x00x\x00",
    "broken-json": b"{not json",
    "json-array": b"[1, 2]",
}


async def test_malformed_body_is_400(wechat: WeChat) -> None:
    for name, body in MALFORMED.items():
        response = await post_raw(wechat, plain_params(wechat), body)
        await refused(response, 400, wechat, name)


XXE_FILE = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b"<xml><ToUserName>gh_000000000001</ToUserName><FromUserName>oXXE</FromUserName>"
    b"<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&xxe;</Content><MsgId>9</MsgId></xml>"
)
XXE_PARAMETER = (
    b'<!DOCTYPE xml [<!ENTITY % remote SYSTEM "http://127.0.0.1:1/evil.dtd"> %remote;]>'
    b"<xml><FromUserName>oXXE</FromUserName><MsgType>text</MsgType><Content>x</Content></xml>"
)
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz ['
    b'<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, b"".join(b"&lol%s;" % (str(i - 1).encode() if i > 1 else b"",)
                                               for _ in range(10)))
        for i in range(1, 10)
    )
    + b"]><xml><FromUserName>oXXE</FromUserName><MsgType>text</MsgType><Content>&lol9;</Content></xml>"
)
DOCTYPE_ONLY = (
    b"<!DOCTYPE xml><xml><FromUserName>oXXE</FromUserName><MsgType>text</MsgType>"
    b"<Content>hi</Content></xml>"
)
INTERNAL_ENTITY = (
    b'<!DOCTYPE xml [<!ENTITY who "oXXE">]><xml><FromUserName>&who;</FromUserName>'
    b"<MsgType>text</MsgType><Content>hi</Content></xml>"
)
LOWERCASE_DOCTYPE = b"<!doctype xml><xml><FromUserName>oXXE</FromUserName><MsgType>text</MsgType></xml>"
UTF16_DOCTYPE = (
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml><xml><FromUserName>oXXE</FromUserName>'
    "<MsgType>text</MsgType><Content>hi</Content><MsgId>8</MsgId></xml>"
).encode("utf-16")
UTF16_NO_BOM = "<!DOCTYPE xml><xml><FromUserName>oXXE</FromUserName><MsgType>text</MsgType></xml>".encode(
    "utf-16-le"
)

DECLARATIONS: dict[str, bytes] = {
    "xxe-file": XXE_FILE,
    "xxe-parameter-entity": XXE_PARAMETER,
    "billion-laughs": BILLION_LAUGHS,
    "doctype-only": DOCTYPE_ONLY,
    "internal-entity": INTERNAL_ENTITY,
    "lowercase-doctype": LOWERCASE_DOCTYPE,
    "utf16-doctype": UTF16_DOCTYPE,
    "utf16-no-bom-doctype": UTF16_NO_BOM,
}


async def test_doctype_and_entities_are_400_and_never_expanded(wechat: WeChat) -> None:
    for name, body in DECLARATIONS.items():
        started = time.monotonic()
        response = await post_raw(wechat, plain_params(wechat), body)
        assert time.monotonic() - started < 2, name
        await refused(response, 400, wechat, name)
        assert "root:" not in response.text
        assert "lollol" not in response.text


async def test_doctype_inside_the_encrypted_body_is_400(wechat: WeChat) -> None:
    for name, body in DECLARATIONS.items():
        encrypt = Envelope([AES_KEY], APPID).encrypt(body)
        response = await post_signed(wechat, safe_push(wechat, encrypt))
        await refused(response, 400, wechat, name)
        assert "root:" not in response.text


async def test_doctype_in_the_outer_safe_mode_envelope_is_400(wechat: WeChat) -> None:
    encrypt = Envelope([AES_KEY], APPID).encrypt(xml_message(text_fields(wechat)).encode())
    push = safe_push(wechat, encrypt)
    body = b'<!DOCTYPE xml [<!ENTITY x "y">]>' + push.body
    await refused(await post_raw(wechat, push.params, body), 400, wechat)


# ------------------------------------------------------------------------- safe-mode failures


async def test_safe_mode_body_that_does_not_decrypt_is_400(wechat: WeChat) -> None:
    for garbage in (
        base64.b64encode(bytes(range(64))).decode(),  # right length, wrong content
        base64.b64encode(bytes(48)).decode(),  # not a multiple of 32
        "not base64 at all!",
        Envelope(["ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"], APPID).encrypt(b"<xml/>"),  # other key
    ):
        response = await post_signed(wechat, safe_push(wechat, garbage))
        await refused(response, 400, wechat)


async def test_safe_mode_body_for_another_appid_is_400(wechat: WeChat) -> None:
    inner = xml_message(text_fields(wechat)).encode()
    encrypt = Envelope([AES_KEY], "wx9999999999999999").encrypt(inner)
    response = await post_signed(wechat, safe_push(wechat, encrypt))
    await refused(response, 400, wechat)


async def test_safe_mode_body_without_encrypt_is_400(wechat: WeChat) -> None:
    push = wechat.side.sign(text_fields(wechat))
    params = {**push.params, "encrypt_type": "aes", "msg_signature": "0" * 40}
    await refused(await post_raw(wechat, params, push.body), 400, wechat)


async def test_decrypted_garbage_is_400(wechat: WeChat) -> None:
    for inner in (b"not xml", b"<xml><Content>x</Content></xml>", b"<xml><MsgType>text</xml>"):
        encrypt = Envelope([AES_KEY], APPID).encrypt(inner)
        await refused(await post_signed(wechat, safe_push(wechat, encrypt)), 400, wechat)


# ------------------------------------------------------------- odd but legal: answered


async def test_unknown_msgtype_is_success(wechat: WeChat) -> None:
    fields = {**text_fields(wechat), "MsgType": "hologram", "Payload": "x"}
    del fields["Content"]
    for encrypted in (False, True):
        fields["MsgId"] += 1
        response = await post_signed(wechat, wechat.side.sign(fields, encrypted=encrypted))
        assert response.status_code == 200
        assert response.text == "success"


async def test_unknown_event_is_success(wechat: WeChat) -> None:
    for event in ("quantum_leap", "MASSSENDJOBFINISH", "scancode_push", "kf_create_session"):
        for encrypted in (False, True):
            fields = wechat.side.event("oEVT", event, "K1" if encrypted else None)
            response = await post_signed(wechat, wechat.side.sign(fields, encrypted=encrypted))
            assert response.status_code == 200, event
            assert response.text == "success", event


ODD_TEXTS: dict[str, str] = {
    "2001-chinese": "帮" * 2001,
    "2001-repeated-keyword": "帮助" * 1000 + "!",
    "20000-ascii": "help " * 4000,
    "emoji": "😀🎉👍🏽",
    "zero-width-space": "\u200b",
    "zero-width-inside-keyword": "\u200b帮\u200d助\ufeff",
    "rtl-override": "\u202e助帮\u202c",
    "rtl-ltr-marks": "\u200f\u200e",
    "lone-combining-acute": "\u0301",
    "combining-only": "\u0301\u0308\u0327",
    "zalgo": "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d",
    "math-sans-hel": "\U0001d5c1\U0001d5be\U0001d5c5",
    "blank": "   ",
    "cdata-terminator": "]]>",
    "comment-like-text": "<!-- 你好 -->",
    "doctype-like-text": "<!DOCTYPE html>",
    "entity-like-text": "&amp;&lt;&#0;",
}


@pytest.mark.parametrize("encrypted", [False, True])
async def test_long_or_odd_text_gets_the_help_menu(wechat: WeChat, encrypted: bool) -> None:
    seen = {name: await wechat.say("oODD", content, encrypted=encrypted) for name, content in ODD_TEXTS.items()}
    assert seen == dict.fromkeys(ODD_TEXTS, texts.HELP_VISITOR)


async def test_refused_requests_do_not_block_the_real_delivery(wechat: WeChat) -> None:
    """A forged copy of a message (bad signature) must not claim its MsgId: the real one still runs."""
    fields = text_fields(wechat, "帮助", 6660001)
    push = wechat.side.sign(fields)
    await refused(await post_raw(wechat, {**push.params, "signature": "0" * 40}, push.body), 403, wechat)
    assert await wechat.say("oBAD", "帮助") == texts.HELP_VISITOR
    response = await post_signed(wechat, push)
    assert texts.HELP_VISITOR in response.text
    assert any(k.startswith("wxbot:dedupe:") for k in await kv_keys(wechat.app))


async def test_safe_mode_push_to_an_app_without_an_aes_key_is_400(urls: tuple[str, str], clock: FrozenClock) -> None:
    app = make_app(make_settings(*urls, wechat_aes_key=""), clock)
    async with serving(app, clock) as plain_only:
        push = plain_only.side.sign(text_fields(plain_only), encrypted=True)
        await refused(await post_signed(plain_only, push), 400, plain_only)
        assert await plain_only.say("oBAD", "帮助") == texts.HELP_VISITOR  # plaintext still works


async def test_get_verification_without_echostr_is_400(wechat: WeChat) -> None:
    response = await wechat.client.get("/wechat", params=plain_params(wechat))
    assert response.status_code == 400
    await assert_untouched(wechat)
