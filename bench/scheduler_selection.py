"""Scheduler selection benchmark (issue 6), run by hand: with --members joined members on PostgreSQL, how
long each daily job takes to select its members (not to handle them). The sender's throughput is
bench/scheduler_sender.py, on the same seed.

    psql -h 127.0.0.1 -d postgres -c 'create database wxbot_bench6'
    .venv/bin/python bench/scheduler_selection.py --database-url postgresql://root@127.0.0.1:5432/wxbot_bench6 \\
        --redis-url redis://127.0.0.1:6379/13
    .venv/bin/python bench/scheduler_selection.py ... --skip-seed --with-indexes     # again, candidate indexes

1. `wxbot migrate`, then the seed, server-side (INSERT ... SELECT over generate_series, no ORM): joined
   members with birthdays over every date (29 February included, a share with none), last interaction
   over the past year, opt-outs, deletions, unsubscriptions and tiers mixed; 1-3 live points lots per
   member expiring at month ends over the next 13 months and older lots already expired, each with its
   ledger entries (running balance_after) and the member's balance equal to its live lots; win-back
   offers of the last 30 days with their sent outbox rows; the sent 30-day expiry reminders. Then
   VACUUM ANALYZE. The seed is fixed by --today (default 2026-11-22), not by the real date.
2. Each daily job's selection, built from the job's own pieces, paged as the job pages (BATCH rows),
   each page in its own session, nothing handled; plus EXPLAIN (ANALYZE, BUFFERS) of the first, a middle
   and the last page (first and last for expire_points, which pages by member). The seed leaves the
   member summary columns of migration 0002 (earned_total, expiry_check_at, winback_until, ...) at their
   defaults: no selection reads them.
--with-indexes creates the candidate indexes (CANDIDATE_INDEXES) in the bench database first; without
it they are dropped, so the two runs give the before and after. The database and the Redis database
must be scratch ones: the seed truncates every table it fills.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import select

from bench.harness import (
    print_markdown,
)
from bench.scheduler_seed import (
    Explainer,
    add_seed_args,
    local_at,
    month_start,
    parse,
    pg_dsn,
    prepare,
    run_bench,
)
from scheduler.jobs import BATCH, JobContext, birthdays_on, expiring_page, reminder_key, winback_candidates
from storage.db import Database
from storage.ledger import Ledger, lapsed_members
from storage.models import Member, Outbox
from storage.rules import load_rules
from storage.tiers import unreviewed

USAGE = __doc__
# Indexes the selections could use; created with --with-indexes, dropped otherwise.
CANDIDATE_INDEXES: dict[str, str] = {
    "ix_points_lot_due": "CREATE INDEX ix_points_lot_due ON points_lot (expires_at, member_id) WHERE remaining > 0",
    "ix_points_lot_member_due": (
        "CREATE INDEX ix_points_lot_member_due ON points_lot (member_id, expires_at) INCLUDE (remaining) "
        "WHERE remaining > 0"
    ),
}  # ix_member_birthday on (month, day, id) and ix_outbox_pending were candidates here: migration 0003 has them


# --- the selections ----------------------------------------------------------------------------------


@dataclass
class Selection:
    job: str
    at: str
    selected: int = 0
    pages: int = 0
    seconds: float = 0.0
    median_ms: float = 0.0
    max_ms: float = 0.0
    scans_first: str = ""
    scans_mid: str = ""
    scans_last: str = ""
    explain_ms_first: float = 0.0
    explain_ms_mid: float = 0.0
    explain_ms_last: float = 0.0
    note: str = ""
    page_ms: list[float] = field(default_factory=list, repr=False)

    def close(self, times: list[float]) -> None:
        self.pages = len(times)
        self.seconds = round(sum(times), 3)
        self.page_ms = [round(t * 1000, 2) for t in times]
        self.median_ms = round(statistics.median(times) * 1000, 2) if times else 0.0
        self.max_ms = round(max(times) * 1000, 2) if times else 0.0






async def keyset_pages(
    db: Database, query: Any, sel: Selection, explain: Explainer, *, stop_when_empty: bool = False,
    max_seconds: float,
) -> None:
    """Page through `query` as scheduler.jobs._each (and storage.tiers.review_tiers) do, handling nothing."""
    times: list[float] = []
    lasts: list[int] = []
    last = 0
    while True:
        lasts.append(last)
        started = time.perf_counter()
        async with db.sessions() as session:
            ids = list((await session.scalars(
                query.where(Member.id > last).order_by(Member.id).limit(BATCH)
            )).all())
        times.append(time.perf_counter() - started)
        sel.selected += len(ids)
        done = not ids if stop_when_empty else len(ids) < BATCH
        if done:
            break
        last = ids[-1]
        if sum(times) > max_seconds:
            sel.note = f"gave up after {max_seconds:.0f} s"
            break
    sel.close(times)
    for where, last in (("first", lasts[0]), ("mid", lasts[len(lasts) // 2]), ("last", lasts[-1])):
        page = query.where(Member.id > last).order_by(Member.id).limit(BATCH)
        found, took = await explain(page, f"{sel.job}-{where}")
        setattr(sel, f"scans_{where}", found)
        setattr(sel, f"explain_ms_{where}", took)


async def select_birthday(ctx: JobContext, now: datetime, explain: Explainer, label: str, max_s: float) -> Selection:
    sel = Selection(label, now.astimezone(ctx.tz).isoformat())
    day = now.astimezone(ctx.tz).date()
    await keyset_pages(ctx.db, birthdays_on(day), sel, explain, max_seconds=max_s)
    return sel


async def select_winback(ctx: JobContext, now: datetime, explain: Explainer, max_s: float) -> Selection:
    sel = Selection("winback", now.astimezone(ctx.tz).isoformat())
    await keyset_pages(ctx.db, winback_candidates(ctx.rules, now), sel, explain, max_seconds=max_s)
    return sel


async def select_tiers(ctx: JobContext, now: datetime, explain: Explainer, max_s: float) -> Selection:
    sel = Selection("tier_review", now.astimezone(ctx.tz).isoformat())
    month = f"{now.astimezone(ctx.tz):%Y-%m}"
    await keyset_pages(ctx.db, unreviewed(month), sel, explain, stop_when_empty=True, max_seconds=max_s)
    return sel


def dedupe_query(keys: list[str]) -> Any:
    return select(Outbox.dedupe_key).where(Outbox.dedupe_key.in_(keys))  # type: ignore[attr-defined]


async def select_reminders(ctx: JobContext, now: datetime, explain: Explainer, max_s: float) -> Selection:
    sel = Selection("expiry_reminders", now.astimezone(ctx.tz).isoformat())
    times: list[float] = []
    lookup: list[float] = []
    lasts: list[int] = []
    last_keys: list[str] = []
    to_remind = 0
    last = 0
    while True:
        lasts.append(last)
        started = time.perf_counter()
        async with ctx.db.sessions() as session:
            rows = (await session.execute(expiring_page(now, last))).all()
        due = {reminder_key(ctx, member_id, expires_at, now): member_id for member_id, _, expires_at in rows}
        looked = time.perf_counter()
        async with ctx.db.sessions() as session:
            done = set((await session.scalars(dedupe_query(list(due)))).all())
        ended = time.perf_counter()
        times.append(ended - started)
        lookup.append(ended - looked)
        sel.selected += len(rows)
        to_remind += len(set(due) - done)
        if due:
            last_keys = list(due)
        if len(rows) < BATCH or sum(times) > max_s:
            sel.note = f"gave up after {max_s:.0f} s" if len(rows) == BATCH else ""
            break
        last = rows[-1][0]
    sel.close(times)
    share = 100 * sum(lookup) / sum(times) if sum(times) else 0.0
    sel.note = (sel.note + "; " if sel.note else "") + (
        f"{to_remind} still to remind; "
        f"the outbox dedupe lookup is {share:.0f} % of the time"
    )
    sel.scans_first, sel.explain_ms_first = await explain(expiring_page(now, lasts[0]), "expiry_reminders-first")
    sel.scans_mid, sel.explain_ms_mid = await explain(expiring_page(now, lasts[len(lasts) // 2]),
                                                      "expiry_reminders-mid")
    sel.scans_last, sel.explain_ms_last = await explain(expiring_page(now, lasts[-1]), "expiry_reminders-last")
    lookup_scans, lookup_ms = await explain(dedupe_query(last_keys or ["none"]), "expiry_reminders-dedupe")
    sel.scans_last += f" | dedupe lookup: {lookup_scans} ({lookup_ms:.1f} ms)"
    return sel


async def select_expire(ctx: JobContext, now: datetime, explain: Explainer, max_s: float) -> Selection:
    """Ledger.expire_due as the job calls it, paged by member (after=), each call in its own session."""
    sel = Selection("expire_points", now.astimezone(ctx.tz).isoformat(), note="Ledger.expire_due, paged by member")
    sel.scans_first, sel.explain_ms_first = await explain(lapsed_members(now, BATCH), "expire_points-first")
    times: list[float] = []
    last = 0
    while True:
        started = time.perf_counter()
        async with ctx.db.sessions() as session:
            ids = await ctx.ledger.expire_due(session, now, limit=BATCH, after=last)
        times.append(time.perf_counter() - started)
        sel.selected += len(ids)
        if len(ids) < BATCH:
            break
        if sum(times) > max_s:
            sel.note += f"; gave up after {max_s:.0f} s"
            break
        last = ids[-1]
    sel.scans_last, sel.explain_ms_last = await explain(lapsed_members(now, BATCH, last), "expire_points-last")
    sel.close(times)
    return sel


@dataclass(frozen=True)
class Moments:
    """The local times the jobs are measured at: each with real work on the seeded data."""

    today: datetime
    feb28: datetime
    first: datetime
    expire: datetime


def moments(today: date, tz: ZoneInfo) -> Moments:
    year = today.year if (today.month, today.day) <= (2, 28) else today.year + 1
    while calendar.isleap(year):
        year += 1
    first = month_start(today, 1)
    return Moments(
        today=local_at(today, tz, 9), feb28=local_at(date(year, 2, 28), tz, 9),
        first=local_at(first, tz, 3), expire=local_at(first, tz, 0, 10),
    )


async def run_selections(args: argparse.Namespace, ctx: JobContext, plans_dir: Path) -> list[Selection]:
    explain = Explainer(ctx.db, plans_dir)
    await ctx.db.ping()  # a pooled connection, as the running scheduler has, so page 1 is not a connect
    at = moments(args.today, ctx.tz)
    max_s = args.max_seconds
    results: list[Selection] = []
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("birthday", lambda: select_birthday(ctx, at.today, explain, "birthday", max_s)),
        ("birthday", lambda: select_birthday(ctx, at.feb28, explain, "birthday (28 Feb)", max_s)),
        ("expire_points", lambda: select_expire(ctx, at.expire, explain, max_s)),
        ("expiry_reminders", lambda: select_reminders(ctx, at.today.replace(hour=10), explain, max_s)),
        ("winback", lambda: select_winback(ctx, at.today.replace(hour=11), explain, max_s)),
        ("tier_review", lambda: select_tiers(ctx, at.first, explain, max_s)),
    ]
    for name, step in steps:
        if args.jobs and name not in args.jobs:
            continue
        result = await step()
        print(f"bench: {result.job}: {result.selected} selected in {result.pages} pages, {result.seconds:.2f} s "
              f"(median {result.median_ms} ms, max {result.max_ms} ms); {result.scans_first}", flush=True)
        results.append(result)
    return results


# --- indexes, output, main --------------------------------------------------------------------------------


async def set_indexes(database_url: str, create: bool) -> None:
    conn = await asyncpg.connect(pg_dsn(database_url))
    try:
        for name, ddl in CANDIDATE_INDEXES.items():
            await conn.execute(f"DROP INDEX IF EXISTS {name}")
            if create:
                started = time.perf_counter()
                await conn.execute(ddl)
                print(f"bench: {name} built in {time.perf_counter() - started:.1f} s", flush=True)
        if create:
            await conn.execute("ANALYZE points_lot, member, outbox")
    finally:
        await conn.close()




def print_selections(results: list[Selection]) -> None:
    print_markdown(
        ["job", "as of (local)", "selected", "pages", "total s", "median ms/page", "max ms/page", "scans (first page)"],
        [[r.job, r.at[:16], f"{r.selected:,}", f"{r.pages:,}", f"{r.seconds:.2f}", r.median_ms, r.max_ms,
          r.scans_first] for r in results],
    )
    for r in results:
        mid = f", middle page {r.explain_ms_mid} ms ({r.scans_mid})" if r.scans_mid else ""
        print(f"  {r.job}: EXPLAIN first page {r.explain_ms_first} ms{mid}, last page {r.explain_ms_last} ms "
              f"({r.scans_last or 'not explained'}); {r.note}")




def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_seed_args(parser)
    parser.add_argument("--with-indexes", action="store_true", help="create CANDIDATE_INDEXES first (else drop them)")
    parser.add_argument("--jobs", nargs="*", choices=["birthday", "expire_points", "expiry_reminders", "winback",
                                                      "tier_review"], help="only these selections")
    return parse(parser, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rules, tz = load_rules(None), ZoneInfo("Asia/Shanghai")

    def body(tmp: Path, plans: Path) -> dict[str, Any]:
        report = prepare(args, tmp) | {"with_indexes": args.with_indexes}
        asyncio.run(set_indexes(args.database_url, args.with_indexes))

        async def selections() -> list[Selection]:
            db = Database(args.database_url)
            try:
                return await run_selections(args, JobContext(db, Ledger(rules, tz)), plans)
            finally:
                await db.dispose()

        jobs = asyncio.run(selections())
        report["selections"] = [asdict(r) for r in jobs]
        print_selections(jobs)
        print(f"\nbench: plans in {plans}")
        return report

    return run_bench(args, body)


if __name__ == "__main__":
    raise SystemExit(main())
