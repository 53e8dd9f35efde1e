"""Outbox sender benchmark (issue 6), run by hand: on a database seeded by bench/scheduler_selection.py
(or --seed here), the outbox sender with pacing off (qps 0) against `wxbot fake-wechat` in a subprocess:
--sends due marketing rows (kind birthday, template channel), drained by 1, 2 and 4 Senders, as asyncio
tasks in this process and as one process each; every row must be sent exactly once (outbox and fake
agree). The claim query is EXPLAINed once the rows are queued.

    .venv/bin/python bench/scheduler_sender.py --database-url postgresql://root@127.0.0.1:5432/wxbot_bench6 \\
        --redis-url redis://127.0.0.1:6379/13 --skip-seed

The database and the Redis database must be scratch ones: the seed truncates every table it fills, each
sender run flushes the Redis one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select

from bench.harness import (
    BIN,
    free_port,
    print_markdown,
    proc_cpu_seconds,
    server,
)
from bench.scheduler_seed import Explainer, add_seed_args, local_at, parse, prepare, run_bench
from bench.webhook import server_env
from bot.runtime import make_api, make_sender
from bot.settings import Settings
from scheduler.sender import SenderConfig
from storage.db import Database
from storage.kv import KV
from storage.ledger import Ledger
from storage.members import ACTIVE
from storage.models import Outbox
from storage.outbox import claim_pick
from storage.rules import Rules, load_rules

USAGE = __doc__



SEND_PREFIX = "benchsend:"  # dedupe keys of the rows queued for the sender runs


TEMPLATE_ID = "TPL_bench_birthday"


TEMPLATE_PATH = "/cgi-bin/message/template/send"


class ShiftedClock:
    """Real time moved to a fixed local start (outside quiet hours), so leases and claims behave as live.
    Anchored on the wall clock, so sender processes started at different moments share one timeline."""

    def __init__(self, start: datetime, anchor: float | None = None) -> None:
        self.start = start.astimezone(UTC)
        self.anchor = time.time() if anchor is None else anchor

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.time() - self.anchor)


@dataclass
class SenderRun:
    mode: str
    senders: int
    sends: int
    seconds: float
    pushes_per_s: float
    cpu_s_senders: float
    cpu_s_fake: float
    fake_sends: int
    distinct_keys: int
    token_calls: int
    statuses: dict[str, int]
    exactly_once: bool
    claim_ms: float = 0.0
    claim_scans: str = ""


async def queue_sends(db: Database, count: int, now: datetime, rules: Rules) -> int:
    """`count` due marketing rows (kind birthday) for members who may receive them, after removing the
    previous run's rows."""
    payload = json.dumps({"params": {"points": rules.birthday_points, "balance": 1000}})
    insert_sql = f"""
        INSERT INTO outbox (dedupe_key, member_id, openid, source, kind, category, payload, priority, status,
                            attempts, next_attempt_at, deadline, created_at)
        SELECT '{SEND_PREFIX}' || id, id, openid, 'oa', 'birthday', 'marketing', $1, 6, 'pending', 0, $2, $3, $2
        FROM member WHERE status = '{ACTIVE}' AND NOT marketing_opt_out AND openid IS NOT NULL
        ORDER BY id LIMIT $4"""
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.execute(f"DELETE FROM outbox_attempt WHERE outbox_id IN "
                          f"(SELECT id FROM outbox WHERE dedupe_key LIKE '{SEND_PREFIX}%')")
        await raw.execute(f"DELETE FROM outbox WHERE dedupe_key LIKE '{SEND_PREFIX}%'")
        status = await raw.execute(insert_sql, payload, now - timedelta(minutes=1), now + timedelta(days=7), count)
        await raw.execute("VACUUM ANALYZE outbox, outbox_attempt")
    return int(status.split()[-1])


async def drain(sender: Any, deadline: float) -> int:
    """Run one sender until it finds nothing to claim (or the deadline passes)."""
    handled = 0
    while time.monotonic() < deadline:
        n = await sender.run_once()
        if not n:
            break
        handled += n
    return handled


