"""The campaigns screens over HTTP: the list with its figures, a campaign with its joins per day, and
ending one early: settled once through Campaigns.settle (members paid what settle pays), safe against
a second click and the scheduler, audited `campaign.end`; roles, CSRF and escaping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.console import texts
from storage.clock import FrozenClock
from storage.models import AuditEntry, Campaign, Member
from tests.support.campaign_support import add_members, campaign_row, new_campaign, payouts
from tests.support.console_support import ConsoleWorld, console_world


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def draw(world: ConsoleWorld, clock: FrozenClock, *, members: int = 3, title: str = "周末抽奖") -> Campaign:
    """An open lucky draw with as many winners as members, joined by `members` on two days."""
    services = world.wechat.services
    campaign = await new_campaign(services.db, services.campaigns, clock.now(), kind="lucky_draw", points=30,
                                  goal=members, cap=10, ends_at=clock.now() + timedelta(days=3), title=title)
    joined = await add_members(services.db, clock.now(), members)
    for n, member in enumerate(joined):
        if n == 1:
            clock.advance(days=1)
        async with services.db.unit_of_work() as session:
            fresh = await session.get(Member, member.id)
            assert fresh is not None
            await services.campaigns.join(session, campaign.code, fresh, clock.now())
    return await campaign_row(services.db, campaign.id or 0)


async def ends(world: ConsoleWorld) -> list[AuditEntry]:
    async with world.db.sessions() as session:
        return list((await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "campaign.end").order_by(AuditEntry.id))).all())


async def test_the_list_shows_each_campaigns_figures(world: ConsoleWorld, clock: FrozenClock) -> None:
    campaign = await draw(world, clock)
    page = await (await world.as_role("analyst")).get("/admin/campaigns")
    assert page.status_code == 200
    row = page.text.split(f'data-campaign="{campaign.id}"', 1)[1].split("</tr>", 1)[0]
    for shown in ("周末抽奖", campaign.code, "抽奖", "进行中", "3 / 10", "0 / 90", campaign.created_by):
        assert shown in row, shown


async def test_a_campaign_page_shows_joins_per_day(world: ConsoleWorld, clock: FrozenClock) -> None:
    campaign = await draw(world, clock)
    page = await (await world.as_role("operator")).get(f"/admin/campaigns/{campaign.id}")
    assert page.status_code == 200
    joins = page.text.split('<table id="joins">', 1)[1].split("</table>", 1)[0]
    assert [cell.split("</td>")[0] for cell in joins.split("<tr><td>")[1:]] == ["2026-11-22", "2026-11-23"]
    assert "</span> 1</td>" in joins
    assert "</span> 2</td>" in joins
    assert 'id="end-campaign"' in page.text


async def test_ending_early_settles_once_and_pays_what_settle_pays(world: ConsoleWorld, clock: FrozenClock) -> None:
    campaign = await draw(world, clock)
    me = await world.as_role("operator")
    ended = await me.post(f"/admin/campaigns/{campaign.id}/end")
    assert ended.status_code == 303
    page = await me.get(ended.headers["location"])
    assert texts.CAMPAIGN_ENDED.format(total=90) in page.text
    assert 'id="end-campaign"' not in page.text
    stored = await campaign_row(world.db, campaign.id or 0)
    assert (stored.status, stored.paid_out, stored.settled_at) == ("settled", 90, clock.now())
    paid = await payouts(world.db, campaign.id or 0)
    assert sorted(paid.values()) == [[30], [30], [30]]

    again = await me.post(f"/admin/campaigns/{campaign.id}/end")
    assert texts.CAMPAIGN_WAS_ENDED in (await me.get(again.headers["location"])).text
    clock.advance(days=5)
    assert await world.wechat.services.campaigns.finalize_due(world.db, clock.now()) == 0  # the scheduler
    assert await payouts(world.db, campaign.id or 0) == paid
    (entry,) = await ends(world)
    assert (entry.actor, entry.target, entry.client) == ("operator", f"campaign:{campaign.id}", "127.0.0.1")
    assert json.loads(entry.before or "")["status"] == "open"
    assert json.loads(entry.after or "")["paid_now"] == 90


async def test_ending_early_while_the_scheduler_settles_pays_once(world: ConsoleWorld, clock: FrozenClock) -> None:
    campaign = await draw(world, clock)
    me = await world.as_role("admin")
    scheduler = world.wechat.services.campaigns.finalize_due(world.db, clock.now() + timedelta(days=4))
    ended, settled = await asyncio.gather(me.post(f"/admin/campaigns/{campaign.id}/end"), scheduler)
    assert ended.status_code == 303
    paid = await payouts(world.db, campaign.id or 0)
    assert sorted(paid.values()) == [[30], [30], [30]]
    stored = await campaign_row(world.db, campaign.id or 0)
    assert (stored.status, stored.paid_out) == ("settled", 90)
    assert len(await ends(world)) == (0 if settled else 1)  # audited only when the console settled it


async def test_roles_and_csrf(world: ConsoleWorld, clock: FrozenClock) -> None:
    campaign = await draw(world, clock)
    analyst = await world.as_role("analyst")
    page = await analyst.get(f"/admin/campaigns/{campaign.id}")
    assert page.status_code == 200
    assert 'id="end-campaign"' not in page.text
    refused = await analyst.post(f"/admin/campaigns/{campaign.id}/end")
    assert refused.status_code == 403
    assert "管理员、运营" in refused.text
    clerk = await world.as_role("clerk")
    assert (await clerk.get("/admin/campaigns")).status_code == 403
    assert (await clerk.get(f"/admin/campaigns/{campaign.id}")).status_code == 403
    operator = await world.as_role("operator")
    for token in ("", "stale"):
        assert (await operator.post(f"/admin/campaigns/{campaign.id}/end", csrf=token)).status_code == 403
    stored = await campaign_row(world.db, campaign.id or 0)
    assert (stored.status, stored.paid_out) == ("open", 0)
    assert await payouts(world.db, campaign.id or 0) == {}
    assert await ends(world) == []
    assert (await operator.get("/admin/campaigns/999")).status_code == 404
    assert (await operator.post("/admin/campaigns/999/end")).status_code == 404


async def test_a_campaign_title_is_shown_escaped(world: ConsoleWorld, clock: FrozenClock) -> None:
    campaign = await draw(world, clock, members=1, title='<script>"t"')
    me = await world.as_role("operator")
    for path in ("/admin/campaigns", f"/admin/campaigns/{campaign.id}"):
        page = await me.get(path)
        assert '<script>"t"' not in page.text
        assert "&lt;script&gt;&#34;t&#34;" in page.text
