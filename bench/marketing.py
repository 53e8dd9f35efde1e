"""Segments and broadcasts benchmark (issue 16), run by hand: with --members members on PostgreSQL and a year of
their orders, how long the daily `rfm` layering takes, how long expanding one broadcast to every reachable
member takes and how much the expanding process grows, and how long a broadcast's preview takes. Targets: the
layering under 60 s, the expansion under 60 s and under 200 MB of memory growth, each preview under 3 s.

    psql -h 127.0.0.1 -U postgres -d postgres -c 'create database wxbot_mktbench'
    .venv/bin/python -m bench.marketing --database-url postgresql://postgres@127.0.0.1:5432/wxbot_mktbench \\
        --members 1000000 --json marketing.json
    .venv/bin/python -m bench.marketing ... --skip-seed          # again on the same data
    psql -h 127.0.0.1 -U postgres -d postgres -c 'drop database wxbot_mktbench'

1. `wxbot migrate` and the KPI benchmark's seed (bench/kpi_snapshot.py: bench/scheduler_seed.py's members,
   lots and pushes, then a year of paid orders, interaction days, 90 days of marketing pushes, subscribe
   credits, ...), as of --today (default 2026-11-22), then VACUUM ANALYZE.
2. The `rfm` job (scheduler.jobs.rfm, one unit of work, a pooled Database as the scheduler has) at its
   scheduled 00:20 local, --runs rounds: member_segment and the moves emptied
   (then VACUUM ANALYZE), the first layering (it moves everyone) on --today, and the next night's run on
   the day after (it moves the few whose 12 months changed). Medians of both; each statement of one more
   next-night run timed on its own.
3. The preview (storage.broadcasts.preview, a campaign with a template and a subscription template, so every
   count runs) of everyone reachable and of one tier active within 30 days: --preview-runs each (median),
   statements timed and, with --explain, explained.
4. One broadcast to everyone reachable (storage.broadcasts.create, then the `broadcasts` job at send time
   until the broadcast is sent), --runs times, its outbox rows deleted (and the outbox vacuumed) after each:
   wall time, rows queued, and this process's resident memory before and at its peak during the expansion
   (VmHWM reset through /proc/self/clear_refs, and a thread sampling /proc/self/statm every 5 ms).
The database must be a scratch one: the seed truncates every table it fills.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import threading
import time
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import func, select
from sqlmodel import col

from bench.harness import BenchError, print_markdown
from bench.kpi_snapshot import StatementTimer, explain, kpi_seed_sql, label
from bench.scheduler_seed import local_at, parse, pg_dsn, prepare, run_bench
from scheduler.jobs import JobContext, broadcast_expansion, rfm
from storage import audit, broadcasts
from storage.audiences import Audience
from storage.db import Database
from storage.ledger import Ledger
from storage.models import Broadcast, Outbox
from storage.rules import Rules, load_rules

USAGE = __doc__
ACTOR = audit.Actor("marketing-bench", "operator")
SUBSCRIBE_TEMPLATE = "tmpl-bench"  # the template of the KPI seed's subscribe credits
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# --- memory ----------------------------------------------------------------------------------------------


def status_mb(name: str) -> float:
    """A field of /proc/self/status (VmRSS, VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value.split()[0]) / 1024
    raise BenchError(f"/proc/self/status has no {name}")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (writing 5 to /proc/self/clear_refs, Linux 4.0+); False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler:
    """The largest resident set seen by a thread reading /proc/self/statm every `interval` seconds."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with open("/proc/self/statm") as statm:
            while not self._stop.is_set():
                statm.seek(0)
                rss = int(statm.read().split()[1]) * PAGE_SIZE / 2**20
                self.peak = max(self.peak, rss)
                self.samples += 1
                self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- rfm -------------------------------------------------------------------------------------------------


async def reset_layering(database_url: str) -> None:
    """Every member unlayered and no moves, as before the first run; then VACUUM ANALYZE of both tables."""
    conn = await asyncpg.connect(pg_dsn(database_url))
    try:
        await conn.execute("TRUNCATE member_segment, rfm_move")
        await conn.execute("VACUUM ANALYZE member_segment")
        await conn.execute("VACUUM ANALYZE rfm_move")
    finally:
        await conn.close()


async def measure_rfm(args: argparse.Namespace, rules: Rules, tz: ZoneInfo, plans: Path) -> dict[str, Any]:
    first_at = local_at(args.today, tz, 0, 20)  # the job's schedule: 00:20 local
    next_at = first_at + timedelta(days=1)
    rounds: list[dict[str, Any]] = []
    for _ in range(args.runs):
        await reset_layering(args.database_url)
        db = Database(args.database_url)
        try:
            await db.ping()  # a pooled connection, as the running scheduler has
            ctx = JobContext(db, Ledger(rules, tz))
            started = time.perf_counter()
            moved_first = await rfm(ctx, first_at)
            first_s = time.perf_counter() - started
            started = time.perf_counter()
            moved_next = await rfm(ctx, next_at)
            next_s = time.perf_counter() - started
        finally:
            await db.dispose()
        rounds.append({"first_s": round(first_s, 2), "first_moved": moved_first,
                       "next_s": round(next_s, 2), "next_moved": moved_next})
        print(f"bench: rfm first run {rounds[-1]['first_s']} s ({moved_first} moved), next night "
              f"{rounds[-1]['next_s']} s ({moved_next} moved)", flush=True)
    result: dict[str, Any] = {
        "rounds": rounds,
        "first_median_s": statistics.median(r["first_s"] for r in rounds),
        "next_median_s": statistics.median(r["next_s"] for r in rounds),
    }
    # One more night's run (the day after next), statement by statement.
    db = Database(args.database_url)
    try:
        ctx = JobContext(db, Ledger(rules, tz))
        with StatementTimer(db) as timer:
            await rfm(ctx, next_at + timedelta(days=1))
        result["statements"] = [{"statement": i, "tables": label(r["sql"]), "ms": r["ms"]}
                                for i, r in sorted(enumerate(timer.rows), key=lambda pair: -pair[1]["ms"])]
        # No EXPLAIN of the layering: its statements read and write the run's temporary tables, which are gone
        # after it (storage/segments.py); the timings above say which statement costs what.
    finally:
        await db.dispose()
    async with asyncpg_conn(args.database_url) as conn:
        result["classes"] = {str(k): int(n) for k, n in await conn.fetch(
            "SELECT segment, count(*) FROM member_segment GROUP BY segment ORDER BY 2 DESC")}
    return result


@contextlib.asynccontextmanager
async def asyncpg_conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_dsn(database_url))
    try:
        yield conn
    finally:
        await conn.close()


# --- preview ---------------------------------------------------------------------------------------------


def make_draft(rules: Rules, audience: Audience, now: datetime) -> broadcasts.Draft:
    return broadcasts.checked(
        name="基准测试", kind="campaign", audience=audience, content={"text": "双十二全场八折"}, send_at=None,
        deadline=None, request_id=f"bench-{secrets.token_hex(8)}", tiers=[t.name for t in rules.tiers], now=now,
    )


async def measure_preview(args: argparse.Namespace, rules: Rules, tz: ZoneInfo, plans: Path) -> list[dict[str, Any]]:
    now = local_at(args.today, tz, 10, 0)
    tier = args.preview_tier or rules.tiers[1].name
    cases = [("everyone", Audience()), (f"tier {tier}, active 30 days", Audience(tiers=(tier,), active_days=30))]
    out = []
    db = Database(args.database_url)
    try:
        await db.ping()
        for n, (name, audience) in enumerate(cases):
            draft = make_draft(rules, audience, now)
            times: list[float] = []
            shown: broadcasts.Preview | None = None
            for _ in range(args.preview_runs):
                started = time.perf_counter()
                async with db.sessions() as session:
                    shown = await broadcasts.preview(session, draft, now, rules=rules, tz=tz,
                                                     templates=("campaign",),
                                                     subscribe_templates={"campaign": SUBSCRIBE_TEMPLATE})
                times.append(time.perf_counter() - started)
            assert shown is not None
            with StatementTimer(db) as timer:
                async with db.sessions() as session:
                    await broadcasts.preview(session, draft, now, rules=rules, tz=tz, templates=("campaign",),
                                             subscribe_templates={"campaign": SUBSCRIBE_TEMPLATE})
            row: dict[str, Any] = {
                "audience": name, "runs_s": [round(t, 3) for t in times],
                "median_s": round(statistics.median(times), 3),
                "figures": {"audience": shown.audience, "cs_window": shown.cs_window, "template": shown.template,
                            "subscription": shown.subscription, "capped": shown.capped,
                            "capped_sample": shown.capped_sample, "capped_margin": shown.capped_margin,
                            "cap": shown.cap},
                "statements": [{"statement": i, "tables": label(r["sql"]), "ms": r["ms"]}
                               for i, r in enumerate(timer.rows)],
            }
            if args.explain:
                where = plans / f"preview-{n}"
                where.mkdir(exist_ok=True)
                row["explain"] = await explain(db, timer.rows, where)
            print(f"bench: preview of {name}: {row['runs_s']} s, median {row['median_s']} s; {row['figures']}",
                  flush=True)
            out.append(row)
    finally:
        await db.dispose()
    return out


# --- expansion -------------------------------------------------------------------------------------------


async def drop_rows(database_url: str, broadcast_id: int) -> int:
    """The broadcast's outbox rows deleted, then VACUUM ANALYZE outbox; how many were deleted."""
    async with asyncpg_conn(database_url) as conn:
        done = await conn.execute("DELETE FROM outbox WHERE broadcast_id = $1", broadcast_id)
        await conn.execute("VACUUM ANALYZE outbox")
    return int(done.split()[-1])