@contextlib.asynccontextmanager
async def sender_world(settings: Settings, clock: ShiftedClock, count: int) -> Any:
    """The database, a KV client per sender, one HTTP client and WeChatAPI, as `wxbot scheduler` builds them."""
    db, kv = Database(settings.database_url), KV(settings.redis_url)
    ledger = Ledger(load_rules(settings.rules_file), settings.tz)
    kvs = [KV(settings.redis_url) for _ in range(count)]
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            api = make_api(settings, http, kv, db, clock)
            yield db, [make_sender(settings, db, each, ledger, api, clock) for each in kvs]
    finally:
        for each in kvs:
            await each.close()
        await kv.close()
        await db.dispose()


def sender_process(args: argparse.Namespace, port: int, start: datetime, anchor: float, ready: Any, go: Any,
                   done: Any) -> None:
    """One sender in a process of its own (as each `wxbot scheduler` runs one): waits for `go`, drains,
    reports (rows handled, CPU seconds)."""

    async def body() -> None:
        clock = ShiftedClock(start, anchor)
        async with sender_world(sender_settings(args, port), clock, 1) as (db, senders):
            await db.ping()
            await senders[0].kv.ping()
            ready.put(True)
            await asyncio.get_running_loop().run_in_executor(None, go.wait)
            cpu = time.process_time()
            handled = await drain(senders[0], time.monotonic() + args.max_seconds)
            done.put((handled, time.process_time() - cpu))

    asyncio.run(body())


async def run_senders(
    args: argparse.Namespace, port: int, fake_pid: int, senders: int, mode: str, start: datetime, plans: Path,
) -> SenderRun:
    settings = sender_settings(args, port)
    clock = ShiftedClock(start)
    base = f"http://127.0.0.1:{port}"
    async with sender_world(settings, clock, senders if mode == "tasks" else 0) as (db, workers):
        kv = KV(settings.redis_url)
        try:
            await kv.redis.flushdb()  # our Redis database only: the cached token, locks, windows
        finally:
            await kv.close()
        queued = await queue_sends(db, args.sends, clock.now(), load_rules(settings.rules_file))
        claim_scans, claim_ms = await Explainer(db, plans)(
            claim_pick("postgresql", clock.now(), SenderConfig().batch), f"claim-{mode}-{senders}"
        )
        async with httpx.AsyncClient(timeout=60) as http:
            (await http.post(base + "/_fake/reset")).raise_for_status()
            if mode == "tasks":
                await db.ping()
                cpu_fake, cpu = proc_cpu_seconds(fake_pid), time.process_time()
                started = time.perf_counter()
                deadline = time.monotonic() + args.max_seconds
                await asyncio.gather(*(drain(w, deadline) for w in workers))
                seconds = time.perf_counter() - started
                cpu = time.process_time() - cpu
            else:
                seconds, cpu, cpu_fake = await asyncio.get_running_loop().run_in_executor(
                    None, run_processes, args, port, senders, start, clock.anchor, fake_pid
                )
            if mode == "tasks":
                cpu_fake = proc_cpu_seconds(fake_pid) - cpu_fake
            calls = (await http.get(base + "/_fake/calls")).json()
        sends = [c for c in calls if c["path"] == TEMPLATE_PATH]
        keys = {c["body"].get("client_msg_id") for c in sends if c["errcode"] == 0}
        async with db.sessions() as session:
            statuses = {s: int(n) for s, n in (await session.execute(
                select(Outbox.status, func.count()).where(Outbox.dedupe_key.like(SEND_PREFIX + "%"))  # type: ignore[attr-defined]
                .group_by(Outbox.status)
            )).all()}
    sent = statuses.get("sent", 0)
    once = sent == queued == len(sends) == len(keys) and all(c["errcode"] == 0 for c in sends)
    return SenderRun(
        mode=mode, senders=senders, sends=queued, seconds=round(seconds, 2), pushes_per_s=round(sent / seconds, 1),
        cpu_s_senders=round(cpu, 1), cpu_s_fake=round(cpu_fake, 1), fake_sends=len(sends), distinct_keys=len(keys),
        token_calls=sum(1 for c in calls if "token" in c["path"]), statuses=statuses, exactly_once=once,
        claim_ms=claim_ms, claim_scans=claim_scans,
    )


