"""One inbound message from dedupe to reply: claim the delivery, run the conversation under a
deadline, answer in time or hand the replies to the outbox, and remember the answer for retries.

Nothing lost, nothing doubled, under faults (issue 12):
- the intake runs inside the deadline; when the KV cannot answer in time the member is told to try
  again (texts.RETRY_LATER) and no claim is kept, so a copy of the message is processed afresh;
- the claim and the member's lock are short leases renewed while the work runs: a dead worker's lapse
  before WeChat's next retry, and a copy that finds the claim gone takes the delivery over;
- past the deadline the message is recorded durably (storage/deliveries.py) before the claim says
  `outboxed` and WeChat hears `success`; the record is completed in the transaction that writes the late
  replies, renewed while the worker lives, and run again by a sweep (bot/inbound/late.py) once it lapses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from bot import metrics
from bot.inbound import late
from bot.inbound.dedupe import OUTBOXED, REPLIED, DeliveryGuard
from bot.inbound.intake import Intake, IntakeScript
from bot.inbound.render import SUCCESS, render, to_custom_message
from bot.logs import KeyAdapter
from flows.engine import Conversation
from handlers import texts
from handlers.core.context import ChatContext, Services
from handlers.core.message import MINI_PROGRAM, OFFICIAL_ACCOUNT, Inbound
from handlers.core.reply import Ack, Reply, Text, TransferToAgent, merge_texts
from storage import deliveries, outbox
from storage.kv import KVError, new_token

log = logging.getLogger("wxbot.pipeline")


class _CompletedElsewhereError(Exception):
    """A late delivery another worker completed first: roll back, so its replies are not queued twice."""


async def _renew_every(period: float, renew: Callable[[], Awaitable[object]], what: str) -> None:
    """Call `renew` every `period` seconds until cancelled; a failed renewal is logged and the next one
    may get through (if none does, the lease lapses)."""
    while True:
        await asyncio.sleep(period)
        try:
            await renew()
        except KVError as exc:
            log.warning("renewing %s failed (%s)", what, type(exc).__name__)
        except Exception:
            log.exception("renewing %s failed", what)


class ChatPipeline:
    def __init__(
        self,
        services: Services,
        conversation: Conversation,
        guard: DeliveryGuard,
        *,
        deadline: float,
        late_lease: float,
        on_first_contact: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.services = services
        self.conversation = conversation
        self.guard = guard
        self.intake = IntakeScript(services.kv, guard, conversation, services.tz)
        self.deadline = deadline
        self.late_lease = late_lease
        self._late: set[asyncio.Task[Any]] = set()
        self.on_first_contact = on_first_contact

    async def process(self, msg: Inbound, started: float | None = None) -> str:
        """The plaintext passive reply for this delivery (`success` when there is nothing to say)."""
        started = started or time.monotonic()
        until = started + self.deadline
        try:
            async with asyncio.timeout(max(until - time.monotonic(), 0.01)):  # no task of its own, as wait_for's
                intake = await self._claim(msg, until)
        except (TimeoutError, KVError) as exc:
            log.warning("intake failed key=%s (%s); asked to try again", msg.dedupe_key, type(exc).__name__)
            metrics.MESSAGES.labels(msg.source, "intake", "retry_later").inc()
            return self._render(msg, Text(texts.RETRY_LATER))
        if (seen := intake.seen) is not None:
            return seen.body if seen.state == REPLIED else SUCCESS

        ctx = ChatContext(msg, self.services, KeyAdapter(log, {"key": msg.dedupe_key}))
        # The member's lock the intake took stays taken after the conversation (caller_releases): it is let
        # go in the round trip that stores the reply, or after the task on every other way out.
        release = (self.conversation.lock_key(msg), intake.token) if intake.prefetched is not None else None
        task = asyncio.create_task(self._run_leased(msg, ctx, intake))
        try:
            replies = await asyncio.wait_for(asyncio.shield(task), max(until - time.monotonic(), 0.01))
        except TimeoutError:
            return await self._go_late(msg, ctx, task, started, release)
        except asyncio.CancelledError:
            self._track(self._release_after(task, release))
            raise
        try:
            body = await self._answer(msg, ctx, replies)
        except BaseException:
            await self._let_go(release)
            raise
        await self._remember(msg, ctx, body, release)
        self._observe(msg, ctx, "replied" if body != SUCCESS else "acked", started)
        return body

    async def _claim(self, msg: Inbound, until: float) -> Intake:
        """Claim the delivery, or learn what became of it; a claim that lapses while this copy waits on it
        (its worker died) is claimed by this copy."""
        while True:
            intake = await self.intake.take(msg)
            if (seen := intake.seen) is None:
                return intake
            metrics.DEDUPE_HITS.labels(seen.state).inc()
            if seen.state in (REPLIED, OUTBOXED):
                return intake
            waited = await self.guard.wait(msg, until)
            if waited is not None:
                return Intake(waited)
            log.warning("a claim lapsed key=%s; this copy takes the delivery over", msg.dedupe_key)

    async def _run_leased(self, msg: Inbound, ctx: ChatContext, intake: Intake) -> list[Reply]:
        """The conversation, with the claim and the member's lock renewed every third of their lease."""
        held = {self.guard.key(msg): self.guard.processing_value(intake.token),
                self.conversation.lock_key(msg): intake.token}
        ttl = self.guard.processing_ttl
        renewing = asyncio.create_task(
            _renew_every(ttl / 3, lambda: self.services.kv.renew(held, ttl), "a delivery's lease")
        )
        try:
            return await self._run(msg, ctx, intake)
        finally:
            renewing.cancel()

    async def _go_late(
        self, msg: Inbound, ctx: ChatContext, task: asyncio.Task[list[Reply]], started: float,
        release: tuple[str, str] | None,
    ) -> str:
        """Past the deadline: hold the delivery durably, then say `outboxed` and answer `success`; the
        replies follow through the outbox. If it cannot be held, the member is told to try again."""
        try:
            async with self.services.db.unit_of_work() as session:
                record = await deliveries.record(
                    session, dedupe_key=msg.dedupe_key, inbound=late.dumps(msg),
                    now=self.services.clock.now(), lease=self.late_lease,
                )
        except Exception:
            ctx.log.exception("recording a late delivery failed; asked to try again")
            self._track(self._deliver_late(msg, ctx, task, None, release))
            body = self._render(msg, Text(texts.RETRY_LATER))
            await self._remember(msg, ctx, body)
            self._observe(msg, ctx, "retry_later", started)
            return body
        try:
            await self.guard.outboxed(msg)
        except KVError as exc:  # the durable record answers for the delivery; the claim lapses by itself
            ctx.log.warning("marking a delivery outboxed failed (%s)", type(exc).__name__)
        metrics.LATE_REPLIES.inc()
        ctx.log.warning("late reply intent=%s; replies go to the outbox", ctx.intent)
        self._track(self._deliver_late(msg, ctx, task, record, release))
        self._observe(msg, ctx, "late", started)
        return SUCCESS

    async def _remember(
        self, msg: Inbound, ctx: ChatContext, body: str, release: tuple[str, str] | None = None
    ) -> None:
        """Store the answer for WeChat's retries (and let the member's lock go with it); if the KV fails now,
        the answer still goes out and the lock lapses by its TTL."""
        try:
            await self.guard.replied(msg, body, release)
        except KVError as exc:
            ctx.log.warning("storing the reply for retries failed (%s)", type(exc).__name__)

    async def _let_go(self, release: tuple[str, str] | None) -> None:
        """Let the member's lock go, if this attempt took it and still holds it."""
        if release is not None:
            await self.services.kv.release(*release)

    async def _release_after(self, task: asyncio.Task[list[Reply]], release: tuple[str, str] | None) -> None:
        try:
            await asyncio.wait({task})
        finally:
            await self._let_go(release)

    def _render(self, msg: Inbound, reply: Reply) -> str:
        now = int(self.services.clock.now().timestamp())
        return render(reply, account=msg.app_id, openid=msg.openid, now=now, is_event=msg.is_event)

    async def _run(self, msg: Inbound, ctx: ChatContext, intake: Intake) -> list[Reply]:
        # When the member's row is due to record this interaction (once a minute per member), say so in
        # ctx.touch_due: a handler that opens a transaction on the member records it there, and the
        # pipeline does after the handler otherwise.
        due = ctx.touch_due = self.services.clock.now() if intake.touch_due else None
        ctx.known = intake.known
        failed = False
        try:
            return merge_texts(await self.conversation.handle(
                msg, ctx, intake.prefetched, intake.token, caller_releases=True
            ))
        except Exception:
            failed = True
            ctx.log.exception("handler failed intent=%s", ctx.intent)
            ctx.intent = f"{ctx.intent}:error"
            return [Text(texts.APOLOGY + "\n\n" + ctx.known_help_text())]
        finally:
            await self._settle_contact(msg, ctx, due, failed)

    async def _settle_contact(self, msg: Inbound, ctx: ChatContext, due: datetime | None, failed: bool) -> None:
        """Record the interaction if no handler did, in a transaction of its own (again after a failed
        handler, whose transaction may have taken it back: twice changes nothing); then look up a new
        follower's unionid, off the reply path."""
        if due is not None and (failed or ctx.touch_due is not None):
            ctx.touch_due = due
            try:
                async with self.services.db.unit_of_work() as session:
                    await ctx.record_touch(session)
            except Exception:
                ctx.log.exception("recording the interaction failed")
        if ctx.first_contact and msg.source == OFFICIAL_ACCOUNT and self.on_first_contact is not None:
            self._track(self.on_first_contact(msg.openid))

    async def _answer(self, msg: Inbound, ctx: ChatContext, replies: list[Reply]) -> str:
        """The first reply goes back passively; the rest (and all of them for the Mini
        Program, whose push takes only `success`) become customer-service messages."""
        if msg.source == MINI_PROGRAM:
            passive: Reply = next((r for r in replies if isinstance(r, TransferToAgent)), Ack())
            later = [r for r in replies if r is not passive]
        else:
            passive, later = replies[0], replies[1:]
        if later:
            await self._to_outbox(msg, later, "extra")
        return self._render(msg, passive)

    async def _deliver_late(
        self, msg: Inbound, ctx: ChatContext, task: asyncio.Task[list[Reply]], record: int | None,
        release: tuple[str, str] | None = None,
    ) -> None:
        keeping = asyncio.create_task(self._keep(record)) if record is not None else None
        try:
            replies = await task
        finally:
            if keeping is not None:
                keeping.cancel()
            await self._let_go(release)
        try:
            await self._to_outbox(msg, replies, "late", complete=record)
        except _CompletedElsewhereError:
            ctx.log.info("late delivery already completed by a sweep")
            return
        ctx.log.info("late replies queued intent=%s count=%d", ctx.intent, len(replies))

    async def _keep(self, record: int) -> None:
        """Renew the durable record's lease while this worker lives, so no sweep runs it meanwhile."""
        async def renew() -> None:
            async with self.services.db.unit_of_work() as session:
                await deliveries.renew(session, record, now=self.services.clock.now(), lease=self.late_lease)

        await _renew_every(self.late_lease / 3, renew, "a late delivery's lease")

    async def rerun(self, record: int, msg: Inbound) -> None:
        """Run an abandoned late delivery again (bot/inbound/late.py's sweep); its replies go to the outbox
        under the keys the first run would have used, so a run that did get that far is not doubled."""
        ctx = ChatContext(msg, self.services, KeyAdapter(log, {"key": msg.dedupe_key}))
        replies = await self._run_leased(msg, ctx, Intake(None, token=new_token()))
        try:
            await self._to_outbox(msg, replies, "late", complete=record)
        except _CompletedElsewhereError:
            return
        metrics.MESSAGES.labels(msg.source, ctx.intent, "recovered").inc()

    async def _to_outbox(self, msg: Inbound, replies: list[Reply], why: str, complete: int | None = None) -> None:
        now = self.services.clock.now()
        async with self.services.db.unit_of_work() as session:
            if complete is not None and not await deliveries.complete(session, complete, now=now):
                raise _CompletedElsewhereError
            for index, reply in enumerate(replies):
                custom = to_custom_message(reply)
                if custom is None:
                    continue
                await outbox.enqueue(
                    session,
                    dedupe_key=f"{why}:{msg.dedupe_key}:{index}",
                    openid=msg.openid,
                    source=msg.source,
                    kind="reply",
                    payload={"custom": custom},
                    now=now,
                )

    def _track(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._late.add(task)
        task.add_done_callback(self._late.discard)

    async def drain(self) -> None:
        """Wait for late replies still being written (called at shutdown and by tests)."""
        while self._late:
            await asyncio.gather(*list(self._late), return_exceptions=True)

    @staticmethod
    def _observe(msg: Inbound, ctx: ChatContext, outcome: str, started: float) -> None:
        metrics.MESSAGES.labels(msg.source, ctx.intent, outcome).inc()
        if ctx.unknown_event is not None:
            metrics.UNKNOWN_EVENTS.labels(ctx.unknown_event).inc()
        metrics.LATENCY.labels(msg.source).observe(time.monotonic() - started)


