"""The staff screen over HTTP: admins add, change and remove staff through bot/staffing.py (row, audit,
WeChat staff tag), the new manager can start a campaign in the chat at once; operators only read,
analysts and clerks are refused; CSRF and field errors leave everything as it was."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.console import texts
from handlers import texts as chat_texts
from storage.clock import FrozenClock
from storage.models import OutboundCall, Staff
from tests.support.console_support import ConsoleWorld, audit_entries, console_world
from tests.support.ledgerviews_support import coupon, member

NEW = "oNEWMANAGER0000000000000001"


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def staff_rows(world: ConsoleWorld) -> list[tuple[str, str, str]]:
    async with world.db.sessions() as session:
        return [(s.openid, s.role, s.added_by) for s in (await session.scalars(select(Staff).order_by(Staff.id)))]


async def audited(world: ConsoleWorld) -> list[tuple[str, str, str, str | None, str | None]]:
    rows = await audit_entries(world.db, prefix="staff.")
    return [(e.actor, e.action, e.target, e.before, e.after) for e in rows]


async def tag_calls(world: ConsoleWorld) -> list[tuple[str, list[str]]]:
    async with world.db.sessions() as session:
        rows = (await session.scalars(
            select(OutboundCall).where(OutboundCall.api.like("%/tags/members/%")).order_by(OutboundCall.id))).all()  # type: ignore[attr-defined]
    return [(r.api.rsplit("/", 1)[1], json.loads(r.payload)["openid_list"]) for r in rows]


async def test_an_admin_adds_changes_and_removes_staff(world: ConsoleWorld) -> None:
    admin = await world.as_role("admin")
    assert await world.wechat.say(NEW, "发起活动") == chat_texts.HELP_VISITOR
    added = await admin.post("/admin/staff", {"openid": NEW, "role": "manager"})
    assert added.status_code == 303
    page = await admin.get(added.headers["location"])
    assert texts.STAFF_DONE["added"] in page.text
    assert NEW in page.text
    assert await staff_rows(world) == [(NEW, "manager", "admin")]
    assert await world.wechat.say(NEW, "发起活动") == chat_texts.CAMPAIGN_ASK_KIND
    await world.wechat.say(NEW, "取消")

    changed = await admin.post("/admin/staff/role", {"openid": NEW, "role": "admin"})
    assert changed.headers["location"] == "/admin/staff?done=changed"
    same = await admin.post("/admin/staff/role", {"openid": NEW, "role": "admin"})
    assert same.headers["location"] == "/admin/staff?done=same"
    assert await staff_rows(world) == [(NEW, "admin", "admin")]

    removed = await admin.post("/admin/staff/remove", {"openid": NEW})
    assert removed.headers["location"] == "/admin/staff?done=removed"
    assert await staff_rows(world) == []
    assert await world.wechat.say(NEW, "发起活动") == chat_texts.HELP_VISITOR
    gone = await admin.post("/admin/staff/remove", {"openid": NEW})
    assert gone.status_code == 404
    assert texts.STAFF_NOT_FOUND in gone.text
    assert (await admin.post("/admin/staff/role", {"openid": NEW, "role": "manager"})).status_code == 404
    assert await audited(world) == [
        ("admin", "staff.add", f"staff:{NEW}", None, '{"role": "manager"}'),
        ("admin", "staff.role", f"staff:{NEW}", '{"role": "manager"}', '{"role": "admin"}'),
        ("admin", "staff.remove", f"staff:{NEW}", '{"role": "admin"}', None),
    ]
    assert await tag_calls(world) == [("batchtagging", [NEW]), ("batchtagging", [NEW]),
                                      ("batchuntagging", [NEW])]


@pytest.mark.parametrize(("form", "field"), [
    ({"openid": "", "role": "manager"}, "openid"), ({"openid": "x" * 65, "role": "manager"}, "openid"),
    ({"openid": "oA\x00B", "role": "manager"}, "openid"), ({"openid": NEW, "role": "owner"}, "role"),
])
async def test_invalid_values_show_the_fields_error_and_add_nothing(
    world: ConsoleWorld, form: dict[str, str], field: str,
) -> None:
    admin = await world.as_role("admin")
    refused = await admin.post("/admin/staff", form)
    assert refused.status_code == 422
    assert f'data-error="{field}"' in refused.text
    assert texts.FORM_INVALID in refused.text
    assert await staff_rows(world) == []
    assert await audited(world) == []


async def test_only_admins_manage_staff(world: ConsoleWorld) -> None:
    admin = await world.as_role("admin")
    await admin.post("/admin/staff", {"openid": NEW, "role": "manager"})
    operator = await world.as_role("operator")
    page = await operator.get("/admin/staff")
    assert page.status_code == 200
    assert NEW in page.text
    assert 'id="add-staff"' not in page.text
    for path, form in (("/admin/staff", {"openid": "oOTHER", "role": "manager"}),
                       ("/admin/staff/role", {"openid": NEW, "role": "admin"}),
                       ("/admin/staff/remove", {"openid": NEW})):
        refused = await operator.post(path, form)
        assert refused.status_code == 403
        assert "需要以下角色之一：管理员" in refused.text
    for role in ("analyst", "clerk"):
        assert (await (await world.as_role(role)).get("/admin/staff")).status_code == 403
    for token in ("", "stale"):
        assert (await admin.post("/admin/staff/remove", {"openid": NEW}, csrf=token)).status_code == 403
        assert (await admin.post("/admin/staff", {"openid": "oOTHER"}, csrf=token)).status_code == 403
    assert await staff_rows(world) == [(NEW, "manager", "admin")]
    assert [a[1] for a in await audited(world)] == ["staff.add"]


async def test_an_openid_is_shown_escaped(world: ConsoleWorld) -> None:
    admin = await world.as_role("admin")
    await admin.post("/admin/staff", {"openid": '<script>"o', "role": "manager"})
    page = await admin.get("/admin/staff")
    assert '<script>"o' not in page.text
    assert "&lt;script&gt;&#34;o" in page.text


async def test_an_admin_appoints_a_clerk_to_a_store_and_the_clerk_verifies_there(
    world: ConsoleWorld, clock: FrozenClock,
) -> None:
    admin = await world.as_role("admin")
    for code, name in (("S001", "南京西路店"), ("S002", "徐家汇店")):
        assert (await admin.post("/admin/stores", {"code": code, "name": name, "city": "上海"})).status_code == 200
    page = await admin.get("/admin/staff")
    assert '<option value="S001" >S001 南京西路店</option>' in page.text
    added = await admin.post("/admin/staff", {"openid": NEW, "role": "clerk", "store": "S001"})
    assert added.headers["location"] == "/admin/staff?done=added"
    async with world.db.sessions() as session:
        row = await session.scalar(select(Staff).where(Staff.openid == NEW))
    assert row is not None
    assert (row.role, row.store) == ("clerk", "S001")
    listed = await admin.get("/admin/staff")
    assert re.search(rf'<tr data-staff="{NEW}">\s*<td><code>{NEW}</code></td>\s*<td>门店店员</td>\s*<td>S001</td>',
                     listed.text)

    owner = await member(world, "oCLERKownerSTAFF0001", "13800000001")
    issued = (await coupon(world, owner, clock.now(), name="拿铁券", key="r-staff-clerk")).code
    assert (await world.wechat.say(NEW, f"核销 {issued}")).startswith(f"券码 {issued}：拿铁券")
    assert await world.wechat.say(NEW, "是") == chat_texts.CLERK_DONE.format(code=issued, reward="拿铁券",
                                                                            store="S001")

    moved = await admin.post("/admin/staff/role", {"openid": NEW, "role": "clerk", "store": "S002"})
    assert moved.headers["location"] == "/admin/staff?done=changed"
    promoted = await admin.post("/admin/staff/role", {"openid": NEW, "role": "manager", "store": ""})
    assert promoted.headers["location"] == "/admin/staff?done=changed"
    assert await staff_rows(world) == [(NEW, "manager", "admin")]
    assert [(a[1], a[3], a[4]) for a in await audited(world)] == [
        ("staff.add", None, '{"role": "clerk", "store": "S001"}'),
        ("staff.role", '{"role": "clerk", "store": "S001"}', '{"role": "clerk", "store": "S002"}'),
        ("staff.role", '{"role": "clerk", "store": "S002"}', '{"role": "manager"}'),
    ]


@pytest.mark.parametrize(("form", "message"), [
    ({"openid": NEW, "role": "clerk"}, texts.FIELD_ERRORS["clerk_store_required"]),
    ({"openid": NEW, "role": "clerk", "store": "S999"}, texts.STAFF_STORE_UNKNOWN),
    ({"openid": NEW, "role": "manager", "store": "S001"}, texts.FIELD_ERRORS["store_only_clerk"]),
])
async def test_a_clerk_needs_an_existing_store_and_only_a_clerk_has_one(
    world: ConsoleWorld, form: dict[str, str], message: str,
) -> None:
    admin = await world.as_role("admin")
    opened = await admin.post("/admin/stores", {"code": "S001", "name": "南京西路店", "city": "上海"})
    assert opened.status_code == 200
    refused = await admin.post("/admin/staff", form)
    assert refused.status_code == 422
    assert f'<span class="field-error" data-error="store">{message}</span>' in refused.text
    assert 'id="add-staff"' in refused.text
    assert await staff_rows(world) == []
    assert await audited(world) == []
