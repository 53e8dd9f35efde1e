"""Issue 12 finding 5, "hostile input is a 4xx, everywhere", as properties: no header, query, path or
body makes any HTTP route answer 500 or more, and a refused request leaves every table's row count
and the ledger's sum as they were. The JSON APIs are fuzzed by schemathesis over the app's own
OpenAPI schema (in-process, ASGI), with and without credentials; the WeChat doors and the order
webhook, whose bodies the schema cannot describe, by hypothesis, signed and unsigned.

Bounded: EXAMPLES per operation and per door keep each test well under a minute per backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from schemathesis import GenerationMode

from bot.crypto import Envelope, sha1_signature
from devtools.simclient import xml_message
from tests.support.fakes import ADMIN, AES_KEY, APPID, TOKEN, WeChat
from tests.support.fuzz_support import Fuzz, fuzz_world
from tests.support.member_support import ORDER_SECRET, signature
from tests.support.mp_support import MP_AES_KEY, MP_APPID, MP_TOKEN

EXAMPLES = 12
# No shrinking: a failure reports its raw example at once instead of minutes of shrinking in CI.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
# Every operation of the app's schema: a new route fails test_every_operation_is_fuzzed until listed.
OPERATIONS = [
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("POST", "/hooks/orders"),
    ("GET", "/api/admin/rewards"), ("POST", "/api/admin/rewards"), ("PATCH", "/api/admin/rewards/{reward_id}"),
    ("POST", "/api/admin/rewards/{reward_id}/deactivate"), ("POST", "/api/admin/rewards/{reward_id}/codes"),
    ("POST", "/api/admin/coupons/{code}/use"), ("POST", "/api/admin/redemptions/{redemption_id}/cancel"),
    ("GET", "/api/admin/staff"), ("POST", "/api/admin/staff"), ("DELETE", "/api/admin/staff/{openid}"),
    ("GET", "/api/admin/members"), ("POST", "/api/admin/members/search"), ("GET", "/api/admin/members/{member_id}"),
    ("GET", "/api/admin/members/{member_id}/ledger"), ("POST", "/api/admin/members/{member_id}/adjust"),
    ("GET", "/api/admin/anomalies"), ("POST", "/api/admin/anomalies/{anomaly_id}/acknowledge"),
    ("POST", "/api/admin/anomalies/{anomaly_id}/resolve"), ("GET", "/api/admin/kpis"),
    ("GET", "/api/admin/campaigns/{code}/report"), ("GET", "/api/admin/push-report"),
    ("POST", "/api/admin/members/{member_id}/coupons"),
    ("GET", "/api/admin/broadcasts"), ("POST", "/api/admin/broadcasts"), ("POST", "/api/admin/broadcasts/preview"),
    ("GET", "/api/admin/broadcasts/{broadcast_id}"), ("POST", "/api/admin/broadcasts/{broadcast_id}/cancel"),
    ("GET", "/api/admin/segments"), ("GET", "/api/admin/winback"), ("GET", "/api/admin/lists"),
    ("POST", "/api/admin/lists"), ("GET", "/api/admin/experiments"), ("POST", "/api/admin/experiments"),
    ("GET", "/api/admin/experiments/{experiment_id}"), ("POST", "/api/admin/experiments/{experiment_id}/stop"),
    ("POST", "/api/admin/grants/audience/preview"), ("POST", "/api/admin/grants/audience"),
    ("POST", "/api/mp/login"), ("DELETE", "/api/mp/session"), ("GET", "/api/mp/me"), ("GET", "/api/mp/history"),
    ("POST", "/api/mp/checkin"), ("GET", "/api/mp/rewards"), ("POST", "/api/mp/redeem"),
    ("GET", "/api/mp/coupons"), ("GET", "/api/mp/campaigns"), ("POST", "/api/mp/campaigns/{code}/join"),
    ("POST", "/api/mp/signup"), ("POST", "/api/store/coupons/{code}/use"), ("POST", "/api/pos/members/lookup"),
]
# Credentials that are not: absent, wrong, the wrong scheme, and non-ASCII (sent as latin-1 bytes).
NOT_CREDENTIALS = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="},
                   {"Authorization": "Bearer tëst-ÿ"}, {"Authorization": "Bearer "}]
HOSTILE_TEXT = st.one_of(
    st.text(max_size=24), st.from_regex(r"[0-9]{1,20}", fullmatch=True),
    st.sampled_from(["", "9" * 400, "签名", "a\x00b", "-1", " 1", "١٢٣", "1_0", "sha256=", "ÿ" * 40]),
)
HOSTILE_VALUE = st.one_of(
    HOSTILE_TEXT, st.integers(min_value=-(2**70), max_value=2**70), st.none(), st.booleans(),
    st.floats(allow_nan=False), st.lists(st.integers(), max_size=2),
)


@pytest.fixture
def fuzz(urls: tuple[str, str]) -> Iterator[Fuzz]:
    with fuzz_world(urls) as world:
        yield world


def test_every_operation_is_fuzzed(fuzz: Fuzz) -> None:
    found = sorted((op.ok().method.upper(), op.ok().path) for op in fuzz.schema.get_all_operations())
    assert found == sorted(OPERATIONS)


def credentials(fuzz: Fuzz, path: str) -> dict[str, str]:
    if path.startswith("/api/admin/"):
        return ADMIN
    if path.startswith("/api/mp/"):
        return {"Authorization": f"Bearer {fuzz.visitor if path == '/api/mp/signup' else fuzz.member}"}
    if path.startswith("/api/store/"):
        return {"Authorization": f"Bearer {fuzz.store}"}
    return {}  # the order webhook's and the till's credentials are signature headers, which the schema fuzzes


@pytest.mark.parametrize("authorised", [True, False], ids=["credentials", "no-credentials"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_json_api_never_errs_and_refusals_change_nothing(
    fuzz: Fuzz, method: str, path: str, authorised: bool,
) -> None:
    operation = fuzz.schema[path][method]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    statuses: list[int] = []
    refused_before = fuzz.refused

    @FUZZ
    @given(case=cases, wrong=st.sampled_from(NOT_CREDENTIALS))
    def one(case: Any, wrong: dict[str, str]) -> None:
        fuzz.tick()
        before = fuzz.state()
        headers = credentials(fuzz, path) if authorised else wrong
        response = case.call(headers={**(case.headers or {}), **headers})
        statuses.append(response.status_code)
        fuzz.check(before, response.status_code, f"{method} {path} {case.path_parameters} {case.query}")
        if not authorised and not path.startswith(("/healthz", "/readyz", "/metrics", "/api/mp/login")):
            assert response.status_code in (400, 401, 413, 422), response.text  # nothing past the door
        if response.status_code == 200 and path == "/api/mp/signup":
            fuzz.visitor = fuzz.login(f"oFUZZvisitor{fuzz.calls}")  # that visitor is a member now
        if response.status_code == 200 and (method, path) == ("DELETE", "/api/mp/session"):
            fuzz.member = fuzz.new_member()  # that token is revoked now

    one()
    assert statuses, "the fuzz made no request"
    if not authorised and not path.startswith(("/healthz", "/readyz", "/metrics", "/api/mp/login")):
        assert fuzz.refused - refused_before == len(statuses) > 0  # every call was refused, and counted
    # the order webhook's and the till lookup's credentials are fuzzed signatures, not given
    if authorised and path.startswith("/api/") and not path.startswith("/api/pos/"):
        assert any(status != 401 for status in statuses), f"every call was 401: {sorted(set(statuses))}"


# --- the WeChat doors ------------------------------------------------------------------------------

DOORS = {"/wechat": (TOKEN, AES_KEY, APPID), "/miniprogram/push": (MP_TOKEN, MP_AES_KEY, MP_APPID)}
FIELDS = st.fixed_dictionaries(
    {"ToUserName": HOSTILE_TEXT, "FromUserName": st.sampled_from(["oFUZZdoor0001", "o\x00x"]) | HOSTILE_TEXT,
     "MsgType": st.sampled_from(["text", "event", "image", "hologram"]) | HOSTILE_TEXT},
    optional={"Content": HOSTILE_TEXT, "CreateTime": HOSTILE_VALUE, "MsgId": HOSTILE_VALUE,
              "Event": st.sampled_from(["subscribe", "SCAN", "CLICK"]) | HOSTILE_TEXT, "EventKey": HOSTILE_TEXT},
)
BODIES = st.one_of(
    st.binary(max_size=120),
    FIELDS.map(lambda f: xml_message({k: v for k, v in f.items() if isinstance(v, str | int) or v is None})),
    FIELDS.map(lambda f: json.dumps(f, ensure_ascii=False)),
    st.sampled_from(["[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000, '{"CreateTime": 1e999}']),
)
QUERY = st.fixed_dictionaries({}, optional={
    name: HOSTILE_TEXT for name in ("signature", "timestamp", "nonce", "msg_signature", "openid", "echostr")
} | {"encrypt_type": st.sampled_from(["aes", "raw", "AES"]) | HOSTILE_TEXT})


def signed(fuzz: Fuzz, door: str, query: dict[str, str], body: bytes, encrypt: bool) -> tuple[dict[str, str], bytes]:
    """The query made valid for this body (the timestamp now or the hostile one), safe mode if asked."""
    token, aes_key, appid = DOORS[door]
    params = {**query, "nonce": query.get("nonce", "1")}
    params.setdefault("timestamp", str(int(fuzz.clock.now().timestamp())))
    params["signature"] = sha1_signature(token, params["timestamp"], params["nonce"])
    if encrypt:
        sealed = Envelope([aes_key], appid).encrypt(body)
        params["encrypt_type"] = "aes"
        params["msg_signature"] = sha1_signature(token, params["timestamp"], params["nonce"], sealed)
        wrapper = {"ToUserName": "gh_fuzz", "Encrypt": sealed}
        body = (json.dumps(wrapper) if door == "/miniprogram/push" else xml_message(wrapper)).encode()
    return params, body


@pytest.mark.parametrize("door", list(DOORS))
def test_wechat_doors_never_err_and_refusals_change_nothing(fuzz: Fuzz, door: str) -> None:
    @FUZZ
    @given(query=QUERY, body=BODIES, how=st.sampled_from(["unsigned", "signed", "encrypted"]),
           get=st.booleans())
    def one(query: dict[str, str], body: str | bytes, how: str, get: bool) -> None:
        raw = body.encode() if isinstance(body, str) else body
        params, raw = (query, raw) if how == "unsigned" else signed(fuzz, door, query, raw, how == "encrypted")
        fuzz.tick()
        before = fuzz.state()
        with fuzz.client() as client:
            response = client.get(door, params=params) if get else client.post(door, params=params, data=raw)
        fuzz.check(before, response.status_code, f"{door} {how}")
        if how == "unsigned" and query.get("signature") is None:
            assert response.status_code in (400, 403, 405, 413), response.text

    one()


# --- the order webhook -------------------------------------------------------------------------------

ORDERS = st.fixed_dictionaries(
    {"order_id": st.sampled_from(["P-1", "P-2"]) | HOSTILE_VALUE, "status": st.sampled_from(["paid", "refunded"])
     | HOSTILE_VALUE, "amount_fen": st.integers(min_value=-(2**70), max_value=2**70) | HOSTILE_VALUE},
    optional={"openid": HOSTILE_VALUE, "unionid": HOSTILE_VALUE, "phone": HOSTILE_VALUE,
              "refund_id": HOSTILE_VALUE, "refund_amount_fen": HOSTILE_VALUE},
)
LATIN1 = HOSTILE_TEXT.filter(lambda t: t.isprintable() and all(ord(c) < 256 for c in t))  # what a header holds
ORDER_HEADERS = st.fixed_dictionaries({}, optional={"X-Wxbot-Timestamp": LATIN1, "X-Wxbot-Signature": LATIN1})


def test_order_webhook_never_errs_and_refusals_change_nothing(fuzz: Fuzz) -> None:
    @FUZZ
    @given(order=ORDERS, raw=st.none() | st.binary(max_size=80), sign=st.booleans(), headers=ORDER_HEADERS)
    def one(order: dict[str, Any], raw: bytes | None, sign: bool, headers: dict[str, str]) -> None:
        body = raw if raw is not None else json.dumps(order, ensure_ascii=False).encode()
        if sign:
            ts = str(int(fuzz.clock.now().timestamp()))
            mac = signature(ORDER_SECRET, ts, body)
            headers = {"X-Wxbot-Timestamp": ts, "X-Wxbot-Signature": mac}
        fuzz.tick()
        before = fuzz.state()
        with fuzz.client() as client:
            response = client.post("/hooks/orders", data=body, headers={"Content-Type": "application/json",
                                                                        **headers})
        fuzz.check(before, response.status_code, "order")
        if not sign:
            assert response.status_code in (401, 413), response.text

    one()


# --- what still fails is counted and answered in the JSON shape ----------------------------------------

async def test_an_unhandled_error_is_a_counted_json_500(wechat: WeChat) -> None:
    """A route that fails (added here, since no real input may make one fail) answers the JSON shape, with
    no trace, and /metrics counts it by route template."""

    async def broken(thing_id: int) -> None:
        raise RuntimeError("secret detail that must not reach the client")

    wechat.app.add_api_route("/api/broken/{thing_id}", broken)
    route = {"route": "/api/broken/{thing_id}"}
    before = REGISTRY.get_sample_value("wxbot_http_server_errors_total", route) or 0.0
    response = await wechat.client.get("/api/broken/7")
    assert response.status_code == 500
    assert response.json() == {"error": "internal", "message": "internal error; it has been logged"}
    metrics = (await wechat.client.get("/metrics")).text
    line = 'wxbot_http_server_errors_total{route="/api/broken/{thing_id}"}'
    assert f"{line} {before + 1}" in metrics, metrics[-2000:]
