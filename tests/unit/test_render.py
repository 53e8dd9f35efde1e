"""bot/inbound/render.py: passive reply XML for each Reply type, as WeChat parses it, and the customer-service
form of the replies that go through the outbox."""

from __future__ import annotations

from typing import Any

import pytest

from bot.inbound.parse import parse_xml
from bot.inbound.render import SUCCESS, render, to_custom_message
from handlers.core.reply import Ack, Article, Image, News, Text, TransferToAgent


def rendered(reply: Any, *, is_event: bool = False) -> dict[str, Any]:
    xml = render(reply, account="gh_000000000001", openid="oUSER", now=1716000001, is_event=is_event)
    fields = parse_xml(xml.encode())
    assert fields["ToUserName"] == "oUSER"  # ids swapped: to the member, from the account
    assert fields["FromUserName"] == "gh_000000000001"
    assert fields["CreateTime"] == "1716000001"
    return fields


def test_ack_is_the_bare_word_success() -> None:
    assert render(Ack(), account="gh", openid="o", now=1, is_event=False) == SUCCESS == "success"


@pytest.mark.parametrize(
    "content",
    ["您有 1,250 积分。", "第一行\n第二行", "a]]>b", "]]>]]>", "<xml>&amp;</xml>", "😀 \u200b \u202e"],
)
def test_text_content_comes_back_exactly(content: str) -> None:
    fields = rendered(Text(content))
    assert fields["MsgType"] == "text"
    assert fields["Content"] == content


def test_news_to_a_message_carries_one_article_and_to_an_event_up_to_eight() -> None:
    articles = tuple(Article(f"标题{i}", f"描述{i}", f"https://e.example/{i}", f"https://p.example/{i}.jpg")
                     for i in range(10))
    to_message = rendered(News(articles))
    assert to_message["MsgType"] == "news"
    assert to_message["ArticleCount"] == "1"
    item = to_message["Articles"]["item"]
    assert item == {"Title": "标题0", "Description": "描述0", "PicUrl": "https://p.example/0.jpg",
                    "Url": "https://e.example/0"}
    to_event = rendered(News(articles), is_event=True)
    assert to_event["ArticleCount"] == "8"
    assert [i["Title"] for i in to_event["Articles"]["item"]] == [f"标题{i}" for i in range(8)]


def test_image() -> None:
    fields = rendered(Image("MEDIA_ID_1"))
    assert fields["MsgType"] == "image"
    assert fields["Image"] == {"MediaId": "MEDIA_ID_1"}


def test_transfer_to_agent() -> None:
    fields = rendered(TransferToAgent())
    assert fields["MsgType"] == "transfer_customer_service"
    assert "TransInfo" not in fields


def test_customer_service_forms() -> None:
    assert to_custom_message(Text("hi")) == {"msgtype": "text", "text": {"content": "hi"}}
    assert to_custom_message(Image("M")) == {"msgtype": "image", "image": {"media_id": "M"}}
    news = News((Article("T", "D", "https://u", "https://p"), Article("T2")))
    assert to_custom_message(news) == {
        "msgtype": "news",
        "news": {"articles": [{"title": "T", "description": "D", "url": "https://u", "picurl": "https://p"}]},
    }
    assert to_custom_message(Ack()) is None
    assert to_custom_message(TransferToAgent()) is None
    assert to_custom_message(News(())) is None
