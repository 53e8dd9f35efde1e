"""KPI snapshot and dashboard benchmark (issue 15), run by hand: with --members members on PostgreSQL and a
year of their activity, how long the nightly `kpi_snapshot` job takes for one day, and how long the
dashboard (`GET /admin?days=365`) and the KPI JSON (`GET /api/admin/kpis?from=&to=`, 365 days) take with
a year of snapshots stored. Targets: the snapshot under 60 s, each request under 300 ms.

    psql -h 127.0.0.1 -U postgres -d postgres -c 'create database wxbot_kpibench'
    .venv/bin/python -m bench.kpi_snapshot --database-url postgresql://postgres@127.0.0.1:5432/wxbot_kpibench \\
        --members 50000 --json kpi.json
    .venv/bin/python -m bench.kpi_snapshot ... --skip-seed          # again on the same data
    psql -h 127.0.0.1 -U postgres -d postgres -c 'drop database wxbot_kpibench'

1. `wxbot migrate`, then the scheduler benchmarks' seed (bench/scheduler_seed.py: members, live and
   expired points lots with their ledger entries, win-back offers and pushes, expiry reminders) and, in
   the same transaction, a year of what the snapshot reads (kpi_seed_sql): paid orders (most members
   0-12 a year, 1 % heavy buyers, refunds full and partial), interaction days, check-ins on a share of
   those days, redemptions (each funded by an earn entry whose lot it spends, so balance = entries =
   live lots still holds; cancelled ones have no entries), 90 days of marketing and transactional
   pushes over every channel and status, tickets, anomalies, referrers, Mini Program openids and
   subscribe credits. Then VACUUM ANALYZE. Everything is as of --today (default 2026-11-22).
2. The snapshot of the day before --today through the job itself (scheduler.jobs.kpi_snapshot at 00:30
   local, its own unit of work, one pooled Database as the scheduler has), --runs times (median); then
   each statement of one more computation timed on its own (SQLAlchemy cursor events) and, with
   --explain, EXPLAIN (ANALYZE, BUFFERS) of each into --plans.
3. 365 days of snapshots (the measured day's figures copied to the 364 days before it), then the app
   in-process (bot.app.create_app with its lifespan, httpx's ASGI transport, no network): an operator
   signed in through the console's form, GET /admin?days=365 and GET /api/admin/kpis for the 365 days,
   --requests times each after 3 warm-ups: median and p95.
The database must be a scratch one: the seed truncates every table it fills.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from sqlalchemy import event

from bench.harness import BenchError, percentile, print_markdown
from bench.scheduler_seed import local_at, parse, pg_dsn, prepare, run_bench
from bot.app import create_app
from bot.settings import Settings, new_pii_key
from scheduler.jobs import JobContext, kpi_snapshot
from storage import operators, reports
from storage.db import Database
from storage.errors import ConflictError
from storage.ledger import Ledger
from storage.members import ACTIVE
from storage.rules import Rules, load_rules
from storage.sla import CATEGORIES

USAGE = __doc__
KPI_TABLES = ("purchase_order", "interaction_day", "checkin", "reward", "redemption", "ticket", "anomaly",
              "subscribe_credit", "kpi_snapshot")
OPERATOR, PASSWORD = "kpi-bench", "kpi-bench-password-0001"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


# --- the seed ------------------------------------------------------------------------------------------


def kpi_seed_sql(members: int, today: date, tz: ZoneInfo, rules: Rules) -> tuple[list[str], tuple[str, ...]]:
    """A year of activity on top of bench/scheduler_seed.py's members, lots and pushes (run after it, in
    its transaction). Days and instants are local to `tz`; the year is the 365 days before `today`."""
    zone = tz.key
    t0 = f"'{today.isoformat()} 00:00'::timestamp"  # local wall time, the seed's "now"
    at = f"AT TIME ZONE '{zone}'"
    categories = "ARRAY[" + ", ".join(f"'{c}'" for c in CATEGORIES) + "]"
    statements = [
        f"TRUNCATE {', '.join(KPI_TABLES)} RESTART IDENTITY CASCADE",
        "SELECT setseed(0.15)",
        # Referrers for 8 % of members, a Mini Program openid for a fifth of the members still with us.
        """UPDATE member SET
                referrer_id = CASE WHEN id > 1000 AND random() < 0.08 THEN id - 1 - floor(random() * 1000)::int END,
                mp_openid = CASE WHEN id % 5 = 0 AND status <> 'deleted' THEN 'oMPBENCH' || lpad(id::text, 20, '0') END
            WHERE id > 1000 OR id % 5 = 0""",
        # Paid orders over the year after each member joined: n = floor(13 r^2) a year (28 % none, mean
        # 4.3), 1 % heavy buyers with 20-59; amounts skewed (15-1,515 yuan); 3 % fully, 2 % half refunded.
        f"""INSERT INTO purchase_order (order_id, member_id, amount_fen, points, refunded_fen, refunded_points,
                                        created_at, store, channel)
            SELECT 'B15-' || row_number() OVER (ORDER BY o.created_at), o.member_id, o.fen, o.fen / 100,
                   CASE WHEN o.r < 0.03 THEN o.fen WHEN o.r < 0.05 THEN o.fen / 2 ELSE 0 END,
                   CASE WHEN o.r < 0.03 THEN o.fen / 100 WHEN o.r < 0.05 THEN o.fen / 200 ELSE 0 END,
                   o.created_at, 'S00' || (1 + o.member_id % 5), 'pos'
            FROM (
                SELECT m.id AS member_id, m.joined_at, random() AS r,
                       1500 + floor(random() ^ 3 * 150000)::int AS fen,
                       ({t0} - random() * interval '365 days') {at} AS created_at
                FROM (SELECT id, joined_at, CASE WHEN random() < 0.01 THEN 20 + floor(random() * 40)::int
                                                 ELSE floor(13 * random() ^ 2)::int END AS n
                      FROM member WHERE status <> 'deleted') AS m
                CROSS JOIN LATERAL generate_series(1, m.n) AS g
            ) AS o
            WHERE o.created_at > o.joined_at
            ORDER BY o.created_at""",
        # Interaction days: k = floor(48 r^3) distinct days a year (28 % none, mean 12), one in each of k
        # equal slots of the year from a random offset, none before the member joined; in day order,
        # as the touches write them.
        f"""INSERT INTO interaction_day (member_id, day)
            SELECT member_id, day FROM (
                SELECT m.id AS member_id, m.joined_day,
                       date '{today.isoformat()}' - 1 - ((m.o + g * m.w + floor(random() * m.w)::int) % 365) AS day
                FROM (SELECT id, (joined_at {at})::date AS joined_day, k, 365 / greatest(k, 1) AS w,
                             floor(random() * 365)::int AS o
                      FROM (SELECT id, joined_at, floor(48 * random() ^ 3)::int AS k
                            FROM member WHERE status <> 'deleted') AS d) AS m
                CROSS JOIN LATERAL generate_series(0, m.k - 1) AS g
            ) AS days
            WHERE day >= joined_day
            ORDER BY day, member_id""",
        # Check-ins on 35 % of the interaction days, during the day.
        f"""INSERT INTO checkin (member_id, day, streak, created_at)
            SELECT member_id, day, 1, (day + interval '8 hours' + random() * interval '14 hours') {at}
            FROM interaction_day WHERE random() < 0.35 ORDER BY day, member_id""",
        f"""INSERT INTO reward (name, description, cost, kind, issued_count, validity_days, active, created_at)
            VALUES ('10元券', '', 100, 'coupon', 0, 30, true, ({t0} - interval '2 years') {at}),
                   ('50元券', '', 450, 'coupon', 0, 30, true, ({t0} - interval '2 years') {at}),
                   ('保温杯', '', 1200, 'gift', 0, 30, true, ({t0} - interval '2 years') {at})""",
        # Redemptions: 30 % of the members still with us redeem 1-3 times in the year (after joining);
        # 5 % cancelled, 60 % used within 10 days, the rest issued or expired after their 30 days.
        f"""CREATE TEMP TABLE seed_redeem AS
            SELECT row_number() OVER (ORDER BY created_at, member_id)::int AS n, member_id, reward_id, cost,
                   created_at, created_at + interval '30 days' AS expires_at,
                   CASE WHEN r < 0.05 THEN 'cancelled'
                        WHEN r < 0.65 AND used_at < {t0} {at} THEN 'used'
                        WHEN created_at + interval '30 days' < {t0} {at} THEN 'expired' ELSE 'issued' END AS status,
                   CASE WHEN r >= 0.05 AND r < 0.65 AND used_at < {t0} {at} THEN used_at END AS used_at,
                   CASE WHEN r < 0.05 THEN created_at + interval '1 hour' END AS cancelled_at
            FROM (
                SELECT m.id AS member_id, rw.id AS reward_id, rw.cost, r, created_at,
                       created_at + random() * interval '10 days' AS used_at
                FROM (SELECT id, joined_at, 1 + floor(random() * 3)::int AS k FROM member
                      WHERE status <> 'deleted' AND random() < 0.30) AS m
                CROSS JOIN LATERAL (
                    SELECT g, random() AS r, 1 + floor(random() * 3)::int + 0 * m.id AS pick,
                           greatest(m.joined_at + interval '1 hour',
                                    ({t0} - random() * interval '365 days') {at}) AS created_at
                    FROM generate_series(1, m.k) AS g) AS d
                JOIN (SELECT id, cost, row_number() OVER (ORDER BY id) AS pick FROM reward) AS rw
                    ON rw.pick = d.pick
            ) AS x
            WHERE created_at < {t0} {at}""",
        """INSERT INTO redemption (member_id, reward_id, request_key, cost, code, status, created_at, expires_at,
                                   used_at, cancelled_at, store, used_by)
            SELECT member_id, reward_id, 'bench15:' || n, cost, 'BK' || lpad(n::text, 10, '0'), status, created_at,
                   expires_at, used_at, cancelled_at, CASE WHEN used_at IS NOT NULL THEN 'S001' END,
                   CASE WHEN used_at IS NOT NULL THEN 'store:S001' END
            FROM seed_redeem ORDER BY n""",
        # Each redemption not cancelled: an earn entry a minute before (a lot of its cost, spent by it) and
        # the redeem entry with its lot movement; balances and live lots are unchanged.
        """CREATE TEMP TABLE seed_spend AS
            SELECT s.n, s.member_id, s.cost, s.created_at,
                   e.base + 2 * row_number() OVER (ORDER BY s.n) - 1 AS earn_id,
                   e.base + 2 * row_number() OVER (ORDER BY s.n) AS redeem_id,
                   l.base + row_number() OVER (ORDER BY s.n) AS lot_id
            FROM seed_redeem AS s,
                 (SELECT coalesce(max(id), 0) AS base FROM ledger_entry) AS e,
                 (SELECT coalesce(max(id), 0) AS base FROM points_lot) AS l
            WHERE s.status <> 'cancelled'""",
        """INSERT INTO ledger_entry (id, member_id, delta, kind, idempotency_key, reason, balance_after, created_at)
            SELECT earn_id, member_id, cost, 'purchase', 'bench15:fund:' || n, '', 0, created_at - interval '1 minute'
            FROM seed_spend
            UNION ALL
            SELECT redeem_id, member_id, -cost, 'redeem', 'redeem:bench15:' || n, '', 0, created_at FROM seed_spend
            ORDER BY 1""",
        f"""INSERT INTO points_lot (id, member_id, entry_id, amount, remaining, earned_at, expires_at)
            SELECT lot_id, member_id, earn_id, cost, 0, created_at - interval '1 minute',
                   (date_trunc('month', (created_at - interval '1 minute') {at}) + interval '13 months') {at}
            FROM seed_spend ORDER BY lot_id""",
        """INSERT INTO lot_movement (entry_id, lot_id, amount)
            SELECT redeem_id, lot_id, -cost FROM seed_spend ORDER BY redeem_id""",
        # The running balance of the members who redeemed, again over all their entries.
        """UPDATE ledger_entry AS e SET balance_after = r.b
            FROM (SELECT id, sum(delta) OVER (PARTITION BY member_id ORDER BY created_at, id) AS b
                  FROM ledger_entry WHERE member_id IN (SELECT member_id FROM seed_spend)) AS r
            WHERE e.id = r.id AND e.balance_after <> r.b""",
        # 90 days of pushes besides the seed's win-back and expiry ones: 0-9 marketing pushes per member
        # (campaigns, broadcasts, birthdays) and about one transactional in two; 88 % sent (cs 30 %,
        # template 60 %, subscribe 10 %), 6 % undeliverable with a reason, 3 % dropped, 3 % failed.
        f"""INSERT INTO outbox (dedupe_key, member_id, openid, source, kind, category, payload, priority, status,
                                channel, attempts, last_error, next_attempt_at, deadline, claimed_at, created_at,
                                sent_at)
            SELECT 'bench15:' || row_number() OVER (ORDER BY p.created_at), p.member_id, p.openid, 'oa', p.kind,
                   p.category, '{{}}', 2,
                   CASE WHEN p.r < 0.88 THEN 'sent' WHEN p.r < 0.94 THEN 'undeliverable'
                        WHEN p.r < 0.97 THEN 'dropped' ELSE 'failed' END,
                   CASE WHEN p.r < 0.88 THEN (ARRAY['cs', 'cs', 'cs', 'template', 'template', 'template',
                                                   'template', 'template', 'template', 'subscribe'])
                                             [1 + floor(p.r2 * 10)::int] END,
                   1,
                   CASE WHEN p.r >= 0.88 AND p.r < 0.94 THEN (ARRAY['errcode 43004: 用户未关注',
                       'errcode 45015: 回复时间超过限制', 'errcode 43101: 用户拒绝接受消息',
                       'errcode 40003: invalid openid'])[1 + floor(p.r2 * 4)::int] END,
                   p.created_at, p.created_at + interval '2 days', p.created_at, p.created_at,
                   CASE WHEN p.r < 0.88 THEN p.created_at + interval '3 seconds' END
            FROM (
                SELECT m.id AS member_id, m.openid, random() AS r, random() AS r2,
                       CASE WHEN g <= m.k THEN 'marketing' ELSE 'transactional' END AS category,
                       CASE WHEN g > m.k THEN 'points'
                            ELSE (ARRAY['campaign', 'broadcast', 'birthday'])[1 + floor(random() * 3)::int] END
                           AS kind,
                       ({t0} - random() * interval '90 days') {at} AS created_at
                FROM (SELECT id, openid, floor(random() * 10)::int AS k,
                             CASE WHEN random() < 0.5 THEN 1 ELSE 0 END AS t
                      FROM member WHERE status = '{ACTIVE}') AS m
                CROSS JOIN LATERAL generate_series(1, m.k + m.t) AS g
            ) AS p
            ORDER BY p.created_at""",
        # Subscribe credits for half of the Mini Program openids.
        f"""INSERT INTO subscribe_credit (openid, template_id, credits, updated_at)
            SELECT mp_openid, 'tmpl-bench', 1 + floor(random() * 3)::int, ({t0} - random() * interval '60 days') {at}
            FROM member WHERE mp_openid IS NOT NULL AND random() < 0.5 ORDER BY id""",
        # A few tickets (one per 200 members over the year) and anomalies (one per 2,000).
        f"""INSERT INTO ticket (code, member_id, openid, source, kind, category, state, created_at, answer_due_at,
                                resolve_due_at, first_answer_at, resolved_at, reopens, supervisor)
            SELECT 'TB' || lpad(g::text, 8, '0'), m.id, m.openid, 'oa', 'ticket',
                   ({categories})[1 + g % {len(CATEGORIES)}],
                   CASE WHEN t.at < {t0} {at} - interval '3 days' THEN 'resolved' WHEN g % 2 = 0 THEN 'answered'
                        ELSE 'open' END,
                   t.at, t.at + interval '4 hours', t.at + interval '48 hours',
                   CASE WHEN t.at < {t0} {at} - interval '3 days' OR g % 2 = 0 THEN t.at + interval '2 hours' END,
                   CASE WHEN t.at < {t0} {at} - interval '3 days' THEN t.at + interval '30 hours' END, 0, false
            FROM generate_series(1, greatest(1, {members} / 200)) AS g
            CROSS JOIN LATERAL (SELECT ({t0} - random() * interval '365 days' + 0 * g * interval '1 day') {at}
                                AS at) AS t
            JOIN member AS m ON m.id = 1 + (g * 7919) % {members}
            WHERE m.status <> 'deleted' AND m.joined_at < t.at
            ORDER BY t.at""",
        f"""INSERT INTO anomaly (member_id, kind, detail, dedupe_key, created_at, state, resolved_at)
            SELECT 1 + (g * 104729) % {members}, 'refund_shortfall', '{{}}', 'bench15:' || g, a.at,
                   CASE WHEN g % 10 = 0 THEN 'open' WHEN g % 10 = 1 THEN 'acknowledged' ELSE 'resolved' END,
                   CASE WHEN g % 10 > 1 THEN a.at + interval '1 day' END
            FROM generate_series(1, greatest(1, {members} / 2000)) AS g
            CROSS JOIN LATERAL (SELECT ({t0} - random() * interval '365 days' + 0 * g * interval '1 day') {at}
                                AS at) AS a""",
        *(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce((SELECT max(id) FROM {table}), 0) + 1, "
          "false)" for table in ("ledger_entry", "points_lot", "lot_movement", *KPI_TABLES)
          if table not in ("interaction_day", "kpi_snapshot")),
        "DROP TABLE seed_redeem, seed_spend",
    ]
    return statements, tuple(t for t in KPI_TABLES if t != "kpi_snapshot")


# --- the snapshot --------------------------------------------------------------------------------------


class StatementTimer:
    """Every statement the engine runs, with its parameters and wall time (cursor events)."""

    def __init__(self, db: Database) -> None:
        self.engine = db.engine.sync_engine
        self.rows: list[dict[str, Any]] = []
        self._started: list[float] = []

    def before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        self._started.append(time.perf_counter())

    def after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        took = time.perf_counter() - self._started.pop()
        self.rows.append({"sql": statement, "params": parameters, "ms": round(took * 1000, 1)})

    def __enter__(self) -> StatementTimer:
        event.listen(self.engine, "before_cursor_execute", self.before)
        event.listen(self.engine, "after_cursor_execute", self.after)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self.before)
        event.remove(self.engine, "after_cursor_execute", self.after)


def label(sql: str) -> str:
    """A statement by the tables it reads, e.g. 'member + interaction_day + checkin'."""
    tables: list[str] = []
    for name in re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", sql):
        if name not in tables and name not in ("anon_1", "anon_2", "anon_3", "anon_4"):
            tables.append(name)
    return " + ".join(tables) or sql[:40]


async def explain(db: Database, statements: list[dict[str, Any]], plans: Path) -> list[dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement as it ran; the plans written to `plans`."""
    out = []
    async with db.engine.connect() as conn:
        for i, row in enumerate(statements):
            result = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + row["sql"], row["params"])
            plan = "\n".join(r[0] for r in result.all())
            (plans / f"kpi-{i:02d}.txt").write_text(row["sql"] + "\n\n" + repr(row["params"]) + "\n\n" + plan + "\n")
            took = re.search(r"Execution Time: ([\d.]+) ms", plan)
            out.append({"statement": i, "tables": label(row["sql"]),
                        "explain_ms": float(took.group(1)) if took else 0.0,
                        "seq_scans": sorted(set(re.findall(r"Seq Scan on (\w+)", plan)))})
        await conn.rollback()
    return out


