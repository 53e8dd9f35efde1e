"""Shared wiring for the push-process tests: the database, the KV, the ledger, a FrozenClock, the fake
WeChat API mounted in-process over httpx.ASGITransport, and the real WeChatAPI/Sender built by
bot.runtime (make_api/make_sender), plus builders for members, lots and outbox rows and readers of what
the fake received."""

from __future__ import annotations

import asyncio
import inspect
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event, insert, select

from bot.runtime import make_api, make_sender
from bot.settings import Settings
from bot.wechat.client import WeChatAPI
from devtools.fakewechat import create_fake_wechat
from scheduler.jobs import JobContext
from scheduler.sender import Sender
from storage import outbox
from storage.clock import Clock, FrozenClock
from storage.db import Database
from storage.kv import KV
from storage.ledger import Ledger
from storage.models import LedgerEntry, Member, Outbox, OutboxAttempt, PointsLot
from storage.rules import Rules
from tests.support.fakes import make_settings

FAKE_BASE = "http://fake.wechat"
CS = "/cgi-bin/message/custom/send"
TEMPLATE = "/cgi-bin/message/template/send"
SUBSCRIBE = "/cgi-bin/message/subscribe/send"
STABLE_TOKEN = "/cgi-bin/stable_token"
SEND_PATHS = (CS, TEMPLATE, SUBSCRIBE)
MP_APPID = "wxmp00000000000001"

# One template per marketing kind, so a recorded template call names its kind.
TEMPLATES = {
    "birthday": "TPL_birthday_0001", "expiry": "TPL_expiry_0001", "winback": "TPL_winback_0001",
    "winback_warn": "TPL_winback_warn_0001",
    "campaign": "TPL_campaign_0001", "notice": "TPL_notice_0001",
}


def push_settings(urls: tuple[str, str], **overrides: Any) -> Settings:
    """Live credentials for both apps (so calls go to the fake, not demo recording), pacing off."""
    values: dict[str, Any] = {
        "wechat_appsecret": "oa-live-secret",
        "wechat_api_base": FAKE_BASE,
        "miniprogram_appid": MP_APPID,
        "miniprogram_secret": "mp-live-secret",
        "wechat_push_qps": 0,
    }
    values.update(overrides)
    return make_settings(*urls, **values)


@dataclass
class PushWorld:
    settings: Settings
    db: Database
    kv: KV
    ledger: Ledger
    clock: FrozenClock
    fake: FastAPI
    http: httpx.AsyncClient
    api: WeChatAPI
    sender: Sender
    _extra: list[KV] = field(default_factory=list)

    @property
    def rules(self) -> Rules:
        return self.ledger.rules

    @property
    def ctx(self) -> JobContext:
        return JobContext(self.db, self.ledger)

    def new_sender(self, *, clock: Clock | None = None, kv: KV | None = None, **config: Any) -> Sender:
        """Another sender process: its own Sender (and KV client when asked), same database and fake."""
        sender = make_sender(self.settings, self.db, kv or self.kv, self.ledger, self.api, clock or self.clock)
        if config:
            sender.config = replace(sender.config, **config)
        return sender

    def new_kv(self) -> KV:
        kv = KV(self.settings.redis_url)
        self._extra.append(kv)
        return kv

    # --- the fake's side ---------------------------------------------------------------------
    async def calls(self, path: str | None = None) -> list[dict[str, Any]]:
        params = {"path": path} if path else None
        response = await self.http.get(f"{FAKE_BASE}/_fake/calls", params=params)
        response.raise_for_status()
        return list(response.json())

    async def sends(self) -> list[dict[str, Any]]:
        """Every message-send call the fake received (any channel, any answer), in arrival order."""
        return [c for c in await self.calls() if c["path"] in SEND_PATHS]

    async def delivered(self) -> list[dict[str, Any]]:
        """Message sends the fake accepted (errcode 0) and delivered (not a client_msg_id repeat)."""
        return [c for c in await self.sends() if c["errcode"] == 0 and not c.get("duplicate")]

    async def script(self, path: str, *errcodes: int) -> None:
        response = await self.http.post(f"{FAKE_BASE}/_fake/script", json={"path": path, "errcodes": list(errcodes)})
        response.raise_for_status()

    async def reset_fake(self) -> None:
        (await self.http.post(f"{FAKE_BASE}/_fake/reset")).raise_for_status()

    # --- the outbox ----------------------------------------------------------------------------
    async def drain(self, sender: Sender | None = None, *, limit: int = 10_000) -> int:
        """Run the sender until a batch comes back empty (as of the clock's current time)."""
        sender = sender or self.sender
        total = 0
        for _ in range(limit):
            handled = await sender.run_once()
            if not handled:
                return total
            total += handled
        raise AssertionError("the sender never ran dry")

    async def row(self, dedupe_key: str) -> Outbox:
        async with self.db.sessions() as session:
            row = await session.scalar(select(Outbox).where(Outbox.dedupe_key == dedupe_key))
        assert row is not None, f"no outbox row {dedupe_key}"
        return row

    async def rows(self) -> list[Outbox]:
        async with self.db.sessions() as session:
            return list((await session.scalars(select(Outbox).order_by(Outbox.id))).all())

    async def attempts(self, row_id: int) -> list[OutboxAttempt]:
        async with self.db.sessions() as session:
            return list((await session.scalars(
                select(OutboxAttempt).where(OutboxAttempt.outbox_id == row_id).order_by(OutboxAttempt.id)
            )).all())

    async def queue(
        self, dedupe_key: str, *, member_id: int | None, openid: str, kind: str = "notice",
        category: str = outbox.TRANSACTIONAL, now: datetime | None = None, source: str = "oa",
        payload: dict[str, Any] | None = None, deadline: datetime | None = None,
    ) -> bool:
        async with self.db.unit_of_work() as session:
            return await outbox.enqueue(
                session, dedupe_key=dedupe_key, openid=openid, kind=kind, category=category,
                now=now or self.clock.now(), source=source, member_id=member_id,
                payload=payload if payload is not None else {"params": {"points": 10, "balance": 110}},
                deadline=deadline,
            )


