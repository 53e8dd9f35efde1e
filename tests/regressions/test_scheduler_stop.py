"""Regressions in PushScheduler.run:
- cancelling it (a host shutting the task down) never finished: its `finally` awaited the sender
  task, which only stops when the stop event is set;
- one KV error in the lease loop (a Redis blip) left the loop for good, and the `finally` then waited
  forever on the sender: a standby that never took over and never exited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from scheduler.main import LEADER_KEY, PushScheduler
from tests.support.factories import local
from tests.support.push_support import PushWorld, eventually, push_world

NOW = local(2026, 5, 20, 10, 0)


@pytest.fixture
async def world(urls: tuple[str, str]) -> AsyncIterator[PushWorld]:
    async with push_world(urls, at=NOW) as w:
        yield w


def scheduler(world: PushWorld, *, with_sender: bool = True) -> PushScheduler:
    kv = world.new_kv()
    sender = world.new_sender(kv=kv) if with_sender else None
    return PushScheduler(world.ctx, kv, world.clock, sender, lease=1.0, renew_every=0.2)


async def test_cancelling_a_scheduler_ends_it_with_its_sender(world: PushWorld) -> None:
    stop = asyncio.Event()
    leader = scheduler(world)
    task = asyncio.create_task(leader.run(stop))
    try:
        await eventually(lambda: leader.is_leader)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=3)
        assert task in done, "the cancelled scheduler is still running"
        assert await world.kv.get(LEADER_KEY) is None  # it let go of the lease on the way out
    finally:
        stop.set()
        await asyncio.wait([task], timeout=3)


async def test_a_kv_error_does_not_end_the_standby(world: PushWorld) -> None:
    stop = asyncio.Event()
    leader, standby = scheduler(world), scheduler(world)
    first = asyncio.create_task(leader.run(stop))
    await eventually(lambda: leader.is_leader)
    failures = []
    real_set = standby.kv.set

    async def blip(*args: Any, **kwargs: Any) -> bool:
        if not failures:
            failures.append(args)
            raise ConnectionError("Redis went away for a moment")
        return await real_set(*args, **kwargs)

    standby.kv.set = blip  # type: ignore[method-assign]
    second = asyncio.create_task(standby.run(stop))
    try:
        await eventually(lambda: bool(failures))
        await asyncio.sleep(0.5)
        assert not second.done(), "one KV error ended the standby"
        assert not standby.is_leader
        first.cancel()  # the leader shuts down and lets go of the lease: the standby takes over
        await asyncio.wait([first], timeout=3)
        await eventually(lambda: standby.is_leader, within=3)
    finally:
        stop.set()
        done, _ = await asyncio.wait([first, second], timeout=5)
        assert second in done
