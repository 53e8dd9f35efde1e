"""An operator's grant of a coupon to an audience (issue 17 item 1) through the admin API: the preview (size and
remaining stock), one coupon per member and request id (a re-submission grants nothing more), the stock never
oversold (the grant stops exactly at it and says how many), one audit row with the count, the members' messages,
and every refusal a 422 naming its field with nothing granted."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.console import texts
from storage import grants
from storage.clock import FrozenClock
from storage.models import AuditEntry, Outbox, Redemption
from tests.support.console_support import ConsoleWorld, console_world, request_id_of
from tests.support.fakes import ADMIN
from tests.support.redeem_support import add_members, add_reward, reward_row


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def post(world: ConsoleWorld, path: str, body: dict[str, Any]) -> httpx.Response:
    return await world.wechat.client.post(f"/api/admin/grants/{path}", json=body, headers=ADMIN)


async def count(world: ConsoleWorld, model: type, *where: Any) -> int:
    async with world.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def members_of(world: ConsoleWorld, tier: str, n: int) -> list[int]:
    services = world.wechat.services
    return await add_members(world.db, services.ledger, services.clock.now(), n, tier=tier)


async def test_a_tier_gets_one_coupon_each_once_audited_and_told(world: ConsoleWorld) -> None:
    now = world.wechat.services.clock.now()
    gold = await members_of(world, "金卡", 3)
    others = await members_of(world, "普通", 2)
    reward_id = await add_reward(world.db, now, name="金卡回馈券", cost=300, stock=10)
    body = {"reward_id": reward_id, "audience": {"tiers": ["金卡"]}}

    seen = await post(world, "audience/preview", body)
    assert seen.status_code == 200, seen.text
    assert seen.json() == {"size": 3, "remaining": 10}

    full = body | {"reason": "金卡会员回馈", "request_id": "gold-2026-12"}
    first = await post(world, "audience", full)
    again = await post(world, "audience", full)  # the re-submitted form

    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert first.json() == {"size": 3, "granted": 3, "repeated": 0, "over_limit": 0, "stopped": False}
    assert again.json() == {"size": 3, "granted": 0, "repeated": 3, "over_limit": 0, "stopped": False}
    async with world.db.sessions() as session:
        coupons = list((await session.scalars(select(Redemption).order_by(Redemption.id))).all())
        audits = list((await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "coupon.grant_audience"))).all())
    assert sorted(c.member_id for c in coupons) == sorted(gold)
    assert {c.request_key for c in coupons} == {f"grant:operator:{m}:gold-2026-12" for m in gold}
    assert all(c.cost == 0 and c.granted == "operator" for c in coupons)
    assert not set(others) & {c.member_id for c in coupons}
    assert (await reward_row(world.db, reward_id)).stock == 7
    (entry,) = audits  # one row for the whole action, none for the repeat
    after = json.loads(entry.after or "{}")
    assert (entry.actor, entry.target) == ("token", f"reward:{reward_id}")
    assert (after["granted"], after["size"], after["request_id"]) == (3, 3, "gold-2026-12")
    assert await count(world, Outbox, Outbox.kind == "coupon_granted") == 3


async def test_the_stock_runs_out_exactly_and_the_grant_says_so(world: ConsoleWorld) -> None:
    now = world.wechat.services.clock.now()
    members = await members_of(world, "银卡", 5)
    reward_id = await add_reward(world.db, now, name="限量券", cost=100, stock=2)
    body = {"reward_id": reward_id, "audience": {"tiers": ["银卡"]}, "reason": "限量回馈", "request_id": "silver-1"}

    done = await post(world, "audience", body)

    assert done.status_code == 200, done.text
    assert done.json() == {"size": 5, "granted": 2, "repeated": 0, "over_limit": 0, "stopped": True}
    assert await count(world, Redemption, Redemption.member_id.in_(members)) == 2  # type: ignore[attr-defined]
    stored = await reward_row(world.db, reward_id)
    assert (stored.stock, stored.issued_count) == (0, 2)
    # Now nothing is left: a new request is refused naming the reward, and nothing more is granted.
    refused = await post(world, "audience", body | {"request_id": "silver-2"})
    assert refused.status_code == 422
    assert "reward_id" in refused.text
    assert "out_of_stock" in refused.text
    assert await count(world, Redemption) == 2


async def test_bad_input_is_a_422_naming_the_field_and_grants_nothing(world: ConsoleWorld) -> None:
    now = world.wechat.services.clock.now()
    await members_of(world, "普通", 2)
    live = await add_reward(world.db, now, name="活券", cost=100)
    ended = await add_reward(world.db, now, name="停券", cost=100, active=False)
    good = {"reward_id": live, "audience": {"tiers": ["普通"]}, "reason": "测试回馈", "request_id": "bad-1"}
    cases = [
        (good | {"reward_id": 999_999}, "reward_id"),
        (good | {"reward_id": ended}, "reward_id"),
        (good | {"audience": {"tiers": ["钻石"]}}, "audience"),  # nobody in it
        (good | {"audience": {"tiers": ["黑卡"]}}, "audience.tiers"),
        (good | {"audience": {"segments": ["土豪"]}}, "audience.segments"),
        (good | {"audience": {"list_id": 4242}}, "audience.list"),
        (good | {"reason": "x"}, "reason"),
        (good | {"request_id": "a:b"}, "request_id"),
        (good | {"audience": {"active_days": 0}}, "active_days"),
    ]
    for body, field in cases:
        response = await post(world, "audience", body)
        assert response.status_code == 422, (body, response.text)
        assert field in response.text, (field, response.text)
    assert await count(world, Redemption) == 0
    assert await count(world, AuditEntry, AuditEntry.action == "coupon.grant_audience") == 0
    unauthorised = await world.wechat.client.post("/api/admin/grants/audience", json=good)
    assert unauthorised.status_code == 401


async def test_an_audience_above_the_limit_is_refused_naming_it(world: ConsoleWorld,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    now = world.wechat.services.clock.now()
    await members_of(world, "普通", 3)
    reward_id = await add_reward(world.db, now, name="大券", cost=100)
    monkeypatch.setattr(grants, "MAX_AUDIENCE", 2)
    response = await post(world, "audience", {"reward_id": reward_id, "audience": {}, "reason": "全员回馈",
                                              "request_id": "all-1"})
    assert response.status_code == 422
    for part in ("too_large", "limit=2", "size=3"):
        assert part in response.text
    assert await count(world, Redemption) == 0


# --- the 人群赠券 screen -----------------------------------------------------------------------------------
async def test_an_operator_previews_then_grants_from_the_console_once(world: ConsoleWorld) -> None:
    now = world.wechat.services.clock.now()
    gold = await members_of(world, "金卡", 2)
    await members_of(world, "普通", 1)
    reward_id = await add_reward(world.db, now, name="金卡回馈券", cost=300, stock=5)
    operator = await world.as_role("operator")
    page = await operator.get("/admin/grants")
    assert page.status_code == 200
    assert "金卡回馈券" in page.text
    form = {"reward_id": str(reward_id), "tiers": ["金卡"], "reason": "金卡会员回馈",
            "request_id": request_id_of(page.text), "action": "preview"}
    seen = await operator.post("/admin/grants", form)
    assert 'data-preview="size">2<' in seen.text
    assert 'data-preview="remaining">5<' in seen.text
    assert await count(world, Redemption) == 0  # a preview grants nothing

    done = await operator.post("/admin/grants", form | {"action": "send"})
    assert texts.AUDIENCE_GRANT_DONE.format(granted=2, size=2, repeated=0, over_limit=0) in done.text
    again = await operator.post("/admin/grants", form | {"action": "send"})  # a re-submitted form
    assert texts.AUDIENCE_GRANT_DONE.format(granted=0, size=2, repeated=2, over_limit=0) in again.text
    async with world.db.sessions() as session:
        coupons = list((await session.scalars(select(Redemption))).all())
        [entry] = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "coupon.grant_audience"))).all()
    assert sorted(c.member_id for c in coupons) == sorted(gold)
    assert entry.actor == "operator"


@pytest.mark.parametrize(("change", "field"), [
    ({"tiers": [], "segments": ["高价值"]}, "audience"),
    ({"reason": "x"}, "reason"),
    ({"reward_id": "999"}, "reward_id"),
    ({"reward_id": "abc"}, "reward_id"),
    ({"campaign": "NOPE"}, "campaign"),
])
async def test_a_bad_field_comes_back_on_the_grant_form(world: ConsoleWorld, change: dict[str, Any],
                                                       field: str) -> None:
    now = world.wechat.services.clock.now()
    await members_of(world, "金卡", 1)
    reward_id = await add_reward(world.db, now, name="金卡回馈券", cost=300, stock=5)
    operator = await world.as_role("operator")
    page = await operator.get("/admin/grants")
    form = {"reward_id": str(reward_id), "tiers": ["金卡"], "reason": "金卡会员回馈",
            "request_id": request_id_of(page.text), "action": "send"} | change
    refused = await operator.post("/admin/grants", form)
    assert refused.status_code == 422
    assert f'data-error="{field}"' in refused.text
    assert await count(world, Redemption) == 0


async def test_analysts_do_not_grant(world: ConsoleWorld) -> None:
    analyst = await world.as_role("analyst")
    assert (await analyst.get("/admin/grants")).status_code == 403
