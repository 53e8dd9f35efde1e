"""The outbox sender: claims due rows, applies the push policy (consent, 4 a month, quiet hours),
picks WeChat's legal channel (customer service in the 48 h window, template, Mini Program
subscription credit), paces every sender together, retries what WeChat asks to retry."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from storage import broadcasts, cswindow, outbox, subscriptions
from storage.clock import Clock
from storage.db import Database
from storage.enums import Source
from storage.kv import KV
from storage.models import Member, Outbox
from storage.outbox import MARKETING, PushSender, SendResult
from storage.rules import Rules

log = logging.getLogger("wxbot.sender")
RETRY = {-1, -2, 45009, 45011}  # busy, no answer, daily quota, minute quota
NEXT_CHANNEL = {45015, 45047, 43101, 47003, 40037, 48001}
CHANNELS = outbox.CHANNELS  # best first (PRODUCT.md)
_BUCKET = """
local interval = 1000 / tonumber(ARGV[1]); local now = tonumber(ARGV[2])
local tat = now
local v = redis.call('GET', KEYS[1])
if v then tat = math.max(tonumber(v), now) end
local ttl = math.ceil(tat + interval - now) + 60000
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', ttl)
return math.floor(tat - now)
"""


ROBOT_PER_SECOND = 20 / 60


def _robot_id(row: Outbox) -> str:
    """The robot's pacing bucket is named by a hash: the key itself is a secret."""
    key = str(json.loads(row.payload).get("robot_key", ""))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class SenderConfig:
    templates: dict[str, str] = field(default_factory=dict)  # kind -> OA template id
    subscribe_templates: dict[str, str] = field(default_factory=dict)  # kind -> MP template id
    qps: float = 20.0  # all senders together; 0 turns pacing off
    max_attempts: int = 5
    # A claim lasts this long unless renewed (every third of it, while the batch is worked): a dead
    # sender's rows are taken over within lease + one idle wait.
    lease: timedelta = timedelta(seconds=30)
    # A send in flight when its sender died is resent only through the template channel within this
    # long: WeChat sends one client_msg_id once in about 10 minutes (wechat-protocol.md 5.4).
    dedupe_window: timedelta = timedelta(minutes=5)
    batch: int = 20