def run_processes(
    args: argparse.Namespace, port: int, count: int, start: datetime, anchor: float, fake_pid: int
) -> tuple[float, float, float]:
    """Start `count` sender processes, release them together; (wall seconds, their CPU seconds, fake CPU)."""
    ctx = multiprocessing.get_context("spawn")
    ready, done, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=sender_process, args=(args, port, start, anchor, ready, go, done))
             for _ in range(count)]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            ready.get(timeout=60)
        cpu_fake = proc_cpu_seconds(fake_pid)
        started = time.perf_counter()
        go.set()
        reports = [done.get(timeout=args.max_seconds + 60) for _ in procs]
        seconds = time.perf_counter() - started
        cpu_fake = proc_cpu_seconds(fake_pid) - cpu_fake
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
    return seconds, sum(cpu for _, cpu in reports), cpu_fake


@contextlib.contextmanager
def fake_wechat(tmp: Path) -> Iterator[tuple[int, int]]:
    port = free_port()
    env = server_env("", "", "warning")
    argv = [str(BIN / "wxbot"), "fake-wechat", "--port", str(port)]
    with server(argv, env, tmp, port, "/_fake/openapi.json") as pid:
        yield port, pid


def sender_settings(args: argparse.Namespace, port: int) -> Settings:
    """Live OA credentials against the fake (not demo mode), pacing off, a template for birthday pushes."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, wechat_token="wxbot-bench-token", wechat_appid="wxbench0000000006",
        wechat_appsecret="bench-secret", wechat_api_base=f"http://127.0.0.1:{port}",
        database_url=args.database_url, redis_url=args.redis_url, wechat_push_qps=0,
        wechat_template_ids={"birthday": TEMPLATE_ID}, admin_token="bench", pii_key="",
        rules_file="", timezone="Asia/Shanghai",
    )


def run_sender_bench(args: argparse.Namespace, tmp: Path, plans: Path) -> list[SenderRun]:
    results: list[SenderRun] = []
    with fake_wechat(tmp) as (port, pid):
        start = local_at(args.today, ZoneInfo("Asia/Shanghai"), 10)
        for mode in args.sender_mode:
            for senders in args.senders:
                if mode == "processes" and senders == 1 and "tasks" in args.sender_mode:
                    continue  # one sender is the same run either way
                run = asyncio.run(run_senders(args, port, pid, senders, mode, start, plans))
                print(f"bench: claim with {run.sends} rows due: {run.claim_ms} ms ({run.claim_scans})")
                print(f"bench: {senders} sender(s) as {mode}: {run.sends} rows in {run.seconds} s = "
                      f"{run.pushes_per_s} pushes/s; fake saw {run.fake_sends} sends, {run.distinct_keys} distinct; "
                      f"statuses {run.statuses}; exactly once: {run.exactly_once}", flush=True)
                results.append(run)
    return results


def print_senders(results: list[SenderRun]) -> None:
    print_markdown(
        ["senders", "as", "rows", "seconds", "pushes/s", "CPU s (senders)", "CPU s (fake)", "exactly once"],
        [[r.senders, r.mode, f"{r.sends:,}", r.seconds, r.pushes_per_s, r.cpu_s_senders, r.cpu_s_fake,
          "yes" if r.exactly_once else "NO"] for r in results],
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_seed_args(parser)
    parser.add_argument("--sends", type=int, default=20_000, help="rows queued for each sender run")
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 2, 4], help="concurrent senders per run")
    parser.add_argument("--sender-mode", nargs="+", choices=["tasks", "processes"], default=["tasks", "processes"],
                        help="senders as asyncio tasks in this process, or one process each")
    return parse(parser, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body(tmp: Path, plans: Path) -> dict[str, Any]:
        report = prepare(args, tmp)
        senders = run_sender_bench(args, tmp, plans)
        report["senders"] = [asdict(r) for r in senders]
        print_senders(senders)
        return report

    return run_bench(args, body)


if __name__ == "__main__":
    raise SystemExit(main())
