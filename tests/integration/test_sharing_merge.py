"""One person, two doors, merged (storage/merge.py): what the dropped membership shared counts for the kept
one (the scans of its QR codes, the campaign joins its invites brought; never the keeper as their own
sharer), and the first channel of either is kept. Deleting a member forgets their poster with their code, and
their scans no longer name them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from storage import members, merge, sharing
from storage.audit import TOKEN
from storage.campaigns import Campaigns
from storage.db import Database
from storage.models import CampaignMember, Member, ShareScan, Survey, SurveyAsk
from tests.support.campaign_support import new_campaign
from tests.support.factories import add_member, make_ledger

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


async def test_a_merge_moves_what_the_dropped_membership_shared(db: Database) -> None:
    ledger = make_ledger()
    keep = await add_member(db, NOW - timedelta(days=9), openid="oKEEP")
    drop = await add_member(db, NOW - timedelta(days=5), mp_openid="oDROPmp")
    friend = await add_member(db, NOW - timedelta(days=1), openid="oFRIEND")
    async with db.unit_of_work() as session:
        await session.execute(update(Member).where(Member.id.in_([keep, drop])).values(unionid="uSAME"))  # type: ignore[attr-defined]
        await session.execute(update(Member).where(Member.id == drop).values(channel="mall"))
        await sharing.record_scan(session, "oFRIEND", NOW, follow=True, referrer_id=drop)
    c = await new_campaign(db, Campaigns(ledger), NOW, kind="join_bonus", ends_at=NOW + timedelta(days=3))
    async with db.unit_of_work() as session:
        session.add_all([CampaignMember(campaign_id=c.id, member_id=friend, joined_at=NOW, referrer_id=drop),
                         CampaignMember(campaign_id=c.id, member_id=keep, joined_at=NOW, referrer_id=drop)])
    async with db.unit_of_work() as session:
        await merge.merge(session, ledger, TOKEN, keep, drop, note="同一人，两个入口", now=NOW)
    async with db.sessions() as session:
        kept = await session.get(Member, keep)
        joins = dict((await session.execute(select(CampaignMember.member_id, CampaignMember.referrer_id))).all())
        scans = (await session.scalars(select(ShareScan.referrer_id))).all()
    assert kept is not None
    assert kept.channel == "mall"  # the keeper had none: the dropped one's first channel
    assert joins == {friend: keep, keep: None}  # the keeper is never their own sharer
    assert list(scans) == [keep]


async def test_deleting_a_member_forgets_the_poster(db: Database) -> None:
    member_id = await add_member(db, NOW, openid="oPOSTER")
    async with db.unit_of_work() as session:
        await sharing.keep_poster(session, member_id, "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=x",
                                  NOW + timedelta(days=30))
    async with db.unit_of_work() as session:
        await members.delete(session, member_id, NOW)
    async with db.sessions() as session:
        gone = await session.get(Member, member_id)
    assert gone is not None
    assert (gone.referral_code, gone.share_qr_url, gone.share_qr_expires_at) == (None, None, None)


async def test_deleting_a_member_unnames_their_scans_and_the_funnel_still_counts_them(db: Database) -> None:
    sharer = await add_member(db, NOW - timedelta(days=3), openid="oSHARER")
    scanner = await add_member(db, NOW, openid="oSCANNER")
    async with db.unit_of_work() as session:
        await sharing.record_scan(session, "oSCANNER", NOW, follow=True, referrer_id=sharer)
        await sharing.record_scan(session, "oOTHERvisitor", NOW, follow=False, referrer_id=sharer)
    async with db.sessions() as session:
        before = await sharing.sharing_report(session, NOW)
    async with db.unit_of_work() as session:
        await members.delete(session, scanner, NOW)
    async with db.sessions() as session:
        openids = sorted((await session.scalars(select(ShareScan.openid))).all())
        after = await sharing.sharing_report(session, NOW)
    assert openids == [f"deleted:{scanner}", "oOTHERvisitor"]  # no openid of the deleted person is kept
    assert [(r.scans, r.follows) for r in after.sharers] == [(r.scans, r.follows) for r in before.sharers] == [(2, 1)]


async def test_a_merge_moves_the_dropped_membership_s_survey_asks(db: Database) -> None:
    """B's answers count for A (and A's 90 quiet days see them); a trigger both doors met is A's; a survey B
    was due to be asked stays due for A."""
    ledger = make_ledger()
    keep = await add_member(db, NOW - timedelta(days=9), openid="oKEEPsurvey")
    drop = await add_member(db, NOW - timedelta(days=5), mp_openid="oDROPsurveymp")
    due = NOW + timedelta(days=6)
    async with db.unit_of_work() as session:
        await session.execute(update(Member).where(Member.id.in_([keep, drop])).values(unionid="uSURVEY"))  # type: ignore[attr-defined]
        await session.execute(update(Member).where(Member.id == drop).values(survey_due_until=due))
        survey = Survey(name="购物体验", kind="nps", question="推荐吗？", touchpoint="order", created_at=NOW)
        session.add(survey)
        await session.flush()

        def ask(member_id: int, trigger: str, score: int | None) -> SurveyAsk:
            return SurveyAsk(survey_id=survey.id or 0, member_id=member_id, trigger_key=trigger, touchpoint="order",
                             triggered_at=NOW, state="answered" if score is not None else "pending", score=score)

        session.add_all([ask(keep, "order:A-1", 9), ask(drop, "order:A-1", 3), ask(drop, "order:B-2", 6)])
    async with db.unit_of_work() as session:
        await merge.merge(session, ledger, TOKEN, keep, drop, note="同一人，两个入口", now=NOW)
    async with db.sessions() as session:
        asks = sorted((a.member_id, a.trigger_key, a.score) for a in (await session.scalars(select(SurveyAsk))).all())
        kept = await session.get(Member, keep)
    assert asks == [(keep, "order:A-1", 9), (keep, "order:B-2", 6)]
    assert kept is not None
    assert kept.survey_due_until == due
