"""An operator gives a member a coupon from the member page (issue 17 item 1), and the admin API does the
same: the page's form, the audit row coupon.grant, the member's message, a refusal as the form again with
the field's error, a double submit granting once, the rights of a points adjustment."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.console import texts
from bot.wechat import pushtexts
from handlers import texts as chat_texts
from storage.clock import FrozenClock
from storage.models import AuditEntry, Outbox, Redemption
from tests.support.console_support import ConsoleWorld, Operator, console_world, request_id_of
from tests.support.fakes import ADMIN
from tests.support.invariants import assert_points_consistent
from tests.support.member_support import PHONE, joined, sign_up, snapshot
from tests.support.redeem_support import add_reward, reward_row

ALICE = "oALICEconsoleGrantAAAAAAAAAAA"


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


@pytest.fixture
async def alice(world: ConsoleWorld) -> int:
    await sign_up(world.wechat, ALICE, PHONE)
    member = await joined(world.wechat, ALICE)
    assert member.id is not None
    return member.id


async def give(me: Operator, member_id: int, reward_id: object, reason: str = "门店排队过久补偿", *,
               request_id: str | None = None) -> tuple[httpx.Response, str]:
    """Post the grant form as the page serves it (its own request id unless one is given)."""
    page = await me.get(f"/admin/members/{member_id}")
    rid = request_id or request_id_of(page.text)
    response = await me.post(f"/admin/members/{member_id}/coupons",
                             {"reward_id": str(reward_id), "reason": reason, "request_id": rid})
    return response, rid


async def rows(world: ConsoleWorld, model: type, **where: object) -> list[Any]:
    async with world.db.sessions() as session:
        stmt = select(model).order_by(model.id)  # type: ignore[attr-defined]
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return list((await session.scalars(stmt)).all())


async def test_an_operator_grants_a_coupon_once_audited_and_told(world: ConsoleWorld, alice: int) -> None:
    now = world.wechat.services.clock.now()
    reward_id = await add_reward(world.db, now, name="咖啡券", cost=300, stock=3)
    operator = await world.as_role("operator")
    page = await operator.get(f"/admin/members/{alice}")
    assert 'id="grant-form"' in page.text
    assert f'<option value="{reward_id}">咖啡券</option>' in page.text

    response, rid = await give(operator, alice, reward_id)
    again, _ = await give(operator, alice, reward_id, request_id=rid)  # the double submit

    assert response.status_code == again.status_code == 303
    assert response.headers["location"] == f"/admin/members/{alice}?done=granted"
    (coupon,) = await rows(world, Redemption, member_id=alice)
    assert (coupon.cost, coupon.granted, coupon.request_key) == (0, "operator", f"grant:operator:{alice}:{rid}")
    assert (await reward_row(world.db, reward_id)).stock == 2
    shown = await operator.get(response.headers["location"])
    assert texts.GRANTED in shown.text
    assert coupon.code in shown.text
    assert f'data-granted="operator">{texts.GRANTED_MARK}' in shown.text
    (entry,) = await rows(world, AuditEntry, action="coupon.grant")
    assert (entry.actor, entry.target) == ("operator", f"member:{alice}")
    after = json.loads(entry.after or "")
    assert (after["reward_id"], after["reason"], after["request_id"]) == (reward_id, "门店排队过久补偿", rid)
    (push,) = await rows(world, Outbox, kind="coupon_granted")
    assert (push.category, push.dedupe_key, push.openid) == ("transactional", coupon.request_key, ALICE)
    told = pushtexts.text_for(push.kind, json.loads(push.payload))
    assert told == chat_texts.PUSH_COUPON_GRANTED.format(
        brand=chat_texts.BRAND, reward="咖啡券", reason="门店排队过久补偿", code=coupon.code, date="2026-12-22")
    assert (await assert_points_consistent(world.db, [alice]))[alice] == 100
    assert coupon.code in await world.wechat.say(ALICE, "我的券")


async def test_the_redemptions_export_tells_a_gift_from_a_purchase(world: ConsoleWorld, alice: int) -> None:
    services = world.wechat.services
    reward_id = await add_reward(world.db, services.clock.now(), name="咖啡券", cost=50)
    assert (await give(await world.as_role("operator"), alice, reward_id))[0].status_code == 303
    async with world.db.unit_of_work() as session:
        await services.rewards.redeem(session, alice, reward_id, request_key="bought", now=services.clock.now())
    body = (await (await world.as_role("analyst")).get(
        "/admin/exports/redemptions.csv", params={"since": "2026-11-22", "until": "2026-11-22"})).content
    header, *lines = list(csv.reader(io.StringIO(body.decode("utf-8")[1:])))
    assert header[-1] == "赠送原因"
    assert sorted((line[3], line[-1]) for line in lines) == [("0", "operator"), ("50", "")]


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"reason": "短"}, "reason", texts.GRANT_ERRORS["length"].format(low=2, high=200)),
    ({"reason": "x" * 201}, "reason", texts.GRANT_ERRORS["length"].format(low=2, high=200)),
    ({"reward_id": ""}, "reward_id", texts.GRANT_ERRORS["reward"]),
    ({"reward_id": "abc"}, "reward_id", texts.GRANT_ERRORS["reward"]),
    ({"reward_id": "999999"}, "reward_id", texts.GRANT_ERRORS["reward"]),
])
async def test_bad_input_is_the_form_again_with_the_field_error(
    world: ConsoleWorld, alice: int, form: dict[str, str], field: str, message: str,
) -> None:
    reward_id = await add_reward(world.db, world.wechat.services.clock.now(), name="咖啡券")
    operator = await world.as_role("operator")
    before = await snapshot(world.wechat)
    page = await operator.get(f"/admin/members/{alice}")
    data = {"reward_id": str(reward_id), "reason": "正常原因", "request_id": request_id_of(page.text), **form}

    refused = await operator.post(f"/admin/members/{alice}/coupons", data)

    assert refused.status_code == 422
    assert f'data-field="{field}">{message}</p>' in refused.text
    assert 'id="grant-form"' in refused.text
    assert 'value="正常原因"' in refused.text or field == "reason"
    assert await snapshot(world.wechat) == before
    assert await rows(world, Redemption) == []
    assert await rows(world, AuditEntry, action="coupon.grant") == []


async def test_out_of_stock_and_over_the_limit_are_refused_on_the_form(world: ConsoleWorld, alice: int) -> None:
    now = world.wechat.services.clock.now()
    none_left = await add_reward(world.db, now, name="售罄券", stock=0)
    one_each = await add_reward(world.db, now, name="每人一张", per_member_limit=1)
    operator = await world.as_role("operator")

    sold_out, _ = await give(operator, alice, none_left)
    assert sold_out.status_code == 409
    assert f'data-field="reward_id">{texts.GRANT_ERRORS["out_of_stock"]}</p>' in sold_out.text
    first, _ = await give(operator, alice, one_each)
    assert first.status_code == 303
    second, _ = await give(operator, alice, one_each)  # a new form: a second gift, over the limit
    assert second.status_code == 409
    assert texts.GRANT_ERRORS["limit_reached"].format(limit=1) in second.text
    assert [r.reward_id for r in await rows(world, Redemption, member_id=alice)] == [one_each]
    assert len(await rows(world, AuditEntry, action="coupon.grant")) == 1


async def test_the_rights_are_those_of_a_points_adjustment(world: ConsoleWorld, alice: int) -> None:
    reward_id = await add_reward(world.db, world.wechat.services.clock.now(), name="咖啡券")
    before = await snapshot(world.wechat)
    for role, label in (("analyst", "分析师"), ("clerk", "店员")):
        me = await world.as_role(role)
        if role == "analyst":
            assert 'id="grant-form"' not in (await me.get(f"/admin/members/{alice}")).text
        refused = await me.post(f"/admin/members/{alice}/coupons",
                                {"reward_id": str(reward_id), "reason": "不该成功", "request_id": f"r-{role}"})
        assert refused.status_code == 403
        assert texts.FORBIDDEN.format(role=label, needed="管理员、运营") in refused.text
    assert await snapshot(world.wechat) == before
    assert await rows(world, Redemption) == []
    admin = await world.as_role("admin")
    assert (await give(admin, alice, reward_id))[0].status_code == 303


# --- the admin API --------------------------------------------------------------------------------

async def post_grant(world: ConsoleWorld, member_id: int, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await world.wechat.client.post(f"/api/admin/members/{member_id}/coupons", json=body,
                                          headers=headers or ADMIN)


async def test_the_api_grants_once_per_request_id_as_the_token(world: ConsoleWorld, alice: int) -> None:
    reward_id = await add_reward(world.db, world.wechat.services.clock.now(), name="咖啡券", stock=5)
    body = {"reward_id": reward_id, "reason": "客服补偿", "request_id": "crm-1"}

    first = await post_grant(world, alice, body)
    again = await post_grant(world, alice, body)

    assert first.status_code == again.status_code == 200
    (coupon,) = await rows(world, Redemption, member_id=alice)
    assert first.json() == {"redemption_id": coupon.id, "member_id": alice, "reward_id": reward_id,
                            "reward": "咖啡券", "code": coupon.code, "expires_at": "2026-12-22T16:00:00Z",
                            "repeated": False}
    assert again.json() == {**first.json(), "repeated": True}
    other = await add_reward(world.db, world.wechat.services.clock.now(), name="蛋糕券", stock=5)
    reused = await post_grant(world, alice, {**body, "reward_id": other})  # the id once more, another reward
    assert (reused.status_code, reused.json()["error"]) == (422, "invalid")
    assert "request_id: taken" in reused.json()["message"]
    assert (await reward_row(world.db, other)).stock == 5
    (entry,) = await rows(world, AuditEntry, action="coupon.grant")
    assert entry.actor == "token"
    assert len(await rows(world, Outbox, kind="coupon_granted")) == 1
    assert (await reward_row(world.db, reward_id)).stock == 4


async def test_the_api_refusals_are_precise(world: ConsoleWorld, alice: int) -> None:
    now = world.wechat.services.clock.now()
    reward_id = await add_reward(world.db, now, name="咖啡券")
    sold_out = await add_reward(world.db, now, name="售罄券", stock=0)
    body = {"reward_id": reward_id, "reason": "客服补偿", "request_id": "crm-x"}
    before = await snapshot(world.wechat)

    assert (await post_grant(world, alice, body, Authorization="Bearer wrong")).status_code == 401
    unknown_member = await post_grant(world, 987654, body)
    assert (unknown_member.status_code, unknown_member.json()["error"]) == (404, "not_found")
    unknown_reward = await post_grant(world, alice, {**body, "reward_id": 987654})
    assert (unknown_reward.status_code, unknown_reward.json()["error"]) == (404, "not_found")
    assert "reward 987654" in unknown_reward.json()["message"]
    out = await post_grant(world, alice, {**body, "reward_id": sold_out})
    assert (out.status_code, out.json()["error"]) == (409, "out_of_stock")
    for bad in ({**body, "reason": "短"}, {**body, "reward_id": "1"}, {**body, "extra": 1},
                {"reason": "客服补偿", "request_id": "r"}, {**body, "request_id": ""}):
        refused = await post_grant(world, alice, bad)
        assert refused.status_code == 422, bad
    assert await snapshot(world.wechat) == before
    assert await rows(world, Redemption) == []


async def test_the_openapi_document_shows_the_grant_with_an_example(world: ConsoleWorld) -> None:
    doc = (await world.wechat.client.get("/openapi.json")).json()
    operation = doc["paths"]["/api/admin/members/{member_id}/coupons"]["post"]
    assert {"404", "409", "422"} <= set(operation["responses"])
    schemas = doc["components"]["schemas"]
    assert schemas["GrantIn"]["examples"][0]["reason"] == "投诉补偿：门店排队过久"
