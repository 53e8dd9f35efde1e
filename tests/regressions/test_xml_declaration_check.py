"""Regression: the DOCTYPE/ENTITY guard in bot/inbound.parse_xml.

Before the fix, the guard searched the raw bytes for any `<!` not opening a CDATA section, so
a member who typed `<!` (`<!-- 你好 -->`, `<!DOCTYPE html>`) got a 400: WeChat shows the member
"该公众号暂时无法提供服务" and re-delivers, and the menu promised for unknown text never came.
It also searched bytes, so a UTF-16 body carried a DOCTYPE past it (expat detects UTF-16)."""

from __future__ import annotations

import pytest

from bot.inbound.parse import MalformedError, parse_xml
from handlers import texts
from tests.support.fakes import WeChat


@pytest.mark.parametrize("content", ["<!-- 你好 -->", "<!DOCTYPE html>", "a<!b", "<![CDATA[x"])
def test_declaration_like_member_text_inside_cdata_parses(content: str) -> None:
    escaped = content.replace("]]>", "]]]]><![CDATA[>")
    body = f"<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{escaped}]]></Content></xml>"
    assert parse_xml(body.encode())["Content"] == content


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE xml><xml><a>1</a></xml>",
        b"<xml><a><![CDATA[x]]><!DOCTYPE y></a></xml>",  # markup right after a CDATA section
        b"<xml><!-- comment --><a>1</a></xml>",
        "<?xml version='1.0' encoding='UTF-16'?><!DOCTYPE xml><xml><a>1</a></xml>".encode("utf-16"),
        "<!DOCTYPE xml><xml><a>1</a></xml>".encode("utf-16-le"),
    ],
)
def test_declarations_outside_cdata_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedError):
        parse_xml(body)


def test_utf8_bom_and_a_misleading_prolog_still_parse_as_utf8() -> None:
    assert parse_xml(b"\xef\xbb\xbf<xml><a>1</a></xml>") == {"a": "1"}
    assert parse_xml('<?xml version="1.0" encoding="GBK"?><xml><a>你好</a></xml>'.encode()) == {"a": "你好"}


async def test_member_typing_declaration_like_text_gets_the_menu(wechat: WeChat) -> None:
    assert await wechat.say("oLT", "<!-- 你好 -->") == texts.HELP_VISITOR
    assert await wechat.say("oLT", "<!DOCTYPE html>", encrypted=True) == texts.HELP_VISITOR
