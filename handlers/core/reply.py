"""What a handler returns. Handlers never send: the webhook renders these, or the outbox sends them later."""

from __future__ import annotations

from dataclasses import dataclass

MAX_TEXT_BYTES = 2048  # WeChat's limit for a text reply or customer-service text

@dataclass(frozen=True)
class Text:
    content: str


@dataclass(frozen=True)
class Article:
    title: str
    description: str = ""
    url: str = ""
    picurl: str = ""


@dataclass(frozen=True)
class News:
    articles: tuple[Article, ...]


@dataclass(frozen=True)
class Image:
    media_id: str


@dataclass(frozen=True)
class TransferToAgent:
    kf_account: str | None = None


@dataclass(frozen=True)
class Ack:
    """Nothing to say: the webhook answers `success`."""


Reply = Text | News | Image | TransferToAgent | Ack


def as_list(result: Reply | list[Reply] | None) -> list[Reply]:
    if result is None:
        return [Ack()]
    if isinstance(result, list):
        return result or [Ack()]
    return [result]


def merge_texts(replies: list[Reply]) -> list[Reply]:
    """A passive reply carries one message: consecutive texts become one, blank-line separated."""
    merged: list[Reply] = []
    for reply in replies:
        if isinstance(reply, Ack):
            continue
        if isinstance(reply, Text) and merged and isinstance(merged[-1], Text):
            merged[-1] = Text(merged[-1].content + "\n\n" + reply.content)
        else:
            merged.append(reply)
    return merged or [Ack()]
