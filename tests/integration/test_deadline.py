"""The reply deadline: a slow handler gets `success` in time and its replies go to the outbox; retries
never run it again; a failing handler still answers (apology and menu), and retries get the same.

The slow handlers wait on a gate the test opens only after the webhook has answered, so "answered
before the handler finished" holds by construction, however loaded the machine is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.exc import IntegrityError

from bot.inbound.parse import build_inbound
from handlers import texts
from handlers.core.message import OFFICIAL_ACCOUNT
from storage import outbox
from storage.clock import FrozenClock
from storage.models import Outbox
from tests.support.fakes import WeChat, make_app, make_settings, serving
from tests.support.helpers import CountingHandler, custom_message, install, kv_keys, outbox_rows, post_signed

pytestmark = pytest.mark.kv_cluster  # also on a Redis Cluster (issue 20)

DEADLINE = 0.3
PROMPT = 3.0  # well inside WeChat's 5 s, whatever the load on the test machine
APOLOGY = texts.APOLOGY + "\n\n" + texts.HELP_VISITOR


@pytest.fixture
async def quick(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[WeChat]:
    """The app with reply_deadline=0.3 s."""
    app = make_app(make_settings(*urls, reply_deadline=DEADLINE), clock)
    async with serving(app, clock) as harness:
        yield harness


@pytest.mark.parametrize("encrypted", [False, True])
async def test_slow_handler_answers_success_now_and_the_outbox_after(quick: WeChat, encrypted: bool) -> None:
    gate = asyncio.Event()
    handler = install(quick.app, CountingHandler(gate=gate))
    push = quick.side.sign(quick.side.text("oSLOW", "签到", msg_id=7200001), encrypted=encrypted)

    started = time.monotonic()
    response = await post_signed(quick, push)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.text == "success"  # unencrypted, even in safe mode
    assert DEADLINE - 0.05 <= elapsed < PROMPT, elapsed
    assert handler.finished == 0
    assert await outbox_rows(quick.app) == []

    # a retry while the first run is still going: `success`, and no second run
    retry = await post_signed(quick, push)
    assert retry.text == "success"
    assert handler.runs == 1

    gate.set()
    await quick.pipeline.drain()
    rows = await outbox_rows(quick.app)
    assert len(rows) == 1
    row = rows[0]
    assert row.kind == "reply"
    assert row.openid == "oSLOW"
    assert row.source == "oa"
    assert row.status == "pending"
    assert "oa:msg:7200001" in row.dedupe_key
    assert custom_message(row) == {"msgtype": "text", "text": {"content": "run 1: text 签到"}}

    # a retry after it finished: still `success` (the answer is on its way), still one run, one row
    late = await post_signed(quick, push)
    assert late.text == "success"
    await quick.pipeline.drain()
    assert handler.runs == 1
    assert len(await outbox_rows(quick.app)) == 1


async def test_outbox_dedupe_key_is_unique(quick: WeChat) -> None:
    gate = asyncio.Event()
    install(quick.app, CountingHandler(gate=gate))
    assert (await quick.post(quick.side.text("oSLOW", "签到", msg_id=7200002))).text == "success"
    gate.set()
    await quick.pipeline.drain()
    (row,) = await outbox_rows(quick.app)
    db, now = quick.services.db, quick.services.clock.now()
    async with db.unit_of_work() as session:
        again = await outbox.enqueue(
            session, dedupe_key=row.dedupe_key, openid="oSLOW", kind="reply", payload={}, now=now
        )
    assert again is False
    assert len(await outbox_rows(quick.app)) == 1
    # the constraint itself, not only the insert-or-nothing, refuses a second row
    with pytest.raises(IntegrityError):
        async with db.unit_of_work() as session:
            session.add(Outbox(dedupe_key=row.dedupe_key, openid="o", kind="reply", payload="{}",
                               next_attempt_at=now, created_at=now))


async def test_retry_within_the_first_deadline_waits_then_answers_success(quick: WeChat) -> None:
    """A copy arriving while the first is still inside its deadline waits for it; neither runs twice."""
    gate = asyncio.Event()
    handler = install(quick.app, CountingHandler(gate=gate))
    push = quick.side.sign(quick.side.text("oSLOW", "签到", msg_id=7200003))

    async def retry_soon() -> str:
        await asyncio.sleep(0.1)
        return (await post_signed(quick, push)).text

    first, second = await asyncio.gather(post_signed(quick, push), retry_soon())
    assert first.text == "success"
    assert second == "success"
    gate.set()
    await quick.pipeline.drain()
    assert handler.runs == 1
    assert len(await outbox_rows(quick.app)) == 1


@pytest.mark.parametrize("encrypted", [False, True])
async def test_failing_handler_gets_apology_and_menu_and_retries_the_same(
    wechat: WeChat, encrypted: bool
) -> None:
    handler = install(wechat.app, CountingHandler(error=True))
    fields = wechat.side.text("oFAIL", "签到", msg_id=7200005)
    first = await wechat.send(fields, encrypted=encrypted)
    again = await wechat.send(fields, encrypted=encrypted)
    assert first is not None
    assert first["Content"] == APOLOGY
    assert again == first
    assert handler.runs == 1
    assert "wxbot:dedupe:{oa:oFAIL}:oa:msg:7200005" in await kv_keys(wechat.app)


async def test_slow_failing_handler_sends_the_apology_through_the_outbox(quick: WeChat) -> None:
    gate = asyncio.Event()
    handler = install(quick.app, CountingHandler(gate=gate, error=True))
    assert (await quick.post(quick.side.text("oFAIL", "签到", msg_id=7200006))).text == "success"
    gate.set()
    await quick.pipeline.drain()
    (row,) = await outbox_rows(quick.app)
    assert custom_message(row) == {"msgtype": "text", "text": {"content": APOLOGY}}
    assert handler.runs == 1


async def test_retry_while_running_gets_the_reply_when_the_first_finishes_in_time(wechat: WeChat) -> None:
    """Default deadline (4 s): the copy waits for the first run and gets its reply, byte for byte."""
    gate = asyncio.Event()
    handler = install(wechat.app, CountingHandler(gate=gate))
    push = wechat.side.sign(wechat.side.text("oQUICK", "签到", msg_id=7200004))

    async def retry_then_open() -> bytes:
        await asyncio.sleep(0.05)
        retry = asyncio.ensure_future(post_signed(wechat, push))
        await asyncio.sleep(0.1)
        assert not retry.done()  # it is waiting for the first delivery, not answering `success`
        gate.set()
        return (await retry).content

    first, second = await asyncio.gather(post_signed(wechat, push), retry_then_open())
    assert first.content == second
    assert "run 1: text 签到" in first.text
    assert handler.runs == 1
    assert await outbox_rows(wechat.app) == []


async def test_the_members_lock_is_let_go_with_the_stored_reply_and_after_a_late_delivery(quick: WeChat) -> None:
    """The lock the intake took is released in the round trip that stores the reply (or, for a late
    delivery, once its handler is done): the member's next message runs at once, not after the lock's TTL."""
    kv = quick.services.kv
    fields = quick.side.text("oLOCKFREE", "帮助", msg_id=7300001)
    lock = quick.pipeline.conversation.lock_key(build_inbound(OFFICIAL_ACCOUNT, fields, quick.services.clock.now()))
    assert texts.HELP_VISITOR in str((await quick.send(fields) or {}).get("Content"))
    assert await kv.get(lock) is None

    gate = asyncio.Event()
    handler = install(quick.app, CountingHandler(gate=gate))
    slow = quick.side.sign(quick.side.text("oLOCKFREE", "签到", msg_id=7300002))
    assert (await post_signed(quick, slow)).text == "success"
    assert await kv.get(lock) is not None  # held while the late handler runs
    gate.set()
    await quick.pipeline.drain()
    assert await kv.get(lock) is None
    started = time.monotonic()
    assert (await quick.say("oLOCKFREE", "积分")) == "run 2: text 积分"
    assert time.monotonic() - started < PROMPT
    assert handler.runs == 2