async def measure_snapshot(args: argparse.Namespace, rules: Rules, tz: ZoneInfo, plans: Path) -> dict[str, Any]:
    db = Database(args.database_url)
    try:
        await db.ping()  # a pooled connection, as the running scheduler has
        ctx = JobContext(db, Ledger(rules, tz))
        now = local_at(args.today, tz, 0, 30)  # the job's time: it snapshots the day before
        runs = []
        for _ in range(args.runs):
            started = time.perf_counter()
            await kpi_snapshot(ctx, now)
            runs.append(round(time.perf_counter() - started, 2))
            print(f"bench: kpi_snapshot of {args.today - timedelta(days=1)} in {runs[-1]} s", flush=True)
        day = args.today - timedelta(days=1)
        with StatementTimer(db) as timer:
            async with db.sessions() as session:
                figures = await reports.compute(session, day, tz, rules, templates=ctx.templates)
        statements = sorted(enumerate(timer.rows), key=lambda pair: -pair[1]["ms"])
        result: dict[str, Any] = {
            "day": day.isoformat(), "runs_s": runs, "median_s": statistics.median(runs),
            "statements": [{"statement": i, "tables": label(r["sql"]), "ms": r["ms"]} for i, r in statements],
            "figures": figures,
        }
        if args.explain:
            result["explain"] = await explain(db, timer.rows, plans)
        return result
    finally:
        await db.dispose()


