"""In Chromium: an admin opens a store in 门店 and reads its credential once; the till's system verifies a
coupon with that credential; rotating it (confirmed in the dialog) shows a new one and the old one stops
working; the store's clerk then verifies another coupon at the 核销 counter and sees it in the store's list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from storage.clock import FrozenClock
from storage.db import Database
from storage.models import Redemption
from tests.support.browser import Outbound, shot
from tests.support.console_site import Site, console_site, sign_in
from tests.support.fakes import WeChat
from tests.support.ledgerviews_support import coupon, member


async def seed(wechat: WeChat) -> None:
    world: Any = SimpleNamespace(db=wechat.services.db, wechat=wechat)
    owner = await member(world, "oSTOREbrowser0001", "13900005555")
    for n in (1, 2):
        await coupon(world, owner, wechat.services.clock.now(), name="拿铁券", key=f"r-store-browser-{n}")


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    with console_site(sqlite_template, tmp_path, clock, seed=seed) as found:
        yield found


def coupons(site: Site) -> list[tuple[str, str, str | None]]:
    async def read(db: Database) -> list[tuple[str, str, str | None]]:
        async with db.sessions() as session:
            rows = (await session.scalars(select(Redemption).order_by(Redemption.id))).all()  # type: ignore[arg-type]
        return [(r.code, r.status, r.store) for r in rows]

    found = site.read(read)
    assert isinstance(found, list)
    return found


def use(site: Site, code: str, bearer: str) -> httpx.Response:
    return httpx.post(f"{site.url}/api/store/coupons/{code}/use", headers={"Authorization": f"Bearer {bearer}"})


def test_a_store_is_opened_its_credential_rotated_and_its_clerk_verifies(
    page: Any, site: Site, outbound: Outbound,
) -> None:
    (first, _), (second, _) = [(code, status) for code, status, _ in coupons(site)]
    sign_in(page, site, "admin", "/admin/stores")
    page.fill("#add-store input[name=code]", "S001")
    page.fill("#add-store input[name=name]", "南京西路店")
    page.fill("#add-store input[name=city]", "上海")
    page.click("#add-store button[type=submit]")
    page.wait_for_selector("#credential")
    bearer = page.inner_text("#credential .muted").split("Bearer ", 1)[1].strip()
    assert page.inner_text("#stores tr[data-store=S001]").split("\t")[:4] == ["S001", "南京西路店", "上海", "营业中"]
    shot(page, "console-stores")
    page.goto(f"{site.url}/admin/stores")
    assert page.locator("#credential").count() == 0  # shown once

    assert use(site, first, bearer).status_code == 200
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#stores tr[data-store=S001] button:has-text('轮换凭证')")
    page.wait_for_selector("#credential")
    rotated = page.inner_text("#credential .muted").split("Bearer ", 1)[1].strip()
    assert rotated != bearer
    assert use(site, second, bearer).status_code == 401
    assert coupons(site) == [(first, "used", "S001"), (second, "issued", None)]

    page.context.clear_cookies()
    sign_in(page, site, "clerk", "/admin/verify")
    page.fill("#lookup input[name=code]", second.lower())
    page.click("#lookup button[type=submit]")
    page.wait_for_selector("#coupon")
    card = page.inner_text("#coupon")
    assert "拿铁券" in card
    assert "139****5555" in card
    assert "13900005555" not in page.content()
    page.click("#confirm")
    page.wait_for_selector("text=核销成功")
    assert page.inner_text("h2") == "本店核销记录（S001）"
    codes = [row.split("\t")[1:3] for row in page.locator("#verifications tbody tr").all_inner_texts()]
    assert codes == [[second, "S001"], [first, "S001"]]
    shot(page, "console-verify")
    assert coupons(site) == [(first, "used", "S001"), (second, "used", "S001")]
    assert outbound.seen == []
