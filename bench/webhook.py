"""Webhook benchmark, run by hand (`make bench`): signed `帮助` texts at a fixed concurrency against the
real server (`wxbot serve`, one worker) and against a bare ASGI app (bench/bare_app.py) on the same
machine. Reports messages/s, p50/p99 latency, and the server's CPU per message and RSS.

    .venv/bin/python bench/webhook.py                          # SQLite + memory://, and the bare app
    .venv/bin/python bench/webhook.py --backend-only \\
        --database-url postgresql://root@127.0.0.1:5432/wxbot_bench \\
        --redis-url redis://127.0.0.1:6379/14
    .venv/bin/python bench/webhook.py --backend-only --message 签到 --seed-members \\
        --requests 20000 --openids 20000 --database-url ... --redis-url ...   # first check-ins

With --seed-members, `--openids + --warmup + 1` joined members are inserted before the server starts
(after `wxbot migrate`), one per message, so every `签到` is a member's first check-in of the day.

Everything runs on loopback, every loop is bounded, and the servers it starts are stopped at the end.
The servers run with their working directory in a temporary directory, so no `.env` is read and
nothing is written under the repository. The load generator is raw asyncio (HTTP/1.1 keep-alive, one
connection per concurrent client) because an HTTP client library would spend more CPU per request
than the bare app does, and the client shares the machine with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from bench.harness import (
    BIN,
    BenchError,
    free_port,
    load_average,
    machine,
    migrate,
    percentile,
    proc_cpu_seconds,
    proc_status,
    server,
)
from bot.settings import new_pii_key
from devtools.simclient import WeChatSide
from storage import members
from storage.db import Database
from storage.ledger import Ledger
from storage.models import Member
from storage.rules import Rules

TOKEN = "wxbot-bench-token"
HELP = "帮助"
EXPECT = {HELP: "会员俱乐部", "签到": "签到成功"}  # what the reply must contain, per message
CONTRACT = (  # the configuration contract: cleared for the servers so the caller's env cannot leak in
    "WECHAT_TOKEN", "WECHAT_APPID", "WECHAT_APPSECRET", "WECHAT_AES_KEY", "WECHAT_AES_KEY_PREVIOUS",
    "WECHAT_API_BASE", "MINIPROGRAM_APPID", "MINIPROGRAM_SECRET", "MINIPROGRAM_TOKEN",
    "MINIPROGRAM_AES_KEY", "DATABASE_URL", "REDIS_URL", "TIMEZONE", "ADMIN_TOKEN", "PII_KEY",
    "ORDER_WEBHOOK_SECRET", "RULES_FILE", "SIGNATURE_MAX_AGE", "REPLY_DEADLINE", "MAX_BODY_BYTES",
    "DEDUPE_TTL", "LOG_LEVEL", "WECOM_API_BASE", "WECHAT_PUSH_QPS",
)
MAX_ERROR_SHARE = 0.05




@dataclass
class Result:
    target: str
    backend: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    msgs_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_ms_per_msg: float
    client_cpu_ms_per_msg: float
    rss_before_mb: float
    rss_mb: float
    peak_rss_mb: float
    offered_per_s: float = 0.0  # open loop: the rate messages were sent at (0: closed loop)
    notes: list[str] = field(default_factory=list)


# --- the servers -----------------------------------------------------------------------------------




def server_env(database_url: str, redis_url: str, log_level: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONTRACT}
    env.update(
        WECHAT_TOKEN=TOKEN,
        WECHAT_APPSECRET="",  # demo mode: nothing leaves the machine
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        ADMIN_TOKEN=secrets.token_urlsafe(24),
        PII_KEY=new_pii_key(),
        LOG_LEVEL=log_level,
    )
    return env














# --- the load --------------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection that posts a body and reads a Content-Length reply."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def post(self, target: str, body: bytes) -> tuple[int, bytes]:
        return await self.send_raw(
            f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )

    async def send_raw(self, request: bytes) -> tuple[int, bytes]:
        """Send one whole request and read its reply; a server that answers `Connection: close` (gunicorn's
        sync worker) gets a new connection for the next request."""
        if self.writer is None or self.reader is None:
            await self.open()
        assert self.writer is not None
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, closing = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                closing = True
        reply = await self.reader.readexactly(length)
        if closing:
            await self.close()
        return status, reply


def make_openids(count: int) -> list[str]:
    tag = secrets.token_hex(3)
    return [f"oBENCH{tag}{i:016d}" for i in range(count)]


async def seed_members(database_url: str, openids: list[str], chunk: int = 2000) -> None:
    """One joined, active member per openid, joined yesterday, before the server starts: the rows in bulk
    (SQLAlchemy core), then the sign-up bonus credited as sign-up credits it (members.credit_signup_bonus),
    a chunk of members per transaction."""
    joined = datetime.now(UTC) - timedelta(days=1)
    tag = secrets.token_hex(3).upper()  # referral codes unique across runs on one database
    ledger = Ledger(Rules(), ZoneInfo("Asia/Shanghai"))
    table = Member.__table__  # type: ignore[attr-defined]
    db = Database(database_url)
    try:
        for start in range(0, len(openids), chunk):
            rows = [
                {"openid": openid, "joined_at": joined, "created_at": joined, "last_interaction_at": joined,
                 "referral_code": f"B{tag}{start + i:08d}"}
                for i, openid in enumerate(openids[start : start + chunk])
            ]
            async with db.unit_of_work() as session:
                ids = (await session.execute(
                    insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
                )).scalars().all()
                for member_id in ids:
                    await members.credit_signup_bonus(session, ledger, member_id, joined)
    finally:
        await db.dispose()


class Load:
    """Signed texts (`帮助` unless told) from `openids` members in turn, each with a fresh MsgId."""

    def __init__(
        self, port: int, concurrency: int, openids: int, message: str = HELP,
        names: list[str] | None = None,
    ) -> None:
        self.side = WeChatSide(TOKEN)
        self.port = port
        self.message = message
        self.expect = EXPECT.get(message)
        self.expect_bytes = self.expect.encode() if self.expect else b""
        self.connections = [Connection(port) for _ in range(concurrency)]
        self.openids = names or make_openids(openids)
        self.errors = 0
        self.error_kinds: dict[str, int] = {}

    def request(self, n: int) -> tuple[str, bytes]:
        push = self.side.sign(self.side.text(self.openids[n % len(self.openids)], self.message))
        return "/wechat?" + urlencode(push.params), push.body

    async def check_reply(self) -> None:
        """One message through the same client, opened the way WeChat would: a text reply with the
        expected content (the menu for `帮助`, a credited check-in for `签到`)."""
        target, body = self.request(0)
        status, reply = await self.connections[0].post(target, body)
        fields = self.side.open_reply(reply) if status == 200 else None
        if not fields or fields.get("MsgType") != "text" or (
            self.expect and self.expect not in str(fields.get("Content"))
        ):
            raise BenchError(f"unexpected reply: HTTP {status} {reply[:300]!r}")

    async def phase(
        self, count: int, max_seconds: float, first: int = 0, rate: float = 0.0
    ) -> tuple[list[float], float]:
        """Send messages `first` .. `first + count - 1` (members in turn) over all connections; returns
        the latencies (s) and the wall time.

        Without `rate`, a closed loop: each connection sends its next message as soon as the last reply
        is in, so the server runs flat out and latency is mostly the queue of 64 messages in flight.
        With `rate`, an open loop at that many messages per second (as traffic arrives): message i is
        due at start + i / rate and its latency runs from then, so time spent waiting for a free
        connection, when the server falls behind, counts too (no coordinated omission)."""
        latencies: list[float] = []

        async def send(conn: Connection, n: int, due: float | None = None) -> None:
            target, body = self.request(n)
            started = time.perf_counter() if due is None else due
            try:
                status, reply = await conn.post(target, body)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                status, reply = 0, b""
                await conn.close()
            latencies.append(time.perf_counter() - started)
            if status != 200 or b"[text]]" not in reply or self.expect_bytes not in reply:
                self.failed(status, reply, count)

        numbers = iter(range(first, first + count))

        async def closed(conn: Connection) -> None:
            for n in numbers:
                await send(conn, n)

        idle: asyncio.Queue[Connection] = asyncio.Queue()
        for conn in self.connections:
            idle.put_nowait(conn)

        async def when_free(n: int, due: float) -> None:
            conn = await idle.get()
            try:
                await send(conn, n, due)
            finally:
                idle.put_nowait(conn)

        async def open_loop() -> None:
            start, sent = time.perf_counter(), []
            for i in range(count):
                due = start + i / rate
                if (ahead := due - time.perf_counter()) > 0:
                    await asyncio.sleep(ahead)
                sent.append(asyncio.create_task(when_free(first + i, due)))
            await asyncio.gather(*sent)

        started = time.perf_counter()
        work = open_loop() if rate else asyncio.gather(*(closed(c) for c in self.connections))
        try:
            await asyncio.wait_for(work, timeout=max_seconds)
        except TimeoutError:
            raise BenchError(f"the run took longer than {max_seconds:.0f} s; stopped") from None
        return latencies, time.perf_counter() - started

    def failed(self, status: int, reply: bytes, count: int) -> None:
        """Count a failure by kind: an HTTP error, `success` (the reply missed REPLY_DEADLINE and went
        to the outbox), or another reply; stop when more than MAX_ERROR_SHARE of the run fails."""
        if status != 200:
            kind = f"HTTP {status or 'connection error'}"
        elif reply == b"success":
            kind = "success (late reply)"
        else:
            kind = "unexpected reply"
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
        if self.errors > max(50, MAX_ERROR_SHARE * count):
            raise BenchError(f"too many failed requests: {self.error_kinds}")

    async def close(self) -> None:
        for conn in self.connections:
            await conn.close()


@contextlib.contextmanager
def profiler(pid: int, output: str | None) -> Iterator[None]:
    """Optionally sample the server with py-spy (not a dependency: `pip install py-spy` first) during
    the measured phase. The output format follows the extension: .svg flame graph, .json speedscope,
    anything else collapsed stacks. Profiled runs are slower; publish figures from unprofiled runs."""
    if not output:
        yield
        return
    spy = shutil.which("py-spy", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if spy is None:
        raise BenchError("--py-spy needs py-spy: .venv/bin/pip install py-spy")
    kind = {".svg": "flamegraph", ".json": "speedscope"}.get(Path(output).suffix, "raw")
    argv = [spy, "record", "--pid", str(pid), "--rate", "250", "--nonblocking", "--subprocesses",
            "--format", kind, "--output", str(Path(output).resolve())]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)  # let it attach
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)




async def measure(
    pid: int, port: int, args: argparse.Namespace, target: str, backend: str,
    names: list[str] | None = None,
) -> Result:
    load = Load(port, args.concurrency, args.openids, args.message, names)
    try:
        await load.check_reply()
        await load.phase(args.warmup, args.max_seconds, first=1)
        load.errors, load.error_kinds = 0, {}
        idle = proc_status(pid)
        cpu_before, client_before = proc_cpu_seconds(pid), resource.getrusage(resource.RUSAGE_SELF)
        with profiler(pid, args.py_spy if target == "wxbot serve" else None):
            latencies, seconds = await load.phase(
                args.requests, args.max_seconds, first=1 + args.warmup, rate=args.rate
            )
        cpu_after, client_after = proc_cpu_seconds(pid), resource.getrusage(resource.RUSAGE_SELF)
        memory = proc_status(pid)
    finally:
        await load.close()
    latencies.sort()
    n = len(latencies)
    client_cpu = sum(
        (after - before)
        for after, before in (
            (client_after.ru_utime, client_before.ru_utime),
            (client_after.ru_stime, client_before.ru_stime),
        )
    )
    return Result(
        target=target,
        backend=backend,
        concurrency=args.concurrency,
        requests=n,
        errors=load.errors,
        seconds=round(seconds, 2),
        msgs_per_s=round(n / seconds, 1),
        p50_ms=round(statistics.median(latencies) * 1000, 2),
        p90_ms=round(percentile(latencies, 0.90) * 1000, 2),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 2),
        max_ms=round(latencies[-1] * 1000, 2),
        server_cpu_ms_per_msg=round((cpu_after - cpu_before) * 1000 / n, 3),
        client_cpu_ms_per_msg=round(client_cpu * 1000 / n, 3),
        rss_before_mb=round(idle["VmRSS"], 1),
        rss_mb=round(memory["VmRSS"], 1),
        peak_rss_mb=round(memory["VmHWM"], 1),
        offered_per_s=args.rate,
        notes=[f"{kind}: {n}" for kind, n in load.error_kinds.items()],
    )


# --- the runs --------------------------------------------------------------------------------------


def run(coro: Coroutine[Any, Any, Result]) -> Result:
    """The client runs on uvloop when it is there (uvicorn[standard] brings it): less CPU per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def describe_backend(database_url: str, redis_url: str) -> str:
    db = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
    kv = "memory://" if redis_url.startswith("memory://") else "Redis"
    return f"{db} + {kv}"