# --- the pages -----------------------------------------------------------------------------------------


async def store_year(database_url: str, last: date, computed_at: datetime) -> int:
    """365 snapshots ending `last`: that day's figures, copied to the 364 days before it."""
    conn = await asyncpg.connect(pg_dsn(database_url))
    try:
        figures = await conn.fetchval("SELECT figures FROM kpi_snapshot WHERE day = $1", last)
        if figures is None:
            raise BenchError(f"no snapshot of {last} to copy")
        async with conn.transaction():
            await conn.execute("DELETE FROM kpi_snapshot WHERE day <> $1", last)
            await conn.execute(
                "INSERT INTO kpi_snapshot (day, figures, computed_at) "
                "SELECT $1::date - g, $2, $3 FROM generate_series(1, 364) AS g", last, figures, computed_at,
            )
        await conn.execute("VACUUM ANALYZE kpi_snapshot")
        return int(await conn.fetchval("SELECT count(*) FROM kpi_snapshot"))
    finally:
        await conn.close()


async def timed(client: httpx.AsyncClient, path: str, count: int, **kwargs: Any) -> dict[str, Any]:
    """`count` GETs of `path` after 3 warm-ups, each checked 200: median, p95 and max in ms, and the median
    CPU of this process per request (app and client; on a shared machine the steadier figure)."""
    times, cpu, size = [], [], 0
    for i in range(3 + count):
        started, cpu_started = time.perf_counter(), time.process_time()
        response = await client.get(path, **kwargs)
        took = time.perf_counter() - started
        cpu_took = time.process_time() - cpu_started
        if response.status_code != 200:
            raise BenchError(f"GET {path}: {response.status_code} {response.text[:300]}")
        size = len(response.content)
        if i >= 3:
            times.append(took * 1000)
            cpu.append(cpu_took * 1000)
    times.sort()
    return {"path": path, "requests": count, "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(percentile(times, 0.95), 1), "max_ms": round(times[-1], 1),
            "cpu_median_ms": round(statistics.median(cpu), 1), "bytes": size}


