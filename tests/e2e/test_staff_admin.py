"""Managing staff: `wxbot staff add|list|remove` and the admin API (bearer ADMIN_TOKEN); whoever is
made a manager can start a campaign from the chat at once, and whoever is removed gets the menu."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.migrate import upgrade
from handlers import texts
from storage.db import Database
from storage.models import Staff
from tests.support.fakes import ADMIN, WeChat

NEW_MANAGER = "oNEWMANAGER0000000000000001"


def staff_rows(url: str) -> list[tuple[str, str, str]]:
    async def read() -> list[tuple[str, str, str]]:
        db = Database(url)
        try:
            async with db.sessions() as session:
                rows = (await session.scalars(select(Staff).order_by(Staff.id))).all()
                return [(s.openid, s.role, s.added_by) for s in rows]
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_staff_cli_add_list_remove(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'staff.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    asyncio.run(upgrade(url))

    assert main(["staff", "list"]) == 0
    assert capsys.readouterr().out.strip() == "no staff"
    assert main(["staff", "add", NEW_MANAGER, "--role", "manager"]) == 0
    assert capsys.readouterr().out.strip() == f"{NEW_MANAGER} is now staff (manager)"
    assert main(["staff", "add", "oADMIN0001"]) == 0  # manager is the default role
    assert main(["staff", "add", "oADMIN0001", "--role", "admin"]) == 0  # a second add changes the role
    assert capsys.readouterr().out.strip().splitlines()[-1] == "oADMIN0001 is still staff (admin)"
    assert staff_rows(url) == [(NEW_MANAGER, "manager", "cli"), ("oADMIN0001", "admin", "cli")]

    assert main(["staff", "list"]) == 0
    listing = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[:2] for line in listing] == [[NEW_MANAGER, "manager"], ["oADMIN0001", "admin"]]

    assert main(["staff", "remove", "oADMIN0001"]) == 0
    assert capsys.readouterr().out.strip() == "oADMIN0001 removed"
    assert main(["staff", "remove", "oADMIN0001"]) == 0
    assert capsys.readouterr().out.strip() == "oADMIN0001 was not staff"
    assert staff_rows(url) == [(NEW_MANAGER, "manager", "cli")]

    with pytest.raises(SystemExit) as bad:
        main(["staff", "add", "oSOMEONE", "--role", "owner"])
    assert bad.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert staff_rows(url) == [(NEW_MANAGER, "manager", "cli")]


async def test_a_manager_added_by_the_cli_can_start_a_campaign(
    wechat: WeChat, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", wechat.app.state.settings.database_url)
    assert await wechat.say(NEW_MANAGER, "发起活动") == texts.HELP_VISITOR

    # the CLI runs its own event loop, as it does from a shell
    assert await asyncio.to_thread(main, ["staff", "add", NEW_MANAGER, "--role", "manager"]) == 0
    assert "is now staff (manager)" in capsys.readouterr().out
    assert await wechat.say(NEW_MANAGER, "发起活动") == texts.CAMPAIGN_ASK_KIND
    assert await wechat.say(NEW_MANAGER, "取消") == texts.CANCELLED

    assert await asyncio.to_thread(main, ["staff", "remove", NEW_MANAGER]) == 0
    assert await wechat.say(NEW_MANAGER, "发起活动") == texts.HELP_VISITOR


async def test_admin_api_staff_endpoints(wechat: WeChat) -> None:
    client = wechat.client
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-admin-token"}):
        assert (await client.get("/api/admin/staff", headers=headers)).status_code == 401
        assert (await client.post("/api/admin/staff", json={"openid": NEW_MANAGER}, headers=headers)).status_code == 401
        assert (await client.delete(f"/api/admin/staff/{NEW_MANAGER}", headers=headers)).status_code == 401
    assert (await client.get("/api/admin/staff", headers=ADMIN)).json() == []
    assert await wechat.say(NEW_MANAGER, "发起活动") == texts.HELP_VISITOR  # nothing was added by the refused calls

    added = await client.post("/api/admin/staff", json={"openid": NEW_MANAGER, "role": "manager"}, headers=ADMIN)
    assert added.status_code == 201
    assert added.json() == {"openid": NEW_MANAGER, "role": "manager", "store": None, "created": True}
    again = await client.post("/api/admin/staff", json={"openid": "oADMIN0002", "role": "admin"}, headers=ADMIN)
    assert again.json()["created"] is True
    changed = await client.post("/api/admin/staff", json={"openid": "oADMIN0002"}, headers=ADMIN)  # default manager
    assert changed.json() == {"openid": "oADMIN0002", "role": "manager", "store": None, "created": False}
    for bad in ({"openid": ""}, {"openid": NEW_MANAGER, "role": "owner"}, {"openid": "x" * 65},
                {"openid": NEW_MANAGER, "extra": 1}, {},
                {"openid": NEW_MANAGER, "role": "clerk"}, {"openid": NEW_MANAGER, "role": "manager", "store": "S001"},
                {"openid": NEW_MANAGER, "role": "clerk", "store": "S404"}):
        assert (await client.post("/api/admin/staff", json=bad, headers=ADMIN)).status_code == 422, bad

    listed = (await client.get("/api/admin/staff", headers=ADMIN)).json()
    assert [(s["openid"], s["role"], s["added_by"]) for s in listed] == [
        (NEW_MANAGER, "manager", "admin-api"), ("oADMIN0002", "manager", "admin-api")
    ]
    assert all(s["created_at"] for s in listed)

    assert await wechat.say(NEW_MANAGER, "发起活动") == texts.CAMPAIGN_ASK_KIND
    await wechat.say(NEW_MANAGER, "取消")

    removed = await client.delete(f"/api/admin/staff/{NEW_MANAGER}", headers=ADMIN)
    assert removed.status_code == 200
    assert removed.json() == {"openid": NEW_MANAGER, "removed": True}
    assert (await client.delete(f"/api/admin/staff/{NEW_MANAGER}", headers=ADMIN)).status_code == 404
    assert [s["openid"] for s in (await client.get("/api/admin/staff", headers=ADMIN)).json()] == ["oADMIN0002"]
    assert await wechat.say(NEW_MANAGER, "发起活动") == texts.HELP_VISITOR