def run_wxbot(args: argparse.Namespace, tmp: Path) -> Result:
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    env = server_env(database_url, args.redis_url, args.log_level)
    migrate(env, tmp)
    names = None
    if args.seed_members:
        names = make_openids(args.openids + args.warmup + 1)  # one member per message, warm-up included
        started = time.perf_counter()
        asyncio.run(seed_members(database_url, names))
        print(f"bench: seeded {len(names)} members in {time.perf_counter() - started:.1f} s")
    port = free_port()
    argv = [str(BIN / "wxbot"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]
    with server(argv, env, tmp, port, "/readyz") as pid:
        backend = describe_backend(database_url, args.redis_url)
        return run(measure(pid, port, args, "wxbot serve", backend, names))


def run_bare(args: argparse.Namespace, tmp: Path) -> Result:
    env = server_env("", "", "warning")
    port = free_port()
    argv = [
        str(BIN / "python"), "-m", "uvicorn", "bench.bare_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--lifespan", "off",
        "--no-access-log", "--log-level", "warning",
    ]
    with server(argv, env, tmp, port, "/healthz") as pid:
        return run(measure(pid, port, args, "bare ASGI app", "none"))


def print_table(results: list[Result]) -> None:
    head = (
        f"{'target':<14} {'backend':<20} {'conc':>4} {'msgs':>6} {'err':>3} {'msg/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'srv cpu ms/msg':>14} {'RSS0 MB':>7} {'RSS MB':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.target:<14} {r.backend:<20} {r.concurrency:>4} {r.requests:>6} {r.errors:>3} "
            f"{r.msgs_per_s:>8.0f} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {r.max_ms:>7.1f} "
            f"{r.server_cpu_ms_per_msg:>14.3f} {r.rss_before_mb:>7.1f} {r.rss_mb:>7.1f}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--redis-url", default="memory://", help="default: memory:// (fakeredis in-process)")
    number = parser.add_argument
    number("--concurrency", type=int, default=64, help="open connections (default 64)")
    number("--workers", type=int, default=1, help="worker processes of wxbot serve (default 1)")
    number(
        "--rate", type=float, default=0.0,
        help="offered messages/s in the measured phase (open loop, at most --concurrency in flight); "
        "default: closed loop, each connection sends again as soon as it has its reply",
    )
    number("--requests", type=int, default=20000, help="measured messages per target (default 20000)")
    number("--warmup", type=int, default=1000, help="messages sent first, not measured (default 1000)")
    number("--openids", type=int, default=256, help="distinct members, used in turn (default 256)")
    parser.add_argument("--message", default=HELP, help="the text every member sends (default 帮助)")
    parser.add_argument(
        "--seed-members", action="store_true",
        help="insert --openids + --warmup + 1 joined members first, one per message (use with 签到)",
    )
    parser.add_argument("--backend-only", action="store_true", help="skip the bare ASGI app")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of wxbot serve (default INFO)")
    parser.add_argument("--max-seconds", type=float, default=300, help="give up a phase after this long")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--py-spy", metavar="PATH", help="profile wxbot serve with py-spy into PATH (.svg, .json or .txt)"
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.requests < 1 or args.openids < 1 or args.warmup < 0 or args.rate < 0 \
            or args.workers < 1:
        parser.error("--concurrency, --requests, --openids and --workers must be positive, --warmup and --rate "
                     "not negative")
    if (args.seed_members or args.message != HELP) and not args.backend_only:
        parser.error("--seed-members and --message need --backend-only (the bare app only answers 帮助)")
    return args






def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = load_average()
    if float(load_before) > 0.5:
        print(f"bench: the 1-minute load average is {load_before}; other work will skew the figures")
    tmp = Path(tempfile.mkdtemp(prefix="wxbot-bench-"))
    results: list[Result] = []
    try:
        results.append(run_wxbot(args, tmp))
        if not args.backend_only:
            results.append(run_bare(args, tmp))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"\n{machine()}; load average {load_before} before, {load_average()} after\n"
        f"{args.requests} signed `{args.message}` messages per target over {args.concurrency} connections from "
        f"{args.openids} members, after {args.warmup} warm-up messages; wxbot serve with {args.workers} worker(s); "
        + (f"offered at {args.rate:g}/s (open loop)\n" if args.rate else "closed loop\n")
    )
    print_table(results)
    for r in results:
        if r.notes:
            print(f"{r.target} failures: {', '.join(r.notes)}")
    print(
        "\nsrv cpu: CPU time of the server process per message; RSS0: server RSS after the warm-up, "
        "RSS: after the run (MB)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
    raise SystemExit(130)