async def measure_pages(args: argparse.Namespace, tz: ZoneInfo) -> dict[str, Any]:
    token = secrets.token_urlsafe(24)
    settings = Settings(
        _env_file=None, database_url=args.database_url, redis_url=args.redis_url, admin_token=token,
        pii_key=new_pii_key(), log_level="WARNING",
    )
    app = create_app(settings)
    last = args.today - timedelta(days=1)
    async with app.router.lifespan_context(app):
        db: Database = app.state.services.db
        try:
            async with db.unit_of_work() as session:
                await operators.add(session, OPERATOR, "admin", PASSWORD, datetime.now(UTC))
        except ConflictError:
            pass  # --skip-seed: the operator of an earlier run
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://wxbot.test", timeout=30) as client:
            form = await client.get("/admin/login")
            found = _CSRF.search(form.text)
            if not found:
                raise BenchError("the sign-in page has no CSRF field")
            signed = await client.post("/admin/login", data={"name": OPERATOR, "password": PASSWORD,
                                                             "csrf": found.group(1)})
            if signed.status_code != 303:
                raise BenchError(f"sign-in: {signed.status_code} {signed.text[:300]}")
            dashboard = await timed(client, "/admin?days=365", args.requests)
            first = last - timedelta(days=364)
            api = await timed(client, f"/api/admin/kpis?from={first}&to={last}", args.requests,
                              headers={"Authorization": f"Bearer {token}"})
            body = (await client.get(f"/api/admin/kpis?from={first}&to={last}",
                                     headers={"Authorization": f"Bearer {token}"})).json()
            if len(body["days"]) != 365:
                raise BenchError(f"the KPI JSON holds {len(body['days'])} days, not 365")
    return {"dashboard": dashboard, "kpis_api": api}


