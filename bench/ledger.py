"""Ledger benchmark, in-process: earn and spend calls per second, each in its own unit of work."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select

from bench.harness import BenchError, machine, migrate, percentile
from bench.webhook import server_env
from storage.db import Database
from storage.ledger import Ledger
from storage.models import Member
from storage.rules import load_rules

USAGE = """
    .venv/bin/python bench/ledger.py                                   # SQLite in a temporary directory
    .venv/bin/python bench/ledger.py --database-url postgresql://root@127.0.0.1:5432/wxbot_bench

Inserts --members joined members (after `wxbot migrate`), then runs --calls earn calls (100 points,
kind purchase, so no daily cap) and --calls spend calls (10 points) at --concurrency tasks; call i
goes to member i mod --members, so concurrent calls hit different members. Every call is one
Database.unit_of_work (lock the member, expire, idempotency check, update balance, entry, lots).
"""


@dataclass
class Result:
    backend: str
    operation: str
    concurrency: int
    calls: int
    seconds: float
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float


async def seed(db: Database, count: int) -> list[int]:
    joined = datetime.now(UTC) - timedelta(days=1)
    rows = [
        {"openid": f"oLEDGER{i:016d}", "joined_at": joined, "created_at": joined, "status": "active",
         "referral_code": f"L{i:09d}", "tier": "普通", "balance": 0, "marketing_opt_out": False}
        for i in range(count)
    ]
    async with db.engine.begin() as conn:
        await conn.execute(insert(Member.__table__), rows)  # type: ignore[arg-type]
        ids = (await conn.execute(select(Member.id).where(Member.openid.like("oLEDGER%")))).scalars()  # type: ignore[union-attr]
        return sorted(int(i) for i in ids)


async def phase(
    name: str, backend: str, calls: int, concurrency: int, max_seconds: float,
    call: Callable[[int], Awaitable[None]],
) -> Result:
    numbers = iter(range(calls))
    latencies: list[float] = []

    async def worker() -> None:
        for n in numbers:
            started = time.perf_counter()
            await call(n)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), max_seconds)
    except TimeoutError:
        raise BenchError(f"{name} took longer than {max_seconds:.0f} s; stopped") from None
    seconds = time.perf_counter() - started
    latencies.sort()
    return Result(
        backend=backend, operation=name, concurrency=concurrency, calls=len(latencies),
        seconds=round(seconds, 2), calls_per_s=round(len(latencies) / seconds, 1),
        p50_ms=round(statistics.median(latencies) * 1000, 2),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 2), max_ms=round(latencies[-1] * 1000, 2),
    )


async def bench(database_url: str, args: argparse.Namespace) -> list[Result]:
    db = Database(database_url, pool_size=max(10, args.concurrency))
    ledger = Ledger(load_rules(None), ZoneInfo("Asia/Shanghai"))
    backend = "PostgreSQL" if db.dialect == "postgresql" else "SQLite"
    try:
        ids = await seed(db, args.members)
        now = datetime.now(UTC)

        async def earn(n: int) -> None:
            async with db.unit_of_work() as session:
                await ledger.earn(session, ids[n % len(ids)], 100, key=f"bench-earn:{n}", kind="purchase",
                                  now=now, reason="bench")

        async def spend(n: int) -> None:
            async with db.unit_of_work() as session:
                await ledger.spend(session, ids[n % len(ids)], 10, key=f"bench-spend:{n}", kind="redeem",
                                   now=now, reason="bench")

        for n in range(min(args.warmup, len(ids))):  # warm the pool and the statement caches
            await earn(args.calls + n)
        return [
            await phase("earn", backend, args.calls, args.concurrency, args.max_seconds, earn),
            await phase("spend", backend, args.calls, args.concurrency, args.max_seconds, spend),
        ]
    finally:
        await db.dispose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, epilog=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--members", type=int, default=1000, help="members inserted first (default 1000)")
    parser.add_argument("--calls", type=int, default=5000, help="earn calls, then spend calls (default 5000)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent tasks (default 16)")
    parser.add_argument("--warmup", type=int, default=50, help="earn calls first, not measured (default 50)")
    parser.add_argument("--max-seconds", type=float, default=120, help="give up a phase after this long")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.members < 1 or args.calls < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--members, --calls and --concurrency must be positive, --warmup not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="wxbot-bench-ledger-"))
    try:
        database_url = args.database_url or f"sqlite:///{tmp / 'ledger.db'}"
        migrate(server_env(database_url, "memory://", "WARNING"), tmp)
        results = asyncio.run(bench(database_url, args))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{machine()}\n{args.members} members, {args.calls} calls per operation, "
          f"{args.concurrency} tasks, one unit of work per call\n")
    head = (f"{'backend':<11} {'op':<6} {'conc':>4} {'calls':>6} {'calls/s':>8} {'p50 ms':>7} "
            f"{'p99 ms':>7} {'max ms':>7}")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r.backend:<11} {r.operation:<6} {r.concurrency:>4} {r.calls:>6} {r.calls_per_s:>8.0f} "
              f"{r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {r.max_ms:>7.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
