"""Regression in storage/campaigns.Campaigns._challenge_winners: the window was counted in whole local
days up to the day the campaign ended, so when the settlement ran late (the scheduler was down, or
`wxbot jobs run campaigns --at` re-ran a missed time) a check-in made after the end on that last
day still counted towards K, and a member who had not met the goal before the end was paid.
Only check-ins made before the end count now."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.campaigns import Campaigns
from storage.checkins import check_in
from storage.clock import FrozenClock
from tests.support.campaign_support import add_members, new_campaign, payouts
from tests.support.factories import TZ, make_ledger
from tests.support.fakes import WeChat


async def test_a_checkin_after_the_end_on_the_last_day_does_not_count(wechat: WeChat, clock: FrozenClock) -> None:
    db = wechat.services.db
    ledger = make_ledger()
    campaigns = Campaigns(ledger)
    start = datetime(2026, 11, 22, 10, 0, tzinfo=TZ)
    clock.set(start)
    on_time, too_late = await add_members(db, start, 2)
    c = await new_campaign(db, campaigns, start, kind="checkin_challenge", points=30, goal=2, cap=10,
                           ends_at=start + timedelta(days=2))  # ends 24 Nov 10:00
    for m in (on_time, too_late):
        async with db.unit_of_work() as session:
            await campaigns.join(session, c.code, m, start)
            await check_in(session, ledger, m.id, start)  # type: ignore[arg-type]
    async with db.unit_of_work() as session:
        await check_in(session, ledger, on_time.id, start + timedelta(days=2, hours=-1))  # type: ignore[arg-type]
    async with db.unit_of_work() as session:  # 24 Nov 11:00: after the end, same local day
        await check_in(session, ledger, too_late.id, start + timedelta(days=2, hours=1))  # type: ignore[arg-type]

    assert await campaigns.finalize_due(db, start + timedelta(days=2, hours=2)) == 1
    assert await payouts(db, c.id) == {on_time.id: [30]}  # type: ignore[arg-type, dict-item]


async def test_an_early_end_counts_the_checkins_made_so_far(wechat: WeChat) -> None:
    db = wechat.services.db
    ledger = make_ledger()
    campaigns = Campaigns(ledger)
    start = datetime(2026, 11, 22, 10, 0, tzinfo=TZ)
    (member,) = await add_members(db, start, 1)
    c = await new_campaign(db, campaigns, start, kind="checkin_challenge", points=30, goal=2, cap=10,
                           ends_at=start + timedelta(days=5))
    async with db.unit_of_work() as session:
        await campaigns.join(session, c.code, member, start)
        await check_in(session, ledger, member.id, start)  # type: ignore[arg-type]
    async with db.unit_of_work() as session:
        await check_in(session, ledger, member.id, start + timedelta(days=1))  # type: ignore[arg-type]
    async with db.unit_of_work() as session:
        found = await campaigns.by_code(session, c.code, lock=True)
        assert await campaigns.settle(session, found, start + timedelta(days=1, minutes=5)) == 30