async def expand_once(args: argparse.Namespace, rules: Rules, tz: ZoneInfo) -> dict[str, Any]:
    now = local_at(args.today, tz, 10, 0)
    db = Database(args.database_url)
    try:
        await db.ping()
        ctx = JobContext(db, Ledger(rules, tz))
        draft = make_draft(rules, Audience(), now)
        started = time.perf_counter()
        async with db.unit_of_work() as session:
            made, _ = await broadcasts.create(session, draft, actor=ACTOR, now=now)
        created_s = time.perf_counter() - started
        broadcast_id = int(made.id or 0)
        baseline = status_mb("VmRSS")
        peak_reset = reset_peak()
        calls, queued = 0, 0
        with RssSampler() as sampler:
            started = time.perf_counter()
            while True:  # the job runs every minute; here back to back until the broadcast is sent
                queued += await broadcast_expansion(ctx, now)
                calls += 1
                async with db.sessions() as session:
                    status = await session.scalar(
                        select(col(Broadcast.status)).where(col(Broadcast.id) == broadcast_id))
                if status == broadcasts.SENT:
                    break
                if calls > 50 or time.perf_counter() - started > args.max_seconds:
                    raise BenchError(f"broadcast {broadcast_id} still {status} after {calls} job runs")
            took = time.perf_counter() - started
        hwm = status_mb("VmHWM")
        async with db.sessions() as session:
            rows = int(await session.scalar(select(func.count()).select_from(Outbox)
                                            .where(col(Outbox.broadcast_id) == broadcast_id)) or 0)
    finally:
        await db.dispose()
    if rows != queued:
        raise BenchError(f"the job says {queued} queued, the outbox holds {rows}")
    peak = max(sampler.peak, hwm if peak_reset else 0.0)
    result = {"broadcast_id": broadcast_id, "create_s": round(created_s, 3), "expand_s": round(took, 2),
              "job_runs": calls, "queued": queued, "rss_before_mb": round(baseline, 1),
              "rss_peak_mb": round(peak, 1), "growth_mb": round(peak - baseline, 1),
              "vmhwm_mb": round(hwm, 1) if peak_reset else None, "sampled_peak_mb": round(sampler.peak, 1),
              "samples": sampler.samples}
    result["deleted"] = await drop_rows(args.database_url, broadcast_id)
    print(f"bench: broadcast {broadcast_id}: {queued} rows in {result['expand_s']} s ({calls} job runs); RSS "
          f"{result['rss_before_mb']} MB before, {result['rss_peak_mb']} MB at peak (+{result['growth_mb']} MB)",
          flush=True)
    return result


