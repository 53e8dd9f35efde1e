"""The admin API for rewards (bearer ADMIN_TOKEN): create, edit, deactivate, code-pool CSV import, store
verification (核销); and `wxbot codes import` on the command line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.cli import main as cli
from handlers import texts
from storage.clock import FrozenClock
from storage.models import AuditEntry, Member, RewardCode
from storage.rewards import Rewards
from tests.support.fakes import ADMIN, WeChat
from tests.support.redeem_support import add_members, add_reward, redeem, use_coupon

VALID: dict[str, Any] = {
    "name": "20元满减券", "description": "满 100 元减 20 元", "cost": 180, "kind": "coupon",
    "stock": 50, "per_member_limit": 2, "validity_days": 30,
}


async def create(wechat: WeChat, body: dict[str, Any]) -> httpx.Response:
    return await wechat.client.post("/api/admin/rewards", json=body, headers=ADMIN)


async def import_csv(wechat: WeChat, reward_id: int, text: str) -> httpx.Response:
    return await wechat.client.post(
        f"/api/admin/rewards/{reward_id}/codes", content=text.encode(),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )


async def pool_codes(wechat: WeChat, reward_id: int) -> list[str]:
    async with wechat.services.db.sessions() as session:
        return list((await session.scalars(
            select(RewardCode.code).where(RewardCode.reward_id == reward_id).order_by(RewardCode.id)
        )).all())


async def issued_coupon(wechat: WeChat, key: str = "k1", **fields: Any) -> str:
    """A member's freshly issued coupon code."""
    services = wechat.services
    now = services.clock.now()
    (member,) = await add_members(services.db, services.ledger, now, 1, points=500)
    reward_id = await add_reward(services.db, now, **fields)
    issued = await redeem(services.db, Rewards(services.ledger), member, reward_id, key, now)
    return issued.redemption.code


# --- authentication ---------------------------------------------------------------------------------

BAD_AUTH: list[dict[str, str]] = [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-admin-token"},
    {"Authorization": "Basic test-admin-token"}, {"Authorization": "Bearer "},
    {"Authorization": "Bearer test-admin-token-and-more"},
]


async def test_every_admin_route_needs_the_bearer_token(wechat: WeChat) -> None:
    calls = [
        ("GET", "/api/admin/rewards", None), ("POST", "/api/admin/rewards", VALID),
        ("PATCH", "/api/admin/rewards/1", {"cost": 1}), ("POST", "/api/admin/rewards/1/deactivate", None),
        ("POST", "/api/admin/rewards/1/codes", None), ("POST", "/api/admin/coupons/ABC/use", None),
        ("POST", "/api/admin/redemptions/1/cancel", None),
    ]
    for headers in BAD_AUTH:
        for method, url, body in calls:
            response = await wechat.client.request(method, url, json=body, headers=headers)
            assert response.status_code == 401, (headers, method, url, response.text)
            assert response.json()["error"] == "unauthorized"
    assert (await wechat.client.get("/api/admin/rewards", headers=ADMIN)).json() == []


# --- rewards --------------------------------------------------------------------------------------------

