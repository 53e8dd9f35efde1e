"""Filters choose a handler: each returns False, True, or a dict of what it extracted (`参加 CODE` gives
code).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeGuard, cast

from handlers.core.message import normalise
from storage.staff import CAMPAIGN_ROLES

if TYPE_CHECKING:
    from handlers.core.context import ChatContext
    from handlers.core.message import Inbound

FilterResult = bool | dict[str, Any]
Filter = Callable[["Inbound", "ChatContext"], FilterResult | Awaitable[FilterResult]]


async def run_filter(flt: Filter, msg: Inbound, ctx: ChatContext) -> FilterResult:
    result = flt(msg, ctx)
    return await result if pending(result) else cast(FilterResult, result)


def pending(result: FilterResult | Awaitable[FilterResult]) -> TypeGuard[Awaitable[FilterResult]]:
    """Whether a filter's result is still to be awaited. Most filters answer at once with a bool or a dict,
    which is checked first: inspect.isawaitable alone asks the Awaitable ABC, the router's dearest call."""
    return result.__class__ is not bool and result.__class__ is not dict and inspect.isawaitable(result)


class Command:
    """Matches a keyword (trimmed, casefolded, full-width folded). With `arg`, it also takes
    the rest of the message: `参加 abcd` -> {"code": "abcd"} (casefolded: codes and numbers
    are case-insensitive, handlers upper-case codes)."""

    def __init__(self, *words: str, arg: str | None = None, arg_required: bool = False) -> None:
        self.words = tuple(normalise(w) for w in words)
        self.arg = arg
        self.arg_required = arg_required

    def __call__(self, msg: Inbound, ctx: ChatContext) -> FilterResult:
        if not msg.is_text:
            return False
        command = msg.command
        for word in self.words:
            if command == word and not self.arg_required:
                return {self.arg: None} if self.arg else True
            if self.arg and command.startswith(word):
                rest = command[len(word):]
                # ASCII aliases need a space ("join ab12"); Chinese keywords may run on ("参加AB12").
                if rest.strip() and (rest.startswith(" ") or not word.isascii()):
                    return {self.arg: rest.strip()}
        return False


class Event:
    """Matches an event by name (case-insensitive)."""

    def __init__(self, *names: str) -> None:
        self.names = {n.lower() for n in names}

    def __call__(self, msg: Inbound, ctx: ChatContext) -> FilterResult:
        return msg.is_event and msg.event in self.names


class Click:
    """A menu CLICK event with one of the keys."""

    def __init__(self, *keys: str) -> None:
        self.keys = {k.upper() for k in keys}

    def __call__(self, msg: Inbound, ctx: ChatContext) -> FilterResult:
        return msg.is_event and msg.event == "click" and msg.event_key.upper() in self.keys


class SceneIs:
    """A subscribe or SCAN event carrying a QR scene of this kind -> {"scene_value": ...}."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __call__(self, msg: Inbound, ctx: ChatContext) -> FilterResult:
        if msg.scene is None or msg.scene.kind != self.kind:
            return False
        if msg.event not in ("subscribe", "scan"):
            return False
        return {"scene_value": msg.scene.value}


class Kind:
    """A message of one of these MsgTypes."""

    def __init__(self, *kinds: str) -> None:
        self.kinds = set(kinds)

    def __call__(self, msg: Inbound, ctx: ChatContext) -> FilterResult:
        return msg.kind in self.kinds


def any_of(*filters: Filter) -> Filter:
    async def _any(msg: Inbound, ctx: ChatContext) -> FilterResult:
        for flt in filters:
            result = await run_filter(flt, msg, ctx)
            if result:
                return result
        return False

    return _any




async def is_staff(msg: Inbound, ctx: ChatContext) -> FilterResult:
    """Campaign staff only (a typed command or a staff-menu click): for anyone else the route does not
    match, so they get the help menu."""
    typed_or_clicked = msg.is_text or (msg.is_event and msg.event == "click")
    return typed_or_clicked and await ctx.staff_role() in CAMPAIGN_ROLES


SERVICE_ROLES = ("service", "admin")


async def is_service(msg: Inbound, ctx: ChatContext) -> FilterResult:
    """Service staff (and admins) only: they answer tickets from the chat."""
    return msg.is_text and await ctx.staff_role() in SERVICE_ROLES


async def is_clerk(msg: Inbound, ctx: ChatContext) -> FilterResult:
    """A clerk bound to a store (a typed command): `核销 CODE` is theirs."""
    return msg.is_text and await ctx.staff_role() == "clerk"
