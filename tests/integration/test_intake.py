"""What the webhook asks the KV before a handler runs, in one script (bot/inbound/intake.py), on memory:// and on
Redis: the claim that makes a delivery run once, and the member's lock, even when the KV client sends the
script a second time because the connection dropped before the answer."""

from __future__ import annotations

import pytest

from bot.inbound import intake
from bot.inbound.dedupe import PROCESSING
from bot.inbound.parse import build_inbound
from devtools.simclient import WeChatSide
from handlers.core.message import OFFICIAL_ACCOUNT, Inbound
from tests.support.factories import local
from tests.support.fakes import WeChat

pytestmark = pytest.mark.kv_cluster  # also on a Redis Cluster (issue 20)

OPENID = "oINTAKEtestMEMBERaaaaaaaaaaa"


@pytest.fixture
def script(wechat: WeChat) -> intake.IntakeScript:
    """The app's own, as the webhook uses it."""
    return wechat.pipeline.intake


def _message(text: str, msg_id: int) -> Inbound:
    fields = WeChatSide("t").text(OPENID, text, msg_id=msg_id)
    return build_inbound(OFFICIAL_ACCOUNT, fields, local(2026, 5, 4, 9))


async def test_the_first_delivery_claims_locks_and_reads_the_flow_state(script: intake.IntakeScript) -> None:
    msg = _message("签到", 1001)
    kv = script.conversation.store.kv
    await kv.set(script.conversation.store.key("oa", OPENID), '{"flow": "signup", "step": "phone"}')
    first = await script.take(msg)
    assert first.seen is None
    assert first.touch_due
    assert first.prefetched is not None
    assert first.prefetched.state == '{"flow": "signup", "step": "phone"}'
    assert await kv.get(script.conversation.lock_key(msg)) == first.prefetched.token

    retry = await script.take(msg)  # WeChat's retry: stops at the claim
    assert retry.seen is not None
    assert retry.seen.state == PROCESSING
    assert retry.prefetched is None

    other = await script.take(_message("积分", 1002))  # same member, lock taken
    assert other.seen is None
    assert other.prefetched is None  # the conversation waits for the lock itself
    assert not other.touch_due  # recorded once a minute


async def test_a_script_sent_again_by_the_client_keeps_its_claim_and_lock(
    script: intake.IntakeScript, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py resends a command whose connection dropped before the answer: the script may run twice
    with the same arguments. The second run must find its own claim and lock, not a stranger's; else the
    message went unanswered and the member's next messages waited for the lock to expire."""
    monkeypatch.setattr(intake, "new_token", lambda: "same-attempt-token")
    msg = _message("签到", 2001)
    first = await script.take(msg)
    again = await script.take(msg)
    assert again.seen is None
    assert again.touch_due == first.touch_due
    assert again.prefetched is not None
    assert again.prefetched.token == "same-attempt-token"


async def test_the_members_ticket_keys_come_back_with_the_claim(script: intake.IntakeScript) -> None:
    """An answer owed and a rating asked for are read in the same script, set or not (a handler asks the
    KV again only for a message the intake did not see)."""
    kv = script.conversation.store.kv
    notice, rate = intake.read_keys("oa", OPENID)
    nothing = await script.take(_message("你好", 3001))
    assert nothing.known == {notice: None, rate: None}
    await kv.set(rate, "T-ABC123")
    asked = await script.take(_message("5", 3002))
    assert asked.known == {notice: None, rate: "T-ABC123"}
    await kv.set(notice, "1")
    both = await script.take(_message("好的", 3003))
    assert both.known == {notice: "1", rate: "T-ABC123"}


async def test_a_text_message_asks_the_kv_once(wechat: WeChat, monkeypatch: pytest.MonkeyPatch) -> None:
    """The intake's one round trip answers what the ticket handlers look up on every text message."""
    kv = wechat.services.kv
    asked: list[str] = []
    real_get = kv.get

    async def counting_get(key: str) -> str | None:
        asked.append(key)
        return await real_get(key)

    monkeypatch.setattr(kv, "get", counting_get)
    await wechat.say(OPENID, "随便说点什么")
    await wechat.say(OPENID, "3")
    assert [key for key in asked if key.startswith("wxbot:ticket:")] == []
