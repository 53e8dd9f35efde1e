"""The broadcasts API through the whole app (bearer ADMIN_TOKEN): preview the numbers, create (once per request
id), the scheduler's expansion queues one marketing row per reachable member keyed `broadcast:{id}:{member}`,
read it back with its rows, cancel it (pending rows dropped, audited); every bad input a 422 naming the field
with nothing stored or queued; 401 without the token, 404 for an unknown broadcast."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from scheduler.jobs import JobContext, broadcast_expansion
from storage.clock import FrozenClock
from storage.models import AuditEntry, Broadcast, Member, Outbox
from tests.support.campaign_support import add_members
from tests.support.fakes import ADMIN, WeChat
from tests.support.member_support import app_with_order_secret

BODY: dict[str, Any] = {"name": "金卡专享", "kind": "content", "audience": {"tiers": ["金卡"]},
                        "text": "金卡会员本周专享双倍积分，回复【积分】查看。", "request_id": "bc-api-1"}


@pytest.fixture
async def wechat(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[WeChat]:
    async with app_with_order_secret(urls, clock) as harness:
        yield harness


async def _gold(wechat: WeChat, clock: FrozenClock) -> list[int]:
    """Three gold members (one opted out), two plain ones."""
    people = await add_members(wechat.services.db, clock.now() - timedelta(days=30), 5, start=600)
    async with wechat.services.db.unit_of_work() as session:
        for n, person in enumerate(people):
            member = await session.get(Member, person.id)
            assert member is not None
            member.tier = "金卡" if n < 3 else "普通"
            member.marketing_opt_out = n == 2
    return [int(p.id or 0) for p in people]


async def _count(wechat: WeChat, model: Any) -> int:
    async with wechat.services.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_preview_create_expand_read_and_cancel(wechat: WeChat, clock: FrozenClock) -> None:
    ids = await _gold(wechat, clock)
    client = wechat.client
    assert (await client.post("/api/admin/broadcasts", json=BODY)).status_code == 401
    seen = (await client.post("/api/admin/broadcasts/preview", json=BODY, headers=ADMIN)).json()
    assert (seen["audience"], seen["capped"], seen["reachable"]) == (2, 0, 2)
    assert seen["payload"]["text"] == BODY["text"]
    assert await _count(wechat, Broadcast) == 0

    later = (clock.now() + timedelta(hours=2)).isoformat()
    created = await client.post("/api/admin/broadcasts", json=BODY | {"send_at": later}, headers=ADMIN)
    assert created.status_code == 201
    broadcast = created.json()
    again = await client.post("/api/admin/broadcasts", json=BODY | {"send_at": later}, headers=ADMIN)
    assert (again.status_code, again.json()["id"]) == (200, broadcast["id"])
    ctx = JobContext(wechat.services.db, wechat.services.ledger)
    assert await broadcast_expansion(ctx, clock.now()) == 0  # not due yet
    clock.advance(hours=2)
    assert await broadcast_expansion(ctx, clock.now()) == 2
    assert await broadcast_expansion(ctx, clock.now()) == 0  # a re-run adds nothing
    async with wechat.services.db.sessions() as session:
        rows = (await session.scalars(select(Outbox).where(Outbox.broadcast_id == broadcast["id"])
                                      .order_by(Outbox.member_id))).all()
    assert [r.dedupe_key for r in rows] == [f"broadcast:{broadcast['id']}:{m}" for m in ids[:2]]
    assert {(r.category, r.kind, r.status) for r in rows} == {("marketing", "content", "pending")}
    one = (await client.get(f"/api/admin/broadcasts/{broadcast['id']}", headers=ADMIN)).json()
    assert (one["status"], one["queued"], one["rows"]) == ("sent", 2, {"pending": 2})

    cancelled = await client.post(f"/api/admin/broadcasts/{broadcast['id']}/cancel", headers=ADMIN)
    assert (cancelled.json()["status"], cancelled.json()["dropped"]) == ("cancelled", 2)
    one = (await client.get(f"/api/admin/broadcasts/{broadcast['id']}", headers=ADMIN)).json()
    assert one["rows"] == {"dropped": 2}
    assert [b["id"] for b in (await client.get("/api/admin/broadcasts", headers=ADMIN)).json()["broadcasts"]] == [
        broadcast["id"]]
    assert (await client.get("/api/admin/broadcasts/999", headers=ADMIN)).status_code == 404
    assert (await client.post("/api/admin/broadcasts/999/cancel", headers=ADMIN)).status_code == 404
    async with wechat.services.db.sessions() as session:
        actions = (await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
    assert actions == ["broadcast.create", "broadcast.cancel"]


@pytest.mark.parametrize(("change", "field"), [
    ({"audience": {"tiers": ["钻石"]}}, "audience"),  # nobody matches
    ({"audience": {"tiers": ["黑卡"]}}, "audience.tiers"),
    ({"send_at": "2020-01-01T00:00:00Z"}, "send_at"),
    ({"send_at": "2030-01-02T00:00:00Z", "deadline": "2030-01-01T00:00:00Z"}, "deadline"),
    ({"text": None, "article": {"title": "", "url": "https://example.invalid/a"}}, "article.title"),
    ({"text": None, "article": {"title": "周末", "url": "javascript:alert(1)"}}, "article.url"),
    ({"kind": "spam"}, "kind"),
])
async def test_bad_input_is_a_422_naming_the_field_and_nothing_is_queued(
    wechat: WeChat, clock: FrozenClock, change: dict[str, Any], field: str,
) -> None:
    await _gold(wechat, clock)
    # The preview shows an empty audience as 0 (the operator sees why); only sending it is refused.
    paths = ["/api/admin/broadcasts"] + ([] if field == "audience" else ["/api/admin/broadcasts/preview"])
    for path in paths:
        response = await wechat.client.post(path, json=BODY | change, headers=ADMIN)
        assert response.status_code == 422, response.text
        assert response.json()["message"].startswith(f"{field}:"), response.json()
    assert await _count(wechat, Broadcast) == 0
    assert await _count(wechat, Outbox) == 0
