"""bot/inbound/parse.py and handlers/core/message.py: normalisation, QR scenes, delivery (dedupe) keys and
the Inbound built from each wire shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.inbound.parse import MAX_TEXT, MalformedError, build_inbound, dedupe_key, parse_json, parse_xml
from devtools.simclient import xml_message
from handlers.core.message import MINI_PROGRAM, OFFICIAL_ACCOUNT, Scene, normalise

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


def fields(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"ToUserName": "gh_1", "FromUserName": "oU1", "CreateTime": "1716000000"}
    base.update(extra)
    return base


def inbound(**extra: Any):  # type: ignore[no-untyped-def]
    return build_inbound(OFFICIAL_ACCOUNT, fields(**extra), NOW)


# ---------------------------------------------------------------------------- normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＨＥＬＰ", "help"),  # full-width letters (NFKC)
        ("  Help ", "help"),
        ("HeLp", "help"),
        ("？", "?"),  # full-width question mark
        ("\t菜单\n", "菜单"),
        ("参加　ＡＢ１２", "参加 ab12"),  # ideographic space and full-width digits
        ("join    AB12", "join ab12"),  # inner whitespace collapsed
        ("join\u00a0ab12", "join ab12"),  # no-break space
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),  # casefold, not lower
        ("ﬁ", "fi"),  # ligature
        ("①", "1"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_normalise_is_idempotent() -> None:
    for raw in ("ＨＥＬＰ  Me", "参加　ＡＢ１２", "Straße ①"):
        assert normalise(normalise(raw)) == normalise(raw)


# --------------------------------------------------------------------------------- scenes


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ref_ABC123", Scene("ref", "ABC123")),
        ("camp_SUMMER1", Scene("camp", "SUMMER1")),
        ("camp_a_b", Scene("camp", "a_b")),  # only the first prefix is taken off (a personal invite CODE_ref)
        ("chan_store-pd01", Scene("chan", "store-pd01")),
        ("chan_", Scene("other", "chan_")),
        ("store_0042", Scene("other", "store_0042")),
        ("123123", Scene("other", "123123")),
        ("ref_", Scene("other", "ref_")),  # a prefix with nothing after it is no referral
        ("REF_ABC", Scene("other", "REF_ABC")),  # prefixes are exact
        ("  ref_X  ", Scene("ref", "X")),
        ("", None),
        ("   ", None),
    ],
)
def test_scene_parse(raw: str, expected: Scene | None) -> None:
    assert Scene.parse(raw) == expected


def test_subscribe_with_qrscene_strips_the_prefix_and_parses_the_scene() -> None:
    msg = inbound(MsgType="event", Event="subscribe", EventKey="qrscene_ref_ABC123", Ticket="T")
    assert msg.event == "subscribe"
    assert msg.event_key == "ref_ABC123"
    assert msg.scene == Scene("ref", "ABC123")


def test_scan_has_no_prefix_and_is_lowercased() -> None:
    msg = inbound(MsgType="event", Event="SCAN", EventKey="camp_C1", Ticket="T")
    assert msg.event == "scan"
    assert msg.event_key == "camp_C1"
    assert msg.scene == Scene("camp", "C1")


@pytest.mark.parametrize(
    "extra",
    [
        {"Event": "subscribe"},
        {"Event": "subscribe", "EventKey": "last_trade_no_4000"},  # not a QR subscribe
        {"Event": "CLICK", "EventKey": "ref_ABC"},  # a menu key that looks like a scene
        {"Event": "SCAN", "EventKey": ""},
    ],
)
def test_no_scene_outside_qr_subscribe_and_scan(extra: dict[str, str]) -> None:
    assert inbound(MsgType="event", **extra).scene is None


# ----------------------------------------------------------------------------- dedupe keys


def test_message_key_is_the_msgid_as_a_string() -> None:
    assert dedupe_key(OFFICIAL_ACCOUNT, fields(MsgType="text", MsgId="24512345678901234")) == (
        "oa:msg:24512345678901234"
    )
    assert dedupe_key(MINI_PROGRAM, fields(MsgType="text", MsgId=123)) == "mp:msg:123"
    assert dedupe_key(OFFICIAL_ACCOUNT, fields(MsgId="0123")) != dedupe_key(OFFICIAL_ACCOUNT, fields(MsgId="123"))


def test_message_key_ignores_sender_and_time() -> None:
    one = dedupe_key(OFFICIAL_ACCOUNT, fields(MsgId="9", CreateTime="1"))
    two = dedupe_key(OFFICIAL_ACCOUNT, fields(MsgId="9", CreateTime="2", FromUserName="oOther"))
    assert one == two


def test_event_key_is_sender_time_event_and_key() -> None:
    key = dedupe_key(OFFICIAL_ACCOUNT, fields(MsgType="event", Event="CLICK", EventKey="HELP"))
    assert key == "oa:evt:oU1:1716000000:CLICK:HELP"


def test_subscribe_and_scan_in_the_same_second_have_different_keys() -> None:
    subscribe = dedupe_key(OFFICIAL_ACCOUNT, fields(MsgType="event", Event="subscribe", EventKey="qrscene_s1"))
    scan = dedupe_key(OFFICIAL_ACCOUNT, fields(MsgType="event", Event="SCAN", EventKey="s1"))
    assert subscribe != scan


def test_template_report_msgid_capital_d_is_not_a_message_id() -> None:
    """TEMPLATESENDJOBFINISH carries `MsgID` (capital D): keyed as an event, with that id in the key."""
    key = dedupe_key(
        OFFICIAL_ACCOUNT, fields(MsgType="event", Event="TEMPLATESENDJOBFINISH", MsgID="31000")
    )
    assert key.startswith("oa:evt:oU1:1716000000:TEMPLATESENDJOBFINISH")
    assert key.endswith(":31000")


def test_two_template_reports_in_one_second_have_different_keys() -> None:
    def report(msg_id: str) -> str:
        return dedupe_key(OFFICIAL_ACCOUNT, fields(MsgType="event", Event="TEMPLATESENDJOBFINISH", MsgID=msg_id))

    assert report("31000") != report("31001")
    assert report("31000") == report("31000")


def test_subscribe_sent_results_are_keyed_by_their_items_msgids() -> None:
    def sent(*msg_ids: str) -> str:
        items = [{"TemplateId": "T1", "MsgID": m, "ErrorCode": "0", "ErrorStatus": "success"} for m in msg_ids]
        return dedupe_key(MINI_PROGRAM, fields(MsgType="event", Event="subscribe_msg_sent_event", List=items))

    assert sent("1") != sent("2")
    assert sent("1", "2") != sent("1")
    assert sent("1") == sent("1")


def test_sources_never_share_keys() -> None:
    assert dedupe_key(OFFICIAL_ACCOUNT, fields(MsgId="1")) != dedupe_key(MINI_PROGRAM, fields(MsgId="1"))


# ---------------------------------------------------------------------------- build_inbound


def test_text_message() -> None:
    msg = inbound(MsgType="text", Content="  ＨＥＬＰ ", MsgId="77")
    assert (msg.source, msg.app_id, msg.openid, msg.kind) == (OFFICIAL_ACCOUNT, "gh_1", "oU1", "text")
    assert msg.text == "ＨＥＬＰ"
    assert msg.command == "help"
    assert msg.msg_id == "77"
    assert msg.create_time == 1716000000
    assert msg.received_at == NOW
    assert msg.is_text
    assert not msg.is_event
    assert msg.dedupe_key == "oa:msg:77"


def test_msgtype_is_case_insensitive() -> None:
    assert inbound(MsgType="TEXT", Content="hi").kind == "text"


def test_voice_recognition_is_text() -> None:
    msg = inbound(MsgType="voice", MediaId="m", Format="amr", Recognition="帮助", MsgId="1")
    assert msg.text == "帮助"
    assert msg.command == "帮助"
    assert msg.is_text


@pytest.mark.parametrize("extra", [{}, {"Recognition": ""}, {"Recognition": "   "}])
def test_voice_without_recognition_is_not_text(extra: dict[str, str]) -> None:
    msg = inbound(MsgType="voice", MediaId="m", **extra)
    assert msg.command == ""
    assert not msg.is_text


def test_content_is_only_read_from_text_and_voice() -> None:
    msg = inbound(MsgType="image", Content="帮助", PicUrl="u", MediaId="m")
    assert msg.text == ""
    assert not msg.is_text


def test_long_text_is_no_command() -> None:
    assert inbound(MsgType="text", Content="帮" * MAX_TEXT).command == "帮" * MAX_TEXT
    long = inbound(MsgType="text", Content="帮" * (MAX_TEXT + 1))
    assert long.command == ""
    assert long.text == "帮" * (MAX_TEXT + 1)
    assert not long.is_text


def test_create_time_as_number_or_string() -> None:
    assert inbound(MsgType="text", CreateTime=1716000000).create_time == 1716000000
    assert inbound(MsgType="text", CreateTime="1716000000").create_time == 1716000000
    assert inbound(MsgType="text", CreateTime=None).create_time == 0


def test_unionid_is_kept_when_present() -> None:
    assert inbound(MsgType="text", UnionId="u1").unionid == "u1"
    assert inbound(MsgType="text").unionid is None


def test_all_fields_are_kept_read_only() -> None:
    msg = inbound(MsgType="event", Event="TEMPLATESENDJOBFINISH", MsgID="1", Status="failed:user block")
    assert msg.fields["Status"] == "failed:user block"
    with pytest.raises(TypeError):
        msg.fields["Status"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    "bad",
    [
        {"FromUserName": ""},
        {"FromUserName": None},
        {"MsgType": ""},
        {"CreateTime": "yesterday"},
        {"Content": {"nested": "x"}},
        {"FromUserName": ["a", "b"]},
    ],
)
def test_malformed_fields(bad: dict[str, Any]) -> None:
    values = fields(MsgType="text", Content="hi")
    values.update(bad)
    with pytest.raises(MalformedError):
        build_inbound(OFFICIAL_ACCOUNT, values, NOW)


# ------------------------------------------------------------------------------- parsers


def test_parse_xml_reads_every_sample_shape() -> None:
    body = xml_message({
        "ToUserName": "gh_1", "FromUserName": "oU1", "CreateTime": 1716000500, "MsgType": "event",
        "Event": "subscribe_msg_popup_event",
        "SubscribeMsgPopupEvent": {"List": [
            {"TemplateId": "T1", "SubscribeStatusString": "accept", "PopupScene": 2},
            {"TemplateId": "T2", "SubscribeStatusString": "reject", "PopupScene": 2},
        ]},
    })
    parsed = parse_xml(body.encode())
    items = parsed["SubscribeMsgPopupEvent"]["List"]
    assert [i["TemplateId"] for i in items] == ["T1", "T2"]
    assert parsed["CreateTime"] == "1716000500"
    msg = build_inbound(OFFICIAL_ACCOUNT, parsed, NOW)
    assert msg.event == "subscribe_msg_popup_event"


def test_parse_xml_tolerates_whitespace_around_cdata_and_unknown_elements() -> None:
    body = (
        b"<xml>\n  <ToUserName> <![CDATA[gh_1]]> </ToUserName>\n  <FromUserName><![CDATA[oU1]]></FromUserName>\n"
        b"  <CreateTime>1716000000</CreateTime>\n  <MsgType><![CDATA[text]]></MsgType>\n"
        b"  <Content><![CDATA[ hi ]]></Content>\n  <MsgDataId>x</MsgDataId><Idx>1</Idx>\n"
        b"  <MsgId>1</MsgId>\n</xml>"
    )
    msg = build_inbound(OFFICIAL_ACCOUNT, parse_xml(body), NOW)
    assert msg.app_id == "gh_1"
    assert msg.text == "hi"


def test_parse_json() -> None:
    assert parse_json(b'{"MsgType": "text", "CreateTime": 1}') == {"MsgType": "text", "CreateTime": 1}
    for bad in (b"[]", b"1", b"{", b"\xff"):
        with pytest.raises(MalformedError):
            parse_json(bad)