# --- main ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a scratch PostgreSQL database (it is truncated)")
    parser.add_argument("--redis-url", default="memory://",
                        help="the app's KV for the console sessions (default memory://, in-process)")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--today", type=date.fromisoformat, default=date(2026, 11, 22),
                        help="the local day the seed is as of; the snapshot is of the day before (default 2026-11-22)")
    parser.add_argument("--skip-seed", action="store_true", help="reuse the seeded database (no migrate, no seed)")
    parser.add_argument("--runs", type=int, default=3, help="snapshot runs (the median is reported)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each of the snapshot's statements")
    parser.add_argument("--plans", type=Path, help="directory for the EXPLAIN output (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    return parse(parser, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rules, tz = load_rules(None), ZoneInfo("Asia/Shanghai")

    def body(tmp: Path, plans: Path) -> dict[str, Any]:
        report = prepare(args, tmp, kpi_seed_sql)
        snap = asyncio.run(measure_snapshot(args, rules, tz, plans))
        report["snapshot"] = snap
        report["snapshots_stored"] = asyncio.run(store_year(args.database_url, args.today - timedelta(days=1),
                                                            datetime.now(UTC)))
        report["pages"] = asyncio.run(measure_pages(args, tz))
        print(f"\nbench: snapshot runs {snap['runs_s']} s, median {snap['median_s']} s (target < 60 s)")
        print_markdown(["statement", "tables", "ms"],
                       [[s["statement"], s["tables"], s["ms"]] for s in snap["statements"]])
        if "explain" in snap:
            print_markdown(["statement", "tables", "EXPLAIN ANALYZE ms", "seq scans"],
                           [[e["statement"], e["tables"], e["explain_ms"], ", ".join(e["seq_scans"])]
                            for e in snap["explain"]])
        print_markdown(["request", "n", "median ms", "p95 ms", "max ms", "CPU ms (median)", "bytes"],
                       [[p["path"], p["requests"], p["median_ms"], p["p95_ms"], p["max_ms"], p["cpu_median_ms"],
                         f"{p['bytes']:,}"]
                        for p in report["pages"].values()])
        print(json.dumps({k: v for k, v in report.items() if k != "snapshot"} | {
            "snapshot": {k: v for k, v in snap.items() if k not in ("figures", "statements", "explain")}},
            indent=2, ensure_ascii=False))
        print(f"bench: plans in {plans}" if args.explain else "", flush=True)
        return report

    return run_bench(args, body)


if __name__ == "__main__":
    raise SystemExit(main())
