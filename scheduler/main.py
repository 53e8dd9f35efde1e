"""The push process: APScheduler cron jobs in the programme's time zone, run only by the leader
(a renewed lease in the KV; a standby takes over within 30 s) and caught up from job_run when a
leader starts, and the outbox sender in every process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from scheduler.jobs import JOBS, SCHEDULE, JobContext
from scheduler.sender import Sender
from storage import anomalies, jobruns
from storage.clock import Clock
from storage.kv import KV

log = logging.getLogger("wxbot.scheduler")
LEADER_KEY = "wxbot:scheduler:leader"
# Each run settles everything due by then: one run as of now covers every missed minute.
COALESCE = frozenset({"campaigns", "announce_anomalies", "ticket_sla"})
MAX_MISSED = 400  # due times looked at per catch-up (more than a year of a daily job)


class PushScheduler:
    def __init__(
        self, ctx: JobContext, kv: KV, clock: Clock, sender: Sender | None = None, *,
        lease: float = 15.0, renew_every: float = 5.0, catch_up_within: timedelta = timedelta(hours=12),
    ) -> None:
        self.ctx, self.kv, self.clock, self.sender = ctx, kv, clock, sender
        self.lease, self.renew_every = lease, renew_every
        # A run that fell due longer ago is not run late (a greeting days late, an offer already over):
        # it is reported, and an operator may re-run it with `wxbot jobs run NAME --at`.
        self.catch_up_within = catch_up_within
        self.instance = secrets.token_hex(6)
        self.is_leader = False
        self._aps: AsyncIOScheduler | None = None
        self._catching_up: asyncio.Task[None] | None = None
        self._job_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._triggers = {name: CronTrigger(timezone=ctx.tz, **fields) for name, fields in SCHEDULE.items()}

    def triggers(self) -> dict[str, CronTrigger]:
        return self._triggers

    def next_runs(self, now: datetime) -> dict[str, datetime | None]:
        return {name: trigger.get_next_fire_time(None, now) for name, trigger in self.triggers().items()}

    async def run_job(self, name: str, at: datetime | None = None) -> int:
        """Run one job now, as of `at` (re-running a missed day); dedupe keys make repeats harmless."""
        job = JOBS[name]
        when = at or self.clock.now()
        result = await job(self.ctx, when)
        log.info("job %s as of %s: %s", name, when.isoformat(), result)
        return result

    async def catch_up(self, name: str) -> int:
        """Run every due time of `name` since job_run's record, each as of its due time, oldest first;
        report the ones too old to run (an anomaly each). A leader's first start only begins the
        record. Cron firings come here too, so a due time runs once whoever notices it first."""
        async with self._job_locks[name]:
            now = self.clock.now()
            async with self.ctx.db.unit_of_work() as session:
                last = await jobruns.done_through(session, name)
                if last is None:
                    await jobruns.start_tracking(session, name, now)
                    return 0
            handled = 0
            for due in self._missed(name, last, now):
                too_old = now - due > self.catch_up_within
                if not too_old:
                    await self.run_job(name, due)
                async with self.ctx.db.unit_of_work() as session:  # the anomaly and the advance commit together
                    if too_old:
                        await self._report_skipped(session, name, due, now)
                    await jobruns.advance(session, name, due, self.clock.now())
                handled += 1
            return handled

    def _missed(self, name: str, last: datetime, now: datetime) -> list[datetime]:
        trigger = self._triggers[name]
        due = trigger.get_next_fire_time(None, last + timedelta(microseconds=1))
        if name in COALESCE:
            return [now] if due is not None and due <= now else []
        missed: list[datetime] = []
        while due is not None and due <= now and len(missed) < MAX_MISSED:
            missed.append(due.astimezone(UTC))  # the clock's convention: aware UTC
            due = trigger.get_next_fire_time(due, due + timedelta(microseconds=1))
        return missed

    async def _report_skipped(self, session: AsyncSession, name: str, due: datetime, now: datetime) -> None:
        local = due.astimezone(self.ctx.tz)
        hours = int(self.catch_up_within.total_seconds() // 3600)
        detail = (f"定时任务 {name} 原定 {local:%Y-%m-%d %H:%M} 运行，调度器当时无人值守且已超过补跑时限"
                  f"（{hours} 小时），未补跑。如需补跑：wxbot jobs run {name} --at {due.isoformat()}")
        await anomalies.record(session, kind="job_skipped", detail=detail, now=now,
                               dedupe_key=f"job_skipped:{name}:{due.isoformat()}")
        log.warning("job %s due at %s was missed and not caught up; an anomaly was raised", name, due.isoformat())

    async def _catch_up_all(self) -> None:
        for name in JOBS:
            try:
                await self.catch_up(name)
            except Exception:  # one job's failure must not keep the others from catching up
                log.exception("catching up job %s failed", name)

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
            catching_up = self._catching_up
            self._stop_jobs()
            if catching_up is not None:  # let the cancelled catch-up unwind before the process goes
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await catching_up
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
                self.catch_up, trigger, args=[name], id=name, name=name,
                coalesce=True, max_instances=1, misfire_grace_time=3600,
            )
        aps.start()
        self._aps = aps
        # What fell due while nobody led; a task, so a long job does not hold up the lease renewals.
        self._catching_up = asyncio.create_task(self._catch_up_all())

    def _stop_jobs(self) -> None:
        if self._catching_up is not None:
            self._catching_up.cancel()
            self._catching_up = None
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
