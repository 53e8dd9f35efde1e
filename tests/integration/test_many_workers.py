"""Issue 20: several `wxbot serve` workers and several sender processes on one PostgreSQL and one Redis (or Redis
Cluster) give the same exactly-once results as one.

Everything goes through real processes, the way the product's users reach it: `wxbot serve` workers
(tests/faults/servers.py), push processes and a fake WeChat API (tests/faults/fleet.py). Members send signed
`签到` texts, each delivered two or three times at once with the same MsgId, as WeChat retries a message
(to different workers); every fifth member also sends a second, different `签到` at the same moment. The POS
reports each member's order (and some refunds) to two workers at once; an operator's points adjustment is
posted to two workers at once (a double submit), and its message reaches the member through the senders.

The same script runs twice, on two populations of members: first members 0-59 with every request sent to one
worker and one sender running (the other workers are up but get nothing), then members 0-199 spread over three
workers with two senders. Each member's outcome depends on its index alone, so member i of the second run must
end exactly as member i of the first: the same replies, the same ledger, the same balance, the same pushes.
On top of that comparison each run must hold the invariants by itself: a balance equal to its ledger
and never negative, one check-in (row and ledger entry) per member, one ledger entry per order, refund and
adjustment, one push per adjustment (in the outbox and at the fake WeChat API), and the retry rule of
bot/inbound/pipeline.py: every copy of one MsgId gets the reply the first delivery got, byte for byte
(a copy that arrives while the first is running waits for it). Only if the first delivery missed the
reply deadline does every copy get `success`, the reply then following through the outbox, once. A mix fails
the test: a copy that ran on its own; or one that waited out its own deadline, which takes a first delivery
of nearly the whole deadline (these take milliseconds).

Processes share the database and the KV, so this runs on PostgreSQL + Redis and PostgreSQL + a Redis
Cluster, not on SQLite + memory:// (memory:// lives inside one process)."""

from __future__ import annotations

import asyncio
import json
import string
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.simulator.wechatside import WeChatSide
from handlers import texts
from storage import members, outbox
from storage.db import Database
from storage.ledger import Ledger
from storage.models import Checkin, LedgerEntry, Outbox, PurchaseOrder
from storage.rules import Rules
from tests.faults.fleet import Fleet, fleet
from tests.faults.servers import Served, serve_env
from tests.support.factories import TZ
from tests.support.invariants import assert_points_consistent
from tests.support.member_support import paid, refund, signature
from tests.support.push_support import CS, SEND_PATHS, bulk_members, eventually

pytestmark = pytest.mark.kv_cluster

TOKEN = "many-workers-token"
ORDER_SECRET = "many-workers-pos-secret"
WORKERS = 3
MEMBERS = 200  # in the run on every worker
BASELINE = 60  # in the run on one worker: members 0-59 of the script
TWICE = 5  # every TWICE-th member sends two different 签到 messages at once
IN_FLIGHT = 8  # members whose requests are in flight together (each member's copies go out at once)
REASON = "门店活动补偿"
# A new connection for every request: a pooled one that uvicorn has just closed as idle (its 5 s keep-alive
# timeout racing the client's reuse) fails the request before any worker has seen it.
FRESH_CONNECTIONS = httpx.Limits(max_connections=128, max_keepalive_connections=0)


@pytest.fixture
def shared(backend: str, urls: tuple[str, str]) -> tuple[str, str]:
    if backend == "sqlite":
        pytest.skip("separate processes share PostgreSQL and Redis; memory:// lives inside one process")
    return urls


# --- the script: what member i does, the same in both runs ---------------------------------------------------


