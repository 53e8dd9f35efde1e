"""WeChat XML and Mini Program JSON -> Inbound. The only place that knows the wire field names."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any
from xml.etree.ElementTree import Element, ParseError, fromstring

from handlers.core.message import Inbound, Scene, delivery_key, normalise

MAX_TEXT = 2000  # longer texts are not commands; they get the help menu
# CDATA sections hold member text, which may itself contain "<!"; only markup outside them counts.
_CDATA = re.compile(r"<!\[CDATA\[.*?\]\]>", re.DOTALL)


class MalformedError(ValueError):
    """The body is not a WeChat message we can read (answered 400)."""


def parse_xml(body: bytes) -> dict[str, Any]:
    """Parse a `<xml>` body into a dict. DOCTYPE, ENTITY and any other `<!` declaration outside
    CDATA is refused before the parser sees it, so nothing is ever expanded (XXE, billion laughs).
    WeChat sends UTF-8 only: the body is read as UTF-8 whatever its prolog claims, so another
    encoding (UTF-16) cannot hide a declaration from the check."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError("body is not UTF-8") from exc
    if "\x00" in text:  # never in XML; UTF-16 without a BOM decodes as "UTF-8" full of NULs
        raise MalformedError("body is not UTF-8")
    if "<!" in _CDATA.sub("", text):
        raise MalformedError("XML declarations (DOCTYPE/ENTITY) are not accepted")
    try:
        element = fromstring(text)
    except (ParseError, ValueError) as exc:
        raise MalformedError("body is not well-formed XML") from exc
    root = _value(element) if element.tag == "xml" else None
    if not isinstance(root, dict):
        raise MalformedError("root element must be <xml>")
    return root


def _value(element: Element) -> Any:
    """An element as a value, in the shape xmltodict gives (tests/unit/test_parse_xml.py compares the two):
    a leaf's text, stripped (None when empty); otherwise a dict of its children by tag (a list for a tag
    that repeats), its attributes as `@name` and its own text as `#text`. ElementTree builds the tree in C,
    where xmltodict calls back into Python for every element and text run: a third of the cost."""
    children = list(element)
    own = "".join([element.text or "", *(child.tail or "" for child in children)]).strip()
    if not children and not element.attrib:
        return own or None
    value: dict[str, Any] = {f"@{name}": text for name, text in element.attrib.items()}
    for child in children:
        item = _value(child)
        if child.tag not in value:
            value[child.tag] = item
        elif isinstance(value[child.tag], list):
            value[child.tag].append(item)
        else:
            value[child.tag] = [value[child.tag], item]
    if own:
        value["#text"] = own
    return value


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedError("body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise MalformedError("JSON body must be an object")
    return data


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise MalformedError(f"{name} must be a plain value")
    return str(value).strip()


def subscription_items(fields: Mapping[str, Any]) -> tuple[dict[str, str], ...]:
    """The `List` items of subscribe_msg_* events, wherever they sit: under the event's wrapper
    (OA XML; some samples use the popup wrapper for every event) or at the top (MP JSON), one item
    as an object and several as an array."""
    holder: Any = fields.get("List")
    if holder is None:
        for wrapper in ("SubscribeMsgPopupEvent", "SubscribeMsgChangeEvent", "SubscribeMsgSentEvent"):
            if isinstance(fields.get(wrapper), dict):
                holder = fields[wrapper].get("List")
                break
    items = holder if isinstance(holder, list) else [holder] if isinstance(holder, dict) else []
    return tuple({k: str(v) for k, v in item.items() if not isinstance(v, dict | list)}
                 for item in items if isinstance(item, dict))


def dedupe_key(source: str, fields: Mapping[str, Any]) -> str:
    """Messages by MsgId; events by sender + CreateTime + Event + EventKey (WeChat's key, widened
    so a subscribe and a SCAN in the same second stay two deliveries) + the event's own ids."""
    parts = [_text(fields, n) for n in ("FromUserName", "CreateTime", "Event", "EventKey")]
    return delivery_key(source, _text(fields, "MsgId"), parts, event_ids(fields))


def event_ids(fields: Mapping[str, Any]) -> tuple[str, ...]:
    """The ids WeChat puts on an event: `MsgID` (capital D) of a template report, and the `MsgID` of
    each subscribe_msg_sent_event item."""
    top = _text(fields, "MsgID")
    items = tuple(item.get("MsgID", "").strip() for item in subscription_items(fields))
    return tuple(i for i in (top, *items) if i)


def build_inbound(source: str, fields: Mapping[str, Any], received_at: datetime) -> Inbound:
    openid = _text(fields, "FromUserName")
    kind = _text(fields, "MsgType").lower()
    if not openid or not kind:
        raise MalformedError("FromUserName and MsgType are required")
    try:
        create_time = int(float(_text(fields, "CreateTime") or 0))
    except ValueError as exc:
        raise MalformedError("CreateTime must be a number") from exc

    text = ""
    if kind == "text":
        text = _text(fields, "Content")
    elif kind == "voice":
        text = _text(fields, "Recognition")
    command = normalise(text) if 0 < len(text) <= MAX_TEXT else ""

    event = _text(fields, "Event").lower() if kind == "event" else ""
    event_key = _text(fields, "EventKey") if kind == "event" else ""
    scene = None
    if event == "subscribe" and event_key.startswith("qrscene_"):
        event_key = event_key[len("qrscene_"):]
        scene = Scene.parse(event_key)
    elif event == "scan":
        scene = Scene.parse(event_key)

    return Inbound(
        source=source,
        app_id=_text(fields, "ToUserName"),
        openid=openid,
        kind=kind,
        create_time=create_time,
        dedupe_key=dedupe_key(source, fields),
        received_at=received_at,
        msg_id=_text(fields, "MsgId") or None,
        unionid=_text(fields, "UnionId") or None,
        text=text,
        command=command,
        event=event,
        event_key=event_key,
        scene=scene,
        fields=MappingProxyType(dict(fields)),
        items=subscription_items(fields) if event.startswith("subscribe_msg") else (),
    )
