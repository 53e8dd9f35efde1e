"""WeChat's retries: one delivery identity runs the handler once, across concurrent requests and
across two app instances sharing a database and KV, and every copy gets the first reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from bot.settings import Settings
from storage.clock import FrozenClock
from tests.support.fakes import WeChat, make_app, serving
from tests.support.helpers import CountingHandler, decrypt_envelope, install, open_reply, outbox_rows, post_signed

pytestmark = pytest.mark.kv_cluster  # also on a Redis Cluster (issue 20)

MODES = [pytest.param(False, id="plain"), pytest.param(True, id="safe")]


def same_reply(responses: list[httpx.Response], encrypted: bool) -> bytes:
    """The one plaintext reply all copies carry; byte-identical bodies in plaintext mode."""
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    if not encrypted:
        bodies = {r.content for r in responses}
        assert len(bodies) == 1, bodies
        return responses[0].content
    plains = {decrypt_envelope(r.content) for r in responses}
    assert len(plains) == 1, plains
    return plains.pop()


@asynccontextmanager
async def second_instance(settings: Settings, clock: FrozenClock) -> AsyncIterator[WeChat]:
    """Another worker: its own app, engine, KV client and pipeline, on the same database and KV."""
    app = make_app(settings, clock)
    async with serving(app, clock) as harness:
        yield harness


@pytest.mark.parametrize("encrypted", MODES)
async def test_same_msgid_three_times_sequentially(wechat: WeChat, encrypted: bool) -> None:
    handler = install(wechat.app, CountingHandler())
    push = wechat.side.sign(wechat.side.text("oRETRY", "签到", msg_id=9100001), encrypted=encrypted)
    responses = [await post_signed(wechat, push) for _ in range(3)]
    plain = same_reply(responses, encrypted)
    assert b"run 1: text" in plain
    assert handler.runs == 1


@pytest.mark.parametrize("encrypted", MODES)
async def test_retries_with_fresh_signatures_replay_the_reply(wechat: WeChat, encrypted: bool) -> None:
    """WeChat may sign each retry anew (other nonce): still the same delivery, sealed for each."""
    handler = install(wechat.app, CountingHandler())
    fields = wechat.side.text("oRETRY", "签到", msg_id=9100002)
    replies = []
    for _ in range(3):
        push = wechat.side.sign(fields, encrypted=encrypted)
        response = await post_signed(wechat, push)
        replies.append(open_reply(response, push, encrypted=encrypted, now=int(wechat.side.now())))
    assert replies[0] == replies[1] == replies[2]
    assert replies[0] is not None
    assert replies[0]["Content"] == "run 1: text 签到"
    assert handler.runs == 1


@pytest.mark.parametrize("encrypted", MODES)
async def test_same_msgid_three_times_concurrently(wechat: WeChat, encrypted: bool) -> None:
    handler = install(wechat.app, CountingHandler(delay=0.2))
    push = wechat.side.sign(wechat.side.text("oRACE", "签到", msg_id=9100003), encrypted=encrypted)
    responses = await asyncio.gather(*(post_signed(wechat, push) for _ in range(3)))
    plain = same_reply(list(responses), encrypted)
    assert b"run 1: text" in plain
    assert handler.runs == 1


@pytest.mark.parametrize("encrypted", MODES)
async def test_same_msgid_to_two_app_instances(
    wechat: WeChat, settings: Settings, clock: FrozenClock, encrypted: bool
) -> None:
    handler = CountingHandler(delay=0.2)
    install(wechat.app, handler)
    async with second_instance(settings, clock) as other:
        install(other.app, handler)
        push = wechat.side.sign(wechat.side.text("oTWO", "签到", msg_id=9100004), encrypted=encrypted)
        first, second, third = await asyncio.gather(
            post_signed(wechat, push), post_signed(other, push), post_signed(other, push)
        )
        fourth = await post_signed(wechat, push)  # a late retry to the first worker
        fifth = await post_signed(other, push)
        plain = same_reply([first, second, third, fourth, fifth], encrypted)
    assert b"run 1: text" in plain
    assert handler.runs == 1


async def test_two_instances_answer_different_messages_independently(
    wechat: WeChat, settings: Settings, clock: FrozenClock
) -> None:
    handler = CountingHandler()
    install(wechat.app, handler)
    async with second_instance(settings, clock) as other:
        install(other.app, handler)
        one = await wechat.say("oA", "一", encrypted=False)
        two = await other.say("oB", "二", encrypted=False)
    assert one == "run 1: text 一"
    assert two == "run 2: text 二"
    assert handler.runs == 2


async def test_distinct_msgids_each_run(wechat: WeChat) -> None:
    handler = install(wechat.app, CountingHandler())
    first = await wechat.send(wechat.side.text("oD", "签到", msg_id=9100010))
    second = await wechat.send(wechat.side.text("oD", "签到", msg_id=9100011))
    assert first is not None
    assert second is not None
    assert first["Content"] == "run 1: text 签到"
    assert second["Content"] == "run 2: text 签到"
    assert handler.runs == 2


async def test_msgid_is_compared_as_a_string(wechat: WeChat) -> None:
    """Mini Program cloud pushes have shown non-numeric ids; `0123` and `123` are two messages."""
    handler = install(wechat.app, CountingHandler())
    await wechat.send({**wechat.side.text("oS", "x"), "MsgId": "0123"})
    await wechat.send({**wechat.side.text("oS", "x"), "MsgId": "123"})
    await wechat.send({**wechat.side.text("oS", "x"), "MsgId": "abc_1555684067"})
    await wechat.send({**wechat.side.text("oS", "x"), "MsgId": "abc_1555684067"})
    assert handler.runs == 3


# ---------------------------------------------------------------------------------- events


@pytest.mark.parametrize("encrypted", MODES)
async def test_retried_event_is_processed_once(wechat: WeChat, encrypted: bool) -> None:
    handler = install(wechat.app, CountingHandler())
    fields = wechat.side.event("oEVT", "CLICK", "CHECKIN")
    plains = []
    for _ in range(3):
        push = wechat.side.sign(fields, encrypted=encrypted)
        response = await post_signed(wechat, push)
        plains.append(open_reply(response, push, encrypted=encrypted, now=int(wechat.side.now())))
    assert plains[0] == plains[1] == plains[2]
    assert handler.runs == 1


async def test_retried_event_concurrently_is_processed_once(wechat: WeChat) -> None:
    handler = install(wechat.app, CountingHandler(delay=0.2))
    push = wechat.side.sign(wechat.side.event("oEVT", "subscribe", "qrscene_ref_ABC123"))
    responses = await asyncio.gather(*(post_signed(wechat, push) for _ in range(3)))
    same_reply(list(responses), encrypted=False)
    assert handler.runs == 1


async def test_subscribe_and_scan_in_the_same_second_are_two_deliveries(wechat: WeChat) -> None:
    handler = install(wechat.app, CountingHandler())
    subscribe = wechat.side.event("oSAME", "subscribe", "qrscene_store_0042")
    scan = wechat.side.event("oSAME", "SCAN", "store_0042")
    assert subscribe["CreateTime"] == scan["CreateTime"]
    for fields in (subscribe, scan, subscribe, scan):
        await wechat.send(fields)
    assert handler.runs == 2
    assert handler.calls[0] != handler.calls[1]


@pytest.mark.parametrize(
    "other",
    [
        pytest.param({"EventKey": "CHECKIN"}, id="other-key"),
        pytest.param({"FromUserName": "oSOMEONE_ELSE"}, id="other-sender"),
        pytest.param({"CreateTime": 1}, id="other-second"),
    ],
)
async def test_events_differing_in_one_part_of_the_key_are_two_deliveries(
    wechat: WeChat, other: dict[str, Any]
) -> None:
    handler = install(wechat.app, CountingHandler())
    fields = wechat.side.event("oK", "CLICK", "BALANCE")
    await wechat.send(fields)
    await wechat.send({**fields, **other})
    assert handler.runs == 2


async def test_real_handlers_replay_the_welcome_without_a_second_effect(wechat: WeChat) -> None:
    """With the real router: a retried subscribe answers the same welcome and writes nothing new."""
    fields = wechat.side.event("oWELCOME", "subscribe")
    first = await wechat.post(fields)
    again = await wechat.post(fields)
    assert first.status_code == again.status_code == 200
    assert wechat.side.open_reply(first.content) == wechat.side.open_reply(again.content)
    assert await outbox_rows(wechat.app) == []
