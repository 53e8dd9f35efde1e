"""Every write of the admin JSON API lands in the audit log as actor `token`, with the target, the
fields that changed before and after, and the client address, in the transaction of the change (a
refused write leaves no entry)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from storage.models import AuditEntry
from storage.rewards import Rewards
from tests.support.fakes import ADMIN, WeChat
from tests.support.redeem_support import add_members, redeem

VALID: dict[str, Any] = {"name": "20元满减券", "cost": 180, "kind": "code_pool", "stock": 50}
MANAGER = "oAUDITMANAGER000000000000001"


async def entries(wechat: WeChat) -> list[tuple[str, str, str, str, Any, Any, str | None]]:
    async with wechat.services.db.sessions() as session:
        rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    return [(e.actor, e.actor_role, e.action, e.target, e.before and json.loads(e.before),
             e.after and json.loads(e.after), e.client) for e in rows]


async def test_reward_writes_are_audited_as_the_token(wechat: WeChat) -> None:
    client = wechat.client
    created = (await client.post("/api/admin/rewards", json=VALID, headers=ADMIN)).json()
    rid = created["id"]
    assert (await client.patch(f"/api/admin/rewards/{rid}", json={"cost": 150, "name": "20元满减券"},
                               headers=ADMIN)).status_code == 200
    assert (await client.patch(f"/api/admin/rewards/{rid}", json={"cost": -1}, headers=ADMIN)).status_code == 422
    assert (await client.post(f"/api/admin/rewards/{rid}/deactivate", headers=ADMIN)).status_code == 200
    imported = await client.post(f"/api/admin/rewards/{rid}/codes", content=b"A-1\nA-1\n",
                                 headers={**ADMIN, "Content-Type": "text/csv"})
    assert imported.json()["added"] == 1
    assert (await client.post(f"/api/admin/rewards/{rid}/codes", content=b"A\x00\n", headers=ADMIN)).status_code == 422

    found = await entries(wechat)
    assert [row[:4] for row in found] == [
        ("token", "token", "reward.create", f"reward:{rid}"), ("token", "token", "reward.edit", f"reward:{rid}"),
        ("token", "token", "reward.deactivate", f"reward:{rid}"),
        ("token", "token", "reward.codes_import", f"reward:{rid}"),
    ]
    assert found[0][4] is None
    assert (found[0][5]["name"], found[0][5]["cost"], found[0][5]["kind"]) == ("20元满减券", 180, "code_pool")
    assert found[1][4:6] == ({"cost": 180}, {"cost": 150})  # only what changed
    assert found[2][4:6] == ({"active": True}, {"active": False})
    assert found[3][5] == {"received": 2, "added": 1, "refused": 1}
    assert {row[6] for row in found} == {"127.0.0.1"}


async def test_coupon_use_and_cancellation_are_audited(wechat: WeChat) -> None:
    services = wechat.services
    now = services.clock.now()
    first, second = await add_members(services.db, services.ledger, now, 2, points=500)
    rid = (await wechat.client.post("/api/admin/rewards", json={**VALID, "kind": "coupon"}, headers=ADMIN)).json()["id"]
    used = await redeem(services.db, Rewards(services.ledger), first, rid, "u1", now)
    kept = await redeem(services.db, Rewards(services.ledger), second, rid, "c1", now)
    code = used.redemption.code
    assert (await wechat.client.post(f"/api/admin/coupons/{code}/use", headers=ADMIN)).status_code == 200
    assert (await wechat.client.post(f"/api/admin/coupons/{code}/use", headers=ADMIN)).status_code == 409
    cancel = f"/api/admin/redemptions/{kept.redemption.id}/cancel"
    assert (await wechat.client.post(cancel, headers=ADMIN)).status_code == 200
    assert (await wechat.client.post(cancel, headers=ADMIN)).status_code == 409
    found = (await entries(wechat))[1:]
    assert found == [
        ("token", "token", "coupon.use", f"redemption:{used.redemption.id}", {"status": "issued"},
         {"status": "used"}, "127.0.0.1"),
        ("token", "token", "redemption.cancel", f"redemption:{kept.redemption.id}", {"status": "issued"},
         {"status": "cancelled", "points_restored": 180}, "127.0.0.1"),
    ]


async def test_staff_writes_are_audited_as_the_token(wechat: WeChat) -> None:
    client = wechat.client
    assert (await client.post("/api/admin/staff", json={"openid": MANAGER}, headers=ADMIN)).status_code == 201
    await client.post("/api/admin/staff", json={"openid": MANAGER}, headers=ADMIN)  # unchanged: no entry
    await client.post("/api/admin/staff", json={"openid": MANAGER, "role": "admin"}, headers=ADMIN)
    assert (await client.post("/api/admin/staff", json={"openid": ""}, headers=ADMIN)).status_code == 422
    assert (await client.delete(f"/api/admin/staff/{MANAGER}", headers=ADMIN)).status_code == 200
    assert (await client.delete(f"/api/admin/staff/{MANAGER}", headers=ADMIN)).status_code == 404
    assert await entries(wechat) == [
        ("token", "token", "staff.add", f"staff:{MANAGER}", None, {"role": "manager"}, "127.0.0.1"),
        ("token", "token", "staff.role", f"staff:{MANAGER}", {"role": "manager"}, {"role": "admin"}, "127.0.0.1"),
        ("token", "token", "staff.remove", f"staff:{MANAGER}", {"role": "admin"}, None, "127.0.0.1"),
    ]
