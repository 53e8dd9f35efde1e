"""The rewards screens over HTTP: who may read and write, the form's field errors (the admin API's own
rules), CSRF, escaping, deactivation, and the code-pool CSV import's per-row report; each write audited."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.console import texts
from storage.clock import FrozenClock
from storage.models import AuditEntry, Reward, RewardCode
from tests.support.console_support import ConsoleWorld, Operator, audit_entries, console_world, request_id_of

FORM: dict[str, Any] = {"name": "20元满减券", "description": "满 100 元减 20 元", "cost": "180", "kind": "coupon",
                        "stock": "50", "per_member_limit": "2", "total_limit": "", "min_tier": "",
                        "validity_days": "30", "starts_at": "", "ends_at": "", "active": "1"}


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def rewards(world: ConsoleWorld) -> list[Reward]:
    async with world.db.sessions() as session:
        return list((await session.scalars(select(Reward).order_by(Reward.id))).all())


async def audit_rows(world: ConsoleWorld, action: str | None = None) -> list[AuditEntry]:
    return await audit_entries(world.db, action=action)


async def create(me: Operator, **change: Any) -> Any:
    return await me.post("/admin/rewards", {**FORM, **change})


async def one_reward(world: ConsoleWorld, **change: Any) -> Reward:
    made = await create(await world.as_role("operator"), **change)
    assert made.status_code == 303, made.text
    return (await rewards(world))[-1]


async def test_an_operator_creates_a_reward_and_sees_it_listed(world: ConsoleWorld) -> None:
    me = await world.as_role("operator")
    form = await me.get("/admin/rewards/new")
    assert form.status_code == 200
    assert 'name="cost"' in form.text
    made = await create(me, min_tier="银卡", ends_at="2026-12-31T23:00")
    assert made.status_code == 303
    assert made.headers["location"] == "/admin/rewards?done=created"
    listed = await me.get(made.headers["location"])
    assert texts.REWARD_DONE["created"] in listed.text
    assert "20元满减券" in listed.text
    (reward,) = await rewards(world)
    assert (reward.name, reward.cost, reward.stock, reward.per_member_limit, reward.total_limit) == (
        "20元满减券", 180, 50, 2, None)
    assert (reward.min_tier, reward.kind, reward.active) == ("银卡", "coupon", True)
    assert reward.ends_at is not None
    assert reward.ends_at.isoformat().startswith("2026-12-31T15:00")  # Asia/Shanghai 23:00 in UTC
    (entry,) = await audit_rows(world)
    assert (entry.actor, entry.actor_role, entry.action, entry.target, entry.client) == (
        "operator", "operator", "reward.create", f"reward:{reward.id}", "127.0.0.1")
    assert entry.after is not None
    assert json.loads(entry.after)["cost"] == 180


async def test_a_double_submitted_form_creates_one_reward(world: ConsoleWorld) -> None:
    me = await world.as_role("operator")
    form = await me.get("/admin/rewards/new")
    key = request_id_of(form.text)
    for _ in range(2):
        made = await create(me, request_id=key)
        assert made.headers["location"] == "/admin/rewards?done=created"
    assert len(await rewards(world)) == 1
    assert len(await audit_rows(world, "reward.create")) == 1
    fresh = request_id_of((await me.get("/admin/rewards/new")).text)
    assert fresh != key
    await create(me, request_id=fresh)
    assert len(await rewards(world)) == 2


INVALID = [
    ({"cost": "-5"}, "cost", "必须大于 0"), ({"cost": "abc"}, "cost", "请输入整数"), ({"name": ""}, "name", "不能为空"),
    ({"name": "名" * 41}, "name", "最多 40 个字"), ({"kind": "voucher"}, "kind", "请从列表中选择"),
    ({"min_tier": "白金"}, "min_tier", "等级必须是以下之一：普通、银卡、金卡、钻石"),
    ({"validity_days": "0"}, "validity_days", "必须大于 0"), ({"stock": "-1"}, "stock", "不能小于 0"),
    ({"starts_at": "2026-12-02T00:00", "ends_at": "2026-12-01T00:00"}, "ends_at", "下架时间必须晚于上架时间"),
    ({"ends_at": "tomorrow"}, "ends_at", "请输入有效的日期时间"), ({"name": "A\x00B"}, "name", "控制字符"),
]


@pytest.mark.parametrize(("change", "field", "message"), INVALID)
async def test_invalid_values_show_the_form_again_with_the_fields_error(
    world: ConsoleWorld, change: dict[str, str], field: str, message: str,
) -> None:
    me = await world.as_role("operator")
    refused = await create(me, **change)
    assert refused.status_code == 422
    assert texts.FORM_INVALID in refused.text
    assert f'data-error="{field}">' in refused.text
    error = refused.text.split(f'data-error="{field}">', 1)[1].split("</span>", 1)[0]
    assert message in error
    assert await rewards(world) == []
    assert await audit_rows(world) == []


async def test_editing_keeps_the_kind_audits_the_changed_fields_and_refuses_bad_values(world: ConsoleWorld) -> None:
    reward = await one_reward(world, kind="code_pool")
    me = await world.as_role("admin")
    form = await me.get(f"/admin/rewards/{reward.id}/edit")
    assert form.status_code == 200
    assert 'value="20元满减券"' in form.text
    bad = await me.post(f"/admin/rewards/{reward.id}", {**FORM, "cost": "0"})
    assert bad.status_code == 422
    assert 'data-error="cost"' in bad.text
    saved = await me.post(f"/admin/rewards/{reward.id}", {**FORM, "cost": "150", "kind": "gift", "stock": ""})
    assert saved.status_code == 303
    (stored,) = await rewards(world)
    assert (stored.cost, stored.stock, stored.kind, stored.name) == (150, None, "code_pool", "20元满减券")
    (edit,) = await audit_rows(world, "reward.edit")
    assert edit.actor == "admin"
    assert json.loads(edit.before or "") == {"cost": 180, "stock": 50}
    assert json.loads(edit.after or "") == {"cost": 150, "stock": None}


async def test_deactivating_takes_it_off_and_is_audited_once(world: ConsoleWorld) -> None:
    reward = await one_reward(world)
    me = await world.as_role("operator")
    for _ in range(2):
        off = await me.post(f"/admin/rewards/{reward.id}/deactivate")
        assert off.status_code == 303
    (stored,) = await rewards(world)
    assert stored.active is False
    assert [(e.action, e.before, e.after) for e in await audit_rows(world, "reward.deactivate")] == [
        ("reward.deactivate", '{"active": true}', '{"active": false}')]


async def test_an_analyst_reads_but_cannot_write_and_a_clerk_cannot_read(world: ConsoleWorld) -> None:
    reward = await one_reward(world, kind="code_pool")
    analyst = await world.as_role("analyst")
    listed = await analyst.get("/admin/rewards")
    assert listed.status_code == 200
    assert "20元满减券" in listed.text
    assert "/deactivate" not in listed.text
    for path in ("/admin/rewards/new", f"/admin/rewards/{reward.id}/edit", f"/admin/rewards/{reward.id}/codes"):
        page = await analyst.get(path)
        assert page.status_code == 403, path
        assert "管理员、运营" in page.text
    for path, data in (("/admin/rewards", FORM), (f"/admin/rewards/{reward.id}", FORM),
                       (f"/admin/rewards/{reward.id}/deactivate", {})):
        assert (await analyst.post(path, data)).status_code == 403
    clerk = await world.as_role("clerk")
    assert (await clerk.get("/admin/rewards")).status_code == 403
    assert (await clerk.post(f"/admin/rewards/{reward.id}/deactivate")).status_code == 403
    (stored,) = await rewards(world)
    assert stored.active is True
    assert [e.action for e in await audit_rows(world)] == ["reward.create"]


async def test_a_missing_or_stale_csrf_token_changes_nothing(world: ConsoleWorld) -> None:
    reward = await one_reward(world, kind="code_pool")
    me = await world.as_role("admin")
    for token in ("", "stale-token"):
        assert (await me.post("/admin/rewards", FORM, csrf=token)).status_code == 403
        assert (await me.post(f"/admin/rewards/{reward.id}", {**FORM, "cost": "1"}, csrf=token)).status_code == 403
        assert (await me.post(f"/admin/rewards/{reward.id}/deactivate", csrf=token)).status_code == 403
        upload = await me.client.post(f"/admin/rewards/{reward.id}/codes", data={"csrf": token},
                                      files={"file": ("c.csv", b"A1\n", "text/csv")})
        assert upload.status_code == 403
        assert texts.CSRF_FAILED in upload.text
    (stored,) = await rewards(world)
    assert (stored.cost, stored.active) == (180, True)
    assert await pool(world, stored.id) == []
    assert [e.action for e in await audit_rows(world)] == ["reward.create"]


async def test_a_reward_name_is_shown_escaped(world: ConsoleWorld) -> None:
    reward = await one_reward(world, name='<script>"x"</script>', kind="code_pool")
    me = await world.as_role("operator")
    for path in ("/admin/rewards", f"/admin/rewards/{reward.id}/edit", f"/admin/rewards/{reward.id}/codes"):
        page = await me.get(path)
        assert "<script>\"x\"" not in page.text, path
        assert "&lt;script&gt;&#34;x&#34;&lt;/script&gt;" in page.text, path


async def test_unknown_rewards_are_404_pages(world: ConsoleWorld) -> None:
    me = await world.as_role("admin")
    for path in ("/admin/rewards/999/edit", "/admin/rewards/999/codes"):
        page = await me.get(path)
        assert page.status_code == 404
        assert texts.NOT_FOUND in page.text
    assert (await me.post("/admin/rewards/999", FORM)).status_code == 404
    assert (await me.post("/admin/rewards/999/deactivate")).status_code == 404
    assert (await me.get("/admin/rewards/99999999999/edit")).status_code == 422


# --- code pools -------------------------------------------------------------------------------------------

async def pool(world: ConsoleWorld, reward_id: int | None) -> list[str]:
    async with world.db.sessions() as session:
        return list((await session.scalars(
            select(RewardCode.code).where(RewardCode.reward_id == reward_id).order_by(RewardCode.id))).all())


async def upload(me: Operator, reward_id: int | None, content: bytes) -> Any:
    return await me.client.post(f"/admin/rewards/{reward_id}/codes", data={"csrf": me.csrf},
                                files={"file": ("codes.csv", content, "text/csv")})


def refused_rows(html: str) -> list[tuple[int, str]]:
    rows = html.split('<table id="refused">', 1)[1].split("</table>", 1)[0].split('<tr data-line="')[1:]
    return [(int(row.split('"', 1)[0]), row.split('data-reason="', 1)[1].split('"', 1)[0]) for row in rows]


async def test_a_csv_import_adds_the_valid_rows_and_reports_each_refused_one(world: ConsoleWorld) -> None:
    reward = await one_reward(world, kind="code_pool")
    me = await world.as_role("operator")
    assert (await upload(me, reward.id, b"OLD-1\n")).status_code == 200
    csv = ("code\nNEW-1\n \nOLD-1\n" + "L" * 65 + "\nNEW-2\nNEW-1\n,extra\nA\x00B\n<b>&\n").encode()
    report = await upload(me, reward.id, csv)
    assert report.status_code == 200
    assert texts.CODES_RESULT.format(received=8, added=3, refused=5) in report.text
    assert refused_rows(report.text) == [(4, "taken"), (5, "too_long"), (7, "duplicate"), (8, "empty"),
                                         (9, "nul")]
    for reason in ("taken", "too_long", "duplicate", "empty", "nul"):
        assert texts.CODE_REASONS[reason] in report.text
    assert "&lt;b&gt;&amp;" not in report.text.split('<table id="refused">')[1]  # valid: added, not listed
    assert await pool(world, reward.id) == ["OLD-1", "NEW-1", "NEW-2", "<b>&"]
    imports = await audit_rows(world, "reward.codes_import")
    assert [json.loads(e.after or "") for e in imports] == [
        {"received": 1, "added": 1, "refused": 0}, {"received": 8, "added": 3, "refused": 5}]
    assert all(e.target == f"reward:{reward.id}" for e in imports)


async def test_a_file_with_nothing_valid_or_unreadable_adds_nothing(world: ConsoleWorld) -> None:
    reward = await one_reward(world, kind="code_pool")
    me = await world.as_role("operator")
    nothing = await upload(me, reward.id, b"code\n,x\nA\x00\n")
    assert nothing.status_code == 422
    assert texts.CODES_NONE_VALID in nothing.text
    assert refused_rows(nothing.text) == [(2, "empty"), (3, "nul")]
    gbk = await upload(me, reward.id, "甲\n".encode("gbk"))
    assert gbk.status_code == 422
    assert texts.CODES_BAD_FILE in gbk.text
    no_file = await me.post(f"/admin/rewards/{reward.id}/codes")
    assert no_file.status_code == 422
    assert await pool(world, reward.id) == []
    assert await audit_rows(world, "reward.codes_import") == []


async def test_only_a_code_pool_takes_codes(world: ConsoleWorld) -> None:
    reward = await one_reward(world)
    me = await world.as_role("operator")
    page = await me.get(f"/admin/rewards/{reward.id}/codes")
    assert texts.CODES_NOT_POOL in page.text
    refused = await upload(me, reward.id, b"A1\n")
    assert refused.status_code == 409
    async with world.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(RewardCode)) == 0
