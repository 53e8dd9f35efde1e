"""Channel choice and recovery, through the real WeChatAPI and Sender against the fake WeChat API.

PRODUCT.md "How a push reaches a member": customer service inside the 48 h window (5 sends), else a
template when one is configured for the kind, else a Mini Program subscription credit, else
undeliverable with the reason. wechat-protocol.md §5.2: 40001/42001 refresh the token once and retry;
45015/45047 fall back; 43101 clears the credits; -1 backs off; 45009 waits for tomorrow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from storage import anomalies, cswindow, members, outbox, subscriptions
from storage.models import Outbox
from tests.support.factories import TZ, add_member, local
from tests.support.fakes import WeChat
from tests.support.push_support import CS, MP_APPID, STABLE_TOKEN, SUBSCRIBE, TEMPLATE, PushWorld, push_world

NOW = local(2026, 5, 20, 10, 0)  # 10:00 local: outside quiet hours
OPENID = "oCHANNEL0000000000000000001"
MP_OPENID = "oMPCHANNEL00000000000000001"
# birthday has an OA template; expiry only a Mini Program subscribe template; winback neither.
TEMPLATE_IDS = {"birthday": "TPL_birthday_0001"}
SUBSCRIBE_IDS = {"expiry": "MPT_expiry_0001", "birthday": "MPT_birthday_0001"}


@pytest.fixture
async def world(urls: tuple[str, str]) -> AsyncIterator[PushWorld]:
    async with push_world(
        urls, at=NOW, wechat_template_ids=TEMPLATE_IDS, miniprogram_subscribe_template_ids=SUBSCRIBE_IDS,
    ) as w:
        yield w


@pytest.fixture
async def member(world: PushWorld) -> int:
    return await add_member(world.db, NOW, openid=OPENID, mp_openid=MP_OPENID, birthday=(5, 20))


async def push(world: PushWorld, member: int, kind: str, key: str | None = None, **extra: object) -> str:
    key = key or f"{kind}:{member}:test"
    params = {"points": 200, "balance": 300} if kind != "expiry" else {"points": 80, "date": "2026-05-31"}
    await world.queue(key, member_id=member, openid=OPENID, kind=kind, category=outbox.MARKETING,
                      payload={"params": params}, **extra)  # type: ignore[arg-type]
    return key


async def drained_undeliverable(world: PushWorld, key: str) -> Outbox:
    """Runs the sender dry and returns the row, which must have ended undeliverable."""
    await world.drain()
    row = await world.row(key)
    assert row.status == "undeliverable"
    return row


async def credits(world: PushWorld, template: str) -> int:
    async with world.db.sessions() as session:
        return await subscriptions.credits(session, MP_OPENID, template)


async def grant(world: PushWorld, template: str, n: int = 1) -> None:
    async with world.db.unit_of_work() as session:
        for _ in range(n):
            await subscriptions.record_choice(session, MP_OPENID, template, True, world.clock.now())


# --- channel choice -------------------------------------------------------------------------------


async def test_inside_the_window_goes_by_customer_service(world: PushWorld, member: int) -> None:
    await cswindow.opened_by_message(world.kv, "oa", OPENID)
    key = await push(world, member, "birthday")
    assert await world.drain() == 1
    row = await world.row(key)
    assert (row.status, row.channel) == ("sent", "cs")
    calls = await world.sends()
    assert [(c["path"], c["body"]["touser"]) for c in calls] == [(CS, OPENID)]
    assert "生日快乐" in calls[0]["body"]["text"]["content"]
    assert await world.kv.get(cswindow.key("oa", OPENID)) == "4"  # one of the five used


async def test_window_closed_goes_by_template_when_configured(world: PushWorld, member: int) -> None:
    key = await push(world, member, "birthday")
    await world.drain()
    row = await world.row(key)
    assert (row.status, row.channel) == ("sent", "template")
    [call] = await world.sends()
    assert call["path"] == TEMPLATE
    assert call["body"]["template_id"] == TEMPLATE_IDS["birthday"]
    assert call["body"]["client_msg_id"] == key
    assert row.wechat_msgid == str(call["response"]["msgid"])
    assert await credits(world, SUBSCRIBE_IDS["birthday"]) == 0  # nothing else was touched


async def test_quota_of_five_used_goes_by_template(world: PushWorld, member: int) -> None:
    await cswindow.opened_by_message(world.kv, "oa", OPENID)
    for _ in range(5):
        assert await cswindow.take(world.kv, "oa", OPENID)
    key = await push(world, member, "birthday")
    await world.drain()
    row = await world.row(key)
    assert (row.status, row.channel) == ("sent", "template")
    assert [c["path"] for c in await world.sends()] == [TEMPLATE]


async def test_the_window_gives_five_sends_then_the_template_takes_over(world: PushWorld, member: int) -> None:
    await cswindow.opened_by_message(world.kv, "oa", OPENID)
    for i in range(7):
        await world.queue(f"notice:{i}", member_id=member, openid=OPENID, kind="birthday")
    await world.drain()
    assert [c["path"] for c in await world.sends()] == [CS] * 5 + [TEMPLATE] * 2
    assert {r.status for r in await world.rows()} == {"sent"}


async def test_subscribe_credit_present_goes_by_subscribe_and_is_used_up(world: PushWorld, member: int) -> None:
    template = SUBSCRIBE_IDS["expiry"]
    await grant(world, template, 2)
    first = await push(world, member, "expiry", "expiry:1")
    await world.drain()
    row = await world.row(first)
    assert (row.status, row.channel) == ("sent", "subscribe")
    [call] = await world.sends()
    assert (call["path"], call["appid"]) == (SUBSCRIBE, MP_APPID)
    assert (call["body"]["touser"], call["body"]["template_id"]) == (MP_OPENID, template)
    assert await credits(world, template) == 1

    second = await push(world, member, "expiry", "expiry:2")
    await world.drain()
    assert (await world.row(second)).channel == "subscribe"
    assert await credits(world, template) == 0

    third = await push(world, member, "expiry", "expiry:3")
    row = await drained_undeliverable(world, third)
    assert "subscription credit" in (row.last_error or "")
    assert len(await world.sends()) == 2


async def test_no_channel_is_undeliverable_with_the_reason(world: PushWorld, member: int) -> None:
    key = await push(world, member, "winback")
    row = await drained_undeliverable(world, key)
    reason = row.last_error or ""
    assert "customer-service window" in reason
    assert "no template configured for winback" in reason
    assert "no Mini Program subscription credit" in reason
    assert await world.sends() == []


async def test_a_member_without_an_official_account_openid_has_no_template(world: PushWorld) -> None:
    member = await add_member(world.db, NOW, openid="", mp_openid=None)
    await world.queue("mp-only", member_id=member, openid="oSOMEONE", kind="birthday")
    row = await drained_undeliverable(world, "mp-only")
    assert "no Official Account openid for the template" in (row.last_error or "")


# --- recovery -------------------------------------------------------------------------------------


@pytest.mark.parametrize("errcode", [40001, 42001])
async def test_token_error_refreshes_once_and_retries(world: PushWorld, member: int, errcode: int) -> None:
    key = await push(world, member, "birthday")
    await world.script(TEMPLATE, errcode)
    await world.drain()
    row = await world.row(key)
    assert (row.status, row.channel) == ("sent", "template")
    tokens = await world.calls(STABLE_TOKEN)
    assert len(tokens) == 2  # the first token, then one refresh
    assert all(t["body"]["force_refresh"] is False for t in tokens)
    assert [c["errcode"] for c in await world.calls(TEMPLATE)] == [errcode, 0]
    # The refreshed token is shared: the next push uses it without another stable_token call.
    await push(world, member, "birthday", "birthday:again")
    await world.drain()
    assert len(await world.calls(STABLE_TOKEN)) == 2


async def test_a_second_token_error_is_not_retried_forever(world: PushWorld, member: int) -> None:
    key = await push(world, member, "birthday")
    await world.script(TEMPLATE, 40001, 40001)
    await world.drain()
    row = await world.row(key)
    assert row.status in outbox.FINAL  # ends, with the reason for operators
    assert "template:40001" in (row.last_error or "")
    assert len(await world.calls(STABLE_TOKEN)) == 2
    assert len(await world.calls(TEMPLATE)) == 2


@pytest.mark.parametrize("errcode", [45015, 45047])
async def test_customer_service_refused_falls_back_to_template_and_closes_the_window(
    world: PushWorld, member: int, errcode: int
) -> None:
    await cswindow.opened_by_message(world.kv, "oa", OPENID)
    key = await push(world, member, "birthday")
    await world.script(CS, errcode)
    await world.drain()
    row = await world.row(key)
    assert (row.status, row.channel) == ("sent", "template")
    assert [(c["path"], c["errcode"]) for c in await world.sends()] == [(CS, errcode), (TEMPLATE, 0)]
    assert [(a.channel, a.errcode) for a in await world.attempts(row.id)] == [("cs", errcode), ("template", 0)]
    assert await world.kv.get(cswindow.key("oa", OPENID)) is None
    assert not await cswindow.take(world.kv, "oa", OPENID)
    # The next push believes WeChat: straight to the template.
    await push(world, member, "birthday", "birthday:next")
    await world.drain()
    assert [c["path"] for c in await world.sends()][-1] == TEMPLATE
    assert len(await world.calls(CS)) == 1


async def test_customer_service_refused_without_a_template_is_undeliverable(world: PushWorld, member: int) -> None:
    await cswindow.opened_by_message(world.kv, "oa", OPENID)
    key = await push(world, member, "winback")
    await world.script(CS, 45015)
    row = await drained_undeliverable(world, key)
    assert "cs:45015" in (row.last_error or "")


async def test_43101_on_subscribe_clears_the_credits(world: PushWorld, member: int) -> None:
    template = SUBSCRIBE_IDS["expiry"]
    await grant(world, template, 3)
    key = await push(world, member, "expiry")
    await world.script(SUBSCRIBE, 43101)
    row = await drained_undeliverable(world, key)
    assert "subscribe:43101" in (row.last_error or "")
    assert await credits(world, template) == 0  # WeChat knows better than our count
    later = await push(world, member, "expiry", "expiry:later")
    await world.drain()
    assert (await world.row(later)).status == "undeliverable"
    assert len(await world.calls(SUBSCRIBE)) == 1  # no credit, no try


async def test_43101_on_subscribe_after_a_refused_customer_service_send(world: PushWorld, member: int) -> None:
    await cswindow.opened_by_message(world.kv, "oa", OPENID)
    await grant(world, SUBSCRIBE_IDS["expiry"], 1)
    key = await push(world, member, "expiry")
    await world.script(CS, 45015)
    await world.script(SUBSCRIBE, 43101)
    row = await drained_undeliverable(world, key)
    assert [(a.channel, a.errcode) for a in await world.attempts(row.id)] == [("cs", 45015), ("subscribe", 43101)]


async def test_an_openid_wechat_does_not_know_is_undeliverable_at_once(world: PushWorld, member: int) -> None:
    await grant(world, SUBSCRIBE_IDS["birthday"])
    key = await push(world, member, "birthday")
    await world.script(TEMPLATE, 40003)
    row = await drained_undeliverable(world, key)
    assert "openid" in (row.last_error or "")
    assert await world.calls(SUBSCRIBE) == []  # no other channel tried for a stranger


async def test_system_busy_backs_off_and_is_sent_later(world: PushWorld, member: int) -> None:
    key = await push(world, member, "birthday")
    await world.script(TEMPLATE, -1)
    await world.drain()
    row = await world.row(key)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == NOW + timedelta(seconds=30)
    assert "-1" in (row.last_error or "")
    assert await world.drain() == 0  # not due yet
    world.clock.advance(seconds=31)
    await world.drain()
    row = await world.row(key)
    assert (row.status, row.channel, row.attempts) == ("sent", "template", 2)
    assert [c["errcode"] for c in await world.calls(TEMPLATE)] == [-1, 0]


async def test_backoff_grows_between_attempts(world: PushWorld, member: int) -> None:
    key = await push(world, member, "birthday")
    await world.script(TEMPLATE, -1, -1, -1)
    waits = []
    for _ in range(3):
        before = world.clock.now()
        await world.drain()
        row = await world.row(key)
        waits.append((row.next_attempt_at - before).total_seconds())
        world.clock.set(row.next_attempt_at)
    assert waits == [30, 60, 120]
    await world.drain()
    assert (await world.row(key)).status == "sent"


async def test_daily_quota_waits_for_tomorrow(world: PushWorld, member: int) -> None:
    await world.queue("notice:quota", member_id=member, openid=OPENID, kind="birthday")  # transactional
    await world.script(TEMPLATE, 45009)
    await world.drain()
    row = await world.row("notice:quota")
    assert row.status == "pending"
    retry = row.next_attempt_at.astimezone(TZ)
    assert retry.date() == NOW.astimezone(TZ).date() + timedelta(days=1)
    assert retry.hour == 0  # just after local midnight, when WeChat's daily quota resets
    world.clock.set(row.next_attempt_at - timedelta(seconds=1))
    assert await world.drain() == 0
    world.clock.set(row.next_attempt_at)
    await world.drain()
    assert (await world.row("notice:quota")).status == "sent"


async def test_daily_quota_on_a_marketing_push_then_waits_for_the_morning(world: PushWorld, member: int) -> None:
    key = await push(world, member, "birthday")
    await world.script(TEMPLATE, 45009)
    await world.drain()
    row = await world.row(key)
    world.clock.set(row.next_attempt_at)  # 00:05 tomorrow: quiet hours
    await world.drain()
    row = await world.row(key)
    assert row.status == "pending"
    assert row.next_attempt_at == local(2026, 5, 21, 9, 0)
    assert row.attempts == 1  # waiting for the morning is not an attempt
    world.clock.set(row.next_attempt_at)
    await world.drain()
    assert (await world.row(key)).status == "sent"


async def test_minute_quota_is_retried(world: PushWorld, member: int) -> None:
    key = await push(world, member, "birthday")
    await world.script(TEMPLATE, 45011)
    await world.drain()
    assert (await world.row(key)).status == "pending"
    world.clock.advance(minutes=1)
    await world.drain()
    assert (await world.row(key)).status == "sent"


async def test_after_max_attempts_the_push_fails(world: PushWorld, member: int) -> None:
    key = await push(world, member, "birthday")
    attempts = world.sender.config.max_attempts
    await world.script(TEMPLATE, *([-1] * (attempts + 3)))
    for _ in range(attempts + 3):
        await world.drain()
        row = await world.row(key)
        if row.status != "pending":
            break
        world.clock.set(row.next_attempt_at)
    row = await world.row(key)
    assert (row.status, row.attempts) == ("failed", attempts)
    assert f"gave up after {attempts} attempts" in (row.last_error or "")
    assert len(await world.calls(TEMPLATE)) == attempts
    assert len(await world.attempts(row.id)) == attempts


async def test_a_crash_between_claim_and_result(world: PushWorld, member: int) -> None:
    """A sender died after claiming, before any send: its rows are provably unsent, so once its
    30-second lease lapses they are sent, marketing and transactional alike, once each."""
    await push(world, member, "birthday", "marketing:1")
    await world.queue("transactional:1", member_id=member, openid=OPENID, kind="birthday")
    claimed = await outbox.claim(world.db, world.clock.now(), 10, by="dead")
    assert {r.dedupe_key for r in claimed} == {"marketing:1", "transactional:1"}
    world.clock.advance(seconds=20)  # before the lease is over nobody touches them
    assert await world.drain() == 0
    assert {r.status for r in await world.rows()} == {"sending"}
    world.clock.advance(seconds=11)
    await world.drain()
    assert {(r.dedupe_key, r.status, r.attempts) for r in await world.rows()} == {
        ("marketing:1", "sent", 1), ("transactional:1", "sent", 1)}
    assert sorted(c["body"]["client_msg_id"] for c in await world.calls(TEMPLATE)) == ["marketing:1", "transactional:1"]


async def in_flight(world: PushWorld, key: str, channel: str) -> None:
    """A dead sender's last act: the row claimed and a send on `channel` started, no answer recorded."""
    row = await world.row(key)
    (claimed,) = await outbox.claim(world.db, world.clock.now(), 1, by="dead")
    assert claimed.id == row.id
    assert await outbox.start_send(world.db, claimed, channel, world.clock.now(), "dead")


