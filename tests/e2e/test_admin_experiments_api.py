"""The experiments API through the whole app (bearer ADMIN_TOKEN): start, list, read with the report, stop;
401 without the token, 422 naming the field (nothing stored), 404 for an unknown one, a repeated request id
answered with the first experiment; every write in the audit log as the token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from storage.clock import FrozenClock
from storage.models import AuditEntry, Experiment
from tests.support.fakes import ADMIN, WeChat
from tests.support.member_support import app_with_order_secret

BODY: dict[str, Any] = {
    "name": "回归礼大小", "target": "winback", "holdout": 10, "request_id": "exp-api-1",
    "arms": [{"name": "control", "weight": 50}, {"name": "double", "weight": 50, "params": {"points": 100}}],
}


@pytest.fixture
async def wechat(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[WeChat]:
    async with app_with_order_secret(urls, clock) as harness:
        yield harness


async def _stored(wechat: WeChat) -> int:
    async with wechat.services.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Experiment)) or 0)


async def test_start_read_and_stop_an_experiment(wechat: WeChat) -> None:
    client = wechat.client
    assert (await client.post("/api/admin/experiments", json=BODY)).status_code == 401
    created = await client.post("/api/admin/experiments", json=BODY, headers=ADMIN)
    assert created.status_code == 201
    experiment = created.json()
    assert (experiment["target"], experiment["status"], experiment["holdout"]) == ("winback", "running", 10)
    assert [a["name"] for a in experiment["arms"]] == ["control", "double"]
    again = await client.post("/api/admin/experiments", json=BODY | {"name": "改了名"}, headers=ADMIN)
    assert (again.status_code, again.json()["id"], again.json()["name"]) == (200, experiment["id"], "回归礼大小")
    listed = (await client.get("/api/admin/experiments", headers=ADMIN)).json()["experiments"]
    assert [e["id"] for e in listed] == [experiment["id"]]
    one = (await client.get(f"/api/admin/experiments/{experiment['id']}", headers=ADMIN)).json()
    assert [(arm["name"], arm["assigned"]) for arm in one["report"]] == [("control", 0), ("double", 0),
                                                                          ("holdout", 0)]
    assert one["report"][0]["rates"]["delivered"] == {"count": 0, "rate": None, "low": None, "high": None,
                                                      "diff": None}
    stopped = await client.post(f"/api/admin/experiments/{experiment['id']}/stop", headers=ADMIN)
    assert stopped.json()["status"] == "stopped"
    assert (await client.post("/api/admin/experiments/999/stop", headers=ADMIN)).status_code == 404
    assert (await client.get("/api/admin/experiments/999", headers=ADMIN)).status_code == 404
    async with wechat.services.db.sessions() as session:
        actions = (await session.execute(select(AuditEntry.actor, AuditEntry.action).order_by(AuditEntry.id))).all()
    assert [tuple(a) for a in actions] == [("token", "experiment.create"), ("token", "experiment.stop")]


@pytest.mark.parametrize(("change", "field"), [
    ({"arms": [{"name": "control", "weight": 60}, {"name": "b", "weight": 60}]}, "arms"),
    ({"target": "birthday", "arms": [{"name": "control", "weight": 50},
                                     {"name": "b", "weight": 50, "params": {"points": 9}}]}, "arms[1].params"),
    ({"holdout": 80}, "holdout"),
    ({"target": "coupon"}, "target"),
])
async def test_a_bad_experiment_is_a_422_naming_the_field(wechat: WeChat, change: dict[str, Any], field: str) -> None:
    response = await wechat.client.post("/api/admin/experiments", json=BODY | change, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["message"].startswith(f"{field}:")
    assert await _stored(wechat) == 0


async def test_a_second_experiment_over_a_running_kind_is_refused(wechat: WeChat) -> None:
    assert (await wechat.client.post("/api/admin/experiments", json=BODY, headers=ADMIN)).status_code == 201
    response = await wechat.client.post("/api/admin/experiments", json=BODY | {"request_id": "exp-api-2"},
                                        headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["message"].startswith("target: experiment")
    assert await _stored(wechat) == 1
