"""The guided merge of two memberships that share a unionid, in the console: the preview of what moves, the
merge in one transaction (every ledger row kept, "balance == sum of the ledger == sum of live lots" for
both members, B left with nothing), the duplicate-membership anomaly resolved with the note, the audit, and
the refusals (same member, no shared unionid, already merged, a second post), roles and CSRF."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.console import texts
from storage import checkins, orders
from storage.members import credit_signup_bonus, link_unionid
from storage.models import (
    Anomaly,
    AuditEntry,
    Campaign,
    CampaignMember,
    Checkin,
    InteractionDay,
    LedgerEntry,
    Member,
    PurchaseOrder,
    Redemption,
    Ticket,
)
from tests.support.campaign_support import new_campaign
from tests.support.console_support import ConsoleWorld, console_world
from tests.support.invariants import assert_points_consistent
from tests.support.member_support import sign_up
from tests.support.redeem_support import add_reward

KEEP_OPENID = "oKEEPmemberOfficialAccountAAA"
DROP_MP = "oDROPmemberMiniProgramBBBBBB"
UNIONID = "uSHAREDunionidForBothDoorsCC"


@pytest.fixture
async def world(urls: tuple[str, str], clock) -> AsyncIterator[ConsoleWorld]:  # type: ignore[no-untyped-def]
    async with console_world(urls, clock) as found:
        yield found


@dataclass(frozen=True)
class Pair:
    keep: int
    drop: int
    anomaly: int
    shared_campaign: int
    own_campaign: int


async def _drop_member(world: ConsoleWorld) -> int:
    """B: a Mini Program membership with a sign-up bonus, two check-ins, an order, a coupon, two campaigns."""
    services, now = world.wechat.services, world.wechat.services.clock.now()
    async with world.db.unit_of_work() as session:
        member = Member(mp_openid=DROP_MP, referral_code="DROPB1", consent_at=now, consent_version="test",
                        joined_at=now - timedelta(days=2), last_interaction_at=now, created_at=now - timedelta(days=2),
                        birthday_month=3, birthday_day=4)
        session.add(member)
        await session.flush()
        assert member.id is not None
        await credit_signup_bonus(session, services.ledger, member.id, now - timedelta(days=2))
    for at in (now - timedelta(days=1), now):
        async with world.db.unit_of_work() as session:
            await checkins.check_in(session, services.ledger, member.id, at)
    async with world.db.unit_of_work() as session:
        found = await session.get(Member, member.id)
        assert found is not None
        await orders.record_paid(session, services.ledger, found, order_id="POS-DROP-1", amount_fen=8800, now=now)
    reward = await add_reward(world.db, now, cost=50)
    async with world.db.unit_of_work() as session:
        await services.rewards.redeem(session, member.id, reward, request_key="drop-redeem-1", now=now)
        found = await session.get(Member, member.id)
        assert found is not None
        await services.tickets.open(session, found, DROP_MP, "mp", category="商品", text="小程序里的投诉", now=now)
        today = now.astimezone(services.tz).date()
        session.add_all([InteractionDay(member_id=member.id, day=today - timedelta(days=1)),
                         InteractionDay(member_id=member.id, day=today)])  # today: A wrote too
    return member.id


async def duplicate(world: ConsoleWorld) -> Pair:
    services, now = world.wechat.services, world.wechat.services.clock.now()
    await sign_up(world.wechat, KEEP_OPENID, "13800138001")
    assert "签到成功" in await world.wechat.say(KEEP_OPENID, "签到")
    drop = await _drop_member(world)
    async with world.db.sessions() as session:
        keep = await session.scalar(select(Member.id).where(Member.openid == KEEP_OPENID))
    assert keep is not None
    shared = await new_campaign(world.db, services.campaigns, now, kind="join_bonus", points=10,
                                ends_at=now + timedelta(days=3), title="双方都参加")
    own = await new_campaign(world.db, services.campaigns, now, kind="join_bonus", points=7,
                             ends_at=now + timedelta(days=3), title="只有 B")
    for code, who in ((shared.code, keep), (shared.code, drop), (own.code, drop)):
        async with world.db.unit_of_work() as session:
            member = await session.get(Member, who)
            assert member is not None
            await services.campaigns.join(session, code, member, now)
    async with world.db.unit_of_work() as session:
        await link_unionid(session, openid=KEEP_OPENID, source="oa", unionid=UNIONID, now=now)
        await link_unionid(session, openid=DROP_MP, source="mp", unionid=UNIONID, now=now)
    async with world.db.sessions() as session:
        anomaly = await session.scalar(select(Anomaly).where(Anomaly.kind == "duplicate_membership"))
    assert anomaly is not None
    assert anomaly.dedupe_key == f"duplicate:{min(keep, drop)}:{max(keep, drop)}"
    assert shared.id is not None
    assert own.id is not None
    assert anomaly.id is not None
    return Pair(keep, drop, anomaly.id, shared.id, own.id)


async def count(world: ConsoleWorld, model: type, **where: object) -> int:
    async with world.db.sessions() as session:
        stmt = select(func.count()).select_from(model)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return int(await session.scalar(stmt) or 0)


async def member(world: ConsoleWorld, member_id: int) -> Member:
    async with world.db.sessions() as session:
        found = await session.get(Member, member_id)
    assert found is not None
    return found


def moves(html: str, name: str) -> str:
    start = html.index(f'data-moves="{name}">') + len(f'data-moves="{name}">')
    return html[start:html.index("</dd>", start)]


async def test_the_preview_shows_what_moves_and_changes_nothing(world: ConsoleWorld) -> None:
    pair = await duplicate(world)
    balances = await assert_points_consistent(world.db, [pair.keep, pair.drop])
    drop_entries = await count(world, LedgerEntry, member_id=pair.drop)
    admin = await world.as_role("admin")
    anomaly_page = await admin.get(f"/admin/anomalies/{pair.anomaly}")
    link = f"/admin/members/merge?keep={min(pair.keep, pair.drop)}&drop={max(pair.keep, pair.drop)}"
    assert link in anomaly_page.text
    page = await admin.get(f"/admin/members/merge?keep={pair.keep}&drop={pair.drop}&anomaly={pair.anomaly}")
    assert page.status_code == 200
    assert texts.MERGE_PREVIEW.format(drop=pair.drop, keep=pair.keep) in page.text
    assert moves(page.text, "ledger") == str(drop_entries)
    assert int(moves(page.text, "lots")) >= 1
    assert moves(page.text, "lot-points") == str(balances[pair.drop])
    assert (moves(page.text, "redemptions"), moves(page.text, "coupons"), moves(page.text, "orders")) == ("1", "1", "1")
    assert moves(page.text, "campaigns") == "1 / 1"
    assert moves(page.text, "checkins") == "1 / 1"  # yesterday moves; today A checked in too
    assert moves(page.text, "doors") == "mp_openid"
    assert moves(page.text, "balance") == str(balances[pair.keep] + balances[pair.drop])
    assert 'id="merge-form"' in page.text
    assert f'href="/admin/members/merge?keep={pair.drop}&drop={pair.keep}&anomaly={pair.anomaly}"' in page.text
    assert f'href="/admin/anomalies/{pair.anomaly}"' in page.text
    assert await assert_points_consistent(world.db, [pair.keep, pair.drop]) == balances
    assert (await member(world, pair.drop)).status == "active"


async def test_the_merge_moves_everything_and_keeps_the_books(world: ConsoleWorld) -> None:
    pair = await duplicate(world)
    before = await assert_points_consistent(world.db, [pair.keep, pair.drop])
    rows_before = await count(world, LedgerEntry)
    ids_before = await _entry_ids(world)
    admin = await world.as_role("admin")
    done = await admin.post("/admin/members/merge", {"keep": pair.keep, "drop": pair.drop,
                                                     "note": "同一人，小程序与公众号各注册了一次"})
    assert done.status_code == 200, done.text
    total = before[pair.keep] + before[pair.drop]
    assert texts.MERGE_DONE.format(drop=pair.drop, keep=pair.keep, balance=total) in done.text

    after = await assert_points_consistent(world.db, [pair.keep, pair.drop])
    assert after == {pair.keep: total, pair.drop: 0}
    assert await count(world, LedgerEntry) == rows_before
    assert await _entry_ids(world) == ids_before  # every row kept, none added
    assert await count(world, LedgerEntry, member_id=pair.drop) == 0
    keep, drop = await member(world, pair.keep), await member(world, pair.drop)
    assert (drop.status, drop.merged_into, drop.mp_openid, drop.balance) == ("deleted", pair.keep, None, 0)
    assert (keep.openid, keep.mp_openid, keep.unionid) == (KEEP_OPENID, DROP_MP, UNIONID)
    assert keep.birthday_month == 5  # A's own (sign-up said 1990-05-20), not B's
    assert keep.earned_total >= before[pair.keep]
    assert await count(world, Redemption, member_id=pair.keep) == 1
    assert await count(world, PurchaseOrder, member_id=pair.keep) == 1
    assert await count(world, Checkin, member_id=pair.keep) == 2
    assert await count(world, Checkin, member_id=pair.drop) == 1  # the day both checked in
    assert await count(world, CampaignMember, member_id=pair.drop) == 0
    assert await count(world, Ticket, member_id=pair.keep) == 1  # B's ticket is A's now, with its SLA
    assert await count(world, Ticket, member_id=pair.drop) == 0
    assert await count(world, InteractionDay, member_id=pair.keep) == 2  # today (both) and B's yesterday
    assert await count(world, InteractionDay, member_id=pair.drop) == 0
    async with world.db.sessions() as session:
        shared = await session.scalar(select(CampaignMember).where(CampaignMember.member_id == pair.keep)
                                      .where(CampaignMember.campaign_id == pair.shared_campaign))
        campaign = await session.get(Campaign, pair.shared_campaign)
        anomaly = await session.get(Anomaly, pair.anomaly)
        audits = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert shared is not None
    assert shared.paid == 1  # paid (a flag): both payouts are in A's ledger now
    assert campaign is not None
    assert campaign.participants == 1
    assert await count(world, CampaignMember, member_id=pair.keep, campaign_id=pair.own_campaign) == 1
    assert anomaly is not None
    assert (anomaly.state, anomaly.handled_by) == ("resolved", "admin")
    assert anomaly.note == "同一人，小程序与公众号各注册了一次"
    actions = [(a.action, a.target) for a in audits if a.action != "sign_in"]
    assert actions == [("anomaly.resolve", f"anomaly:{pair.anomaly}"), ("member.merge", f"member:{pair.keep}")]
    merged = json.loads(audits[-1].after or "")
    assert (merged["drop"], merged["balance"]) == (pair.drop, total)
    assert f"{total}" in await world.wechat.say(KEEP_OPENID, "积分")  # the person sees the whole balance


async def _entry_ids(world: ConsoleWorld) -> list[int]:
    async with world.db.sessions() as session:
        return list((await session.scalars(select(LedgerEntry.id).order_by(LedgerEntry.id))).all())


async def test_a_second_merge_changes_nothing(world: ConsoleWorld) -> None:
    pair = await duplicate(world)
    admin = await world.as_role("admin")
    form = {"keep": pair.keep, "drop": pair.drop, "note": "merged once"}
    assert (await admin.post("/admin/members/merge", form)).status_code == 200
    books = await assert_points_consistent(world.db, [pair.keep, pair.drop])
    rows, audits = await count(world, LedgerEntry), await count(world, AuditEntry)
    for data in (form, {**form, "keep": pair.drop, "drop": pair.keep}):
        again = await admin.post("/admin/members/merge", data)
        assert again.status_code == 409
        assert texts.MERGE_ALREADY.format(id=pair.drop) in again.text
    assert await assert_points_consistent(world.db, [pair.keep, pair.drop]) == books
    assert (await count(world, LedgerEntry), await count(world, AuditEntry)) == (rows, audits)
    assert (await admin.get(f"/admin/members/merge?keep={pair.keep}&drop={pair.drop}")).status_code == 409


async def test_refusals_show_the_form_with_the_reason(world: ConsoleWorld) -> None:
    pair = await duplicate(world)
    await sign_up(world.wechat, "oOTHERmemberWithoutUnionidDD", "13800138002")
    async with world.db.sessions() as session:
        other = await session.scalar(select(Member.id).where(Member.openid == "oOTHERmemberWithoutUnionidDD"))
    admin = await world.as_role("admin")
    audits = await count(world, AuditEntry)
    books = await assert_points_consistent(world.db, [pair.keep, pair.drop])
    cases = [
        ({"keep": pair.keep, "drop": pair.keep}, texts.MERGE_SAME),
        ({"keep": pair.keep, "drop": other}, texts.MERGE_NO_UNIONID),
        ({"keep": pair.keep, "drop": 999999}, texts.MERGE_UNKNOWN.format(id=999999)),
        ({"keep": "abc", "drop": pair.drop}, texts.MERGE_ASK),
    ]
    for data, message in cases:
        for answer in (await admin.post("/admin/members/merge", {**data, "note": "try it"}),
                       await admin.get("/admin/members/merge", params=data)):
            assert answer.status_code == 422, (data, answer.status_code)
            assert message in answer.text
    bad_note = await admin.post("/admin/members/merge", {"keep": pair.keep, "drop": pair.drop, "note": "x"})
    assert bad_note.status_code == 422
    assert texts.ANOMALY_NOTE_INVALID in bad_note.text
    assert 'id="merge-form"' in bad_note.text
    assert await count(world, AuditEntry) == audits
    assert (await member(world, pair.drop)).status == "active"
    assert await assert_points_consistent(world.db, [pair.keep, pair.drop]) == books


async def test_only_admins_merge_and_csrf_is_checked(world: ConsoleWorld) -> None:
    pair = await duplicate(world)
    path = f"/admin/members/merge?keep={pair.keep}&drop={pair.drop}"
    form = {"keep": pair.keep, "drop": pair.drop, "note": "not allowed"}
    for role in ("operator", "analyst", "clerk"):
        who = await world.as_role(role)
        for answer in (await who.get(path), await who.post("/admin/members/merge", form)):
            assert answer.status_code == 403
            assert "需要以下角色之一：管理员" in answer.text
    operator = await world.as_role("operator")
    assert "merge-link" not in (await operator.get(f"/admin/anomalies/{pair.anomaly}")).text
    admin = await world.as_role("admin")
    for csrf in ("", "stale"):
        refused = await admin.post("/admin/members/merge", form, csrf=csrf)
        assert refused.status_code == 403
        assert texts.CSRF_FAILED in refused.text
    assert (await member(world, pair.drop)).status == "active"
    assert await assert_points_consistent(world.db, [pair.keep, pair.drop])


async def test_what_happens_to_b_later_lands_on_a_and_the_books_hold(world: ConsoleWorld) -> None:
    """Why the rows are re-pointed: B's coupon cancelled, B's order refunded and B's lots expiring after
    the merge all find their entries on A, so A's books stay whole and B stays at 0 with no rows."""
    pair = await duplicate(world)
    admin = await world.as_role("admin")
    assert (await admin.post("/admin/members/merge", {"keep": pair.keep, "drop": pair.drop,
                                                      "note": "同一人"})).status_code == 200
    services = world.wechat.services
    merged = (await assert_points_consistent(world.db, [pair.keep]))[pair.keep]
    async with world.db.sessions() as session:
        redemption = await session.scalar(select(Redemption).where(Redemption.member_id == pair.keep))
    assert redemption is not None
    cancel = await world.wechat.client.post(f"/api/admin/redemptions/{redemption.id}/cancel",
                                            headers={"Authorization": "Bearer test-admin-token"})
    assert cancel.status_code == 200
    assert cancel.json()["points_restored"] == 50
    async with world.db.unit_of_work() as session:
        refunded = await orders.record_refund(session, services.ledger, order_id="POS-DROP-1", refund_id="RF-1",
                                              refund_fen=8800, now=services.clock.now())
    assert refunded.member_id == pair.keep
    books = await assert_points_consistent(world.db, [pair.keep, pair.drop])
    assert books == {pair.keep: merged + 50 - 88, pair.drop: 0}
    later = services.clock.now() + timedelta(days=800)  # every lot of both has lapsed
    async with world.db.unit_of_work() as session:
        await services.ledger.expire_member(session, pair.keep, later)
    assert await assert_points_consistent(world.db, [pair.keep, pair.drop]) == {pair.keep: 0, pair.drop: 0}
    assert await count(world, LedgerEntry, member_id=pair.drop) == 0