async def test_a_send_in_flight_on_customer_service_is_reported_not_resent(world: PushWorld, member: int) -> None:
    """No dedupe covers a customer-service message: the row is `uncertain` and an anomaly tells
    operators, for a transactional row too (a redemption code must not arrive twice)."""
    await world.queue("transactional:1", member_id=member, openid=OPENID, kind="birthday")
    await push(world, member, "birthday", "marketing:1")
    for key in ("transactional:1", "marketing:1"):
        await in_flight(world, key, "cs")
    world.clock.advance(seconds=31)
    await world.drain()
    assert {(r.dedupe_key, r.status) for r in await world.rows()} == {
        ("transactional:1", "uncertain"), ("marketing:1", "uncertain")}
    assert await world.sends() == []
    async with world.db.sessions() as session:
        found = await anomalies.for_member(session, member)
    assert sorted(a.kind for a in found) == ["push_uncertain", "push_uncertain"]
    world.clock.advance(hours=1)
    await world.drain()
    assert await world.sends() == []


async def test_a_template_send_in_flight_is_resent_with_the_same_client_msg_id(
    world: PushWorld, member: int
) -> None:
    """The template send reached WeChat before its sender died: the resend carries the same
    client_msg_id, so WeChat delivers it once; the row ends sent."""
    await push(world, member, "birthday", "marketing:1")
    await in_flight(world, "marketing:1", "template")
    await cswindow.opened_by_message(world.kv, "oa", OPENID)  # must not tempt the resend onto another channel
    row = await world.row("marketing:1")
    await world.api.send_template(OPENID, "TPL_birthday", {"thing1": {"value": "x"}}, client_msg_id=row.dedupe_key)
    world.clock.advance(seconds=31)
    await world.drain()
    assert (await world.row("marketing:1")).status == "sent"
    calls = await world.calls(TEMPLATE)
    assert [(c["body"]["client_msg_id"], c["duplicate"]) for c in calls] == [
        ("marketing:1", False), ("marketing:1", True)]
    assert len(await world.delivered()) == 1


