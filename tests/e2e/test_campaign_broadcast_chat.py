"""`推送活动 CODE [等级]` through signed XML: a manager previews who their campaign's broadcast reaches, confirms
with 是, and the scheduler queues one `campaign` push per reachable member (the opted-out none), with the
campaign's end as the deadline, audited as the staff member; once per campaign and tier; 否 sends nothing;
another manager's campaign, an unknown code, a bad tier and a member's attempt are each answered clearly."""

from __future__ import annotations

from sqlalchemy import select

from handlers import texts
from scheduler.jobs import JobContext, broadcast_expansion
from storage.models import AuditEntry, Broadcast, Member
from tests.support.campaign_support import MANAGER, create_campaign, make_staff, member_id, openid, outbox_rows
from tests.support.fakes import WeChat
from tests.support.member_support import sign_up

OTHER = "oMANAGER00000000000000000002"


async def _world(wechat: WeChat) -> dict[str, int]:
    """Four members: 金卡, two 普通, and an opted-out 金卡."""
    db = wechat.services.db
    ids = {}
    for n, (tier, opted_out) in enumerate([("金卡", False), ("普通", False), ("普通", False), ("金卡", True)]):
        who = openid(n)
        await sign_up(wechat, who, phone=f"1380000{n:04d}")
        ids[who] = await member_id(db, who)
        async with db.unit_of_work() as session:
            row = await session.get(Member, ids[who])
            assert row is not None
            row.tier, row.marketing_opt_out = tier, opted_out
    return ids


async def _broadcasts(wechat: WeChat) -> list[Broadcast]:
    async with wechat.services.db.sessions() as session:
        return list((await session.scalars(select(Broadcast).order_by(Broadcast.id))).all())  # type: ignore[arg-type]


async def test_a_manager_broadcasts_their_campaign_once_per_tier(wechat: WeChat) -> None:
    ids = await _world(wechat)
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="join_bonus", title="周末加油", points=20, cap=50)).campaign
    asked = await wechat.say(MANAGER, f"推送活动 {c.code.lower()}")
    assert "【全部会员】" in asked
    assert "预计 3 位会员收到" in asked
    assert "另有 0 位" in asked
    assert await wechat.say(MANAGER, "好的") == texts.CAMPAIGN_PUSH_AGAIN
    [] = await _broadcasts(wechat)
    done = await wechat.say(MANAGER, "是")
    [made] = await _broadcasts(wechat)
    assert done == texts.CAMPAIGN_PUSH_DONE.format(title="周末加油", id=made.id)
    assert (made.kind, made.campaign_id, made.deadline, made.created_by) == ("campaign", c.id, c.ends_at,
                                                                             f"staff:{MANAGER}")
    async with wechat.services.db.sessions() as session:
        [entry] = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "broadcast.create"))).all()
    assert entry.actor == f"staff:{MANAGER}"

    ctx = JobContext(wechat.services.db, wechat.services.ledger)
    assert await broadcast_expansion(ctx, wechat.services.clock.now()) == 3
    rows = await outbox_rows(wechat.services.db, prefix=f"broadcast:{made.id}:")
    assert sorted(r.member_id for r in rows) == sorted(ids[openid(n)] for n in (0, 1, 2))
    assert all(f"参加 {c.code}" in r.payload and r.kind == "campaign" and r.category == "marketing" for r in rows)

    again = await wechat.say(MANAGER, f"推送活动 {c.code}")
    assert again == texts.CAMPAIGN_PUSH_REPEATED.format(title="周末加油", id=made.id)
    gold = await wechat.say(MANAGER, f"推送活动 {c.code} 金卡")
    assert "【金卡】" in gold
    assert "预计 1 位会员收到" in gold
    assert await wechat.say(MANAGER, "否") == texts.CAMPAIGN_PUSH_DECLINED
    assert len(await _broadcasts(wechat)) == 1


async def test_refusals_are_clear_and_store_nothing(wechat: WeChat) -> None:
    await _world(wechat)
    await make_staff(wechat)
    await make_staff(wechat, OTHER)
    c = (await create_campaign(wechat, kind="join_bonus", title="周末加油", points=20, cap=50)).campaign
    assert await wechat.say(OTHER, f"推送活动 {c.code}") == texts.CAMPAIGN_PUSH_NOT_OWN.format(code=c.code)
    assert await wechat.say(MANAGER, "推送活动 NOPE") == texts.campaign_unknown.format(code="NOPE")
    usage = texts.CAMPAIGN_PUSH_USAGE.format(tiers="普通、银卡、金卡、钻石")
    assert await wechat.say(MANAGER, f"推送活动 {c.code} 黑卡") == usage
    assert await wechat.say(MANAGER, f"推送活动 {c.code} 金卡 多余") == usage
    member = await wechat.say(openid(1), f"推送活动 {c.code}")  # not staff: the command is not theirs
    assert "预计" not in member
    assert texts.CAMPAIGN_PUSH_NOT_OWN.format(code=c.code) != member
    assert await _broadcasts(wechat) == []
    await make_staff(wechat, "oADMIN0000000000000000000001", role="admin")
    assert "预计 3 位会员收到" in await wechat.say("oADMIN0000000000000000000001", f"推送活动 {c.code}")
