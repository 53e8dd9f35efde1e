"""A schema-driven fuzz of the Mini Program member API (schemathesis over the app's own OpenAPI
schema, in-process through its ASGI transport): every /api/mp/ operation, positive and negative
inputs, ~20 examples each, authenticated as a signed-up member (sign-up as a visitor) against the
fake WeChat API. No input may produce a 5xx.

SQLite only: the fuzz is about inputs, not about the database, and it has to stay fast."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi

from bot.app import create_app
from devtools.fakewechat import create_fake_wechat
from storage.campaigns import Campaigns
from storage.clock import FrozenClock
from storage.db import Database
from storage.ledger import Ledger
from storage.rules import load_rules
from tests.conftest import START
from tests.support import backends
from tests.support.factories import TZ
from tests.support.fakes import make_settings
from tests.support.mp_support import FAKE_BASE, MP_AES_KEY, MP_APPID, MP_TOKEN
from tests.support.redeem_support import add_reward

# Every operation of the member API: a new one fails test_every_operation_is_fuzzed until listed here.
OPERATIONS = [
    ("POST", "/api/mp/login"), ("DELETE", "/api/mp/session"), ("GET", "/api/mp/me"), ("GET", "/api/mp/history"),
    ("POST", "/api/mp/checkin"), ("GET", "/api/mp/rewards"), ("POST", "/api/mp/redeem"),
    ("GET", "/api/mp/coupons"), ("GET", "/api/mp/campaigns"), ("POST", "/api/mp/campaigns/{code}/join"),
    ("POST", "/api/mp/signup"),
]
EXAMPLES = 20
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@dataclass
class Fuzz:
    """The app under fuzz, reached through schemathesis's ASGI client, and the tokens it hands out."""

    app: Any
    fake: Any
    clock: FrozenClock
    schema: Any
    codes: list[str]
    member: str = ""
    visitor: str = ""
    calls: int = 0

    def login(self, openid: str) -> str:
        code = f"fuzz-{secrets.token_hex(6)}"
        with asgi.get_client(self.fake) as fake:
            fake.post("/_fake/codes", json={"code": code, "openid": openid, "unionid": None}).raise_for_status()
        with asgi.get_client(self.app) as client:
            response = client.post("/api/mp/login", json={"code": code})
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def new_member(self) -> str:
        token = self.login(f"oFUZZmember{secrets.token_hex(8)}")
        phone = f"139{secrets.randbelow(10**8):08d}"
        with asgi.get_client(self.app) as client:
            response = client.post("/api/mp/signup", headers={"Authorization": f"Bearer {token}"},
                                   json={"phone": phone, "consent": True})
        assert response.status_code == 200, response.text
        return token

    def tick(self) -> None:
        """Two seconds of frozen time per request, so the fuzz never meets the 60-a-minute limit."""
        self.calls += 1
        self.clock.advance(seconds=2)


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


@pytest.fixture
def fuzz(urls: tuple[str, str]) -> Iterator[Fuzz]:
    clock = FrozenClock(START)
    codes = backends.run(_seed(urls[0], clock))
    fake_app = create_fake_wechat(clock=lambda: clock.now().timestamp())
    fake_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake_app), base_url=FAKE_BASE)
    app = create_app(make_settings(
        *urls, wechat_appsecret="oa-live-secret", wechat_api_base=FAKE_BASE, miniprogram_appid=MP_APPID,
        miniprogram_secret="mp-live-secret", miniprogram_token=MP_TOKEN, miniprogram_aes_key=MP_AES_KEY,
    ), clock=clock, http=fake_http)
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex="^/api/mp/")
        world = Fuzz(app=app, fake=fake_app, clock=clock, schema=schema, codes=codes)
        world.member = world.new_member()
        world.visitor = world.login(f"oFUZZvisitor{secrets.token_hex(8)}")
        yield world
    finally:
        asgi.shutdown_lifespans()  # the app's lifespan ran in schemathesis's event-loop thread


def strategy(fuzz: Fuzz, path: str, method: str) -> st.SearchStrategy[Any]:
    """Schemathesis's positive and negative cases, plus inputs random data rarely reaches: the seeded
    campaign codes, and well-formed phones with date-like and random birthdays for the sign-up."""
    operation = fuzz.schema[path][method]
    strategies = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    if path == "/api/mp/campaigns/{code}/join":
        strategies.append(st.sampled_from(fuzz.codes).flatmap(
            lambda code: operation.as_strategy(path_parameters={"code": code})))
    if path == "/api/mp/signup":
        phones = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
        birthdays = st.none() | st.from_regex(r"([0-9]{1,4}[-/.年])?[0-9]{1,3}[-/.月][0-9]{1,3}日?", fullmatch=True) \
            | st.text(max_size=16)
        bodies = st.builds(lambda phone, birthday: {"phone": phone, "birthday": birthday, "consent": True},
                           phones, birthdays)
        strategies.append(bodies.flatmap(lambda body: operation.as_strategy(body=body)))
    return st.one_of(strategies)


def test_every_operation_is_fuzzed(fuzz: Fuzz) -> None:
    found = sorted((op.ok().method.upper(), op.ok().path) for op in fuzz.schema.get_all_operations())
    assert found == sorted(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_input_makes_a_server_error(fuzz: Fuzz, method: str, path: str) -> None:
    cases = strategy(fuzz, path, method)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def one(case: Any) -> None:
        signing_up = path == "/api/mp/signup"
        token = fuzz.visitor if signing_up else fuzz.member
        fuzz.tick()
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code == 200 and signing_up:
            fuzz.visitor = fuzz.login(f"oFUZZvisitor{secrets.token_hex(8)}")  # that visitor is a member now
        if response.status_code == 200 and method == "DELETE":
            fuzz.member = fuzz.new_member()  # that token is revoked now
        assert response.status_code != 429, "the fuzz itself should stay under the rate limit"

    one()
    assert fuzz.calls >= 1