async def test_create_list_edit_and_deactivate(wechat: WeChat) -> None:
    created = await create(wechat, {**VALID, "starts_at": "2026-11-01T00:00:00+08:00", "min_tier": "银卡"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"] > 0
    assert body["issued_count"] == 0
    assert {k: body[k] for k in VALID} == VALID
    assert body["min_tier"] == "银卡"
    assert body["active"] is True
    listed = (await wechat.client.get("/api/admin/rewards", headers=ADMIN)).json()
    assert [r["id"] for r in listed] == [body["id"]]

    edited = await wechat.client.patch(
        f"/api/admin/rewards/{body['id']}", json={"cost": 150, "stock": 0, "min_tier": None}, headers=ADMIN,
    )
    assert edited.status_code == 200, edited.text
    assert (edited.json()["cost"], edited.json()["stock"], edited.json()["min_tier"]) == (150, 0, None)
    assert edited.json()["name"] == VALID["name"]  # untouched fields stay

    off = await wechat.client.post(f"/api/admin/rewards/{body['id']}/deactivate", headers=ADMIN)
    assert off.status_code == 200
    assert off.json()["active"] is False
    again = await wechat.client.patch(f"/api/admin/rewards/{body['id']}", json={"active": True}, headers=ADMIN)
    assert again.json()["active"] is True


INVALID: list[dict[str, Any]] = [
    {"cost": -5}, {"cost": 0}, {"cost": "100"}, {"cost": 1.5}, {"kind": "voucher"}, {"min_tier": "白金"},
    {"starts_at": "2026-12-01T00:00:00"}, {"ends_at": "2026-12-01T00:00:00"}, {"stock": -1},
    {"name": ""}, {"name": "名" * 41}, {"validity_days": 0}, {"per_member_limit": 0}, {"colour": "red"},
]


async def test_invalid_bodies_are_422_and_create_nothing(wechat: WeChat) -> None:
    for change in INVALID:
        response = await create(wechat, {**VALID, **change})
        assert response.status_code == 422, (change, response.text)
        assert response.json()["error"] == "invalid"
    missing = await create(wechat, {"name": "无价券"})
    assert missing.status_code == 422
    not_json = await wechat.client.post("/api/admin/rewards", content=b"{", headers=ADMIN)
    assert not_json.status_code == 422
    assert (await wechat.client.get("/api/admin/rewards", headers=ADMIN)).json() == []


async def test_edit_refusals(wechat: WeChat) -> None:
    reward_id = (await create(wechat, VALID)).json()["id"]
    for change in ({"cost": -1}, {"min_tier": "白金"}, {"ends_at": "2027-01-01T00:00:00"}, {"kind": "gift"}):
        response = await wechat.client.patch(f"/api/admin/rewards/{reward_id}", json=change, headers=ADMIN)
        assert response.status_code == 422, (change, response.text)
    assert (await wechat.client.patch("/api/admin/rewards/999", json={"cost": 1}, headers=ADMIN)).status_code == 404
    assert (await wechat.client.post("/api/admin/rewards/999/deactivate", headers=ADMIN)).status_code == 404
    listed = (await wechat.client.get("/api/admin/rewards", headers=ADMIN)).json()
    assert listed[0]["cost"] == VALID["cost"]


async def test_deactivating_hides_it_from_the_chat_list(wechat: WeChat) -> None:
    services = wechat.services
    (member,) = await add_members(services.db, services.ledger, services.clock.now(), 1, points=500)
    async with wechat.services.db.sessions() as session:
        openid = await session.scalar(select(Member.openid).where(Member.id == member))
    assert openid is not None
    kept = (await create(wechat, {**VALID, "name": "保留券"})).json()["id"]
    gone = (await create(wechat, {**VALID, "name": "下架券", "cost": 100})).json()["id"]
    listing = await wechat.say(openid, "兑换")
    assert "下架券" in listing
    assert "保留券" in listing
    await wechat.say(openid, "取消")

    assert (await wechat.client.post(f"/api/admin/rewards/{gone}/deactivate", headers=ADMIN)).status_code == 200

    listing = await wechat.say(openid, "兑换")
    assert "下架券" not in listing
    assert "1. 保留券" in listing
    await wechat.say(openid, "取消")
    assert (await wechat.client.post(f"/api/admin/rewards/{kept}/deactivate", headers=ADMIN)).status_code == 200
    assert await wechat.say(openid, "兑换") == texts.REDEEM_EMPTY


# --- code pools -------------------------------------------------------------------------------------------

async def test_csv_import_skips_the_header_and_duplicates(wechat: WeChat) -> None:
    reward_id = (await create(wechat, {**VALID, "kind": "code_pool"})).json()["id"]

    csv = "\ufeffcode\r\nPOS-001\r\n POS-002 ,extra\r\n\r\nPOS-001\r\nPOS-003\r\n"
    first = await import_csv(wechat, reward_id, csv)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 4, "added": 3,
                            "refused": [{"line": 5, "code": "POS-001", "reason": "duplicate"}]}
    second = await import_csv(wechat, reward_id, "POS-003\nPOS-004\n" + "L" * 65 + "\nA\x00B\n ,x\n")
    assert second.json() == {"received": 5, "added": 1, "refused": [
        {"line": 1, "code": "POS-003", "reason": "taken"}, {"line": 3, "code": "L" * 65, "reason": "too_long"},
        {"line": 4, "code": "A\\0B", "reason": "nul"}, {"line": 5, "code": "", "reason": "empty"}]}

    assert await pool_codes(wechat, reward_id) == ["POS-001", "POS-002", "POS-003", "POS-004"]


async def test_csv_import_refusals(wechat: WeChat) -> None:
    coupon = (await create(wechat, VALID)).json()["id"]
    pool = (await create(wechat, {**VALID, "kind": "code_pool"})).json()["id"]

    not_pool = await import_csv(wechat, coupon, "A1\n")
    assert not_pool.status_code == 409
    assert "code_pool" in not_pool.json()["message"]
    assert (await import_csv(wechat, 999, "A1\n")).status_code == 404
    for empty in ("", "code\n", "\n\n", " , \n"):
        response = await import_csv(wechat, pool, empty)
        assert response.status_code == 422, (empty, response.text)
    bad_encoding = await wechat.client.post(
        f"/api/admin/rewards/{pool}/codes", content="甲\n".encode("gbk"), headers=ADMIN,
    )
    assert bad_encoding.status_code == 422
    assert await pool_codes(wechat, coupon) == []
    assert await pool_codes(wechat, pool) == []


# --- store verification (核销) -------------------------------------------------------------------------------

async def test_a_coupon_is_used_once(wechat: WeChat, clock: FrozenClock) -> None:
    code = await issued_coupon(wechat)
    first = await use_coupon(wechat, code)
    assert first.status_code == 200, first.text
    assert first.json()["code"] == code
    assert first.json()["status"] == "used"
    assert first.json()["used_at"].startswith("2026-11-22T02:00:00")

    clock.advance(hours=2)
    second = await use_coupon(wechat, code)
    assert second.status_code == 409
    assert second.json()["error"] == "conflict"
    assert "2026-11-22 02:00:00" in second.json()["message"]  # when it was used, not when it was retried

    assert (await use_coupon(wechat, "NOSUCHCODE")).status_code == 404


async def test_a_lower_case_code_is_accepted(wechat: WeChat) -> None:
    code = await issued_coupon(wechat)
    response = await use_coupon(wechat, f" {code.lower()} ")
    assert response.status_code == 200, response.text
    assert response.json()["code"] == code


async def test_an_expired_coupon_cannot_be_used(wechat: WeChat, clock: FrozenClock) -> None:
    code = await issued_coupon(wechat, validity_days=7)
    clock.advance(days=8)
    response = await use_coupon(wechat, code)
    assert response.status_code == 409
    assert "expired" in response.json()["message"]


async def test_a_pool_code_is_verified_as_imported(wechat: WeChat) -> None:
    services = wechat.services
    now = services.clock.now()
    (member,) = await add_members(services.db, services.ledger, now, 1, points=500)
    pool = (await create(wechat, {**VALID, "kind": "code_pool"})).json()["id"]
    assert (await import_csv(wechat, pool, "code\nMOVIE-0001\n")).json()["added"] == 1
    issued = await redeem(services.db, Rewards(services.ledger), member, pool, "pool-1", now)
    assert issued.redemption.code == "MOVIE-0001"
    assert (await use_coupon(wechat, "movie-0001")).status_code == 200
    assert (await use_coupon(wechat, "MOVIE-0001")).status_code == 409


# --- the command line ---------------------------------------------------------------------------------------------

async def test_cli_codes_import(
    wechat: WeChat, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", wechat.app.state.settings.database_url)
    pool = (await create(wechat, {**VALID, "kind": "code_pool"})).json()["id"]
    coupon = (await create(wechat, VALID)).json()["id"]
    csv_file = tmp_path / "codes.csv"
    csv_file.write_text("code\nCLI-001\nCLI-002\nCLI-002\n" + "X" * 65 + "\n", encoding="utf-8")

    assert await asyncio.to_thread(cli, ["codes", "import", str(pool), str(csv_file)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "line 4: duplicate CLI-002", f"line 5: too_long {'X' * 65}", "read 4 codes, added 2, refused 2"]
    assert await asyncio.to_thread(cli, ["codes", "import", str(pool), str(csv_file)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "read 4 codes, added 0, refused 4"
    assert await pool_codes(wechat, pool) == ["CLI-001", "CLI-002"]
    async with wechat.services.db.sessions() as session:
        trail = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "reward.codes_import")
                                       .order_by(AuditEntry.id))).all()
    assert [(a.actor, a.target, json.loads(a.after or "")) for a in trail] == [
        ("cli", f"reward:{pool}", {"received": 4, "added": 2, "refused": 2}),
        ("cli", f"reward:{pool}", {"received": 4, "added": 0, "refused": 4}),
    ]
    empty = tmp_path / "empty.csv"
    empty.write_text("code\n\n", encoding="utf-8")
    assert await asyncio.to_thread(cli, ["codes", "import", str(pool), str(empty)]) == 1
    assert "no valid code" in capsys.readouterr().err
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("甲\n".encode("gbk"))
    assert await asyncio.to_thread(cli, ["codes", "import", str(pool), str(gbk)]) == 2
    assert "not a UTF-8 CSV" in capsys.readouterr().err

    assert await asyncio.to_thread(cli, ["codes", "import", str(coupon), str(csv_file)]) == 1
    assert "code_pool" in capsys.readouterr().err
    assert await asyncio.to_thread(cli, ["codes", "import", "999", str(csv_file)]) == 1
    assert "999" in capsys.readouterr().err
    assert await asyncio.to_thread(cli, ["codes", "import", str(pool), str(tmp_path / "missing.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert await pool_codes(wechat, coupon) == []

