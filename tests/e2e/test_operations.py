"""/healthz, /readyz and /metrics as an operator's probes and Prometheus see them."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client.parser import text_string_to_metric_families

from storage.clock import FrozenClock
from tests.conftest import START
from tests.support.fakes import WeChat, make_app, make_settings, serving

UNREACHABLE_PG = "postgresql://root@127.0.0.1:1/x"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@asynccontextmanager
async def app_on(database_url: str, redis_url: str) -> AsyncIterator[WeChat]:
    clock = FrozenClock(START)
    app = make_app(make_settings(database_url, redis_url), clock)
    async with serving(app, clock) as harness:
        yield harness


async def scrape(wechat: WeChat) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await wechat.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_healthz(wechat: WeChat) -> None:
    response = await wechat.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_everything_is_reachable(wechat: WeChat) -> None:
    response = await wechat.client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "checks": {"database": "ok", "kv": "ok"}}


async def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    async with app_on(UNREACHABLE_PG, f"memory://ops-{secrets.token_hex(4)}") as wechat:
        response = await wechat.client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["ready"] is False
        assert body["checks"]["kv"] == "ok"
        assert body["checks"]["database"].startswith("error")
        # the process itself is alive
        assert (await wechat.client.get("/healthz")).status_code == 200


async def test_readyz_is_503_when_the_kv_is_unreachable() -> None:
    async with app_on("sqlite:///ops.db", UNREACHABLE_REDIS) as wechat:
        response = await wechat.client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["kv"].startswith("error")


async def test_metrics_count_messages_by_intent(wechat: WeChat) -> None:
    before = await scrape(wechat)
    assert await wechat.say("oMETRICS", "帮助")
    after = await scrape(wechat)
    labels = {"source": "oa", "intent": "help", "outcome": "replied"}
    assert value(after, "wxbot_messages_total", **labels) == value(before, "wxbot_messages_total", **labels) + 1
    latency = "wxbot_message_seconds_count"
    assert value(after, latency, source="oa") == value(before, latency, source="oa") + 1


async def test_metrics_count_dedupe_hits(wechat: WeChat) -> None:
    fields = wechat.side.text("oMETRICS", "帮助", msg_id=3300001)
    await wechat.send(fields)
    before = await scrape(wechat)
    await wechat.send(fields)
    after = await scrape(wechat)
    name = "wxbot_dedupe_hits_total"
    assert value(after, name, state="replied") == value(before, name, state="replied") + 1
    # the retry is not counted as a second message
    labels = {"source": "oa", "intent": "help", "outcome": "replied"}
    assert value(after, "wxbot_messages_total", **labels) == value(before, "wxbot_messages_total", **labels)


async def test_metrics_count_refusals(wechat: WeChat) -> None:
    before = await scrape(wechat)
    push = wechat.side.sign(wechat.side.text("oMETRICS", "帮助"))
    response = await wechat.client.post("/wechat", params={**push.params, "signature": "0" * 40},
                                        content=push.body)
    assert response.status_code == 403
    after = await scrape(wechat)
    name = "wxbot_rejected_requests_total"
    labels = {"endpoint": "wechat", "status": "403"}
    assert value(after, name, **labels) == value(before, name, **labels) + 1
