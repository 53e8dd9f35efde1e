"""The retry guard: the first delivery of a message runs; retries replay its stored reply. State lives
in the KV, shared by every worker.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from handlers.core.message import Inbound
from storage.kv import KV, member_tag

PROCESSING = "processing"
REPLIED = "replied"
OUTBOXED = "outboxed"


@dataclass(frozen=True)
class Seen:
    state: str
    body: str = ""


class DeliveryGuard:
    def __init__(self, kv: KV, *, ttl: float, processing_ttl: float) -> None:
        self.kv = kv
        self.ttl = ttl
        self.processing_ttl = processing_ttl

    @staticmethod
    def key(msg: Inbound) -> str:
        """A delivery's claim and stored reply, under its member's hash tag (one Redis Cluster slot with the
        member's lock and flow state, which the intake script takes with it)."""
        return f"wxbot:dedupe:{member_tag(msg.source, msg.openid)}:{msg.dedupe_key}"

    @staticmethod
    def processing_value(token: str) -> str:
        """The claim of a delivery being processed (bot/inbound/intake.py takes it, with the rest of what precedes
        a handler); `token` tells one attempt's claim from another's. It expires after processing_ttl, so
        a worker that died mid-way does not leave the message unanswerable forever: the lease is short
        (DELIVERY_LEASE, under WeChat's interval between retries) and renewed while the work runs, so a
        dead worker's claim has lapsed when the next copy arrives, and that copy takes the delivery over."""
        return json.dumps({"s": PROCESSING, "t": token})

    async def wait(self, msg: Inbound, until: float) -> Seen | None:
        """Wait (until a monotonic instant) for the first delivery to finish; None when its claim lapsed
        (its worker died, or Redis ran a claim its sender had given up on): the caller may take it over."""
        key = self.key(msg)
        delay = 0.02
        while True:
            seen = await self._read(key)
            if seen is None:
                return None
            if seen.state != PROCESSING or time.monotonic() + delay > until:
                return seen
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    async def replied(self, msg: Inbound, body: str, release: tuple[str, str] | None = None) -> None:
        """Keep the answer for retries; with `release` (the member's lock and this attempt's token), also let
        the lock go, in the same round trip (both keys carry the member's hash tag: one Cluster slot)."""
        value = json.dumps({"s": REPLIED, "b": body})
        if release is None:
            await self.kv.set(self.key(msg), value, ex=self.ttl)
            return
        lock, token = release
        await self.kv.set_and_release(self.key(msg), value, ex=self.ttl, lock=lock, token=token)

    async def outboxed(self, msg: Inbound) -> None:
        await self.kv.set(self.key(msg), json.dumps({"s": OUTBOXED}), ex=self.ttl)

    async def _read(self, key: str) -> Seen | None:
        raw = await self.kv.get(key)
        return None if raw is None else self.decode(raw)

    @staticmethod
    def decode(raw: str | None) -> Seen:
        """What a stored claim says (a claim that has just vanished: still processing, as far as we know)."""
        if raw is None:
            return Seen(PROCESSING)
        data = json.loads(raw)
        return Seen(data.get("s", PROCESSING), data.get("b", ""))
