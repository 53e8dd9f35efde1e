"""handlers/core/filters.py and the Router: keywords with and without arguments, events, menu keys,
scenes; first match wins and names the intent; no match is an Ack."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from bot.inbound.parse import build_inbound
from handlers.core.context import ChatContext, Services
from handlers.core.filters import Click, Command, Event, Kind, SceneIs, any_of, run_filter
from handlers.core.message import OFFICIAL_ACCOUNT, Inbound
from handlers.core.reply import Ack, Text
from handlers.core.router import Router

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


def message(**extra: Any) -> Inbound:
    fields = {"ToUserName": "gh_1", "FromUserName": "oU1", "CreateTime": 1716000000, **extra}
    return build_inbound(OFFICIAL_ACCOUNT, fields, NOW)


def text(content: str) -> Inbound:
    return message(MsgType="text", Content=content, MsgId=1)


def event(name: str, key: str | None = None) -> Inbound:
    extra = {"EventKey": key} if key is not None else {}
    return message(MsgType="event", Event=name, **extra)


def context(msg: Inbound) -> ChatContext:
    # Filters and these handlers never touch services; a context with none proves it.
    return ChatContext(msg, cast(Services, None), logging.LoggerAdapter(logging.getLogger("t"), {}))


def check(flt: Any, msg: Inbound) -> Any:
    return flt(msg, context(msg))


# -------------------------------------------------------------------------------- Command

JOIN = Command("参加", "join", arg="code")


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("参加 AB12", {"code": "ab12"}),
        ("参加AB12", {"code": "ab12"}),  # Chinese keywords may run on
        ("参加　ＡＢ１２", {"code": "ab12"}),  # full-width space, letters and digits
        ("  参加   ab12  ", {"code": "ab12"}),
        ("join ab12", {"code": "ab12"}),
        ("JOIN AB12", {"code": "ab12"}),
        ("ｊｏｉｎ ＡＢ１２", {"code": "ab12"}),
        ("join  ab12", {"code": "ab12"}),
        ("join ab 12", {"code": "ab 12"}),  # the rest of the message, inner space kept (collapsed)
        ("join", {"code": None}),  # the alias alone, argument optional
        ("参加", {"code": None}),
        ("joinab12", False),  # an ASCII alias needs a space: not "join" + "ab12"
        ("joiner", False),
        ("rejoin ab12", False),
        ("我要参加 AB12", False),
        ("", False),
    ],
)
def test_command_with_argument(said: str, expected: Any) -> None:
    assert check(JOIN, text(said) if said else message(MsgType="text", Content="")) == expected


def test_required_argument() -> None:
    required = Command("参加", "join", arg="code", arg_required=True)
    assert check(required, text("join")) is False
    assert check(required, text("参加")) is False
    assert check(required, text("参加 X1")) == {"code": "x1"}


@pytest.mark.parametrize("said", ["帮助", " 帮助 ", "HELP", "ＨＥＬＰ", "  Help ", "?", "？", "菜单"])
def test_plain_command_matches_after_normalising(said: str) -> None:
    assert check(Command("帮助", "菜单", "?", "help"), text(said)) is True


@pytest.mark.parametrize("said", ["帮助我", "help me", "h elp", "helpful", "?!"])
def test_plain_command_matches_whole_messages_only(said: str) -> None:
    assert check(Command("帮助", "?", "help"), text(said)) is False


def test_command_keywords_are_normalised_at_registration() -> None:
    assert check(Command("ＨＥＬＰ"), text("help")) is True


def test_command_accepts_voice_recognition_but_not_other_kinds() -> None:
    help_ = Command("帮助")
    assert check(help_, message(MsgType="voice", MediaId="m", Recognition="帮助", MsgId=2)) is True
    assert check(help_, message(MsgType="voice", MediaId="m", MsgId=3)) is False
    assert check(help_, message(MsgType="image", MediaId="m", Content="帮助", MsgId=4)) is False
    assert check(help_, event("CLICK", "帮助")) is False


def test_command_ignores_text_over_the_length_limit() -> None:
    assert check(Command("帮", arg="rest"), text("帮" * 2001)) is False


# ------------------------------------------------------------------- Event, Click, Scene, Kind


def test_event_filter_is_case_insensitive() -> None:
    assert check(Event("SCAN"), event("scan", "x")) is True
    assert check(Event("scan"), event("SCAN", "x")) is True
    assert check(Event("subscribe"), event("unsubscribe")) is False
    assert check(Event("subscribe"), text("subscribe")) is False


def test_click_filter() -> None:
    assert check(Click("HELP"), event("CLICK", "HELP")) is True
    assert check(Click("help"), event("CLICK", "help")) is True
    assert check(Click("HELP"), event("VIEW", "HELP")) is False  # a VIEW is not a click
    assert check(Click("HELP"), event("CLICK", "CHECKIN")) is False
    assert check(Click("HELP"), text("HELP")) is False


def test_scene_filter() -> None:
    referral = SceneIs("ref")
    assert check(referral, event("subscribe", "qrscene_ref_ABC")) == {"scene_value": "ABC"}
    assert check(referral, event("SCAN", "ref_ABC")) == {"scene_value": "ABC"}
    assert check(referral, event("SCAN", "camp_C1")) is False
    assert check(SceneIs("camp"), event("SCAN", "camp_C1")) == {"scene_value": "C1"}
    assert check(referral, event("subscribe")) is False
    assert check(referral, event("CLICK", "ref_ABC")) is False


def test_kind_filter() -> None:
    assert check(Kind("image", "video"), message(MsgType="image", MediaId="m", MsgId=5)) is True
    assert check(Kind("image"), text("x")) is False


async def test_any_of_returns_the_first_match() -> None:
    msg = text("参加 x9")
    combined = any_of(Command("nothing"), JOIN, Command("参加"))
    assert await run_filter(combined, msg, context(msg)) == {"code": "x9"}
    assert await run_filter(any_of(Command("a"), Command("b")), msg, context(msg)) is False


async def test_async_filters_are_awaited() -> None:
    async def yes(msg: Inbound, ctx: ChatContext) -> dict[str, Any]:
        return {"found": msg.openid}

    msg = text("x")
    assert await run_filter(yes, msg, context(msg)) == {"found": "oU1"}


# --------------------------------------------------------------------------------- Router


async def test_router_first_match_wins_and_names_the_intent() -> None:
    router = Router()
    calls: list[str] = []

    @router.on(Command("参加", "join", arg="code"), name="join_campaign")
    async def join(msg: Inbound, ctx: ChatContext, code: str | None) -> Text:
        calls.append(f"join:{code}")
        return Text(f"joined {code}")

    @router.on(Command("join"), name="sign_up")
    async def sign_up(msg: Inbound, ctx: ChatContext) -> Text:
        calls.append("sign_up")
        return Text("sign up")

    msg = text("join ab12")
    ctx = context(msg)
    assert await router.dispatch(msg, ctx) == [Text("joined ab12")]
    assert ctx.intent == "join_campaign"
    assert calls == ["join:ab12"]


async def test_router_all_filters_must_pass_and_extracted_values_merge() -> None:
    router = Router()

    @router.on(Event("subscribe"), SceneIs("ref"), name="referral")
    async def referral(msg: Inbound, ctx: ChatContext, scene_value: str) -> Text:
        return Text(scene_value)

    sub = event("subscribe", "qrscene_ref_R1")
    assert await router.dispatch(sub, context(sub)) == [Text("R1")]
    plain = event("subscribe")
    ctx = context(plain)
    assert await router.dispatch(plain, ctx) == [Ack()]
    assert ctx.intent == "unmatched"


async def test_handler_returning_none_or_empty_is_an_ack() -> None:
    router = Router()

    @router.on(Command("a"))
    async def nothing(msg: Inbound, ctx: ChatContext) -> None:
        return None

    @router.on(Command("b"))
    async def empty(msg: Inbound, ctx: ChatContext) -> list[Any]:
        return []

    for said in ("a", "b"):
        msg = text(said)
        assert await router.dispatch(msg, context(msg)) == [Ack()]