def openid(run: str, i: int) -> str:
    """Letters only (a run of digits could read as a phone number to the log check)."""
    tag = "".join(string.ascii_letters[(i // 52**k) % 52] for k in range(3))
    return f"oMANY{run}{tag}".ljust(28, "x")


def copies(i: int) -> int:
    return 2 + i % 2  # WeChat's retries: the message two or three times


def amount_fen(i: int) -> int:
    return 1999 + 1234 * (i % 7)  # well below the first tier, so no order changes another's multiplier


def refunded(i: int) -> int | None:
    return amount_fen(i) // 2 if i % 4 == 0 else None


def adjustment(i: int) -> int:
    return 7 + i % 3


@dataclass
class Member:
    """Member i of one run, and what the workers answered it."""

    i: int
    id: int
    openid: str
    msg_ids: list[int] = field(default_factory=list)
    bodies: list[list[bytes]] = field(default_factory=list)  # per MsgId: the body each copy got
    replies: list[str] = field(default_factory=list)  # per MsgId: the text the member saw
    orders: list[dict[str, Any]] = field(default_factory=list)  # the paid order's answers
    refunds: list[dict[str, Any]] = field(default_factory=list)
    adjusts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Run:
    name: str
    size: int
    bases: list[str]
    admin_token: str
    members: list[Member] = field(default_factory=list)

    def at(self, n: int) -> str:
        return self.bases[n % len(self.bases)]


async def seed(db: Database, run: str, size: int) -> list[Member]:
    """Joined members (yesterday) with the sign-up bonus credited through the ledger, as sign-up does."""
    joined = datetime.now(UTC) - timedelta(days=1)
    rows = [{"openid": openid(run, i), "joined_at": joined, "last_interaction_at": joined} for i in range(size)]
    ids = await bulk_members(db, rows)
    ledger = Ledger(Rules(), TZ)
    async with db.unit_of_work() as session:
        for member_id in ids:
            await members.credit_signup_bonus(session, ledger, member_id, joined)
    return [Member(i, member_id, openid(run, i)) for i, member_id in enumerate(ids)]


async def each(people: list[Member], act: Callable[[Member], Awaitable[None]]) -> None:
    """`act` for every member, IN_FLIGHT members at a time, all within a bounded time."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(member: Member) -> None:
        async with gate:
            await act(member)

    async with asyncio.timeout(120):
        await asyncio.gather(*(one(m) for m in people))


async def at_once(*posts: Awaitable[httpx.Response]) -> list[httpx.Response]:
    return list(await asyncio.gather(*posts))


async def check_ins(http: httpx.AsyncClient, run: Run) -> None:
    side = WeChatSide(TOKEN)

    async def member_checks_in(m: Member) -> None:
        messages = [side.text(m.openid, "签到") for _ in range(2 if m.i % TWICE == 0 else 1)]
        m.msg_ids = [int(fields["MsgId"]) for fields in messages]
        posts = []
        for k, fields in enumerate(messages):
            for c in range(copies(m.i)):
                push = side.sign(fields)  # each copy signed afresh, as each delivery is
                posts.append(http.post(f"{run.at(m.i + k + c)}/wechat", params=push.params, content=push.body))
        answers = await at_once(*posts)
        assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers]
        n = copies(m.i)
        m.bodies = [[a.content for a in answers[k * n:(k + 1) * n]] for k in range(len(messages))]

    await each(run.members, member_checks_in)


def order_post(http: httpx.AsyncClient, base: str, payload: dict[str, Any]) -> Awaitable[httpx.Response]:
    """The POS's call: the body signed with its timestamp (tests/support/member_support.signature)."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Wxbot-Timestamp": ts,
               "X-Wxbot-Signature": signature(ORDER_SECRET, ts, body)}
    return http.post(f"{base}/hooks/orders", content=body, headers=headers)


def answers_of(responses: list[httpx.Response]) -> list[dict[str, Any]]:
    assert [r.status_code for r in responses] == [200] * len(responses), [r.text for r in responses]
    return [r.json() for r in responses]


async def purchases(http: httpx.AsyncClient, run: Run) -> None:
    async def member_buys(m: Member) -> None:
        order = paid(f"{run.name}-o{m.i}", amount_fen(m.i), openid=m.openid)
        m.orders = answers_of(await at_once(*(order_post(http, run.at(m.i + c), order) for c in range(2))))
        if (part := refunded(m.i)) is not None:
            back = refund(order["order_id"], amount_fen(m.i), f"{run.name}-r{m.i}", part)
            m.refunds = answers_of(await at_once(*(order_post(http, run.at(m.i + c + 1), back) for c in range(2))))

    await each(run.members, member_buys)


async def adjustments(http: httpx.AsyncClient, run: Run) -> None:
    headers = {"Authorization": f"Bearer {run.admin_token}"}

    async def operator_adjusts(m: Member) -> None:
        body = {"points": adjustment(m.i), "reason": REASON, "request_id": f"{run.name}-adj-{m.i}"}
        m.adjusts = answers_of(await at_once(*(
            http.post(f"{run.at(m.i + c)}/api/admin/members/{m.id}/adjust", json=body, headers=headers)
            for c in range(2)
        )))

    await each(run.members, operator_adjusts)


async def play(db: Database, http: httpx.AsyncClient, run: Run) -> None:
    """The whole script for one run; then every copy's answer opened as the member would see it."""
    run.members = await seed(db, run.name, run.size)
    await check_ins(http, run)
    await purchases(http, run)
    await adjustments(http, run)
    side = WeChatSide(TOKEN)
    for m in run.members:
        m.replies = [await reply_seen(db, side, msg_id, bodies) for msg_id, bodies in zip(m.msg_ids, m.bodies,
                                                                                           strict=True)]


async def reply_seen(db: Database, side: WeChatSide, msg_id: int, bodies: list[bytes]) -> str:
    """The text the member got for one MsgId: every copy the same passive reply; or, if the first delivery
    missed the deadline, every copy `success` and one reply in the outbox."""
    if set(bodies) == {b"success"}:
        key = f"late:oa:msg:{msg_id}:0"

        async def late_row() -> Outbox | None:
            async with db.sessions() as session:
                return await session.scalar(select(Outbox).where(Outbox.dedupe_key == key))

        await eventually(late_row, within=15)
        row = await late_row()
        assert row is not None
        return str(json.loads(row.payload)["custom"]["text"]["content"])
    assert len(set(bodies)) == 1, f"MsgId {msg_id}: the copies got different answers: {[b.decode() for b in bodies]}"
    fields = side.open_reply(bodies[0])
    assert fields is not None
    assert fields["MsgType"] == "text", fields
    return str(fields["Content"])


# --- the processes ----------------------------------------------------------------------------------------


def stop(server: Served) -> None:
    """SIGTERM and a bounded wait (uvicorn finishes what it has in flight), SIGKILL after."""
    proc = server.proc
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextmanager
def web_workers(env: dict[str, str], workdir: Path, n: int) -> Iterator[list[str]]:
    """n `wxbot serve` processes on one database and one KV, started side by side; their base URLs. All are
    stopped on the way out, whatever happened."""
    servers = [Served(env, workdir) for _ in range(n)]
    try:
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(Served.start, servers))
        yield [s.base for s in servers]
    finally:
        for server in servers:
            stop(server)


@dataclass
class Processes:
    group: Fleet  # the fake WeChat API and the push processes
    bases: list[str]  # the web workers
    admin_token: str


@asynccontextmanager
async def processes(shared: tuple[str, str], tmp_path: Path) -> AsyncIterator[Processes]:
    db_url, redis_url = shared
    (tmp_path / "push").mkdir()
    (tmp_path / "web").mkdir()
    env = serve_env(db_url, redis_url, TOKEN, order_webhook_secret=ORDER_SECRET)  # one PII key for all workers
    with fleet(db_url, redis_url, tmp_path / "push", datetime.now(UTC)) as group, \
            web_workers(env, tmp_path / "web", WORKERS) as bases:
        yield Processes(group, bases, env["ADMIN_TOKEN"])


async def pushes_settled(db: Database, group: Fleet, names: list[str]) -> None:
    """Until no outbox row is waiting or being sent (the senders alive meanwhile)."""
    async def settled() -> bool:
        for name in names:
            assert group.procs[name].poll() is None, group.log(name)
        async with db.sessions() as session:
            waiting = await session.scalar(
                select(Outbox.id).where(col(Outbox.status).in_((outbox.PENDING, outbox.SENDING))).limit(1)
            )
        return waiting is None

    await eventually(settled, within=60, every=0.2)


# --- what each run left -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Books:
    balances: dict[int, int]
    entries: dict[int, list[tuple[str, str, int]]]  # member id -> (kind, key, delta)
    checkins: Counter[int]
    orders: dict[str, tuple[int, int, int, int]]  # order id -> (member, points, refunded fen, refunded points)
    pushes: dict[str, list[Outbox]]  # openid -> its outbox rows (a late reply names no member id, only the openid)


async def books(db: Database, run: Run) -> Books:
    ids = [m.id for m in run.members]
    balances = await assert_points_consistent(db, ids)  # balance == sum of the ledger == live lots, >= 0
    async with db.sessions() as session:
        rows = (await session.execute(select(
            LedgerEntry.member_id, LedgerEntry.kind, LedgerEntry.idempotency_key, LedgerEntry.delta
        ).where(col(LedgerEntry.member_id).in_(ids)).order_by(col(LedgerEntry.id)))).all()
        days = (await session.scalars(select(col(Checkin.member_id)).where(col(Checkin.member_id).in_(ids)))).all()
        orders = (await session.scalars(select(PurchaseOrder).where(col(PurchaseOrder.member_id).in_(ids)))).all()
        sent = (await session.scalars(
            select(Outbox).where(col(Outbox.openid).in_([m.openid for m in run.members])).order_by(col(Outbox.id))
        )).all()
    entries: dict[int, list[tuple[str, str, int]]] = {}
    for member_id, kind, key, delta in rows:
        entries.setdefault(int(member_id), []).append((str(kind), str(key), int(delta)))
    pushes: dict[str, list[Outbox]] = {}
    for row in sent:
        pushes.setdefault(row.openid, []).append(row)
    return Books(
        balances, entries, Counter(int(d) for d in days),
        {o.order_id: (o.member_id, o.points, o.refunded_fen, o.refunded_points) for o in orders}, pushes,
    )


def first_of(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """Of two copies of one request: exactly one applied it, the other answers the same result, repeated."""
    assert sorted(a["repeated"] for a in answers) == [False, True], answers
    return next(a for a in answers if not a["repeated"])


def assert_once(run: Run, found: Books, rules: Rules) -> None:
    """The run's own invariants, member by member: one check-in, one credit per order, refund and adjustment,
    the balance they add up to, one push."""
    balance = rules.signup_bonus + rules.checkin_points
    done = texts.CHECKIN_DONE.format(points=rules.checkin_points, bonus="", streak=1, balance=balance)
    already = texts.CHECKIN_ALREADY.format(streak=1, balance=balance)
    for m in run.members:
        # One MsgId: the check-in. Two at once: one checks in, the other hears it was done today.
        assert sorted(m.replies) == sorted([done, already][:len(m.msg_ids)]), (m.i, m.replies)
        assert found.checkins[m.id] == 1, (m.i, found.checkins[m.id])
        kinds = Counter(kind for kind, _, _ in found.entries[m.id])
        assert kinds == Counter(["signup", "checkin", "purchase", "adjust"] + ["refund"] * bool(m.refunds)), m.i
        order, adjusted = first_of(m.orders), first_of(m.adjusts)
        back = first_of(m.refunds) if m.refunds else {"points": 0}
        assert {(a["member_id"], a["points"]) for a in m.orders} == {(m.id, order["points"])}
        assert order["points"] == rules.purchase_points(amount_fen(m.i), "普通")
        assert {a["points"] for a in m.refunds} <= {back["points"]}
        assert found.orders[f"{run.name}-o{m.i}"] == (m.id, order["points"], refunded(m.i) or 0, -back["points"])
        assert {(a["entry_id"], a["balance_after"]) for a in m.adjusts} == {
            (adjusted["entry_id"], adjusted["balance_after"])}
        expected = balance + order["points"] + back["points"] + adjustment(m.i)
        assert found.balances[m.id] == expected, (m.i, found.balances[m.id], expected)
        assert adjusted["balance_after"] == expected, (m.i, adjusted)
        told = [row for row in found.pushes.get(m.openid, []) if row.kind == "points_adjusted"]
        assert [(row.dedupe_key, row.status) for row in told] == [(f"adjust:{run.name}-adj-{m.i}", outbox.SENT)]


def assert_pushed_once(run: Run, found: Books, calls: list[dict[str, Any]]) -> None:
    """At the fake WeChat API: each member got one message per sent outbox row, the adjustment's words."""
    sends: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        if call["path"] in SEND_PATHS:
            sends.setdefault(str(call["body"]["touser"]), []).append(call)
    for m in run.members:
        got = sends.get(m.openid, [])
        sent_rows = [row for row in found.pushes.get(m.openid, []) if row.status == outbox.SENT]
        assert len(got) == len(sent_rows), (m.i, got, sent_rows)
        assert all((c["path"], c["errcode"], c["duplicate"]) == (CS, 0, False) for c in got), got
        adjusted = first_of(m.adjusts)
        words = texts.PUSH_POINTS_ADJUSTED.format(points=adjustment(m.i), reason=REASON,
                                                  balance=adjusted["balance_after"])
        assert [c["body"]["text"]["content"] for c in got].count(words) == 1, (m.i, got)


def outcome(run: Run, found: Books) -> list[tuple[Any, ...]]:
    """Member by member, everything a member could notice, without the ids that differ between runs."""
    def shape(m: Member) -> tuple[Any, ...]:
        ledger = sorted((kind, delta) for kind, _, delta in found.entries[m.id])
        # A late reply (kind `reply`) depends on the machine's speed, not on the number of workers: left out.
        pushed = sorted(row.kind for row in found.pushes.get(m.openid, []) if row.kind != "reply")
        return (sorted(m.replies), ledger, found.balances[m.id], pushed)

    return [shape(m) for m in run.members]


# --- the test ----------------------------------------------------------------------------------------------


async def test_many_workers_and_senders_apply_everything_once_as_one_does(
    shared: tuple[str, str], tmp_path: Path,
) -> None:
    db = Database(shared[0])
    rules = Rules()
    runs: list[tuple[Run, Books]] = []
    try:
        async with processes(shared, tmp_path) as procs, \
                httpx.AsyncClient(timeout=20, limits=FRESH_CONNECTIONS) as http:
            procs.group.start_scheduler("a")
            one = Run("one", BASELINE, procs.bases[:1], procs.admin_token)  # one worker, one sender
            await play(db, http, one)
            await pushes_settled(db, procs.group, ["a"])
            procs.group.start_scheduler("b")
            many = Run("many", MEMBERS, procs.bases, procs.admin_token)  # three workers, two senders
            await play(db, http, many)
            await pushes_settled(db, procs.group, ["a", "b"])
            calls = procs.group.calls()
        for run in (one, many):
            found = await books(db, run)
            assert_once(run, found, rules)
            assert_pushed_once(run, found, calls)
            runs.append((run, found))
    finally:
        await db.dispose()
    (one, one_books), (many, many_books) = runs
    claimed = {row.claimed_by for rows in many_books.pushes.values() for row in rows}
    assert len(claimed) == 2, claimed  # both senders sent a share of the second run's pushes
    assert outcome(many, many_books)[:BASELINE] == outcome(one, one_books)  # member i as on one worker
