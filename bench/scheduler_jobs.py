"""Scheduler jobs benchmark (issue 6), run by hand: with --members joined members on PostgreSQL, how
long each daily job takes to select its members (not to handle them), and the outbox sender's
throughput against the fake WeChat API with pacing off.

    psql -h 127.0.0.1 -d postgres -c 'create database wxbot_bench6'
    .venv/bin/python bench/scheduler_jobs.py --database-url postgresql://root@127.0.0.1:5432/wxbot_bench6 \\
        --redis-url redis://127.0.0.1:6379/13
    .venv/bin/python bench/scheduler_jobs.py ... --skip-seed --with-indexes     # again, candidate indexes

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
3. The outbox sender with pacing off (qps 0) against `wxbot fake-wechat` in a subprocess: --sends due
   marketing rows (kind birthday, template channel), drained by 1, 2 and 4 Senders, as asyncio tasks in
   this process and as one process each; every row must be sent exactly once (outbox and fake agree).
   The claim query is EXPLAINed once the rows are queued.

--with-indexes creates the candidate indexes (CANDIDATE_INDEXES) in the bench database first; without
it they are dropped, so the two runs give the before and after. The database and the Redis database
must be scratch ones: the seed truncates every table it fills, each sender run flushes the Redis one.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import contextlib
import json
import multiprocessing
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.runtime import make_api, make_sender
from bot.settings import Settings
from scheduler.jobs import BATCH, JobContext, _reminder_key, birthdays_on, expiring_page, winback_candidates
from scheduler.sender import SenderConfig
from storage.db import Database
from storage.kv import KV
from storage.ledger import Ledger, lapsed_members
from storage.members import ACTIVE, UNSUBSCRIBED
from storage.models import Member, Outbox
from storage.outbox import claim_pick
from storage.rules import Rules, load_rules
from storage.tiers import unreviewed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webhook import (  # noqa: E402
    BIN,
    BenchError,
    free_port,
    load_average,
    machine,
    migrate,
    proc_cpu_seconds,
    server,
    server_env,
)

USAGE = __doc__
SEND_PREFIX = "benchsend:"  # dedupe keys of the rows queued for the sender runs
TEMPLATE_ID = "TPL_bench_birthday"
TEMPLATE_PATH = "/cgi-bin/message/template/send"
SEED_TABLES = ("lot_movement", "points_lot", "ledger_entry", "outbox_attempt", "outbox", "winback_offer", "member")
TIER_WEIGHTS = (0.70, 0.20, 0.08, 0.02)  # share of members per tier, lowest first
# Indexes the selections could use; created with --with-indexes, dropped otherwise.
CANDIDATE_INDEXES: dict[str, str] = {
    "ix_points_lot_due": "CREATE INDEX ix_points_lot_due ON points_lot (expires_at, member_id) WHERE remaining > 0",
    "ix_points_lot_member_due": (
        "CREATE INDEX ix_points_lot_member_due ON points_lot (member_id, expires_at) INCLUDE (remaining) "
        "WHERE remaining > 0"
    ),
}  # ix_member_birthday on (month, day, id) and ix_outbox_pending were candidates here: migration 0003 has them
SCAN = re.compile(
    r"(Seq Scan|Parallel Seq Scan|Index Only Scan|Index Scan|Bitmap Index Scan|Bitmap Heap Scan)"
    r"(?: Backward)?(?: using (\S+))? on (\S+)"
    r"|((?:Merge|Hash|Nested Loop) (?:Anti |Semi )?Join)"
)


# --- seeding -----------------------------------------------------------------------------------------


def _local(day: date, tz: ZoneInfo, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, dtime(hour, minute), tzinfo=tz)


def _month_start(day: date, months: int = 0) -> date:
    total = day.year * 12 + day.month - 1 + months
    return date(total // 12, total % 12 + 1, 1)


def seed_sql(members: int, today: date, tz: ZoneInfo, rules: Rules) -> list[str]:
    """The statements that fill the tables, as of local midnight starting `today`. Values computed in
    Python (dates, names) are formatted in; everything per row is generated by PostgreSQL."""
    zone = tz.key
    t0 = f"'{today.isoformat()} 00:00'::timestamp"  # local wall time
    this_month = f"'{_month_start(today).isoformat()}'::timestamp"
    first_lot_month = f"'{_month_start(today, -12).isoformat()}'::timestamp"  # live lots: 13 months to today
    cuts, tier_case = 0.0, []
    for tier, weight in zip(rules.tiers, TIER_WEIGHTS, strict=False):
        cuts += weight
        tier_case.append(f"WHEN rt < {cuts:.4f} THEN '{tier.name}'")
    tiers = "CASE " + " ".join(tier_case) + f" ELSE '{rules.tiers[0].name}' END"
    reviewed = f"{_month_start(today):%Y-%m}"
    next_first = _month_start(today, 1)
    reminded_month = f"{next_first - timedelta(days=1):%Y-%m}"
    return [
        "SELECT setseed(0.6)",
        f"TRUNCATE {', '.join(SEED_TABLES)} RESTART IDENTITY CASCADE",
        # Per-member draws first (temporary), so lots and balances can be computed before the insert.
        f"""CREATE TEMP TABLE seed_member AS
            SELECT i AS id,
                   CASE WHEN rs < 0.01 THEN 'deleted' WHEN rs < 0.02 THEN '{UNSUBSCRIBED}' ELSE '{ACTIVE}' END
                       AS status,
                   random() < 0.02 AS opt_out,
                   {tiers} AS tier,
                   CASE WHEN rs < 0.01 OR random() < 0.15 THEN NULL
                        ELSE date '1960-01-01' + floor(random() * 16800)::int END AS born,
                   ({t0} - random() * interval '1095 days') AT TIME ZONE '{zone}' AS joined_at,
                   random() AS r_seen,
                   1 + floor(random() * 3)::int AS lots,
                   random() < 0.4 AS had_expired
            FROM (SELECT i, random() AS rs, random() AS rt FROM generate_series(1, {members}) AS i) AS s""",
        # Live lots earned over the last 13 months (so expiring at the next 13 month ends), and one lot
        # a year older, already expired, for 40 % of members. Expiry per the rules: the end of the
        # 12th month after the month earned, i.e. local midnight starting the 13th.
        f"""CREATE TEMP TABLE seed_lot AS
            WITH drawn AS (
                SELECT m.id AS member_id, m.joined_at, false AS historic,
                       floor(random() * 13)::int + 0 * g AS e, random() AS r_day, random() AS r_amount
                FROM seed_member AS m CROSS JOIN LATERAL generate_series(1, m.lots) AS g
                WHERE m.status <> 'deleted'
                UNION ALL
                SELECT m.id, m.joined_at, true, floor(random() * 12)::int - 12, random(), random()
                FROM seed_member AS m WHERE m.status <> 'deleted' AND m.had_expired
            ), placed AS (
                SELECT member_id, joined_at, historic, r_amount,
                       {first_lot_month} + e * interval '1 month' AS start_local,
                       least({first_lot_month} + (e + 1) * interval '1 month', {t0}) AS end_local, r_day
                FROM drawn
            ), timed AS (
                SELECT member_id, joined_at, historic, r_amount,
                       (start_local + r_day * (end_local - start_local)) AT TIME ZONE '{zone}' AS earned_at
                FROM placed
            ), kept AS (
                SELECT member_id, historic, r_amount,
                       CASE WHEN historic THEN earned_at ELSE greatest(earned_at, joined_at) END AS earned_at
                FROM timed WHERE NOT historic OR earned_at > joined_at
            )
            SELECT row_number() OVER (ORDER BY member_id, earned_at)::int AS id, member_id, historic,
                   (5 + floor(r_amount * 496))::int AS amount, earned_at,
                   (date_trunc('month', earned_at AT TIME ZONE '{zone}') + interval '13 months')
                       AT TIME ZONE '{zone}' AS expires_at
            FROM kept""",
        f"""INSERT INTO member (id, openid, referral_code, birthday_month, birthday_day, birthday_year,
                                consent_at, consent_version, tier, tier_reviewed_month, status,
                                marketing_opt_out, balance, joined_at, last_interaction_at, created_at)
            SELECT m.id, 'oBENCH6' || lpad(m.id::text, 21, '0'), 'B6' || m.id,
                   extract(month FROM m.born)::int, extract(day FROM m.born)::int, extract(year FROM m.born)::int,
                   m.joined_at, '{rules.privacy_notice_version}', m.tier,
                   CASE WHEN m.joined_at < {this_month} AT TIME ZONE '{zone}' THEN '{reviewed}' END,
                   m.status, m.opt_out, coalesce(b.balance, 0), m.joined_at,
                   greatest(m.joined_at, ({t0} - m.r_seen * interval '365 days') AT TIME ZONE '{zone}'),
                   m.joined_at
            FROM seed_member AS m
            LEFT JOIN (SELECT member_id, sum(amount) AS balance FROM seed_lot WHERE NOT historic
                       GROUP BY member_id) AS b ON b.member_id = m.id
            ORDER BY m.id""",
        # One earn entry per lot (entry id = lot id) and one expire entry per expired lot, with the
        # running balance per member.
        """CREATE TEMP TABLE seed_entry AS
            SELECT id, member_id, amount AS delta,
                   CASE WHEN id % 5 < 3 THEN 'purchase' ELSE 'checkin' END AS kind,
                   'bench:earn:' || id AS key, earned_at AS created_at, NULL::int AS lot_id
            FROM seed_lot
            UNION ALL
            SELECT (SELECT max(id) FROM seed_lot) + row_number() OVER (ORDER BY id), member_id, -amount,
                   'expire', 'expire:' || id, expires_at, id
            FROM seed_lot WHERE historic""",
        """INSERT INTO ledger_entry (id, member_id, delta, kind, idempotency_key, reason, balance_after, created_at)
            SELECT id, member_id, delta, kind, key, '',
                   sum(delta) OVER (PARTITION BY member_id ORDER BY created_at, id), created_at
            FROM seed_entry ORDER BY id""",
        """INSERT INTO points_lot (id, member_id, entry_id, amount, remaining, earned_at, expires_at)
            SELECT id, member_id, id, amount, CASE WHEN historic THEN 0 ELSE amount END, earned_at, expires_at
            FROM seed_lot ORDER BY id""",
        """INSERT INTO lot_movement (entry_id, lot_id, amount)
            SELECT id, lot_id, delta FROM seed_entry WHERE lot_id IS NOT NULL ORDER BY id""",
        # Win-back as the daily job leaves it: quiet members offered on one of the last 30 days at
        # 11:00 (if they were quiet then), each with its sent push.
        f"""CREATE TEMP TABLE seed_offer AS
            SELECT m.id AS member_id, m.openid, o.day, (o.day + interval '11 hours') AT TIME ZONE '{zone}' AS at
            FROM member AS m
            CROSS JOIN LATERAL (SELECT {t0} - (1 + floor(random() * 30)::int + 0 * m.id) * interval '1 day'
                                AS day) AS o
            WHERE m.status = '{ACTIVE}' AND NOT m.marketing_opt_out
              AND m.last_interaction_at < (o.day + interval '11 hours') AT TIME ZONE '{zone}'
                                          - interval '{rules.winback_after_days} days'""",
        f"""INSERT INTO winback_offer (member_id, points, offered_at, valid_until)
            SELECT member_id, {rules.winback_bonus}, at, at + interval '{rules.winback_valid_days} days'
            FROM seed_offer ORDER BY at""",
        f"""INSERT INTO outbox (dedupe_key, member_id, openid, source, kind, category, payload, priority, status,
                                channel, attempts, next_attempt_at, deadline, claimed_at, created_at, sent_at)
            SELECT 'winback:' || member_id || ':' || to_char(day, 'YYYY-MM-DD'), member_id, openid, 'oa',
                   'winback', 'marketing',
                   '{{"params": {{"points": {rules.winback_bonus}, "days": {rules.winback_valid_days}}}}}', 1,
                   'sent', 'template', 1, at, at + interval '2 days', at, at, at + interval '2 seconds'
            FROM seed_offer ORDER BY at""",
        # The 30-day reminders of the points expiring at the next month end, sent when they came due.
        f"""INSERT INTO outbox (dedupe_key, member_id, openid, source, kind, category, payload, priority, status,
                                channel, attempts, next_attempt_at, deadline, claimed_at, created_at, sent_at)
            SELECT 'expiry:' || m.id || ':{reminded_month}:30d', m.id, m.openid, 'oa', 'expiry', 'marketing',
                   '{{"params": {{"points": ' || l.points || ', "date": "{next_first - timedelta(days=1)}"}}}}',
                   4, 'sent', 'template', 1, l.sent, l.expires, l.sent, l.sent, l.sent + interval '2 seconds'
            FROM member AS m
            JOIN (SELECT member_id, sum(remaining) AS points, min(expires_at) AS expires,
                         greatest(min(expires_at) - interval '30 days', {this_month} AT TIME ZONE '{zone}')
                             + interval '10 hours' AS sent
                  FROM points_lot
                  WHERE remaining > 0 AND expires_at = '{next_first.isoformat()} 00:00'::timestamp
                                                       AT TIME ZONE '{zone}'
                  GROUP BY member_id) AS l ON l.member_id = m.id
            WHERE m.status = '{ACTIVE}' AND NOT m.marketing_opt_out""",
        *(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce((SELECT max(id) FROM {table}), 0) + 1, "
          "false)" for table in SEED_TABLES),
        "DROP TABLE seed_member, seed_lot, seed_entry, seed_offer",
    ]


def pg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def seed(database_url: str, members: int, today: date, tz: ZoneInfo, rules: Rules) -> dict[str, Any]:
    conn = await asyncpg.connect(pg_dsn(database_url))
    try:
        started = time.perf_counter()
        async with conn.transaction():
            for sql in seed_sql(members, today, tz, rules):
                await conn.execute(sql)
        seeded = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        analysed = time.perf_counter() - started
        counts = {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in SEED_TABLES}
        await check_seed(conn, tz, rules)
        size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    finally:
        await conn.close()
    return {"seconds": round(seeded, 1), "vacuum_analyze_seconds": round(analysed, 1), "rows": counts,
            "database_size": size}


async def check_seed(conn: asyncpg.Connection, tz: ZoneInfo, rules: Rules) -> None:
    """The ledger invariants on the seed (balance = entries = live lots) and the expiry rule on a sample."""
    broken = await conn.fetchval("""
        SELECT count(*) FROM member AS m
        LEFT JOIN (SELECT member_id, sum(delta) AS s FROM ledger_entry GROUP BY member_id) AS e ON e.member_id = m.id
        LEFT JOIN (SELECT member_id, sum(remaining) AS s FROM points_lot GROUP BY member_id) AS l
            ON l.member_id = m.id
        WHERE m.balance <> coalesce(e.s, 0) OR m.balance <> coalesce(l.s, 0)""")
    if broken:
        raise BenchError(f"seed: {broken} members whose balance disagrees with their entries or lots")
    for earned_at, expires_at in await conn.fetch(
        "SELECT earned_at, expires_at FROM points_lot ORDER BY random() LIMIT 200"
    ):
        if rules.lot_expiry(earned_at, tz) != expires_at:
            raise BenchError(f"seed: lot earned {earned_at} expires {expires_at}, the rules say otherwise")


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


class Explainer:
    """EXPLAIN (ANALYZE, BUFFERS) of a SQLAlchemy statement with its parameters bound, as the job runs it."""

    def __init__(self, db: Database, plans_dir: Path) -> None:
        self.db = db
        self.plans_dir = plans_dir

    async def __call__(self, stmt: Any, name: str) -> tuple[str, float]:
        compiled = stmt.compile(dialect=self.db.engine.dialect, compile_kwargs={"render_postcompile": True})
        params = compiled.construct_params()
        values = [params[key] for key in (compiled.positiontup or [])]
        async with self.db.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            rows = await raw.fetch("EXPLAIN (ANALYZE, BUFFERS) " + compiled.string, *values)
        plan = "\n".join(r[0] for r in rows)
        (self.plans_dir / f"{name}.txt").write_text(compiled.string + "\n\n" + plan + "\n")
        took = re.search(r"Execution Time: ([\d.]+) ms", plan)
        return scans(plan), float(took.group(1)) if took else 0.0


def scans(plan: str) -> str:
    """The scan and join nodes of a text plan, e.g. 'Merge Anti Join; Index Scan member_pkey on member'."""
    found: list[str] = []
    for kind, index, table, join in SCAN.findall(plan):
        label = join or (f"{kind} {index} on {table}" if index else f"{kind} on {table}")
        if label not in found:
            found.append(label)
    return "; ".join(found)


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
        due = {_reminder_key(ctx, member_id, expires_at, now): member_id for member_id, _, expires_at in rows}
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
    first = _month_start(today, 1)
    return Moments(
        today=_local(today, tz, 9), feb28=_local(date(year, 2, 28), tz, 9),
        first=_local(first, tz, 3), expire=_local(first, tz, 0, 10),
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


# --- the sender -----------------------------------------------------------------------------------------


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
        SELECT '{SEND_PREFIX}' || id, id, openid, 'oa', 'birthday', 'marketing', $1, 3, 'pending', 0, $2, $3, $2
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
        start = _local(args.today, ZoneInfo("Asia/Shanghai"), 10)
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


def print_markdown(head: list[str], rows: list[list[Any]]) -> None:
    print("\n| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


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


def print_senders(results: list[SenderRun]) -> None:
    print_markdown(
        ["senders", "as", "rows", "seconds", "pushes/s", "CPU s (senders)", "CPU s (fake)", "exactly once"],
        [[r.senders, r.mode, f"{r.sends:,}", r.seconds, r.pushes_per_s, r.cpu_s_senders, r.cpu_s_fake,
          "yes" if r.exactly_once else "NO"] for r in results],
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a scratch PostgreSQL database (it is truncated)")
    parser.add_argument("--redis-url", required=True, help="a scratch Redis database (flushed before each send run)")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--today", type=date.fromisoformat, default=date(2026, 11, 22),
                        help="the local day the seed is as of (default 2026-11-22)")
    parser.add_argument("--skip-seed", action="store_true", help="reuse the seeded database (no migrate, no seed)")
    parser.add_argument("--with-indexes", action="store_true", help="create CANDIDATE_INDEXES first (else drop them)")
    parser.add_argument("--jobs", nargs="*", choices=["birthday", "expire_points", "expiry_reminders", "winback",
                                                      "tier_review"], help="only these selections")
    parser.add_argument("--skip-jobs", action="store_true", help="no selections")
    parser.add_argument("--skip-sender", action="store_true", help="no sender runs")
    parser.add_argument("--sends", type=int, default=20_000, help="rows queued for each sender run")
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 2, 4], help="concurrent senders per run")
    parser.add_argument("--sender-mode", nargs="+", choices=["tasks", "processes"], default=["tasks", "processes"],
                        help="senders as asyncio tasks in this process, or one process each")
    parser.add_argument("--max-seconds", type=float, default=600, help="give up a selection or send run after this")
    parser.add_argument("--plans", type=Path, help="directory for the EXPLAIN output (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgres"):
        parser.error("--database-url must be PostgreSQL")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"bench: {machine()}; load average {load_average()} (1 min)", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="wxbot-bench6-"))
    plans = args.plans or tmp / "plans"
    plans.mkdir(parents=True, exist_ok=True)
    rules, tz = load_rules(None), ZoneInfo("Asia/Shanghai")
    report: dict[str, Any] = {"members": args.members, "today": args.today.isoformat(),
                              "with_indexes": args.with_indexes, "load_average_start": load_average()}
    try:
        if not args.skip_seed:
            migrate(server_env(args.database_url, args.redis_url, "warning"), tmp)
            report["seed"] = asyncio.run(seed(args.database_url, args.members, args.today, tz, rules))
            print(f"bench: seeded in {report['seed']['seconds']} s (+ VACUUM ANALYZE "
                  f"{report['seed']['vacuum_analyze_seconds']} s): {report['seed']['rows']}; "
                  f"database {report['seed']['database_size']}", flush=True)
        asyncio.run(set_indexes(args.database_url, args.with_indexes))
        if not args.skip_jobs:

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
        if not args.skip_sender:
            senders = run_sender_bench(args, tmp, plans)
            report["senders"] = [asdict(r) for r in senders]
            print_senders(senders)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    report["load_average_end"] = load_average()
    print(f"bench: load average {report['load_average_end']} (1 min) at the end")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