class Sender:
    def __init__(
        self, db: Database, kv: KV, rules: Rules, tz: ZoneInfo, push: PushSender, clock: Clock,
        config: SenderConfig | None = None,
    ) -> None:
        self.db, self.kv, self.rules, self.tz, self.push, self.clock = db, kv, rules, tz, push, clock
        self.config = config or SenderConfig()
        self.instance = secrets.token_hex(6)

    async def run_once(self) -> int:
        """Claim and deliver one batch; returns how many rows were handled."""
        now = self.clock.now()
        back, uncertain = await outbox.recover_stuck(self.db, now, self.config.dedupe_window)
        if back or uncertain:
            log.warning("took over a stopped sender's rows: %s to send again, %s uncertain", back, uncertain)
        rows = await outbox.claim(self.db, now, self.config.batch, by=self.instance, lease=self.config.lease)
        if not rows:
            return 0
        async with self._renewing():
            for row in rows:
                try:
                    await self.deliver(row)
                except Exception:  # one bad row must not stop the batch; it is retried later
                    log.exception("delivery of outbox row %s failed", row.id)
                    async with self.db.unit_of_work() as session:
                        await outbox.finish(session, row, outbox.PENDING, self.clock.now(), reason="internal error",
                                            retry_at=self.clock.now() + timedelta(minutes=1))
        return len(rows)

    @contextlib.asynccontextmanager
    async def _renewing(self) -> AsyncIterator[None]:
        """Keep this sender's claim alive while it works a batch (a slow WeChat, a long pace)."""
        async def renew() -> None:
            every = self.config.lease.total_seconds() / 3
            while True:
                await asyncio.sleep(every)
                try:
                    await outbox.renew(self.db, self.instance, self.clock.now() + self.config.lease)
                except Exception:  # a database blip: the next renewal may still make it in time
                    log.exception("renewing the outbox claim failed")

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_forever(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("sender batch failed")
                handled = 0
            if not handled:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=idle)
                except TimeoutError:
                    pass

    async def deliver(self, row: Outbox) -> None:
        if not outbox.resend_is_safe(row, self.clock.now(), self.config.dedupe_window):
            # Taken back from a dead sender but held since (quiet hours, the cap): WeChat's dedupe
            # no longer covers a resend.
            async with self.db.unit_of_work() as session:
                await outbox.mark_uncertain(session, row, self.clock.now())
            return
        if row.category != MARKETING:
            await self._send(row, await self._member(row))
            return
        # One member's marketing pushes are decided one at a time across every sender. The lock lasts
        # as long as a claim: one a dead sender held must not outlast the takeover of its rows.
        hold = self.config.lease.total_seconds()
        async with self.kv.lock(f"wxbot:lock:push:{row.member_id}", ttl=hold, wait=hold + 5):
            member = await self._member(row)
            if await self._held_or_dropped(row, member):
                return
            await self._send(row, member)

    async def _member(self, row: Outbox) -> Member | None:
        if row.member_id is None:
            return None
        async with self.db.sessions() as session:
            return await session.get(Member, row.member_id)

    async def _held_or_dropped(self, row: Outbox, member: Member | None) -> bool:
        now = self.clock.now()
        reason = outbox.may_market(member)
        if reason is None and row.deadline is not None and now >= row.deadline:
            reason = "too late: the reason for this push has passed"
        if reason is None and row.broadcast_id is not None:
            async with self.db.sessions() as session:
                if await broadcasts.is_cancelled(session, row.broadcast_id):
                    reason = broadcasts.CANCELLED_REASON
        if reason is not None:
            return await self._end(row, outbox.DROPPED, reason)
        if self.rules.in_quiet_hours(now, self.tz):
            return await self._retry(row, self.rules.next_send_time(now, self.tz), "quiet hours", count=False)
        window = timedelta(days=self.rules.marketing_window_days)
        async with self.db.sessions() as session:
            sent = await outbox.marketing_sent_since(
                session, row.member_id, now - window, batch=row.claimed_at  # type: ignore[arg-type]  # may_market() passed: the row has a member
            )
        cap = self.rules.marketing_cap_at(now, self.tz)  # a festival day allows one more
        if len(sent) < cap:
            return False
        free_at = sent[0] + window
        if row.priority >= outbox.PRIORITY["birthday"] and (row.deadline is None or free_at < row.deadline):
            return await self._retry(row, self.rules.next_send_time(free_at, self.tz), outbox.CAP_HELD, count=False)
        return await self._end(row, outbox.DROPPED, f"{outbox.CAP_HELD} of {cap} reached")

    async def _send(self, row: Outbox, member: Member | None) -> None:
        tried: list[str] = []
        for channel in self._channels(row):
            # A channel's allowance (a window send, a subscription credit) is taken only when that
            # channel is tried: a customer-service send must not spend the member's credit.
            opened = await self._open(channel, row, member)
            if opened is None:
                continue
            openid, template = opened
            if channel == "robot":  # WeCom allows 20 messages a minute per robot
                await self._pace(f"wxbot:pace:robot:{_robot_id(row)}", ROBOT_PER_SECOND)
            else:
                await self._pace("wxbot:pace:push", self.config.qps)
            if not await outbox.start_send(self.db, row, channel, self.clock.now(), self.instance):
                log.warning("outbox row %s: claim lost to another sender; not sent", row.id)
                return
            result = await self.push.send(channel, row, openid=openid, template_id=template)
            await self._record(row, result)
            tried.append(f"{channel}:{result.errcode}")
            if result.ok:
                return
            if result.errcode in RETRY:
                if channel == "subscribe" and template:  # nothing was sent: the credit is still unused
                    async with self.db.unit_of_work() as session:
                        await subscriptions.record_choice(session, openid, template, True, self.clock.now())
                await self._backoff(row, result)
                return
            await self._learn(row, member, result, template)
            if result.errcode == 40003:
                await self._end(row, outbox.UNDELIVERABLE, outbox.UNDELIVERABLE_CAUSES["not_user"])
                return
        if tried:
            await self._end(row, outbox.FAILED if row.attempts >= self.config.max_attempts else outbox.UNDELIVERABLE,
                            outbox.UNDELIVERABLE_CAUSES["refused"] + ": " + ", ".join(tried))
            return
        await self._end(row, outbox.UNDELIVERABLE, self._no_channel_reason(row, member))

    async def _open(self, channel: str, row: Outbox, member: Member | None) -> tuple[str, str | None] | None:
        """(openid, template) when `channel` may carry this push now, taking its allowance (a window
        send, a subscription credit); else None. Tried in CHANNELS order, one at a time."""
        if channel == "robot":
            return "", None
        if channel == "cs":
            return (row.openid, None) if await cswindow.take(self.kv, row.source, row.openid) else None
        if channel == "template":
            template = self.config.templates.get(row.kind)
            if template and row.source == Source.OA and member is not None and member.openid:
                return member.openid, template
            return None
        subscribe = self.config.subscribe_templates.get(row.kind)
        mp_openid = member.mp_openid if member is not None else (row.openid if row.source == Source.MP else None)
        if subscribe and mp_openid:
            async with self.db.unit_of_work() as session:
                if await subscriptions.use_credit(session, mp_openid, subscribe, self.clock.now()):
                    return mp_openid, subscribe
        return None

    @staticmethod
    def _channels(row: Outbox) -> tuple[str, ...]:
        if row.source == "wecom":
            return ("robot",)
        # A send a dead sender left in flight on the template channel goes again there only, with the
        # same client_msg_id, so WeChat's dedupe holds (another channel could deliver it twice).
        return ("template",) if row.in_flight == "template" else CHANNELS

    def _no_channel_reason(self, row: Outbox, member: Member | None) -> str:
        parts = [outbox.UNDELIVERABLE_CAUSES["no_channel"] + " (no message in 48 h, or its 5 sends used)"]
        parts.append(f"no template configured for {row.kind}" if row.kind not in self.config.templates
                     else "no Official Account openid for the template")
        parts.append("no Mini Program subscription credit")
        return "; ".join(parts)

    async def _learn(self, row: Outbox, member: Member | None, result: SendResult, template: str | None) -> None:
        if result.channel == "cs" and result.errcode in (45015, 45047):
            await cswindow.close(self.kv, row.source, row.openid)
        if result.channel == "subscribe" and result.errcode == 43101 and template and member is not None:
            async with self.db.unit_of_work() as session:
                await subscriptions.clear(session, member.mp_openid or row.openid, template, self.clock.now())

    async def _backoff(self, row: Outbox, result: SendResult) -> None:
        now = self.clock.now()
        if row.attempts >= self.config.max_attempts:
            reason = f"gave up after {row.attempts} attempts: {result.errcode} {result.detail}"
            await self._end(row, outbox.FAILED, reason)
            return
        if result.errcode == 45009 and result.channel != "robot":  # WeChat's daily quota: wait for tomorrow
            local = now.astimezone(self.tz)
            retry_at = datetime(local.year, local.month, local.day, tzinfo=self.tz) + timedelta(days=1, minutes=5)
        else:
            retry_at = now + timedelta(seconds=min(30 * 2 ** (row.attempts - 1), 3600))
        await self._retry(row, retry_at, f"{result.channel} answered {result.errcode}; retrying")

    async def _retry(self, row: Outbox, at: datetime, reason: str, *, count: bool = True) -> bool:
        async with self.db.unit_of_work() as session:
            # Waiting for quiet hours or for the cap is not a failed attempt.
            await outbox.finish(session, row, outbox.PENDING, self.clock.now(), reason=reason, retry_at=at,
                                uncount=not count)
        return True

    async def _end(self, row: Outbox, status: str, reason: str) -> bool:
        async with self.db.unit_of_work() as session:
            await outbox.finish(session, row, status, self.clock.now(), reason=reason)
        return True

    async def _record(self, row: Outbox, result: SendResult) -> None:
        """The answer, and on success the final state, in one transaction: a sender that dies after
        a delivery must not leave a row that looks unsent."""
        async with self.db.unit_of_work() as session:
            await outbox.attempt(session, row, result, self.clock.now())
            if result.ok:
                await outbox.finish(session, row, outbox.SENT, self.clock.now(), channel=result.channel,
                                    msgid=result.msgid)

    async def _pace(self, key: str, rate: float) -> None:
        """Every sender process together sends at `rate` per second (0 = off). Each call reserves the
        next free slot on a timeline kept in the KV and sleeps until it: a late wake-up delays this
        send only, not the slots after it, so the rate holds however many senders wait."""
        if rate <= 0:
            return
        wait_ms = int(await self.kv.eval(_BUCKET, [key], [rate, time.time() * 1000]))
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000)
