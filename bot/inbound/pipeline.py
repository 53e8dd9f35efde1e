"""One inbound message from dedupe to reply: claim the delivery, run the conversation under a
deadline, answer in time or hand the replies to the outbox, and remember the answer for retries."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from bot import metrics
from bot.inbound.dedupe import OUTBOXED, REPLIED, DeliveryGuard
from bot.inbound.intake import Intake, IntakeScript
from bot.inbound.render import SUCCESS, render, to_custom_message
from bot.logs import KeyAdapter
from flows.engine import Conversation
from handlers import texts
from handlers.core.context import ChatContext, Services
from handlers.core.message import MINI_PROGRAM, OFFICIAL_ACCOUNT, Inbound
from handlers.core.reply import Ack, Reply, Text, TransferToAgent, merge_texts
from storage import outbox

log = logging.getLogger("wxbot.pipeline")


class ChatPipeline:
    def __init__(
        self,
        services: Services,
        conversation: Conversation,
        guard: DeliveryGuard,
        *,
        deadline: float,
        on_first_contact: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.services = services
        self.conversation = conversation
        self.guard = guard
        self.intake = IntakeScript(services.kv, guard, conversation)
        self.deadline = deadline
        self._late: set[asyncio.Task[Any]] = set()
        self.on_first_contact = on_first_contact

    async def process(self, msg: Inbound, started: float | None = None) -> str:
        """The plaintext passive reply for this delivery (`success` when there is nothing to say)."""
        started = started or time.monotonic()
        until = started + self.deadline
        intake = await self.intake.take(msg)
        if (seen := intake.seen) is not None:
            metrics.DEDUPE_HITS.labels(seen.state).inc()
            if seen.state not in (REPLIED, OUTBOXED):
                seen = await self.guard.wait(msg.dedupe_key, until)
            return seen.body if seen.state == REPLIED else SUCCESS

        ctx = ChatContext(msg, self.services, KeyAdapter(log, {"key": msg.dedupe_key}))
        task = asyncio.create_task(self._run(msg, ctx, intake))
        try:
            replies = await asyncio.wait_for(asyncio.shield(task), max(until - time.monotonic(), 0.01))
        except TimeoutError:
            await self.guard.outboxed(msg.dedupe_key)
            metrics.LATE_REPLIES.inc()
            ctx.log.warning("late reply intent=%s; replies go to the outbox", ctx.intent)
            self._track(self._deliver_late(msg, ctx, task))
            self._observe(msg, ctx, "late", started)
            return SUCCESS
        body = await self._answer(msg, ctx, replies)
        await self.guard.replied(msg.dedupe_key, body)
        self._observe(msg, ctx, "replied" if body != SUCCESS else "acked", started)
        return body

    async def _run(self, msg: Inbound, ctx: ChatContext, intake: Intake) -> list[Reply]:
        # When the member's row is due to record this interaction (once a minute per member), say so in
        # ctx.touch_due: a handler that opens a transaction on the member records it there, and the
        # pipeline does after the handler otherwise.
        due = ctx.touch_due = self.services.clock.now() if intake.touch_due else None
        failed = False
        try:
            return merge_texts(await self.conversation.handle(msg, ctx, intake.prefetched))
        except Exception:
            failed = True
            ctx.log.exception("handler failed intent=%s", ctx.intent)
            ctx.intent = f"{ctx.intent}:error"
            return [Text(texts.APOLOGY + "\n\n" + texts.HELP)]
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
        now = int(self.services.clock.now().timestamp())
        return render(passive, account=msg.app_id, openid=msg.openid, now=now, is_event=msg.is_event)

    async def _deliver_late(self, msg: Inbound, ctx: ChatContext, task: asyncio.Task[list[Reply]]) -> None:
        replies = await task
        await self._to_outbox(msg, replies, "late")
        ctx.log.info("late replies queued intent=%s count=%d", ctx.intent, len(replies))

    async def _to_outbox(self, msg: Inbound, replies: list[Reply], why: str) -> None:
        now = self.services.clock.now()
        async with self.services.db.unit_of_work() as session:
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
        metrics.LATENCY.labels(msg.source).observe(time.monotonic() - started)


