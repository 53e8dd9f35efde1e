"""Inbound: one message or event from WeChat, free of XML and JSON. Only bot/inbound/parse.py builds it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from storage.enums import Source

# The names the edge has always used for the two doors: the enum's members themselves.
OFFICIAL_ACCOUNT, MINI_PROGRAM = Source.OA, Source.MP

_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Fold full-width forms (NFKC), trim, casefold and collapse inner whitespace."""
    folded = unicodedata.normalize("NFKC", text)
    return _SPACES.sub(" ", folded).strip().casefold()


def delivery_key(source: str, msg_id: str, event_parts: Sequence[str], event_ids: Sequence[str] = ()) -> str:
    """The dedupe key of one delivery: a message by its MsgId; an event by sender, CreateTime, Event and
    EventKey, plus every id WeChat gives the event (TEMPLATESENDJOBFINISH's MsgID, the subscribe result
    items' MsgIDs), since two reports to one member in one second differ by nothing else. A retry repeats
    all of these, so it keeps its key."""
    if msg_id:
        return f"{source}:msg:{msg_id}"
    return f"{source}:evt:" + ":".join([*event_parts, *event_ids])


@dataclass(frozen=True)
class Scene:
    """A parametric QR scene: `ref_<code>` -> ("ref", code), `camp_<code>` -> ("camp", code),
    `chan_<name>` -> ("chan", name)."""

    kind: str
    value: str

    @classmethod
    def parse(cls, raw: str) -> Scene | None:
        raw = raw.strip()
        if not raw:
            return None
        for kind in ("ref", "camp", "chan"):
            prefix = kind + "_"
            if raw.startswith(prefix) and len(raw) > len(prefix):
                return cls(kind, raw[len(prefix):])
        return cls("other", raw)


@dataclass(frozen=True)
class Inbound:
    source: str
    app_id: str
    openid: str
    kind: str
    create_time: int
    dedupe_key: str
    received_at: datetime
    msg_id: str | None = None
    unionid: str | None = None
    text: str = ""
    command: str = ""
    event: str = ""
    event_key: str = ""
    scene: Scene | None = None
    fields: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    items: tuple[Mapping[str, str], ...] = ()  # subscribe_msg_* event items, normalised

    @property
    def is_event(self) -> bool:
        return self.kind == "event"

    @property
    def is_text(self) -> bool:
        """Text, or a voice message WeChat already turned into text."""
        return bool(self.command) and self.kind in ("text", "voice")
