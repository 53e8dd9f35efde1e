"""bot/inbound/parse.py reads WeChat's XML with ElementTree; it must give what xmltodict (the parser it
replaced, still the reference here) gives for every document WeChat can send, and for odd ones: nested
wrappers, repeated tags, attributes, whitespace around CDATA, empty elements, text beside children."""

from __future__ import annotations

import pytest
import xmltodict
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.inbound.parse import MalformedError, parse_xml
from devtools.simclient import WeChatSide, xml_message

SIDE = WeChatSide("t")


def reference(body: str) -> object:
    return xmltodict.parse(body, disable_entities=True)["xml"]


WECHAT = [
    xml_message(SIDE.text("oPARSEmember00000000000001", "  签到  ")),
    xml_message(SIDE.event("oPARSEmember00000000000001", "subscribe", "qrscene_ref_ABC123", Ticket="gQH")),
    xml_message(SIDE.event("oPARSEmember00000000000001", "CLICK", "CHECKIN")),
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Event><![CDATA[subscribe_msg_popup_event]]></Event>"
    "<SubscribeMsgPopupEvent><List><TemplateId><![CDATA[T1]]></TemplateId>"
    "<SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>0</PopupScene></List>"
    "<List><TemplateId><![CDATA[T2]]></TemplateId><SubscribeStatusString><![CDATA[reject]]>"
    "</SubscribeStatusString><PopupScene>0</PopupScene></List></SubscribeMsgPopupEvent></xml>",
    "<xml><MsgType>location</MsgType><Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y>"
    "<Scale>20</Scale><Label><![CDATA[位置信息]]></Label></xml>",
    "<xml>\n  <Content><![CDATA[]]></Content>\n  <Empty/>\n  <Spaces>   </Spaces>\n</xml>",
    '<xml><Item a="1" b="x">text</Item><Bare c="2"/><Item>second</Item></xml>',
    "<xml>before<Child>1</Child>after</xml>",
    "<xml><Content><![CDATA[a]]>b<![CDATA[c]]></Content><Esc>&lt;&amp;&gt;</Esc></xml>",
]


@pytest.mark.parametrize("body", WECHAT)
def test_wechats_documents_parse_as_xmltodict_reads_them(body: str) -> None:
    assert parse_xml(body.encode()) == reference(body)


tags = st.sampled_from(["A", "B", "Content", "List", "x_1"])
texts = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8) | st.sampled_from([" ", "\n ", ""])


def element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def build(tag: str, attrs: dict[str, str], text: str, kids: list[str], cdata: bool) -> str:
        attr = "".join(f' {name}="{value}"' for name, value in attrs.items())
        escaped = (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") if not cdata
                   else "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>")
        return f"<{tag}{attr}>{escaped}{''.join(kids)}</{tag}>"

    return st.builds(
        build, tags, st.dictionaries(st.sampled_from(["a", "id"]), st.sampled_from(["1", "v w"]), max_size=1),
        texts, st.lists(children, max_size=3), st.booleans(),
    )


documents = st.recursive(element(st.just("")), element, max_leaves=12).map(lambda inner: f"<xml>{inner}</xml>")


@settings(max_examples=300, deadline=None)
@given(documents)
def test_any_document_parses_as_xmltodict_reads_it(body: str) -> None:
    expected = reference(body)
    if not isinstance(expected, dict):  # a root with text only is refused, as before
        with pytest.raises(MalformedError):
            parse_xml(body.encode())
        return
    assert parse_xml(body.encode()) == expected


@pytest.mark.parametrize("body", [b"<xml><a>1</b></xml>", b"<xml>", b"<other><a>1</a></other>", b"<xml>text</xml>",
                                  b"<xml/>", b"not xml", b"<xml><p:a>1</p:a></xml>"])
def test_what_is_not_a_wechat_document_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedError):
        parse_xml(body)
