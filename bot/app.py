"""create_app(settings): the composition root. The lifespan builds the engine, KV, services and the
chat pipeline.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from bot import apidocs
from bot.api import (
    admin,
    admin_anomalies,
    admin_audiences,
    admin_broadcasts,
    admin_campaigns,
    admin_experiments,
    admin_grants,
    admin_kpis,
    admin_members,
    health,
    miniprogram,
    orders,
    pos,
    store,
)
from bot.api.deps import settle_abandoned
from bot.api.errors import install_error_handlers
from bot.chat import build_conversation
from bot.console import routes as console
from bot.crypto import Envelope, PiiCipher
from bot.inbound.dedupe import DeliveryGuard
from bot.inbound.late import Sweeper
from bot.inbound.pipeline import ChatPipeline
from bot.inbound.webhook import Endpoint, WebhookDoors, mini_program, official_account
from bot.runtime import make_api, make_kv, make_sender
from bot.settings import Settings
from bot.simulator import routes as simulator
from bot.wechat.client import WeChatQr
from bot.wechat.identity import IdentityLinker
from handlers.core.context import Services
from handlers.core.message import MINI_PROGRAM, OFFICIAL_ACCOUNT
from scheduler.jobs import JobContext
from scheduler.main import PushScheduler
from storage.campaigns import Campaigns
from storage.clock import Clock, SystemClock
from storage.db import Database
from storage.ledger import Ledger
from storage.rewards import Rewards
from storage.rules import load_rules

log = logging.getLogger("wxbot.app")


def oa_endpoint(settings: Settings, random: Callable[[int], bytes] = os.urandom) -> Endpoint:
    envelope = None
    if settings.wechat_aes_key:
        keys = [settings.wechat_aes_key, settings.wechat_aes_key_previous]
        envelope = Envelope(keys, settings.oa_appid, random=random)
    return Endpoint(
        name="wechat",
        source=OFFICIAL_ACCOUNT,
        token=settings.wechat_token,
        envelope=envelope,
        max_body=settings.max_body_bytes,
        max_age=settings.signature_max_age,
        require_safe_mode=settings.oa_requires_safe_mode,
    )


def mp_endpoint(settings: Settings, random: Callable[[int], bytes] = os.urandom) -> Endpoint:
    """The Mini Program push; its token falls back to the Official Account's for a first run."""
    envelope = None
    if settings.miniprogram_aes_key:
        envelope = Envelope([settings.miniprogram_aes_key], settings.miniprogram_appid or "wxdemo_mp", random=random)
    return Endpoint(
        name="miniprogram",
        source=MINI_PROGRAM,
        token=settings.miniprogram_token or settings.wechat_token,
        envelope=envelope,
        max_body=settings.max_body_bytes,
        max_age=settings.signature_max_age,
        require_safe_mode=settings.mp_requires_safe_mode,
    )


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    random: Callable[[int], bytes] = os.urandom,
    run_scheduler: bool = False,
    http: httpx.AsyncClient | None = None,
    freeze_gc: bool = False,
) -> FastAPI:
    """The web app. `run_scheduler` also runs the push process inside it (`wxbot demo`);
    `http` lets tests point the WeChat API client at an in-process fake; `freeze_gc` (`wxbot serve`)
    moves what start-up built out of the garbage collector's sight once it is up."""
    settings = (settings or Settings()).with_demo_secrets()
    settings.check_production()
    clock = clock or SystemClock()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        kv = make_kv(settings)
        rules = load_rules(settings.rules_file)
        ledger = Ledger(rules, settings.tz)
        services = Services(
            db=db, kv=kv, clock=clock, tz=settings.tz, rules=rules,
            ledger=ledger, pii=PiiCipher(settings.pii_key), rewards=Rewards(ledger), campaigns=Campaigns(ledger),
            service_robot=settings.service_wecom_robot,
        )
        conversation = build_conversation(kv, deadline=settings.reply_deadline, lease=settings.delivery_lease)
        guard = DeliveryGuard(kv, ttl=settings.dedupe_ttl, processing_ttl=settings.delivery_lease)
        client = http or httpx.AsyncClient(timeout=10)
        api = make_api(settings, client, kv, db, clock)
        services.qr = WeChatQr(api)
        linker = IdentityLinker(api, db, clock, settings.tz)
        pipeline = ChatPipeline(
            services, conversation, guard, deadline=settings.reply_deadline,
            late_lease=settings.late_lease, on_first_contact=linker.first_contact if linker.live else None,
        )
        sweeper = Sweeper(db, clock, pipeline.rerun, interval=settings.late_sweep_interval, lease=settings.late_lease)
        app.state.services = services
        console.start(app, settings, kv)
        app.state.pipeline = pipeline
        app.state.wechat = api
        stop = asyncio.Event()
        sweeping = asyncio.create_task(sweeper.run(stop))
        background = None
        if run_scheduler:
            sender = make_sender(settings, db, kv, services.ledger, api, clock)
            jobs = JobContext(db, services.ledger, settings.ops_wecom_robot, settings.service_wecom_robot,
                              templates=bool(settings.wechat_template_ids))
            scheduler = PushScheduler(jobs, kv, clock, sender)
            app.state.scheduler = scheduler
            background = asyncio.create_task(scheduler.run(stop))
        if freeze_gc:
            # Modules, routers, compiled statements: never garbage, yet every full collection walked them
            # all, a pause of tens of milliseconds that requests in flight waited out.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            stop.set()
            if background is not None:
                await background
            await sweeping
            await pipeline.drain()
            await settle_abandoned()
            if http is None:
                await client.aclose()
            await kv.close()
            await db.dispose()

    # Metrics are Prometheus's (/metrics); FastAPI's own OpenTelemetry hooks stay off, or every request
    # would look the providers up again (environment reads included).
    app = FastAPI(
        title="wxbot", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.oa_endpoint = oa_endpoint(settings, random)
    app.state.mp_endpoint = mp_endpoint(settings, random)
    app.include_router(official_account)
    app.include_router(mini_program)
    app.include_router(health.router)
    app.include_router(orders.router)
    app.include_router(store.router)
    app.include_router(pos.router)
    app.include_router(admin.router)
    app.include_router(admin_members.router)
    app.include_router(admin_grants.router)
    app.include_router(admin_anomalies.router)
    app.include_router(admin_experiments.router)
    app.include_router(admin_broadcasts.router)
    app.include_router(admin_audiences.router)
    app.include_router(admin_kpis.router)
    app.include_router(admin_campaigns.router)
    app.include_router(miniprogram.router)
    console.install(app, settings)
    apidocs.install(app)
    if settings.simulator_enabled:
        if not settings.demo:
            log.warning("SIMULATOR=1 outside demo mode: /simulator signs pushes as any member")
        simulator.install(app)
    # Inside ServerErrorShield, which install_error_handlers adds next.
    app.add_middleware(WebhookDoors, routers=(official_account, mini_program))
    install_error_handlers(app, html=console.refusal_page)
    return app


def serve_app() -> FastAPI:
    """The app as `wxbot serve` runs it (uvicorn's factory, in every worker)."""
    return create_app(freeze_gc=True)

