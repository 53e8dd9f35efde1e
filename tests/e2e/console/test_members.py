"""Member 360 in the console, over HTTP as an operator's browser: search (phone, openid, referral code, coupon
code), the member page for every role, the audited phone reveal, points adjustment (bounds, balance,
the points.large right, double submit, CSRF, the member's message, the audit row) and the tier hold."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from bot.console import texts
from bot.wechat import pushtexts
from storage import anomalies
from storage.clock import FrozenClock
from storage.models import Anomaly, AuditEntry, LedgerEntry, Member, Outbox
from tests.support.console_support import ConsoleWorld, Operator, console_world, request_id_of
from tests.support.invariants import assert_points_consistent
from tests.support.member_support import ORDER_SECRET, PHONE, joined, pay, sign_up, snapshot
from tests.support.redeem_support import add_reward

ALICE = "oALICEconsoleMemberAAAAAAAAA"
MASKED = "138****8000"


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock, order_webhook_secret=ORDER_SECRET) as found:
        yield found


@pytest.fixture
async def alice(world: ConsoleWorld) -> int:
    await sign_up(world.wechat, ALICE, PHONE)
    member = await joined(world.wechat, ALICE)
    assert member.id is not None
    return member.id


async def adjust(me: Operator, member_id: int, points: object, reason: str = "门店活动补偿", *,
                 request_id: str | None = None, csrf: str | None = None) -> tuple[httpx.Response, str]:
    """Post the adjustment form as the page serves it (its own request id unless one is given)."""
    page = await me.get(f"/admin/members/{member_id}")
    rid = request_id or request_id_of(page.text)
    response = await me.post(f"/admin/members/{member_id}/adjust",
                             {"points": str(points), "reason": reason, "request_id": rid}, csrf=csrf)
    return response, rid


async def rows(world: ConsoleWorld, model: type, **where: object) -> list:
    async with world.db.sessions() as session:
        stmt = select(model).order_by(model.id)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return list((await session.scalars(stmt)).all())


async def balance(world: ConsoleWorld, member_id: int) -> int:
    async with world.db.sessions() as session:
        return int(await session.scalar(select(Member.balance).where(Member.id == member_id)) or 0)


# --- roles --------------------------------------------------------------------------------------

async def test_a_clerk_is_refused_every_member_route_with_the_roles_needed(world: ConsoleWorld, alice: int) -> None:
    clerk = await world.as_role("clerk")
    before = await snapshot(world.wechat)
    for response in (
        await clerk.get("/admin/members"), await clerk.post("/admin/members", {"q": PHONE}),
        await clerk.get(f"/admin/members/{alice}"),
    ):
        assert response.status_code == 403
        assert texts.FORBIDDEN.format(role="店员", needed="管理员、运营、分析师") in response.text
    for path, needed in ((f"/admin/members/{alice}/adjust", "管理员、运营"),
                         (f"/admin/members/{alice}/tier-hold", "管理员、运营"),
                         (f"/admin/members/{alice}/reveal", "管理员")):
        response = await clerk.post(path, {"points": "5", "reason": "不该成功", "request_id": "r-clerk",
                                           "tier": "金卡", "until": "2027-01-01"})
        assert response.status_code == 403
        assert texts.FORBIDDEN.format(role="店员", needed=needed) in response.text
    assert await snapshot(world.wechat) == before
    assert await rows(world, AuditEntry, action="phone.reveal") == []


async def test_an_analyst_reads_the_member_but_cannot_adjust_hold_or_reveal(world: ConsoleWorld, alice: int) -> None:
    analyst = await world.as_role("analyst")
    page = await analyst.get(f"/admin/members/{alice}")
    assert page.status_code == 200
    assert MASKED in page.text
    assert 'id="adjust-form"' not in page.text
    assert 'id="reveal"' not in page.text
    before = await snapshot(world.wechat)
    refused = await analyst.post(f"/admin/members/{alice}/adjust",
                                 {"points": "5", "reason": "分析师试试", "request_id": "r-analyst"})
    assert refused.status_code == 403
    assert texts.FORBIDDEN.format(role="分析师", needed="管理员、运营") in refused.text
    held = await analyst.post(f"/admin/members/{alice}/tier-hold", {"tier": "金卡", "until": "2027-01-01"})
    assert held.status_code == 403
    assert (await analyst.post(f"/admin/members/{alice}/reveal")).status_code == 403
    assert await snapshot(world.wechat) == before


async def test_an_operator_may_not_reveal_the_phone(world: ConsoleWorld, alice: int) -> None:
    operator = await world.as_role("operator")
    page = await operator.get(f"/admin/members/{alice}")
    assert 'id="reveal"' not in page.text
    refused = await operator.post(f"/admin/members/{alice}/reveal")
    assert refused.status_code == 403
    assert texts.FORBIDDEN.format(role="运营", needed="管理员") in refused.text
    assert PHONE not in refused.text


# --- search -------------------------------------------------------------------------------------

async def test_search_by_phone_openid_referral_code_and_coupon_code(world: ConsoleWorld, alice: int) -> None:
    services = world.wechat.services
    reward_id = await add_reward(world.db, services.clock.now(), cost=50)
    async with world.db.unit_of_work() as session:
        issued = await services.rewards.redeem(session, alice, reward_id, request_key="r-search",
                                               now=services.clock.now())
    member = await joined(world.wechat, ALICE)
    analyst = await world.as_role("analyst")
    # The page's form posts, so a phone stays out of URLs; a link (?q=) searches the same way.
    for query in (PHONE, "138 0013 8000", "+86 138-0013-8000", ALICE, member.referral_code,
                  str(member.referral_code).lower(), issued.redemption.code, issued.redemption.code.lower()):
        found = await analyst.post("/admin/members", {"q": query})
        assert found.status_code == 303, query
        assert found.headers["location"] == f"/admin/members/{alice}"
    for query in ("+86 138-0013-8000", ALICE, member.referral_code, issued.redemption.code):
        linked = await analyst.get("/admin/members", params={"q": query})
        assert linked.status_code == 303, query
        assert linked.headers["location"] == f"/admin/members/{alice}"
    for query in ("13900000000", "oNOBODY", "<script>x</script>"):
        none = await analyst.post("/admin/members", {"q": query})
        assert none.status_code == 200
        assert 'id="search-none"' in none.text
        assert "13900000000" not in none.text  # not even the phone that was asked for
    assert texts.SEARCH_NONE_PHONE in (await analyst.post("/admin/members", {"q": "13900000000"})).text
    assert "&lt;script&gt;x&lt;/script&gt;" in none.text
    assert "<script>x" not in none.text
    stale = await analyst.post("/admin/members", {"q": PHONE}, csrf="stale")
    assert stale.status_code == 403
    empty = await analyst.get("/admin/members")
    assert texts.SEARCH_HINT in empty.text


async def test_an_unknown_member_is_a_404_page(world: ConsoleWorld) -> None:
    admin = await world.as_role("admin")
    for response in (await admin.get("/admin/members/987654"),
                     await admin.post("/admin/members/987654/adjust",
                                      {"points": "5", "reason": "没有这个人", "request_id": "r-404"}),
                     await admin.post("/admin/members/987654/tier-hold", {"tier": "金卡", "until": "2027-01-01"}),
                     await admin.post("/admin/members/987654/reveal")):
        assert response.status_code == 404
        assert texts.MEMBER_NOT_FOUND in response.text
    assert await rows(world, AuditEntry, action="phone.reveal") == []


# --- the page -----------------------------------------------------------------------------------

async def test_the_member_page_shows_the_whole_member_and_never_the_full_phone(
    world: ConsoleWorld, alice: int,
) -> None:
    services = world.wechat.services
    now = services.clock.now()
    await pay(world.wechat, "P-360", 12_300, openid=ALICE)
    reward_id = await add_reward(world.db, now, cost=50, name="咖啡券")
    async with world.db.unit_of_work() as session:
        issued = await services.rewards.redeem(session, alice, reward_id, request_key="r-page", now=now)
        await anomalies.record(session, kind="daily_cap", detail="cap <b>hit</b>", dedupe_key="t-cap",
                               now=now, member_id=alice)
        session.add(Outbox(dedupe_key="t-push", openid=ALICE, member_id=alice, kind="expiry", category="marketing",
                           payload="{}", status="undeliverable", attempts=3, next_attempt_at=now, created_at=now,
                           last_error="no channel: outside the 48 h window and no template configured"))
    [flag] = await rows(world, Anomaly, member_id=alice)
    async with world.db.sessions() as session:
        qualifying = await services.ledger.qualifying_points(session, alice, now)
    assert qualifying == 100 + 123  # the sign-up bonus and the purchase; the redemption does not lower it
    for role in ("admin", "operator", "analyst"):
        me = await world.as_role(role)
        page = await me.get(f"/admin/members/{alice}")
        assert page.status_code == 200
        text = page.text
        assert PHONE not in text
        assert MASKED in text
        assert f'id="balance" class="num">{await balance(world, alice)}<' in text
        assert "注册会员奖励" in text  # the ledger reason in words
        assert "消费 123.00 元" in text
        assert "P-360" in text
        assert issued.redemption.code in text
        assert "咖啡券" in text
        assert "未使用" in text
        assert "no channel: outside the 48 h window" in text
        assert f'href="/admin/anomalies/{flag.id}"' in text
        assert "cap &lt;b&gt;hit&lt;/b&gt;" in text
        assert "距银卡还差" in text
        assert "2026-01" in text  # the consent version
        assert f'id="qualifying" class="num">{qualifying}<' in text


async def test_the_ledger_pages_newest_first_twenty_at_a_time(world: ConsoleWorld, alice: int) -> None:
    services = world.wechat.services
    async with world.db.unit_of_work() as session:
        for i in range(24):
            await services.ledger.earn(session, alice, 1, key=f"t-page:{i}", kind="adjust", now=services.clock.now(),
                                       reason=f"第{i}笔")
    me = await world.as_role("analyst")
    first = await me.get(f"/admin/members/{alice}")
    entries = [int(n) for n in re.findall(r'data-entry="(\d+)"', first.text)]
    assert len(entries) == 20
    assert entries == sorted(entries, reverse=True)
    older = re.search(r'href="(/admin/members/\d+\?before=\d+)" id="older"', first.text)
    assert older is not None
    second = await me.get(older.group(1))
    rest = [int(n) for n in re.findall(r'data-entry="(\d+)"', second.text)]
    assert len(rest) == 25 - 20  # 24 adjustments and the sign-up bonus
    assert max(rest) < min(entries)
    assert 'id="older"' not in second.text


async def test_the_admin_reveals_the_phone_once_and_it_is_audited(world: ConsoleWorld, alice: int) -> None:
    admin = await world.as_role("admin")
    page = await admin.get(f"/admin/members/{alice}")
    assert PHONE not in page.text
    assert 'id="reveal"' in page.text
    for token in ("", "stale"):
        refused = await admin.post(f"/admin/members/{alice}/reveal", csrf=token)
        assert refused.status_code == 403
        assert PHONE not in refused.text
    assert await rows(world, AuditEntry, action="phone.reveal") == []
    shown = await admin.post(f"/admin/members/{alice}/reveal")
    assert shown.status_code == 200
    assert f'id="phone-full">{PHONE}<' in shown.text
    [row] = await rows(world, AuditEntry, action="phone.reveal")
    assert (row.actor, row.actor_role, row.target, row.client) == ("admin", "admin", f"member:{alice}", "127.0.0.1")
    assert PHONE not in f"{row.before}{row.after}"
    again = await admin.get(f"/admin/members/{alice}")
    assert PHONE not in again.text


# --- points adjustment --------------------------------------------------------------------------

async def test_an_operator_adjusts_points_up_and_down_and_the_member_is_told(world: ConsoleWorld, alice: int) -> None:
    operator = await world.as_role("operator")
    start = await balance(world, alice)
    added, rid = await adjust(operator, alice, 50, "  门店活动补偿  ")
    assert added.status_code == 303
    assert added.headers["location"] == f"/admin/members/{alice}?done=adjusted"
    page = await operator.get(f"/admin/members/{alice}?done=adjusted")
    assert texts.ADJUSTED in page.text
    assert f'id="balance" class="num">{start + 50}<' in page.text
    assert "门店活动补偿" in page.text
    [entry] = await rows(world, LedgerEntry, idempotency_key=f"adjust:{rid}")
    assert (entry.kind, entry.delta, entry.reason, entry.actor) == ("adjust", 50, "门店活动补偿", "operator")
    taken, rid2 = await adjust(operator, alice, -30, "误操作扣回")
    assert taken.status_code == 303
    assert await balance(world, alice) == start + 20
    [push, push2] = await rows(world, Outbox, kind="points_adjusted")
    assert (push.dedupe_key, push.member_id, push.openid, push.category) == (
        f"adjust:{rid}", alice, ALICE, "transactional")
    told = [pushtexts.text_for(p.kind, json.loads(p.payload)) for p in (push, push2)]
    assert told == [f"积分调整 +50：门店活动补偿。当前积分 {start + 50}。",
                    f"积分调整 -30：误操作扣回。当前积分 {start + 20}。"]
    audits = await rows(world, AuditEntry, action="points.adjust")
    moved = [(a.actor, a.target, json.loads(a.before or "{}"), json.loads(a.after or "{}")["balance"]) for a in audits]
    assert moved == [
        ("operator", f"member:{alice}", {"balance": start}, start + 50),
        ("operator", f"member:{alice}", {"balance": start + 50}, start + 20),
    ]
    assert json.loads(audits[1].after or "{}")["reason"] == "误操作扣回"
    history = await world.wechat.say(ALICE, "明细")
    assert "积分调整 -30" in history
    assert "积分调整 +50" in history
    await assert_points_consistent(world.db)


async def test_a_double_submitted_form_applies_once(world: ConsoleWorld, alice: int) -> None:
    operator = await world.as_role("operator")
    start = await balance(world, alice)
    first, rid = await adjust(operator, alice, 40)
    second, _ = await adjust(operator, alice, 40, request_id=rid)
    assert first.status_code == second.status_code == 303
    assert await balance(world, alice) == start + 40
    assert len(await rows(world, LedgerEntry, kind="adjust")) == 1
    assert len(await rows(world, Outbox, kind="points_adjusted")) == 1
    assert len(await rows(world, AuditEntry, action="points.adjust")) == 1
    await assert_points_consistent(world.db)


async def test_taking_more_than_the_balance_is_refused_and_the_form_says_how_much_can_be_taken(
    world: ConsoleWorld, alice: int,
) -> None:
    operator = await world.as_role("operator")
    start = await balance(world, alice)
    page = await operator.get(f"/admin/members/{alice}")
    assert texts.ADJUST_HINT.format(balance=start) in page.text
    before = await snapshot(world.wechat)
    refused, _ = await adjust(operator, alice, -(start + 1), "扣太多了")
    assert refused.status_code == 409
    assert texts.ADJUST_ERRORS["over_balance"].format(balance=start) in refused.text
    assert 'value="扣太多了"' in refused.text
    assert await snapshot(world.wechat) == before
    all_of_it, _ = await adjust(operator, alice, -start, "全部扣回")
    assert all_of_it.status_code == 303
    assert await balance(world, alice) == 0
    await assert_points_consistent(world.db)


@pytest.mark.parametrize(("points", "reason", "problem"), [
    ("", "合理的原因", "not_number"), ("abc", "合理的原因", "not_number"), ("1.5", "合理的原因", "not_number"),
    ("0", "合理的原因", "zero"), ("100001", "合理的原因", "range"), ("-100001", "合理的原因", "range"),
    ("10", "", "length"), ("10", " 好 ", "length"), ("10", "长" * 201, "length"),
])
async def test_invalid_values_show_the_form_again_with_the_error_and_write_nothing(
    world: ConsoleWorld, alice: int, points: str, reason: str, problem: str,
) -> None:
    admin = await world.as_role("admin")
    before = await snapshot(world.wechat)
    response, _ = await adjust(admin, alice, points, reason)
    assert response.status_code == 422
    message = texts.ADJUST_ERRORS[problem].format(limit=100000, low=2, high=200)
    assert message in response.text
    assert 'id="adjust-form"' in response.text
    assert await snapshot(world.wechat) == before
    assert await rows(world, AuditEntry, action="points.adjust") == []
    assert await rows(world, Outbox, kind="points_adjusted") == []


async def test_an_operator_cannot_adjust_more_than_1000_and_an_admin_can(world: ConsoleWorld, alice: int) -> None:
    operator = await world.as_role("operator")
    before = await snapshot(world.wechat)
    for points in (1001, -1001):
        refused, _ = await adjust(operator, alice, points, "大额调整")
        assert refused.status_code == 403
        assert texts.ADJUST_ERRORS["large"] in refused.text
    assert await snapshot(world.wechat) == before
    assert (await adjust(operator, alice, 1000, "正好一千"))[0].status_code == 303
    admin = await world.as_role("admin")
    start = await balance(world, alice)
    done, _ = await adjust(admin, alice, 5000, "大额补偿")
    assert done.status_code == 303
    assert await balance(world, alice) == start + 5000
    member = await joined(world.wechat, ALICE)
    assert member.tier == "普通"  # adjustments do not count towards the tier
    await assert_points_consistent(world.db)


async def test_a_missing_or_stale_csrf_token_changes_nothing(world: ConsoleWorld, alice: int) -> None:
    operator = await world.as_role("operator")
    before = await snapshot(world.wechat)
    for token in ("", "stale-token"):
        refused, _ = await adjust(operator, alice, 10, "跨站请求", csrf=token)
        assert refused.status_code == 403
        assert texts.CSRF_FAILED in refused.text
        held = await operator.post(f"/admin/members/{alice}/tier-hold", {"tier": "金卡", "until": "2027-01-01"},
                                   csrf=token)
        assert held.status_code == 403
    assert await snapshot(world.wechat) == before
    assert (await joined(world.wechat, ALICE)).tier_hold_until is None
    assert await rows(world, AuditEntry, action="points.adjust") == []


async def test_a_reason_with_markup_is_shown_escaped(world: ConsoleWorld, alice: int) -> None:
    operator = await world.as_role("operator")
    reason = '<script>alert("x")</script>'
    done, _ = await adjust(operator, alice, 5, reason)
    assert done.status_code == 303
    page = await operator.get(f"/admin/members/{alice}")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert "<script>alert" not in page.text
    refused, _ = await adjust(operator, alice, 0, reason)
    assert 'value="&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"' in refused.text


# --- tier hold ----------------------------------------------------------------------------------

async def test_an_operator_holds_a_tier_until_a_date_and_clears_it(world: ConsoleWorld, alice: int) -> None:
    operator = await world.as_role("operator")
    today = world.wechat.services.clock.now().date()
    until = today + timedelta(days=60)
    held = await operator.post(f"/admin/members/{alice}/tier-hold", {"tier": "金卡", "until": until.isoformat()})
    assert held.status_code == 303
    member = await joined(world.wechat, ALICE)
    assert (member.tier, member.tier_hold_until) == ("金卡", until)
    page = await operator.get(held.headers["location"])
    assert texts.HELD in page.text
    assert 'id="tier">金卡<' in page.text
    assert f'id="hold">{until.isoformat()}<' in page.text
    cleared = await operator.post(f"/admin/members/{alice}/tier-hold", {"clear": "1"})
    assert cleared.status_code == 303
    member = await joined(world.wechat, ALICE)
    assert (member.tier, member.tier_hold_until) == ("金卡", None)
    audits = await rows(world, AuditEntry, action="tier.hold")
    assert [(json.loads(a.before or ""), json.loads(a.after or "")) for a in audits] == [
        ({"tier": "普通", "hold_until": None}, {"tier": "金卡", "hold_until": until.isoformat()}),
        ({"tier": "金卡", "hold_until": until.isoformat()}, {"tier": "金卡", "hold_until": None}),
    ]
    assert {a.actor for a in audits} == {"operator"}


@pytest.mark.parametrize(("form", "field"), [
    ({"tier": "金卡", "until": "2026-11-22"}, "until"),  # today is not after today
    ({"tier": "金卡", "until": "2026-01-01"}, "until"),
    ({"tier": "金卡", "until": "not-a-date"}, "until"),
    ({"tier": "金卡", "until": ""}, "until"),
    ({"tier": "黑卡", "until": "2027-01-01"}, "tier"),
    ({"tier": "", "until": "2027-01-01"}, "tier"),
])
async def test_an_invalid_tier_hold_shows_the_form_again_and_writes_nothing(
    world: ConsoleWorld, alice: int, form: dict[str, str], field: str,
) -> None:
    operator = await world.as_role("operator")
    before = await snapshot(world.wechat)
    response = await operator.post(f"/admin/members/{alice}/tier-hold", form)
    assert response.status_code == 422
    assert texts.HOLD_ERRORS[field] in response.text
    assert f'data-field="{field}"' in response.text
    assert await snapshot(world.wechat) == before
    assert (await joined(world.wechat, ALICE)).tier_hold_until is None
    async with world.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)
                                    .where(AuditEntry.action == "tier.hold")) == 0