@asynccontextmanager
async def push_world(
    urls: tuple[str, str], *, at: datetime, fake_clock: bool = True, rules: Rules | None = None,
    relaxed_commits: bool = False, **overrides: Any,
) -> AsyncIterator[PushWorld]:
    """Everything the push process needs, against the fake WeChat API. With fake_clock the fake
    stamps each call with the FrozenClock's time (so call times can be checked against quiet hours);
    without it, with the real clock (rate measurements). relaxed_commits: PostgreSQL commits without
    waiting for the disk (synchronous_commit off, this engine's connections only), for long runs
    where a crash of the server is not what is being tested; isolation and locking are unchanged."""
    settings = push_settings(urls, **overrides)
    clock = FrozenClock(at)
    fake = create_fake_wechat(clock=(lambda: clock.now().timestamp())) if fake_clock else create_fake_wechat()
    db, kv = Database(settings.database_url), KV(settings.redis_url)
    if relaxed_commits and db.dialect == "postgresql":
        @event.listens_for(db.engine.sync_engine, "connect")
        def _no_disk_wait(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.run_async(lambda connection: connection.execute("SET synchronous_commit TO off"))
    ledger = Ledger(rules or Rules(), settings.tz)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), timeout=30) as http:
        api = make_api(settings, http, kv, db, clock)
        sender = make_sender(settings, db, kv, ledger, api, clock)
        world = PushWorld(settings, db, kv, ledger, clock, fake, http, api, sender)
        try:
            yield world
        finally:
            for extra in world._extra:
                await extra.close()
            await kv.close()
            await db.dispose()


# --- members and points, written straight to the tables --------------------------------------------


def openid_for(n: int | str) -> str:
    return f"oPUSH{str(n).rjust(23, '0')}"


async def bulk_members(db: Database, rows: list[dict[str, Any]]) -> list[int]:
    """Insert many members in one statement; returns their ids in the order given."""
    now = datetime.now(UTC)
    values = [{
        "referral_code": secrets.token_hex(5).upper(), "tier": "普通", "status": "active",
        "marketing_opt_out": False, "balance": 0, "created_at": now, **row,
    } for row in rows]
    async with db.unit_of_work() as session:
        result = await session.execute(
            insert(Member).returning(Member.id, sort_by_parameter_order=True), values
        )
        return [int(r[0]) for r in result.all()]


@dataclass(frozen=True)
class LotSpec:
    member_id: int
    amount: int
    earned_at: datetime


async def bulk_lots(db: Database, ledger: Ledger, lots: Iterable[LotSpec]) -> None:
    """Earned lots with their ledger entries and the members' balances, consistent with the ledger's
    invariant (balance == sum of entries == sum of live lots), written in bulk."""
    specs = list(lots)
    if not specs:
        return
    running: dict[int, int] = {}
    entries = []
    for i, spec in enumerate(specs):
        running[spec.member_id] = running.get(spec.member_id, 0) + spec.amount
        entries.append({
            "member_id": spec.member_id, "delta": spec.amount, "kind": "purchase",
            "idempotency_key": f"seed:{spec.member_id}:{i}", "reason": "seed", "ref": None,
            "balance_after": running[spec.member_id], "created_at": spec.earned_at,
        })
    async with db.unit_of_work() as session:
        ids = [int(r[0]) for r in (await session.execute(
            insert(LedgerEntry).returning(LedgerEntry.id, sort_by_parameter_order=True), entries
        )).all()]
        await session.execute(insert(PointsLot), [{
            "member_id": spec.member_id, "entry_id": entry_id, "amount": spec.amount,
            "remaining": spec.amount, "earned_at": spec.earned_at,
            "expires_at": ledger.rules.lot_expiry(spec.earned_at, ledger.tz),
        } for spec, entry_id in zip(specs, ids, strict=True)])
        for member_id, total in running.items():
            member = await session.get(Member, member_id)
            assert member is not None
            member.balance += total


async def eventually(predicate: Callable[[], Any], *, within: float = 10.0, every: float = 0.02) -> float:
    """Poll predicate() (plain or async) until it is true; how long that took. Fails after `within` s."""
    started = time.monotonic()
    async with asyncio.timeout(within):
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return time.monotonic() - started
            await asyncio.sleep(every)


async def capped_members(db: Database, ids: list[int], now: datetime) -> None:
    """Four marketing pushes sent to each member in the week before `now`: the monthly cap is reached."""
    async with db.unit_of_work() as session:
        await session.execute(insert(Outbox), [{
            "dedupe_key": f"old:{m}:{k}", "member_id": m, "openid": "x", "source": "oa", "kind": "winback",
            "category": outbox.MARKETING, "payload": "{}", "priority": 2, "status": outbox.SENT, "attempts": 1,
            "next_attempt_at": now - timedelta(days=k + 1), "sent_at": now - timedelta(days=k + 1),
            "created_at": now - timedelta(days=k + 1),
        } for m in ids for k in range(4)])
