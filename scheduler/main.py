"""The push process: APScheduler cron jobs in the programme's time zone, run only by the leader
(a renewed lease in the KV; a standby takes over within 30 s), and the outbox sender in every process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from scheduler.jobs import JOBS, SCHEDULE, JobContext
from scheduler.sender import Sender
from storage.clock import Clock
from storage.kv import KV

log = logging.getLogger("wxbot.scheduler")
LEADER_KEY = "wxbot:scheduler:leader"


class PushScheduler:
    def __init__(
        self, ctx: JobContext, kv: KV, clock: Clock, sender: Sender | None = None, *,
        lease: float = 15.0, renew_every: float = 5.0,
    ) -> None:
        self.ctx, self.kv, self.clock, self.sender = ctx, kv, clock, sender
        self.lease, self.renew_every = lease, renew_every
        self.instance = secrets.token_hex(6)
        self.is_leader = False
        self._aps: AsyncIOScheduler | None = None

    def triggers(self) -> dict[str, CronTrigger]:
        return {name: CronTrigger(timezone=self.ctx.tz, **fields) for name, fields in SCHEDULE.items()}

    def next_runs(self, now: datetime) -> dict[str, datetime | None]:
        return {name: trigger.get_next_fire_time(None, now) for name, trigger in self.triggers().items()}

    async def run_job(self, name: str, at: datetime | None = None) -> int:
        """Run one job now, as of `at` (re-running a missed day); dedupe keys make repeats harmless."""
        job = JOBS[name]
        when = at or self.clock.now()
        result = await job(self.ctx, when)
        log.info("job %s as of %s: %s", name, when.isoformat(), result)
        return result

    async def run(self, stop: asyncio.Event) -> None:
        sender_task = asyncio.create_task(self.sender.run_forever(stop)) if self.sender else None
        try:
            while not stop.is_set():
                try:
                    await self._lead_or_wait()
                except Exception:  # a KV blip: keep the loop (and the standby) alive, try again soon
                    log.exception("scheduler lease check failed; retrying")
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.renew_every)
                except TimeoutError:
                    pass
        finally:
            self._stop_jobs()
            try:
                if self.is_leader:
                    self.is_leader = False
                    await self.kv.delete_if(LEADER_KEY, self.instance)
            finally:
                if sender_task is not None:
                    if not stop.is_set():  # cancelled or failed: the sender would wait for `stop` forever
                        sender_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sender_task

    async def _lead_or_wait(self) -> None:
        if self.is_leader:
            if await self.kv.extend_if(LEADER_KEY, self.instance, self.lease):
                return
            log.warning("lost the scheduler lease; standing by")
            self.is_leader = False
            self._stop_jobs()
        if await self.kv.set(LEADER_KEY, self.instance, ex=self.lease, nx=True):
            log.info("scheduler %s is the leader", self.instance)
            self.is_leader = True
            self._start_jobs()

    def _start_jobs(self) -> None:
        aps = AsyncIOScheduler(timezone=self.ctx.tz)
        for name, trigger in self.triggers().items():
            aps.add_job(
                self.run_job, trigger, args=[name], id=name, name=name,
                coalesce=True, max_instances=1, misfire_grace_time=3600,
            )
        aps.start()
        self._aps = aps

    def _stop_jobs(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
