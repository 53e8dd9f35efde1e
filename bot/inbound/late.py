"""A late delivery's message as durable JSON (storage/deliveries.py keeps it), and the sweep that runs an
abandoned one again: at start-up and every LATE_SWEEP_INTERVAL, in every web worker.

A delivery is abandoned when WeChat was told `success` (the deadline passed) and the worker that held it
stopped renewing its lease before the replies reached the outbox: it died, or lost its database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from types import MappingProxyType
from typing import Any

from handlers.core.message import Inbound, Scene
from storage import deliveries
from storage.clock import Clock
from storage.db import Database

log = logging.getLogger("wxbot.late")


def dumps(msg: Inbound) -> str:
    """The message, every field, as JSON (its text included: it lives in the database, never in a log)."""
    data: dict[str, Any] = {}
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Scene):
            value = {"kind": value.kind, "value": value.value}
        elif f.name == "fields":
            value = dict(value)
        elif f.name == "items":
            value = [dict(item) for item in value]
        data[f.name] = value
    return json.dumps(data, ensure_ascii=False)


def loads(raw: str) -> Inbound:
    """The message `dumps` wrote; fields it does not know (a newer or older Inbound) are left out."""
    data = json.loads(raw)
    known = {f.name for f in dataclasses.fields(Inbound)}
    values = {k: v for k, v in data.items() if k in known}
    values["received_at"] = datetime.fromisoformat(values["received_at"])
    if values.get("scene") is not None:
        values["scene"] = Scene(**values["scene"])
    values["fields"] = MappingProxyType(dict(values.get("fields") or {}))
    values["items"] = tuple(dict(item) for item in values.get("items") or ())
    return Inbound(**values)


class Sweeper:
    """Takes over abandoned late deliveries and hands each to `rerun` (the pipeline), one at a time."""

    def __init__(
        self, db: Database, clock: Clock, rerun: Callable[[int, Inbound], Awaitable[None]], *,
        interval: float, lease: float,
    ) -> None:
        self.db, self.clock, self.rerun = db, clock, rerun
        self.interval, self.lease = interval, lease

    async def sweep(self) -> int:
        """One pass; returns how many deliveries were run again."""
        async with self.db.unit_of_work() as session:
            taken = await deliveries.claim_abandoned(session, now=self.clock.now(), lease=self.lease)
        for row in taken:
            log.warning("running an abandoned late delivery again key=%s", row.dedupe_key)
            await self.rerun(row.id, loads(row.inbound))
        return len(taken)

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep now (a restarted worker finds what its predecessor left) and then every interval."""
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:  # a database outage: the next pass tries again
                log.exception("sweeping late deliveries failed")
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                pass
