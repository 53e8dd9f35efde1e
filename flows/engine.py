"""The flow engine: multi-step conversations over the router, one member at a time.

Order per message (aiogram #1317): take the member's lock, then load the state, handle
`取消`, run the active step or the router, save with a sliding TTL, release."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from flows.store import FlowState, FlowStore
from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Command, Filter
from handlers.core.message import Inbound
from handlers.core.reply import Reply, Text, TransferToAgent
from handlers.core.router import Router
from storage.errors import DomainError
from storage.kv import LockTimeoutError, member_tag

CANCEL = Command("取消", "cancel", "退出", "quit")


@dataclass(frozen=True)
class Next:
    step: str
    replies: list[Reply]
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class Stay:
    replies: list[Reply]
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class Done:
    replies: list[Reply]


@dataclass(frozen=True)
class Abort:
    replies: list[Reply]


@dataclass(frozen=True)
class Pass:
    """Not this step's answer but perhaps another command (签到 typed at the reward list): when the router
    has a route for it other than the catch-all, the flow ends and the message is routed; otherwise
    `otherwise` answers (the step's own re-prompt)."""

    otherwise: Answer


@dataclass(frozen=True)
class Leave:
    """Not this flow's answer at all (a survey the member did not answer): the flow ends and the message is
    handled as if no flow had been active, catch-all included. The step has done its own bookkeeping."""


Answer = Next | Stay | Done | Abort
StepResult = Answer | Pass | Leave
Step = Callable[[Inbound, ChatContext, FlowState], Awaitable[StepResult]]
Begin = Callable[[ChatContext, FlowState], Awaitable[Answer]]


@dataclass(frozen=True)
class Flow:
    """A named conversation: `begin` answers the entry, each step answers one reply."""

    name: str
    begin: Begin
    steps: dict[str, Step]
    entry: tuple[Filter, ...] = ()
    ttl: float = 600.0
    extra_entries: tuple[tuple[Filter, ...], ...] = field(default=())
    # Steps that also take an image or a blank text (a ticket's description), not only a typed command.
    media_steps: frozenset[str] = frozenset()
    # `取消` while this flow is active: its own bookkeeping and answer (else texts.CANCELLED).
    on_cancel: Callable[[ChatContext, FlowState], Awaitable[list[Reply]]] | None = None

    def takes(self, step: str, msg: Inbound) -> bool:
        return msg.is_text or (step in self.media_steps and msg.kind in ("text", "image", "voice"))


# What a member is owed before the answer to their message (a ticket answer that found no window open).
Preface = Callable[[Inbound, ChatContext], Awaitable[list[Reply]]]
# What may follow the answer to a member's message, given that answer (a survey's question, asked inside
# the member's own session); it may start a flow through ctx.flows.
Afterword = Callable[[Inbound, ChatContext, list[Reply]], Awaitable[list[Reply]]]


class FlowRuntime:
    """The FlowControl a handler sees for one message."""

    def __init__(self, conversation: Conversation, ctx: ChatContext, state: FlowState | None):
        self._conv = conversation
        self._ctx = ctx
        self.state = state

    @property
    def active(self) -> str | None:
        return self.state.flow if self.state else None

    async def start(self, name: str, **data: Any) -> list[Reply]:
        flow = self._conv.flows[name]
        self.state = FlowState(flow=name, step="", instance=secrets.token_hex(8), data=dict(data))
        self._ctx.intent = name
        return await self.apply(flow, await flow.begin(self._ctx, self.state))

    async def cancel(self) -> bool:
        had = self.state is not None
        self.state = None
        await self._conv.store.clear(self._ctx.msg.source, self._ctx.msg.openid)
        return had

    async def apply(self, flow: Flow, result: Answer) -> list[Reply]:
        msg = self._ctx.msg
        state = self.state
        if isinstance(result, Next | Stay) and state is not None and state.flow == flow.name:
            if isinstance(result, Next):
                state.step = result.step
            if result.data:
                state.data.update(result.data)
            await self._conv.store.save(msg.source, msg.openid, state, flow.ttl)
        elif isinstance(result, Done | Abort) and state is not None and state.flow == flow.name:
            await self.cancel()
        return result.replies


@dataclass(frozen=True)
class Prefetched:
    """The member's conversation lock, already taken with `token`, and the flow state read under it."""

    token: str
    state: str | None


class Conversation:
    """Runs the active flow's step, or else the router. Flow entries are routed first."""

    def __init__(
        self, router: Router, flows: list[Flow], store: FlowStore, *, lock_ttl: float, lock_wait: float,
        prefaces: tuple[Preface, ...] = (), afterwords: tuple[Afterword, ...] = (),
    ) -> None:
        self.flows = {flow.name: flow for flow in flows}
        self.prefaces = prefaces
        self.afterwords = afterwords
        self.store = store
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait
        self.router = Router("conversation")
        for flow in flows:
            for filters in (flow.entry, *flow.extra_entries):
                if filters:
                    self.router.add(_starter(flow.name), *filters, name=flow.name)
        self.router.include(router)

    @staticmethod
    def lock_key(msg: Inbound) -> str:
        return f"wxbot:lock:chat:{member_tag(msg.source, msg.openid)}"

    async def handle(
        self, msg: Inbound, ctx: ChatContext, prefetched: Prefetched | None = None, token: str | None = None,
        *, caller_releases: bool = False,
    ) -> list[Reply]:
        """One message under the member's lock (one message of a member at a time). `prefetched`: the
        caller has taken the lock and read the state already (bot/inbound/intake.py, in one round trip);
        `token`: the lock is taken with it, so the caller can renew it while the message runs.
        `caller_releases`: a prefetched lock stays taken when the message is done, for the caller to let go
        with its next round trip (the pipeline's, which stores the reply); a lock this call takes itself is
        always released here."""
        lock = self.lock_key(msg)
        if prefetched is not None:
            held: AbstractAsyncContextManager[None] = (
                nullcontext() if caller_releases else ctx.kv.held(lock, prefetched.token, self.lock_ttl)
            )
            async with held:
                state = await self.store.parse(msg.source, msg.openid, prefetched.state)
                return await self._handle_locked(msg, ctx, state)
        try:
            async with ctx.kv.lock(lock, ttl=self.lock_ttl, wait=self.lock_wait, token=token):
                return await self._handle_locked(msg, ctx, await self.store.load(msg.source, msg.openid))
        except LockTimeoutError:
            ctx.intent = "busy"
            return [Text(texts.BUSY)]

    async def _handle_locked(self, msg: Inbound, ctx: ChatContext, state: FlowState | None) -> list[Reply]:
        owed: list[Reply] = []
        if not msg.is_event:
            for preface in self.prefaces:
                owed.extend(await preface(msg, ctx))
        answer = await self._answer(msg, ctx, state)
        if not msg.is_event:
            for afterword in self.afterwords:
                answer = answer + await afterword(msg, ctx, answer)
        if owed and answer and isinstance(answer[0], TransferToAgent):  # the hand-off must stay the passive reply
            return answer[:1] + owed + answer[1:]
        return owed + answer

    async def _answer(self, msg: Inbound, ctx: ChatContext, state: FlowState | None) -> list[Reply]:
        runtime = FlowRuntime(self, ctx, state)
        ctx.flows = runtime
        try:
            if CANCEL(msg, ctx):
                ctx.intent = "cancel"
                flow = self.flows.get(state.flow) if state else None
                if state is not None and flow is not None and flow.on_cancel is not None:
                    await runtime.cancel()
                    return await flow.on_cancel(ctx, state)
                had = await runtime.cancel()
                return [Text(texts.CANCELLED if had else texts.NOTHING_TO_CANCEL + "\n" + await ctx.help_text())]
            flow = self.flows.get(state.flow) if state else None
            if state is not None and flow is not None and flow.takes(state.step, msg):
                step = flow.steps.get(state.step)
                if step is not None:
                    ctx.intent = f"{flow.name}.{state.step}"
                    result = await step(msg, ctx, state)
                    if isinstance(result, Leave):
                        await runtime.cancel()
                        return await self.router.dispatch(msg, ctx)
                    if isinstance(result, Pass):
                        matched = await self.router.match(msg, ctx)
                        if matched is not None and not matched[0].catch_all:  # another command: it runs
                            await runtime.cancel()
                            return await self.router.run(matched, msg, ctx)
                        result = result.otherwise
                    return await runtime.apply(flow, result)
            return await self.router.dispatch(msg, ctx)
        except DomainError as exc:
            ctx.intent = f"{ctx.intent}:refused"
            return [Text(texts.domain_text(exc))]


def _starter(name: str) -> Callable[..., Awaitable[list[Reply]]]:
    async def start_flow(msg: Inbound, ctx: ChatContext, **found: Any) -> list[Reply]:
        return await ctx.flows.start(name, **found)

    start_flow.__name__ = f"start_{name}"
    return start_flow

