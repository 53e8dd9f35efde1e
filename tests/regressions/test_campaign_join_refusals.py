"""Regressions in joining and listing campaigns (storage/campaigns.py):

1. A participant of a full campaign who sent `参加 CODE` again was told the campaign was full ("下次早点
   来哦") as if they were not in it; they are now told they already joined.
2. `活动` listed full campaigns among those a member can join, each answered with the refusal;
   the list now leaves out the full ones."""

from __future__ import annotations

from datetime import timedelta

from handlers import texts
from storage.campaigns import Campaigns
from tests.support.campaign_support import add_members, new_campaign, openid
from tests.support.factories import make_ledger
from tests.support.fakes import WeChat


async def test_a_participant_of_a_full_campaign_is_told_they_joined(wechat: WeChat) -> None:
    db, now = wechat.services.db, wechat.services.clock.now()
    campaigns = Campaigns(make_ledger())
    people = await add_members(db, now, 3)
    c = await new_campaign(db, campaigns, now, kind="join_bonus", title="两人活动", cap=2,
                           ends_at=now + timedelta(days=1))
    for m in people[:2]:
        async with db.unit_of_work() as session:
            await campaigns.join(session, c.code, m, now)
    assert await wechat.say(openid(0), f"参加 {c.code}") == texts.campaign_already_joined.format(title="两人活动")
    assert await wechat.say(openid(2), f"参加 {c.code}") == texts.campaign_full.format(title="两人活动", cap=2)


async def test_full_campaigns_are_not_listed(wechat: WeChat) -> None:
    db, now = wechat.services.db, wechat.services.clock.now()
    campaigns = Campaigns(make_ledger())
    (member,) = await add_members(db, now, 1)
    tomorrow = now + timedelta(days=1)
    full = await new_campaign(db, campaigns, now, kind="join_bonus", title="满员", cap=1, ends_at=tomorrow)
    room = await new_campaign(db, campaigns, now, kind="join_bonus", title="有空位", cap=5, ends_at=tomorrow)
    async with db.unit_of_work() as session:
        await campaigns.join(session, full.code, member, now)
    listing = await wechat.say(openid(9), "活动")
    assert room.code in listing
    assert full.code not in listing
