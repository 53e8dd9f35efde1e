"""Side by side, in one run (issue 20): wxbot beside the bare ASGI app, a FastAPI + wechatpy echo, and WeRoBot
with and without its session, all answering the same signed messages from the same members.

    .venv/bin/python bench/compare.py                      # 3 interleaved rounds, 40,000 messages per target
    .venv/bin/python bench/compare.py --rounds 1 --requests 10000 --only wxbot-pg,wxbot-sqlite

Every target is one server process pinned to the last core (`taskset`); the load generator runs on the other
cores. The load is a closed loop over `--concurrency` keep-alive connections (a new connection after a server
that closes it, as gunicorn's sync worker does). Each message is `签到`, `积分` or `hello` in turn from
`--members` joined members (seeded before the first round on both wxbot backends), with a fresh MsgId, signed
just before its phase. The medians of the rounds are printed with the ratios issue 20 sets targets for.

Two more wxbot targets measure the check-in against the help path on PostgreSQL + Redis: `帮助` from the same
members, and first check-ins (`签到` from members seeded for it, one per message, so each one credits points).

WeRoBot and gunicorn go into a venv of their own (`--peer-venv`, made on first use with pip), never into the
product's dependencies. PostgreSQL + Redis targets need `--database-url` (an empty database the run may fill;
default `postgresql://root@127.0.0.1:5432/wxbot_compare`, created if missing) and `--redis-url` (default
Redis db 13; the run only adds keys that expire).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.harness import (
    BIN,
    HERE,
    BenchError,
    free_port,
    load_average,
    machine,
    migrate,
    percentile,
    proc_cpu_seconds,
    server,
)
from bench.webhook import TOKEN, Connection, make_openids, run, seed_members, server_env
from bot.simulator.wechatside import WeChatSide

MIX = ("签到", "积分", "hello")
PEER_PACKAGES = ("werobot==1.13.1", "gunicorn==27.0.1")
DEFAULT_PG = "postgresql://root@127.0.0.1:5432/wxbot_compare"
DEFAULT_REDIS = "redis://127.0.0.1:6379/13"


@dataclass
class Target:
    key: str
    label: str
    argv: Callable[[int], list[str]]
    env: dict[str, str]
    ready: str
    messages: tuple[str, ...] = MIX
    openids: list[str] = field(default_factory=list)
    fresh: bool = False  # one member per message, never the same twice (first check-ins)


@dataclass
class Figure:
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    errors: int


class Mix:
    """Pre-signed requests: message i is messages[i % len] from openids[i % len] (a new member per message
    when `fresh`), each with its own MsgId."""

    def __init__(self, messages: tuple[str, ...], openids: list[str]) -> None:
        self.side = WeChatSide(TOKEN)
        self.messages, self.openids = messages, openids

    def build(self, first: int, count: int) -> list[bytes]:
        built = []
        for n in range(first, first + count):
            push = self.side.sign(
                self.side.text(self.openids[n % len(self.openids)], self.messages[n % len(self.messages)])
            )
            target = "/wechat?" + urlencode(push.params)
            built.append(
                f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
                f"Content-Length: {len(push.body)}\r\n\r\n".encode() + push.body
            )
        return built


async def closed_loop(port: int, requests: list[bytes], concurrency: int, max_seconds: float) -> tuple[
    list[float], float, int
]:
    """Send every request over `concurrency` connections, one in flight each; latencies, wall time, failures
    (not 200, or no text reply)."""
    latencies: list[float] = []
    failures = 0
    queue = iter(requests)

    async def one(conn: Connection) -> None:
        nonlocal failures
        for raw in queue:
            started = time.perf_counter()
            try:
                status, reply = await conn.send_raw(raw)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                status, reply = 0, b""
                await conn.close()
            latencies.append(time.perf_counter() - started)
            if status != 200 or b"[text]]" not in reply:
                failures += 1
                if failures > max(50, 0.05 * len(requests)):
                    raise BenchError(f"too many failed requests (last: HTTP {status} {reply[:200]!r})")

    connections = [Connection(port) for _ in range(concurrency)]
    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(one(c) for c in connections)), timeout=max_seconds)
    except TimeoutError:
        raise BenchError(f"a phase took longer than {max_seconds:.0f} s; stopped") from None
    finally:
        for conn in connections:
            await conn.close()
    return latencies, time.perf_counter() - started, failures


def measure(target: Target, pid: int, port: int, args: argparse.Namespace, offset: int) -> Figure:
    mix = Mix(target.messages, target.openids)
    warm = mix.build(offset, args.warmup)
    asyncio_run(closed_loop(port, warm, args.concurrency, args.max_seconds))
    measured = mix.build(offset + args.warmup, args.requests)
    cpu_before = proc_cpu_seconds(pid)
    latencies, seconds, failures = asyncio_run(closed_loop(port, measured, args.concurrency, args.max_seconds))
    cpu = proc_cpu_seconds(pid) - cpu_before
    latencies.sort()
    n = len(latencies)
    return Figure(
        msgs_per_s=n / seconds, p50_ms=statistics.median(latencies) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000, cpu_ms=cpu * 1000 / n, errors=failures,
    )


def asyncio_run(coro: Any) -> Any:
    return run(coro)


# --- the targets -------------------------------------------------------------------------------------------


def pinned(argv: list[str]) -> list[str]:
    last = max(os.sched_getaffinity(0))
    return ["taskset", "-c", str(last), *argv] if shutil.which("taskset") else argv


def uvicorn_argv(app: str) -> Callable[[int], list[str]]:
    return lambda port: pinned([
        str(BIN / "python"), "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--lifespan", "off", "--no-access-log", "--log-level", "warning",
    ])


def wxbot_argv(port: int) -> list[str]:
    return pinned([str(BIN / "wxbot"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"])


def wxbot_unpinned(workers: int) -> Callable[[int], list[str]]:
    """For the scaling pair: free to run on every core, as a deployment would."""
    return lambda port: [
        str(BIN / "wxbot"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)
    ]


def peer_venv(path: Path) -> Path:
    gunicorn = path / "bin" / "gunicorn"
    if not gunicorn.exists():
        print(f"compare: installing {', '.join(PEER_PACKAGES)} into {path} (the peer's own venv)")
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(path / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        *PEER_PACKAGES], check=True)
    return gunicorn


def gunicorn_argv(gunicorn: Path) -> Callable[[int], list[str]]:
    return lambda port: pinned([
        str(gunicorn), "--workers", "1", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
        "--chdir", str(HERE.parent), "bench.peers.werobot_app:app",
    ])


def ensure_database(url: str) -> None:
    parsed = make_url(url)

    async def create() -> None:
        admin = create_async_engine(
            parsed.set(drivername="postgresql+asyncpg", database="postgres"), isolation_level="AUTOCOMMIT"
        )
        try:
            async with admin.connect() as conn:
                exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                           {"n": parsed.database})
                if not exists:
                    await conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
        finally:
            await admin.dispose()

    asyncio.run(create())


def targets(args: argparse.Namespace, tmp: Path) -> list[Target]:
    plain = server_env("", "", "warning")
    members = make_openids(args.members)
    fresh_count = args.rounds * (args.warmup + args.requests)
    gunicorn = peer_venv(Path(args.peer_venv))
    sqlite_url = f"sqlite:///{tmp / 'wxbot.db'}"
    pg_env = server_env(args.database_url, args.redis_url, "WARNING")
    sqlite_env = server_env(sqlite_url, "memory://", "WARNING")
    found = [
        Target("bare", "bare ASGI app: signature, reply", uvicorn_argv("bench.bare_app:app"), plain, "/healthz"),
        Target("echo", "FastAPI + wechatpy echo, no state", uvicorn_argv("bench.peers.echo_app:app"), plain,
               "/healthz"),
        Target("werobot", "WeRoBot, gunicorn, no session", gunicorn_argv(gunicorn),
               {**plain, "PEER_SESSION": ""}, "/healthz"),
        Target("werobot-session", "WeRoBot, gunicorn, its SQLite session (the stateful peer)",
               gunicorn_argv(gunicorn), {**plain, "PEER_SESSION": str(tmp / "werobot_session.sqlite3")},
               "/healthz"),
        Target("wxbot-pg", "wxbot, PostgreSQL + Redis", wxbot_argv, pg_env, "/readyz"),
        Target("wxbot-sqlite", "wxbot, SQLite + memory:// (the embedded default)", wxbot_argv, sqlite_env,
               "/readyz"),
        Target("wxbot-help", "wxbot, PostgreSQL + Redis, `帮助` only (the help path)", wxbot_argv, pg_env,
               "/readyz", messages=("帮助",)),
        Target("wxbot-checkin", "wxbot, PostgreSQL + Redis, first check-ins only", wxbot_argv, pg_env,
               "/readyz", messages=("签到",), fresh=True),
    ]
    if args.scaling:
        found += [
            Target("wxbot-pg-w1", "wxbot, PostgreSQL + Redis, 1 worker, unpinned", wxbot_unpinned(1), pg_env,
                   "/readyz"),
            Target("wxbot-pg-w2", "wxbot, PostgreSQL + Redis, 2 workers, unpinned", wxbot_unpinned(2), pg_env,
                   "/readyz"),
        ]
    chosen = [t for t in found if not args.only or t.key in args.only]
    for target in chosen:
        target.openids = members
    if any(t.key.startswith("wxbot") for t in chosen):
        if any(t.env is pg_env for t in chosen):
            ensure_database(args.database_url)
            migrate(pg_env, tmp)
            print(f"compare: seeding {len(members)} members on PostgreSQL")
            asyncio.run(seed_members(args.database_url, members))
        if any(t.env is sqlite_env for t in chosen):
            migrate(sqlite_env, tmp)
            print(f"compare: seeding {len(members)} members on SQLite")
            asyncio.run(seed_members(sqlite_url, members))
    for target in chosen:
        if target.fresh:
            target.openids = make_openids(fresh_count)
            print(f"compare: seeding {fresh_count} members for first check-ins")
            started = time.perf_counter()
            asyncio.run(seed_members(args.database_url, target.openids))
            print(f"compare: seeded in {time.perf_counter() - started:.0f} s")
    return chosen


# --- the report --------------------------------------------------------------------------------------------


def report(chosen: list[Target], figures: dict[str, list[Figure]], args: argparse.Namespace, load: str) -> dict:
    def med(key: str, attr: str) -> float:
        return statistics.median(getattr(f, attr) for f in figures[key])

    print(f"\n{machine()}; load average {load} before, {load_average()} after")
    print(f"{args.rounds} interleaved round(s); {args.requests} messages per target and round after {args.warmup} "
          f"warm-up, {args.concurrency} connections, {args.members} members; medians (ranges)\n")
    print("| target | msg/s | p50 ms | p99 ms | server CPU per message | failed |")
    print("| --- | --- | --- | --- | --- | --- |")
    summary: dict[str, Any] = {}
    for t in chosen:
        runs = figures[t.key]
        rate = [f.msgs_per_s for f in runs]
        p99 = [f.p99_ms for f in runs]
        summary[t.key] = {"label": t.label, "runs": [f.__dict__ for f in runs]}
        print(f"| {t.label} | {med(t.key, 'msgs_per_s'):,.0f} ({min(rate):,.0f}–{max(rate):,.0f}) "
              f"| {med(t.key, 'p50_ms'):.1f} | {med(t.key, 'p99_ms'):.0f} ({min(p99):.0f}–{max(p99):.0f}) "
              f"| {med(t.key, 'cpu_ms'):.2f} ms | {sum(f.errors for f in runs)} |")
    ratios = [
        ("SQLite + memory:// ÷ PostgreSQL + Redis", "wxbot-sqlite", "wxbot-pg", 0.8),
        ("wxbot PostgreSQL + Redis ÷ WeRoBot with session", "wxbot-pg", "werobot-session", 3.0),
        ("wxbot PostgreSQL + Redis ÷ bare ASGI app", "wxbot-pg", "bare", 0.10),
        ("first check-in ÷ help path", "wxbot-checkin", "wxbot-help", 0.5),
        ("2 workers ÷ 1 worker (unpinned)", "wxbot-pg-w2", "wxbot-pg-w1", 1.7),
    ]
    print("\n| ratio (throughput) | measured | target |")
    print("| --- | --- | --- |")
    for name, top, bottom, goal in ratios:
        if top in figures and bottom in figures:
            value = med(top, "msgs_per_s") / med(bottom, "msgs_per_s")
            summary[name] = value
            print(f"| {name} | {value:.2f}× | ≥ {goal:g}× {'met' if value >= goal else 'NOT met'} |")
    if "wxbot-sqlite" in figures:
        value = med("wxbot-sqlite", "p99_ms")
        print(f"| SQLite + memory:// p99 | {value:.0f} ms | < 100 ms {'met' if value < 100 else 'NOT met'} |")
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default 3)")
    add("--requests", type=int, default=40000, help="measured messages per target and round (default 40000)")
    add("--warmup", type=int, default=2000, help="messages first, not measured (default 2000)")
    add("--concurrency", type=int, default=64, help="keep-alive connections (default 64)")
    add("--members", type=int, default=1000, help="members sending the mix (default 1000)")
    add("--database-url", default=DEFAULT_PG, help=f"PostgreSQL for the PostgreSQL targets (default {DEFAULT_PG})")
    add("--redis-url", default=DEFAULT_REDIS, help=f"Redis for the PostgreSQL targets (default {DEFAULT_REDIS})")
    add("--peer-venv", default=str(HERE.parent / "var" / "peer-venv"), help="venv for WeRoBot and gunicorn")
    add("--only", type=lambda s: set(s.split(",")), default=set(), help="comma-separated target keys")
    add("--scaling", action="store_true", help="also wxbot on PostgreSQL + Redis with 1 and 2 workers, unpinned")
    add("--max-seconds", type=float, default=600, help="give up a phase after this long")
    add("--json", metavar="PATH", help="also write the figures as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load = load_average()
    tmp = Path(tempfile.mkdtemp(prefix="wxbot-compare-"))
    others = set(os.sched_getaffinity(0)) - {max(os.sched_getaffinity(0))}
    if others:
        os.sched_setaffinity(0, others)  # the client stays off the servers' core
    figures: dict[str, list[Figure]] = {}
    try:
        chosen = targets(args, tmp)
        for round_no in range(args.rounds):
            for target in chosen:
                port = free_port()
                with server(target.argv(port), target.env, tmp, port, target.ready) as pid:
                    offset = round_no * (args.warmup + args.requests)
                    figure = measure(target, pid, port, args, offset)
                figures.setdefault(target.key, []).append(figure)
                print(f"compare: round {round_no + 1} {target.key}: {figure.msgs_per_s:,.0f} msg/s, "
                      f"p99 {figure.p99_ms:.0f} ms, {figure.cpu_ms:.2f} ms CPU/msg, {figure.errors} failed")
        summary = report(chosen, figures, args, load)
    except BenchError as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
    raise SystemExit(130)
