"""A manager starts a group-buy in the chat; members join by code; everyone is paid when the N-th joins."""

from __future__ import annotations

from sqlalchemy import select

from storage import staff
from storage.models import Campaign, Member
from tests.support.fakes import WeChat
from tests.support.member_support import sign_up

MANAGER = "oMANAGER000000000000000001"


async def test_group_buy_from_chat_pays_everyone_at_the_threshold(wechat: WeChat) -> None:
    async with wechat.services.db.unit_of_work() as session:
        await staff.add(session, MANAGER, "manager", "test", wechat.services.clock.now())
    assert "选择类型" in await wechat.say(MANAGER, "发起活动")
    await wechat.say(MANAGER, "2")
    await wechat.say(MANAGER, "周末拼团")
    await wechat.say(MANAGER, "30")
    await wechat.say(MANAGER, "3")
    await wechat.say(MANAGER, "10")
    assert "群机器人" in await wechat.say(MANAGER, "3天")
    summary = await wechat.say(MANAGER, "跳过")
    assert "预算）：300" in summary
    created = await wechat.say(MANAGER, "是")
    async with wechat.services.db.sessions() as session:
        campaign = await session.scalar(select(Campaign))
    assert campaign is not None
    assert f"参加 {campaign.code}" in created

    people = [f"oMEMBER{i:020d}" for i in range(3)]
    for i, openid in enumerate(people):
        await sign_up(wechat, openid, phone=f"1390000000{i}")
    assert "还差 2 人" in await wechat.say(people[0], f"参加 {campaign.code}")
    assert "还差 1 人" in await wechat.say(people[1], f"参加 {campaign.code.lower()}")
    assert "拼团成功" in await wechat.say(people[2], f"join {campaign.code}")
    async with wechat.services.db.sessions() as session:
        balances = [
            (await session.scalar(select(Member.balance).where(Member.openid == p))) for p in people
        ]
    assert balances == [130, 130, 130]
    assert "已经参加过" in await wechat.say(people[0], f"参加 {campaign.code}")
    stats = await wechat.say(MANAGER, f"活动数据 {campaign.code}")
    assert "参加人数：3/10" in stats
    assert "已发放积分：90" in stats
    # not staff: the menu, not the figures
    assert "参加人数" not in await wechat.say(people[0], f"活动数据 {campaign.code}")
