"""The world the fuzz tests drive: the whole app (Official Account, Mini Program, order webhook, admin
API) against the in-process fake WeChat API, reached through schemathesis's ASGI client, with a
seeded catalogue and campaigns, a member and a visitor session, and a reader of the database state a
refused request must leave as it was. Used by tests/e2e/test_mp_fuzz.py and test_hostile_fuzz.py."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import schemathesis
from schemathesis.python import asgi

from bot.app import create_app
from devtools.fakewechat import create_fake_wechat
from storage import stores
from storage.campaigns import Campaigns
from storage.clock import FrozenClock
from storage.db import Database
from storage.ledger import Ledger
from storage.rules import load_rules
from tests.conftest import START
from tests.support import backends
from tests.support.factories import TZ
from tests.support.fakes import make_settings
from tests.support.helpers import db_state
from tests.support.member_support import ORDER_SECRET
from tests.support.mp_support import FAKE_BASE, MP_AES_KEY, MP_APPID, MP_TOKEN
from tests.support.redeem_support import add_reward


@dataclass
class Fuzz:
    """The app under fuzz, reached through schemathesis's ASGI client, and the tokens it hands out."""

    app: Any
    fake: Any
    clock: FrozenClock
    schema: Any
    codes: list[str]
    db: Database
    loop: asyncio.AbstractEventLoop
    member: str = ""
    visitor: str = ""
    store: str = ""  # a store's credential, `<code>:<secret>`
    calls: int = 0
    refused: int = field(default=0)

    def client(self) -> Any:
        return asgi.get_client(self.app)

    def login(self, openid: str) -> str:
        code = f"fuzz-{secrets.token_hex(6)}"
        with asgi.get_client(self.fake) as fake:
            fake.post("/_fake/codes", json={"code": code, "openid": openid, "unionid": None}).raise_for_status()
        with self.client() as client:
            response = client.post("/api/mp/login", json={"code": code})
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def new_member(self) -> str:
        token = self.login(f"oFUZZmember{secrets.token_hex(8)}")
        phone = f"139{secrets.randbelow(10**8):08d}"
        with self.client() as client:
            response = client.post("/api/mp/signup", headers={"Authorization": f"Bearer {token}"},
                                   json={"phone": phone, "consent": True})
        assert response.status_code == 200, response.text
        return token

    def tick(self) -> None:
        """Two seconds of frozen time per request, so the fuzz never meets the 60-a-minute limit."""
        self.calls += 1
        self.clock.advance(seconds=2)

    def state(self) -> dict[str, int]:
        """Row counts of every table and the ledger's sum, read on the test's own connection."""
        return self.loop.run_until_complete(db_state(self.db))

    def check(self, before: dict[str, int], status: int, what: str) -> None:
        """No answer is a server error, and a refusal leaves the database as it was."""
        assert status < 500, f"{what}: {status}"
        if status >= 400:
            self.refused += 1
            assert self.state() == before, f"{what}: refused with {status} but the database changed"


async def _seed(url: str, clock: FrozenClock) -> list[str]:
    """A few rewards (cheap, dear, sold out) and two open campaigns for the fuzz to find; their codes."""
    db = Database(url)
    now = clock.now()
    try:
        for cost, stock in ((10, None), (30, 2), (5000, None), (10, 0)):
            await add_reward(db, now, cost=cost, stock=stock)
        async with db.unit_of_work() as session:
            campaigns = Campaigns(Ledger(load_rules(""), TZ))
            made = [
                await campaigns.create(session, kind=kind, title="模糊测试", points=10, goal=2, cap=cap,
                                       ends_at=now + timedelta(days=30), created_by="fuzz", now=now)
                for kind, cap in (("join_bonus", 50), ("group_buy", 2))
            ]
            return [c.code for c in made]
    finally:
        await db.dispose()


async def _seed_store(url: str, clock: FrozenClock) -> str:
    """One store for the store API's fuzz; its credential."""
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            _, credential = await stores.add(session, "SFUZZ", "模糊测试店", "上海", clock.now())
        return credential.bearer
    finally:
        await db.dispose()


@contextmanager
def fuzz_world(urls: tuple[str, str]) -> Iterator[Fuzz]:
    clock = FrozenClock(START)
    codes = backends.run(_seed(urls[0], clock))
    store = backends.run(_seed_store(urls[0], clock))
    fake_app = create_fake_wechat(clock=lambda: clock.now().timestamp())
    fake_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake_app), base_url=FAKE_BASE)
    app = create_app(make_settings(
        *urls, wechat_appsecret="oa-live-secret", wechat_api_base=FAKE_BASE, miniprogram_appid=MP_APPID,
        miniprogram_secret="mp-live-secret", miniprogram_token=MP_TOKEN, miniprogram_aes_key=MP_AES_KEY,
        order_webhook_secret=ORDER_SECRET,
    ), clock=clock, http=fake_http)
    loop = asyncio.new_event_loop()
    db = Database(urls[0], pool_size=1)
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        world = Fuzz(app=app, fake=fake_app, clock=clock, schema=schema, codes=codes, db=db, loop=loop,
                     store=store)
        world.member = world.new_member()
        world.visitor = world.login(f"oFUZZvisitor{secrets.token_hex(8)}")
        yield world
    finally:
        asgi.shutdown_lifespans()  # the app's lifespan ran in schemathesis's event-loop thread
        loop.run_until_complete(db.dispose())
        loop.close()