async def measure_expansion(args: argparse.Namespace, rules: Rules, tz: ZoneInfo) -> dict[str, Any]:
    runs = [await expand_once(args, rules, tz) for _ in range(args.runs)]
    return {"runs": runs, "median_s": statistics.median(r["expand_s"] for r in runs),
            "max_growth_mb": max(r["growth_mb"] for r in runs)}


# --- main ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a scratch PostgreSQL database (it is truncated)")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--today", type=date.fromisoformat, default=date(2026, 11, 22),
                        help="the local day the seed is as of and the first layering's (default 2026-11-22)")
    parser.add_argument("--skip-seed", action="store_true", help="reuse the seeded database (no migrate, no seed)")
    parser.add_argument("--runs", type=int, default=3, help="layering rounds and expansions (medians reported)")
    parser.add_argument("--preview-runs", type=int, default=5, help="previews per audience (median reported)")
    parser.add_argument("--preview-tier", help="the tier of the second preview (default: the rules' second tier)")
    parser.add_argument("--max-seconds", type=float, default=900, help="give up an expansion after this")
    parser.add_argument("--only", choices=("rfm", "preview", "expand"), action="append",
                        help="measure only this (repeatable; default all three)")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the previews' SQL")
    parser.add_argument("--plans", type=Path, help="directory for the EXPLAIN output (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parse(parser, argv)
    args.redis_url = "memory://"  # the migrate step's environment; nothing here uses the KV
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rules, tz = load_rules(None), ZoneInfo("Asia/Shanghai")
    only = set(args.only or ("rfm", "preview", "expand"))

    def body(tmp: Path, plans: Path) -> dict[str, Any]:
        report = prepare(args, tmp, kpi_seed_sql)
        if "rfm" in only:
            report["rfm"] = asyncio.run(measure_rfm(args, rules, tz, plans))
        if "preview" in only:
            report["preview"] = asyncio.run(measure_preview(args, rules, tz, plans))
        if "expand" in only:
            report["expansion"] = asyncio.run(measure_expansion(args, rules, tz))
        rows: list[list[Any]] = []
        if "rfm" in report:
            r = report["rfm"]
            rows.append(["rfm job, first layering (median)", f"{r['first_median_s']} s",
                         ", ".join(f"{x['first_s']} s / {x['first_moved']:,} moved" for x in r["rounds"]), "< 60 s"])
            rows.append(["rfm job, next night (median)", f"{r['next_median_s']} s",
                         ", ".join(f"{x['next_s']} s / {x['next_moved']:,} moved" for x in r["rounds"]), "< 60 s"])
        for p in report.get("preview", []):
            rows.append([f"preview: {p['audience']} (median)", f"{p['median_s']} s",
                         f"{p['figures']['audience']:,} members, {p['figures']['capped']:,} capped", "< 3 s"])
        if "expansion" in report:
            e = report["expansion"]
            rows.append(["expansion to everyone reachable (median)", f"{e['median_s']} s",
                         ", ".join(f"{x['expand_s']} s / {x['queued']:,} rows" for x in e["runs"]), "< 60 s"])
            rows.append(["expansion: RSS growth (max)", f"{e['max_growth_mb']} MB",
                         ", ".join(f"{x['rss_before_mb']} -> {x['rss_peak_mb']} MB" for x in e["runs"]), "< 200 MB"])
        print_markdown(["measure", "figure", "runs", "target"], rows)
        for key, stmts in [("rfm", report.get("rfm", {}).get("statements", []))] + [
                (f"preview {p['audience']}", p["statements"]) for p in report.get("preview", [])]:
            if stmts:
                print(f"\n{key}:")
                print_markdown(["statement", "tables", "ms"], [[s["statement"], s["tables"], s["ms"]] for s in stmts])
        for key, plan in [("rfm", report.get("rfm", {}).get("explain"))] + [
                (f"preview {p['audience']}", p.get("explain")) for p in report.get("preview", [])]:
            if plan:
                print(f"\n{key} EXPLAIN:")
                print_markdown(["statement", "tables", "EXPLAIN ANALYZE ms", "seq scans"],
                               [[e["statement"], e["tables"], e["explain_ms"], ", ".join(e["seq_scans"])]
                                for e in plan])
        print(json.dumps({k: v for k, v in report.items() if k not in ("rfm", "preview")}, indent=2,
                         ensure_ascii=False))
        print(f"bench: plans in {plans}" if args.explain else "", flush=True)
        return report

    return run_bench(args, body)


if __name__ == "__main__":
    raise SystemExit(main())
