"""In Chromium: an operator opens the ticket queue, opens a member's ticket (its thread shown escaped),
answers it and resolves it from the console; the stored ticket is answered, then resolved, by them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage.clock import FrozenClock
from storage.db import Database
from storage.models import AuditEntry, Ticket
from tests.support.browser import Outbound, shot
from tests.support.console_site import Site, console_site, sign_in
from tests.support.fakes import WeChat
from tests.support.member_support import sign_up
from tests.support.ticket_support import open_ticket

OPENID = "oBROWSERticketMemberAAAAAAAA"
DESCRIPTION = "收到的杯子有裂纹 <b>请处理</b>"


async def seed(wechat: WeChat) -> None:
    await sign_up(wechat, OPENID, "13800138019")
    await open_ticket(wechat, OPENID, text=DESCRIPTION, category="1")


@pytest.fixture
def site(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    with console_site(sqlite_template, tmp_path, clock, seed=seed) as found:
        yield found


def test_an_operator_answers_and_resolves_a_ticket(page: Any, site: Site, outbound: Outbound) -> None:
    sign_in(page, site, "operator", "/admin/tickets")
    page.wait_for_selector("table#tickets")
    rows = page.locator("table#tickets tbody tr")
    assert rows.count() == 1
    assert "待处理" in page.inner_text("table#tickets")
    rows.first.locator("a").first.click()
    page.wait_for_selector("#answer-form")
    assert DESCRIPTION in page.inner_text("#thread")  # shown as typed, not as markup
    page.fill("#answer-form textarea[name=text]", "您好，我们为您补发一个新杯子。")
    page.click("#answer-form button[type=submit]")
    page.wait_for_selector("text=已回复会员。")
    assert page.inner_text("#ticket-state") == "已答复"
    assert "您好，我们为您补发一个新杯子。" in page.inner_text("#thread")
    shot(page, "console-tickets")
    page.fill("#resolve-form textarea[name=note]", "已补发")
    page.click("#resolve-form button[type=submit]")
    page.wait_for_selector("text=工单已解决，已请会员评分。")
    assert page.inner_text("#ticket-state") == "已解决"
    assert page.locator("#answer-form").count() == 0

    async def stored(db: Database) -> tuple[list[tuple[str, bool]], list[tuple[str, str]]]:
        async with db.sessions() as session:
            found = (await session.scalars(select(Ticket))).all()
            trail = (await session.scalars(select(AuditEntry).where(AuditEntry.target.startswith("ticket:"))
                                           .order_by(AuditEntry.id))).all()
        return [(t.state, t.first_answer_at is not None) for t in found], [(a.actor, a.action) for a in trail]

    assert site.read(stored) == (
        [("resolved", True)], [("operator", "ticket.answer"), ("operator", "ticket.resolve")],
    )
    assert outbound.seen == []
