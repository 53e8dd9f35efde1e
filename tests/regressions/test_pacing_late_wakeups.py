"""Regression: the senders' shared token bucket held at most one token and re-asked after every sleep,
so each late wake-up (a busy event loop, a loaded machine) was time lost for good: with waits running
10 ms long, three senders at WECHAT_PUSH_QPS=20 sent about 16 a second. Slots are now reserved on a
timeline in the KV, so lateness delays one send, not the rate.

A rate check over many events (61 slots taken by three pacers at once), not a timing assertion on
one operation: no single gap is judged."""

from __future__ import annotations

import asyncio
import secrets
import time
from zoneinfo import ZoneInfo

import pytest

import scheduler.sender as sender_module
from scheduler.sender import Sender, SenderConfig
from storage.clock import SystemClock
from storage.kv import KV
from storage.rules import Rules

QPS, SLOTS, LATE = 20.0, 61, 0.010


async def test_late_wake_ups_do_not_lower_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    kv = KV(f"memory://pacing-{secrets.token_hex(4)}")
    sender = Sender(None, kv, Rules(), ZoneInfo("Asia/Shanghai"), None, SystemClock(),  # type: ignore[arg-type]
                    SenderConfig(qps=QPS))
    real_sleep = asyncio.sleep

    async def late_sleep(seconds: float) -> None:
        await real_sleep(seconds + LATE)

    monkeypatch.setattr(sender_module.asyncio, "sleep", late_sleep)
    taken: list[float] = []

    async def pacer() -> None:
        while len(taken) < SLOTS:
            await sender._pace("wxbot:pace:test", QPS)
            taken.append(time.monotonic())

    try:
        await asyncio.wait_for(asyncio.gather(pacer(), pacer(), pacer()), timeout=20)
    finally:
        monkeypatch.undo()
        await kv.close()
    taken.sort()
    taken = taken[:SLOTS]
    rate = (len(taken) - 1) / (taken[-1] - taken[0])
    assert QPS * 0.9 <= rate <= QPS * 1.1, f"{rate:.2f}/s"
