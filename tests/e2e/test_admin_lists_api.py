"""Uploaded member lists through the admin API (bearer ADMIN_TOKEN): an upload resolves Official Account and
Mini Program openids to members, each once, counts the openids nobody has, answers 201 with its id, is audited
`list.upload` by `token`, and is then an audience (`list_id`) a broadcast preview counts (opted-out members on
it are not reachable); bad uploads are a 422 naming the field with nothing stored. A broadcast may name a running
experiment over broadcasts (`experiment_id`); a birthday experiment, a stopped one or an unknown id is a 422
naming experiment_id with nothing stored."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from storage import audit, experiments
from storage.clock import FrozenClock
from storage.models import AuditEntry, Broadcast, Experiment, Member, MemberList, MemberListEntry, Outbox
from tests.support.campaign_support import add_members
from tests.support.fakes import ADMIN, WeChat

BROADCAST: dict[str, Any] = {"name": "门店会员专享", "kind": "content", "audience": {},
                             "text": "本周到店会员专享双倍积分，回复【积分】查看。", "request_id": "list-bc-1"}


async def _people(wechat: WeChat, clock: FrozenClock) -> list[Member]:
    """Six members: m0 gold, m1 on the Mini Program only, m2 on both, m3 opted out of marketing, m4 and m5
    on no list."""
    people = await add_members(wechat.services.db, clock.now() - timedelta(days=30), 6, start=300)
    async with wechat.services.db.unit_of_work() as session:
        for n, person in enumerate(people):
            member = await session.get(Member, person.id)
            assert member is not None
            if n == 0:
                member.tier = "金卡"
            if n == 1:
                member.openid, member.mp_openid = None, f"oMP-only-{n:04d}"
            if n == 2:
                member.mp_openid = f"oMP-both-{n:04d}"
            if n == 3:
                member.marketing_opt_out = True
    async with wechat.services.db.sessions() as session:
        found = (await session.scalars(
            select(Member).where(col(Member.id).in_([p.id for p in people])).order_by(col(Member.id))
        )).all()
    return list(found)


async def _count(wechat: WeChat, model: Any) -> int:
    async with wechat.services.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _uploads_audited(wechat: WeChat) -> list[AuditEntry]:
    async with wechat.services.db.sessions() as session:
        return list((await session.scalars(
            select(AuditEntry).where(col(AuditEntry.action) == "list.upload").order_by(col(AuditEntry.id))
        )).all())


def _openids(people: list[Member]) -> list[str]:
    """An operator's export: m0 twice (once with spaces), m1's Mini Program openid, m2 under both its openids,
    m3, and two openids nobody has (one of them twice)."""
    m0, m1, m2, m3 = people[:4]
    assert m0.openid
    assert m1.mp_openid
    assert m2.openid
    assert m2.mp_openid
    assert m3.openid
    return [m0.openid, f"  {m0.openid} ", m1.mp_openid, m2.openid, m2.mp_openid, m3.openid,
            "oNOBODY000000000000001", "oNOBODY000000000000002", "oNOBODY000000000000001"]


async def _preview(wechat: WeChat, audience: dict[str, Any]) -> Any:
    response = await wechat.client.post("/api/admin/broadcasts/preview", json=BROADCAST | {"audience": audience},
                                        headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


async def test_an_upload_resolves_each_member_once_and_is_an_audience(wechat: WeChat, clock: FrozenClock) -> None:
    people = await _people(wechat, clock)
    client = wechat.client
    body = {"name": "南京西路店会员", "openids": _openids(people)}
    assert (await client.post("/api/admin/lists", json=body)).status_code == 401
    assert await _count(wechat, MemberList) == 0

    response = await client.post("/api/admin/lists", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    listed = response.json()
    assert (listed["name"], listed["size"], listed["unknown"], listed["created_by"]) == ("南京西路店会员", 4, 2,
                                                                                        "token")
    assert isinstance(listed["id"], int)
    async with wechat.services.db.sessions() as session:
        entries = (await session.scalars(
            select(col(MemberListEntry.member_id)).where(col(MemberListEntry.list_id) == listed["id"])
            .order_by(col(MemberListEntry.member_id))
        )).all()
    assert list(entries) == [p.id for p in people[:4]]

    [entry] = await _uploads_audited(wechat)
    assert (entry.actor, entry.actor_role, entry.target) == ("token", "token", f"member_list:{listed['id']}")
    assert json.loads(entry.after or "{}") == {"name": "南京西路店会员", "size": 4, "unknown": 2}

    # The list as an audience: m0, m1, m2 -- m3 opted out is on the list but not reachable; m4, m5 are not on it.
    seen = await _preview(wechat, {"list_id": listed["id"]})
    assert (seen["audience"], seen["reachable"]) == (3, 3)
    assert (await _preview(wechat, {}))["audience"] == 5  # everyone but m3
    assert (await _preview(wechat, {"list_id": listed["id"], "tiers": ["金卡"]}))["audience"] == 1  # and gold: m0
    unknown = await client.post("/api/admin/broadcasts/preview",
                                json=BROADCAST | {"audience": {"list_id": listed["id"] + 100}}, headers=ADMIN)
    assert unknown.status_code == 422
    assert unknown.json()["message"].startswith("audience.list:")

    # A broadcast to the list queues one row per reachable member on it.
    created = await client.post("/api/admin/broadcasts", json=BROADCAST | {"audience": {"list_id": listed["id"]}},
                                headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json()["audience"] == {"list_id": listed["id"]}

    second = await client.post("/api/admin/lists", json={"name": "小程序会员", "openids": [people[1].mp_openid]},
                               headers=ADMIN)
    assert (second.status_code, second.json()["size"], second.json()["unknown"]) == (201, 1, 0)
    lists = (await client.get("/api/admin/lists", headers=ADMIN)).json()["lists"]
    assert [(m["id"], m["name"], m["size"]) for m in lists] == [
        (second.json()["id"], "小程序会员", 1), (listed["id"], "南京西路店会员", 4)]
    assert (await client.get("/api/admin/lists")).status_code == 401
    assert len(await _uploads_audited(wechat)) == 2


@pytest.mark.parametrize(("change", "field"), [
    ({"openids": ["oNOBODY000000000000001", "oNOBODY000000000000002"]}, "openids"),  # nobody known
    ({"openids": []}, "openids"),
    ({"openids": ["   ", ""]}, "openids"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "名" * 61}, "name"),
    ({"store": "S001"}, "store"),  # a field the API does not take
    ({"openids": "oMEMBER00000000000000000300"}, "openids"),
])
async def test_a_bad_upload_is_a_422_naming_the_field_and_nothing_is_stored(
    wechat: WeChat, clock: FrozenClock, change: dict[str, Any], field: str,
) -> None:
    people = await _people(wechat, clock)
    body = {"name": "南京西路店会员", "openids": _openids(people)} | change
    response = await wechat.client.post("/api/admin/lists", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert message.startswith((f"{field}:", f"body.{field}:")), message
    assert await _count(wechat, MemberList) == 0
    assert await _count(wechat, MemberListEntry) == 0
    assert await _uploads_audited(wechat) == []


# --- a broadcast as an experiment --------------------------------------------------------------------------
ARMS = [{"name": "control", "weight": 50}, {"name": "warm", "weight": 50, "params": {"text": "周末到店有惊喜"}}]
BIRTHDAY_ARMS = [{"name": "control", "weight": 50},
                 {"name": "warm", "weight": 50, "params": {"text": "{brand}祝您生日快乐"}}]


async def _experiment(wechat: WeChat, target: str, request_id: str, *, stop: bool = False) -> int:
    now = wechat.services.clock.now()
    arms = ARMS if target == "broadcast" else BIRTHDAY_ARMS
    async with wechat.services.db.unit_of_work() as session:
        made, repeated = await experiments.create(session, name=f"实验 {request_id}", target=target, arms=arms,
                                                  holdout=10, request_id=request_id, actor=audit.TOKEN, now=now)
        assert not repeated
        if stop:
            await experiments.stop(session, int(made.id or 0), actor=audit.TOKEN, now=now)
        return int(made.id or 0)


async def test_a_broadcast_names_a_running_experiment_over_broadcasts(wechat: WeChat, clock: FrozenClock) -> None:
    await _people(wechat, clock)
    running = await _experiment(wechat, "broadcast", "exp-bc")
    birthday = await _experiment(wechat, "birthday", "exp-bd")
    stopped = await _experiment(wechat, "broadcast", "exp-old", stop=True)
    client = wechat.client

    for bad in (birthday, stopped, running + 100):
        response = await client.post("/api/admin/broadcasts", json=BROADCAST | {"experiment_id": bad}, headers=ADMIN)
        assert response.status_code == 422, response.text
        assert response.json()["message"].startswith("experiment_id:"), response.json()
        preview = await client.post("/api/admin/broadcasts/preview", json=BROADCAST | {"experiment_id": bad},
                                    headers=ADMIN)
        assert preview.status_code == 422, preview.text  # the preview refuses what the create would
        assert preview.json()["message"].startswith("experiment_id:")
    for bad_value in (0, "1", True):
        response = await client.post("/api/admin/broadcasts", json=BROADCAST | {"experiment_id": bad_value},
                                     headers=ADMIN)
        assert response.status_code == 422, bad_value
        assert "experiment_id" in response.json()["message"]
    assert await _count(wechat, Broadcast) == 0
    assert await _count(wechat, Outbox) == 0
    async with wechat.services.db.sessions() as session:
        assert (await session.scalars(
            select(col(AuditEntry.action)).where(col(AuditEntry.action) == "broadcast.create"))).all() == []

    created = await client.post("/api/admin/broadcasts", json=BROADCAST | {"experiment_id": running}, headers=ADMIN)
    assert created.status_code == 201, created.text
    made = created.json()
    assert made["experiment_id"] == running
    async with wechat.services.db.sessions() as session:
        stored = await session.get(Broadcast, made["id"])
        assert stored is not None
        assert stored.experiment_id == running
        experiment = await session.get(Experiment, running)
        assert experiment is not None
        assert experiment.status == "running"
    one = (await client.get(f"/api/admin/broadcasts/{made['id']}", headers=ADMIN)).json()
    assert one["experiment_id"] == running
    plain = await client.post("/api/admin/broadcasts", json=BROADCAST | {"request_id": "list-bc-2"}, headers=ADMIN)
    assert (plain.status_code, plain.json()["experiment_id"]) == (201, None)
    assert await _count(wechat, Broadcast) == 2