async def test_an_in_flight_row_held_past_the_dedupe_window_is_reported(world: PushWorld, member: int) -> None:
    await push(world, member, "birthday", "marketing:1")
    await in_flight(world, "marketing:1", "template")
    world.clock.advance(minutes=6)
    await world.drain()
    assert (await world.row("marketing:1")).status == "uncertain"
    assert await world.sends() == []


async def test_network_error_is_retried(world: PushWorld, member: int) -> None:
    key = await push(world, member, "birthday")
    original = world.http.post
    failed = []

    async def flaky(url: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if url.endswith(TEMPLATE) and not failed:
            failed.append(url)
            raise httpx.ConnectError("connection refused")
        return await original(url, *args, **kwargs)  # type: ignore[arg-type]

    world.http.post = flaky  # type: ignore[method-assign]
    await world.drain()
    row = await world.row(key)
    assert row.status == "pending"
    assert [(a.channel, a.errcode) for a in await world.attempts(row.id)] == [("template", -2)]
    world.clock.advance(minutes=1)
    await world.drain()
    assert (await world.row(key)).status == "sent"


# --- delivery reports through the chat webhook --------------------------------------------------


async def test_templatesendjobfinish_failure_marks_the_row_undeliverable(urls: tuple[str, str], wechat: WeChat) -> None:
    async with push_world(urls, at=NOW, wechat_template_ids=TEMPLATE_IDS) as world:
        member = await add_member(world.db, NOW, openid=OPENID)
        blocked = await push(world, member, "birthday", "birthday:blocked")
        fine = await push(world, member, "birthday", "birthday:fine")
        await world.drain()
        rows = {key: await world.row(key) for key in (blocked, fine)}
        assert {r.status for r in rows.values()} == {"sent"}
        assert all(r.wechat_msgid for r in rows.values())

        await wechat.event(OPENID, "TEMPLATESENDJOBFINISH", MsgID=rows[blocked].wechat_msgid,
                           Status="failed:user block")
        await wechat.event(OPENID, "TEMPLATESENDJOBFINISH", MsgID=rows[fine].wechat_msgid, Status="success")
        row = await world.row(blocked)
        assert row.status == "undeliverable"
        assert "user block" in (row.last_error or "")
        assert (await world.row(fine)).status == "sent"


# --- the push policy, checked again when the push is sent ----------------------------------------------


async def test_marketing_in_quiet_hours_waits_for_nine(world: PushWorld, member: int) -> None:
    world.clock.set(local(2026, 5, 20, 21, 30))
    key = await push(world, member, "birthday")
    await world.queue("receipt", member_id=member, openid=OPENID, kind="birthday")  # transactional: not held
    await world.drain()
    row = await world.row(key)
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, "quiet hours")
    assert row.next_attempt_at == local(2026, 5, 21, 9, 0)
    assert (await world.row("receipt")).status == "sent"
    world.clock.set(local(2026, 5, 21, 8, 59))
    assert await world.drain() == 0
    world.clock.set(local(2026, 5, 21, 9, 0))
    await world.drain()
    assert (await world.row(key)).status == "sent"
    assert [c["body"]["client_msg_id"] for c in await world.delivered()] == ["receipt", key]


