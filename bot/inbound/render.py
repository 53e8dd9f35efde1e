"""Reply objects -> the passive reply XML (wechatpy.replies); `success` for an Ack. Encryption happens
in the webhook.
"""

from __future__ import annotations

from wechatpy.replies import ArticlesReply, ImageReply, TextReply, TransferCustomerServiceReply

from handlers.core.reply import Ack, Image, News, Reply, Text, TransferToAgent

SUCCESS = "success"
MAX_ARTICLES_FOR_MESSAGE = 1  # a reply to a user message shows one article
MAX_ARTICLES_FOR_EVENT = 8


def _safe(value: str) -> str:
    # A CDATA section ends at the first "]]>"; split it so member-entered text cannot close it.
    return value.replace("]]>", "]]]]><![CDATA[>")


def render(reply: Reply, *, account: str, openid: str, now: int, is_event: bool) -> str:
    common = {"source": account, "target": openid, "time": now}
    if isinstance(reply, Ack):
        return SUCCESS
    if isinstance(reply, Text):
        return TextReply(content=_safe(reply.content), **common).render()
    if isinstance(reply, News):
        limit = MAX_ARTICLES_FOR_EVENT if is_event else MAX_ARTICLES_FOR_MESSAGE
        articles = [
            {
                "title": _safe(a.title),
                "description": _safe(a.description),
                "image": _safe(a.picurl),
                "url": _safe(a.url),
            }
            for a in reply.articles[:limit]
        ]
        return ArticlesReply(articles=articles, **common).render()
    if isinstance(reply, Image):
        return ImageReply(media_id=reply.media_id, **common).render()
    if isinstance(reply, TransferToAgent):
        xml = TransferCustomerServiceReply(**common).render()
        if reply.kf_account:  # wechatpy has no field for it; WeChat reads TransInfo/KfAccount
            trans = f"<TransInfo><KfAccount><![CDATA[{_safe(reply.kf_account)}]]></KfAccount></TransInfo>"
            xml = xml.replace("</xml>", trans + "\n</xml>")
        return xml
    raise TypeError(f"cannot render {reply!r}")


def to_custom_message(reply: Reply) -> dict[str, object] | None:
    """The customer-service message body for a reply sent later through the outbox."""
    if isinstance(reply, Text):
        return {"msgtype": "text", "text": {"content": reply.content}}
    if isinstance(reply, News) and reply.articles:
        a = reply.articles[0]
        article = {"title": a.title, "description": a.description, "url": a.url, "picurl": a.picurl}
        return {"msgtype": "news", "news": {"articles": [article]}}
    if isinstance(reply, Image):
        return {"msgtype": "image", "image": {"media_id": reply.media_id}}
    return None  # Ack and TransferToAgent have no customer-service form
