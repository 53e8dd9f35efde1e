"""What the conversation shows: a passive reply's fields, or a recorded push, as one bubble (plain JSON)."""

from __future__ import annotations

import json
from typing import Any

from bot.simulator import texts

Bubble = dict[str, Any]
PUSH_APIS = {
    "oa:/cgi-bin/message/custom/send": "cs",
    "mp:/cgi-bin/message/custom/send": "cs",
    "oa:/cgi-bin/message/template/send": "template",
    "mp:/cgi-bin/message/subscribe/send": "subscribe",
}


def _items(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return [value] if isinstance(value, dict) else []


def _article(item: dict[str, Any]) -> dict[str, str]:
    def get(*names: str) -> str:
        return next((str(item[n]) for n in names if item.get(n)), "")

    return {"title": get("Title", "title"), "description": get("Description", "description"),
            "url": get("Url", "url"), "picurl": get("PicUrl", "picurl")}


def from_reply(reply: dict[str, Any] | None) -> Bubble:
    """The webhook's answer (already opened): text, news (articles with pictures), image, transfer."""
    if reply is None:
        return {"channel": "reply", "kind": "note", "text": texts.NO_REPLY}
    kind = str(reply.get("MsgType", ""))
    if kind == "text":
        return {"channel": "reply", "kind": "text", "text": str(reply.get("Content", ""))}
    if kind == "news":
        articles = [_article(i) for i in _items((reply.get("Articles") or {}).get("item"))]
        return {"channel": "reply", "kind": "news", "articles": articles}
    if kind == "image":
        media = str((reply.get("Image") or {}).get("MediaId", ""))
        return {"channel": "reply", "kind": "image", "text": texts.IMAGE_REPLY, "media_id": media}
    if kind == "transfer_customer_service":
        return {"channel": "reply", "kind": "note", "text": texts.TRANSFER}
    return {"channel": "reply", "kind": "note", "text": f"({kind})"}


def from_push(call_id: int, api: str, payload: str) -> tuple[str, Bubble] | None:
    """A recorded push: (the openid it went to, its bubble); None for calls that are not pushes."""
    channel = PUSH_APIS.get(api)
    if channel is None:
        return None
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    bubble = _template(body) if channel in ("template", "subscribe") else _custom(body)
    bubble.update(id=call_id, channel=channel)
    return str(body.get("touser", "")), bubble


def _custom(body: dict[str, Any]) -> Bubble:
    kind = body.get("msgtype")
    if kind == "text":
        return {"kind": "text", "text": str((body.get("text") or {}).get("content", ""))}
    if kind == "news":
        return {"kind": "news", "articles": [_article(a) for a in _items((body.get("news") or {}).get("articles"))]}
    if kind == "image":
        return {"kind": "image", "text": texts.IMAGE_REPLY, "media_id": str((body.get("image") or {}).get("media_id"))}
    return {"kind": "note", "text": f"({kind})"}


def _template(body: dict[str, Any]) -> Bubble:
    data = body.get("data")
    data = data if isinstance(data, dict) else {}
    lines = [f"{k}: {v.get('value', '')}" for k, v in data.items() if isinstance(v, dict)]
    return {"kind": "card", "title": str(body.get("template_id") or ""), "lines": lines,
            "url": str(body.get("url") or body.get("page") or "")}
