"""A schema-driven fuzz of the Mini Program member API (schemathesis over the app's own OpenAPI
schema, in-process through its ASGI transport): every /api/mp/ operation, positive and negative
inputs, ~20 examples each, authenticated as a signed-up member (sign-up as a visitor) against the
fake WeChat API. No input may produce a 5xx.

SQLite only: the fuzz is about inputs, not about the database, and it has to stay fast."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.support.fuzz_support import Fuzz, fuzz_world

# Every operation of the member API: a new one fails test_every_operation_is_fuzzed until listed here.
OPERATIONS = [
    ("POST", "/api/mp/login"), ("DELETE", "/api/mp/session"), ("GET", "/api/mp/me"), ("GET", "/api/mp/history"),
    ("POST", "/api/mp/checkin"), ("GET", "/api/mp/rewards"), ("POST", "/api/mp/redeem"),
    ("GET", "/api/mp/coupons"), ("GET", "/api/mp/campaigns"), ("POST", "/api/mp/campaigns/{code}/join"),
    ("POST", "/api/mp/signup"),
]
EXAMPLES = 20
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def fuzz(urls: tuple[str, str]) -> Iterator[Fuzz]:
    with fuzz_world(urls) as world:
        world.schema = world.schema.include(path_regex="^/api/mp/")
        yield world


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