@pytest.mark.parametrize("change", ["opted_out", "unsubscribed", "deleted"])
async def test_a_member_who_stops_marketing_after_the_push_was_queued_gets_none(
    world: PushWorld, member: int, change: str
) -> None:
    key = await push(world, member, "birthday")
    await world.queue("receipt", member_id=member, openid=OPENID, kind="birthday")
    async with world.db.unit_of_work() as session:
        if change == "opted_out":
            await members.set_marketing_opt_out(session, member, True)
        elif change == "unsubscribed":
            await members.set_status(session, OPENID, members.UNSUBSCRIBED)
        else:
            await members.delete(session, member)
    await world.drain()
    row = await world.row(key)
    assert row.status == "dropped"
    assert row.last_error
    marketing = [c for c in await world.delivered() if c["body"].get("client_msg_id") == key]
    assert marketing == []


async def test_over_the_monthly_cap_an_expiry_reminder_waits_and_a_winback_is_dropped(
    world: PushWorld, member: int
) -> None:
    first = world.clock.now()
    for i in range(4):  # four marketing pushes, two days apart
        await push(world, member, "birthday", f"birthday:{i}")
        await world.drain()
        world.clock.advance(days=2)
    assert len(await world.delivered()) == 4
    await world.queue("expiry:late", member_id=member, openid=OPENID, kind="expiry", category=outbox.MARKETING,
                      payload={"params": {"points": 10, "date": "2026-06-30"}}, deadline=local(2026, 7, 1))
    await world.queue("winback:late", member_id=member, openid=OPENID, kind="winback", category=outbox.MARKETING)
    await world.drain()
    held, dropped = await world.row("expiry:late"), await world.row("winback:late")
    assert (held.status, held.last_error, held.attempts) == ("pending", "monthly cap", 0)
    assert held.next_attempt_at == first + timedelta(days=30)  # when the oldest of the four leaves the window
    assert dropped.status == "dropped"
    assert "monthly cap" in (dropped.last_error or "")
    await grant(world, SUBSCRIBE_IDS["expiry"])  # expiry reminders go by the Mini Program here
    world.clock.set(held.next_attempt_at)
    await world.drain()
    assert ((await world.row("expiry:late")).status, (await world.row("expiry:late")).channel) == ("sent", "subscribe")
    assert len(await world.delivered()) == 5
