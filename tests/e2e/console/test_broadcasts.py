"""The 群发 screen: an operator builds a broadcast, previews its numbers (nothing stored), confirms it (audited,
once for a doubled submit), follows its rows once the scheduler expanded it (and finds them on the pushes
screen), and cancels it (pending rows dropped); each bad field comes back on the form with its message and
nothing stored; an openid list is uploaded and chosen as the audience; analysts read, clerks do not see it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.console import texts
from storage import audit, broadcasts, experiments
from storage.clock import FrozenClock
from storage.models import Broadcast, Member, MemberList, Outbox
from tests.support.campaign_support import add_members, openid
from tests.support.console_support import ConsoleWorld, audit_entries, console_world, request_id_of, row_of

FORM: dict[str, Any] = {"name": "双十二预热", "kind": "holiday", "tiers": ["金卡", "钻石"], "content_type": "text",
                        "text": "双十二会员专享：回复【积分】查看。", "action": "preview"}


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def _members(world: ConsoleWorld) -> dict[str, list[int]]:
    """3 金卡, 1 钻石, 2 普通 and an opted-out 金卡: the tier filter reaches 4."""
    now = world.wechat.services.clock.now()
    people = await add_members(world.db, now, 7, start=900)
    tiers = ["金卡", "金卡", "金卡", "钻石", "普通", "普通", "金卡"]
    async with world.db.unit_of_work() as session:
        for member, tier in zip(people, tiers, strict=True):
            row = await session.get(Member, member.id)
            assert row is not None
            row.tier = tier
        opted = await session.get(Member, people[-1].id)
        assert opted is not None
        opted.marketing_opt_out = True
    return {"reached": [int(m.id or 0) for m in people[:4]], "all": [int(m.id or 0) for m in people]}


async def _stored(world: ConsoleWorld) -> list[Broadcast]:
    async with world.db.sessions() as session:
        return list((await session.scalars(select(Broadcast).order_by(Broadcast.id))).all())  # type: ignore[arg-type]


async def test_an_operator_previews_sends_follows_and_cancels_a_broadcast(world: ConsoleWorld) -> None:
    ids = await _members(world)
    operator = await world.as_role("operator")
    page = await operator.get("/admin/broadcasts")
    assert texts.BROADCASTS_EMPTY in page.text
    form = FORM | {"request_id": request_id_of(page.text)}

    seen = await operator.post("/admin/broadcasts", form)
    assert seen.status_code == 200, seen.text
    assert 'data-preview="audience">4<' in seen.text
    assert 'data-preview="reachable">4<' in seen.text
    assert 'data-preview="capped">0<' in seen.text
    assert "双十二会员专享：回复【积分】查看。" in seen.text  # the sample as the member reads it
    assert texts.BROADCAST_SEND in seen.text
    assert await _stored(world) == []  # a preview stores nothing

    sent = await operator.post("/admin/broadcasts", form | {"action": "send"})
    assert sent.status_code == 303
    again = await operator.post("/admin/broadcasts", form | {"action": "send"})  # a doubled submit
    assert again.headers["location"] == sent.headers["location"]
    [made] = await _stored(world)
    assert (made.name, made.kind, made.status, made.created_by) == ("双十二预热", "holiday", "scheduled", "operator")
    assert [(e.action, e.actor) for e in await audit_entries(world.db, prefix="broadcast.")] == [
        ("broadcast.create", "operator")]

    services = world.wechat.services
    assert await broadcasts.expand(world.db, int(made.id or 0), services.clock.now(), rules=services.rules,
                                   tz=services.tz) == 4
    detail = await operator.get(sent.headers["location"])
    assert texts.BROADCAST_DONE["created"] in detail.text
    assert 'data-rows="pending">4<' in detail.text
    assert 'data-fig="queued">4<' in detail.text
    assert "金卡、钻石" in detail.text
    pushes = await operator.get(f"/admin/pushes?broadcast={made.id}")
    assert pushes.status_code == 200
    assert pushes.text.count("<tr data-push=") == 4
    async with world.db.sessions() as session:
        members = sorted((await session.scalars(
            select(Outbox.member_id).where(Outbox.broadcast_id == made.id))).all())  # type: ignore[arg-type]
    assert members == sorted(ids["reached"])

    cancelled = await operator.post(f"/admin/broadcasts/{made.id}/cancel")
    assert cancelled.status_code == 303
    detail = await operator.get(cancelled.headers["location"])
    assert texts.BROADCAST_DONE["cancelled"] in detail.text
    assert 'data-rows="dropped">4<' in detail.text
    assert texts.BROADCAST_CANCEL not in detail.text.split("</h1>", 1)[1].split(texts.BROADCAST_SAMPLE)[0]
    listed = await operator.get("/admin/broadcasts")
    assert texts.BROADCAST_STATUS["cancelled"] in row_of(listed.text, "data-broadcast", made.id)
    assert [e.action for e in await audit_entries(world.db, prefix="broadcast.")] == [
        "broadcast.create", "broadcast.cancel"]


@pytest.mark.parametrize(("change", "field"), [
    ({"tiers": [], "segments": ["高价值"]}, "audience"),  # nobody is 高价值 yet
    ({"send_at": "2026-11-21T10:00"}, "send_at"),
    ({"send_at": "2026-11-23T10:00", "deadline": "2026-11-23T09:00"}, "deadline"),
    ({"send_at": "明天"}, "send_at"),
    ({"content_type": "article", "title": "", "url": "https://example.com/a"}, "title"),
    ({"content_type": "article", "title": "新品", "url": "javascript:alert(1)"}, "url"),
    ({"text": ""}, "text"),
    ({"campaign": "NOPE"}, "campaign"),
    ({"active_days": "0"}, "active_days"),
    ({"name": ""}, "name"),
    ({"kind": "spam"}, "kind"),
    ({"experiment_id": "99"}, "experiment_id"),
])
async def test_a_bad_field_comes_back_on_the_form_and_nothing_is_stored(
    world: ConsoleWorld, change: dict[str, Any], field: str,
) -> None:
    await _members(world)
    operator = await world.as_role("operator")
    page = await operator.get("/admin/broadcasts")
    for action in ("preview", "send"):
        refused = await operator.post("/admin/broadcasts", FORM | {"request_id": request_id_of(page.text),
                                                                    "action": action} | change)
        assert refused.status_code == 422, (action, refused.text[:300])
        assert f'data-error="{field}"' in refused.text
        assert texts.BROADCAST_ERRORS[field] in refused.text
    assert await _stored(world) == []
    async with world.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Outbox)) == 0


async def test_a_stopped_or_other_experiment_cannot_carry_a_broadcast(world: ConsoleWorld) -> None:
    await _members(world)
    services = world.wechat.services
    async with world.db.unit_of_work() as session:
        birthday, _ = await experiments.create(
            session, name="生日", target="birthday", holdout=0, request_id="e1",
            actor=audit.Actor("operator", "operator"),
            arms=[{"name": "control", "weight": 50, "params": {}}, {"name": "B", "weight": 50, "params": {"hour": 10}}],
            now=services.clock.now())
    operator = await world.as_role("operator")
    page = await operator.get("/admin/broadcasts")
    refused = await operator.post("/admin/broadcasts", FORM | {"request_id": request_id_of(page.text),
                                                                "action": "send", "experiment_id": str(birthday.id)})
    assert refused.status_code == 422
    assert 'data-error="experiment_id"' in refused.text
    assert await _stored(world) == []


async def test_an_uploaded_list_is_an_audience(world: ConsoleWorld) -> None:
    await _members(world)
    operator = await world.as_role("operator")
    uploaded = await operator.post("/admin/broadcasts/lists", {
        "list_name": "门店名单", "openids": f"{openid(900)}\n{openid(904)}\n oNOBODY \n"})
    assert uploaded.status_code == 303, uploaded.text[:300]
    page = await operator.get(uploaded.headers["location"])
    async with world.db.sessions() as session:
        [listed] = (await session.scalars(select(MemberList))).all()
    assert texts.LIST_DONE.format(name="门店名单", size=listed.size, unknown=1) in page.text
    assert texts.LIST_LABEL.format(name="门店名单", size=listed.size) in page.text
    assert [e.action for e in await audit_entries(world.db, action="list.upload")] == ["list.upload"]
    seen = await operator.post("/admin/broadcasts", FORM | {"request_id": request_id_of(page.text), "tiers": [],
                                                             "list_id": str(listed.id)})
    assert f'data-preview="audience">{listed.size}<' in seen.text

    refused = await operator.post("/admin/broadcasts/lists", {"list_name": "空", "openids": "oNOBODY"})
    assert refused.status_code == 422
    assert 'data-error="openids"' in refused.text
    async with world.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(MemberList)) == 1


async def test_analysts_read_without_the_form_and_clerks_are_refused(world: ConsoleWorld) -> None:
    analyst = await world.as_role("analyst")
    page = await analyst.get("/admin/broadcasts")
    assert page.status_code == 200
    assert 'id="new-broadcast"' not in page.text
    assert (await analyst.post("/admin/broadcasts", FORM)).status_code == 403
    clerk = await world.as_role("clerk")
    assert (await clerk.get("/admin/broadcasts")).status_code == 403


async def test_a_large_audience_shows_the_capped_count_as_an_estimate_with_its_margin(
    world: ConsoleWorld, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _members(world)
    monkeypatch.setattr(broadcasts, "PER_MEMBER_MAX", 2)  # the 4 reached: every 2nd id counted, 2 members
    operator = await world.as_role("operator")
    page = await operator.get("/admin/broadcasts")
    seen = await operator.post("/admin/broadcasts", FORM | {"request_id": request_id_of(page.text)})
    assert seen.status_code == 200, seen.text
    assert 'data-preview="audience">4<' in seen.text  # exact
    # 0 of the 2 counted at the cap: the Wilson 95 % interval of 0/2 reaches 0.6576, so ±ceil(0.6576 * 4) = ±3
    assert f'data-preview="capped">{texts.BROADCAST_ESTIMATE.format(n=0, margin=3)}<' in seen.text
    assert f'data-preview="reachable">{texts.BROADCAST_ESTIMATE.format(n=4, margin=3)}<' in seen.text
    assert texts.BROADCAST_ESTIMATE_NOTE.format(sample=2) in seen.text
    assert await _stored(world) == []
