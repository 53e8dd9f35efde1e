"""Builds the long-lived pieces from Settings, for the web app, the push process and the CLI alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import httpx

from bot.settings import Settings
from bot.wechat.client import App, WeChatAPI, WeChatPushSender
from scheduler.jobs import JobContext
from scheduler.main import PushScheduler
from scheduler.sender import Sender, SenderConfig
from storage.clock import Clock, SystemClock
from storage.db import Database
from storage.kv import KV
from storage.ledger import Ledger
from storage.rules import load_rules


def make_kv(settings: Settings) -> KV:
    return KV(settings.redis_url, settings.kv_options())


def make_api(settings: Settings, http: httpx.AsyncClient, kv: KV, db: Database, clock: Clock) -> WeChatAPI:
    return WeChatAPI(
        http, kv, db, clock, base_url=settings.wechat_api_base,
        oa=App("oa", settings.wechat_appid, settings.wechat_appsecret),
        mp=App("mp", settings.miniprogram_appid, settings.miniprogram_secret),
        wecom_base=settings.wecom_api_base,
    )


def make_sender(settings: Settings, db: Database, kv: KV, ledger: Ledger, api: WeChatAPI, clock: Clock) -> Sender:
    config = SenderConfig(
        templates=dict(settings.wechat_template_ids),
        subscribe_templates=dict(settings.miniprogram_subscribe_template_ids),
        qps=settings.wechat_push_qps,
    )
    return Sender(db, kv, ledger.rules, ledger.tz, WeChatPushSender(api), clock, config)


@dataclass
class PushRuntime:
    db: Database
    kv: KV
    api: WeChatAPI
    scheduler: PushScheduler


@asynccontextmanager
async def push_runtime(settings: Settings, clock: Clock | None = None) -> AsyncIterator[PushRuntime]:
    """Everything `wxbot scheduler` and `wxbot jobs` need, closed on exit."""
    clock = clock or SystemClock()
    db, kv = Database(settings.database_url), make_kv(settings)
    ledger = Ledger(load_rules(settings.rules_file), settings.tz)
    async with httpx.AsyncClient(timeout=10) as http:
        api = make_api(settings, http, kv, db, clock)
        sender = make_sender(settings, db, kv, ledger, api, clock)
        jobs = JobContext(db, ledger, settings.ops_wecom_robot, settings.service_wecom_robot,
                          templates=bool(settings.wechat_template_ids))
        scheduler = PushScheduler(jobs, kv, clock, sender)
        try:
            yield PushRuntime(db, kv, api, scheduler)
        finally:
            await kv.close()
            await db.dispose()


async def run_named_job(runtime: PushRuntime, name: str, at: datetime | None = None) -> int:
    """`wxbot jobs run NAME --at` (and the simulator's time travel): one job as of `at`, or `sender`:
    the outbox drained until nothing is due."""
    if name != "sender":
        return await runtime.scheduler.run_job(name, at)
    sender = runtime.scheduler.sender
    assert sender is not None
    total = 0
    while handled := await sender.run_once():
        total += handled
    return total


@asynccontextmanager
async def wechat_runtime(settings: Settings, clock: Clock | None = None) -> AsyncIterator[WeChatAPI]:
    """The WeChat API client alone (its token cache in the KV, demo calls in the database), for the CLI."""
    db, kv = Database(settings.database_url), make_kv(settings)
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            yield make_api(settings, http, kv, db, clock or SystemClock())
        finally:
            await kv.close()
            await db.dispose()
