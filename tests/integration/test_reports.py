"""Every KPI figure of storage/reports.py against a small world built by hand, on both backends; the
expected numbers are worked out in the comments. The day is 2026-06-01 (Asia/Shanghai): its window is
[06-01 00:00, 06-02 00:00) local, "30d" starts 05-03, "90d" 03-04, "365d" 2025-06-02."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from scheduler.jobs import JobContext, kpi_snapshot
from storage import reports
from storage.db import Database
from storage.ledger import Ledger
from storage.models import (
    Anomaly,
    Checkin,
    InteractionDay,
    KpiSnapshot,
    Member,
    Outbox,
    PurchaseOrder,
    Redemption,
    Reward,
    SubscribeCredit,
    Ticket,
)
from storage.rules import Rules
from tests.support.factories import TZ, add_member, local

DAY = date(2026, 6, 1)
RULES = Rules(point_value_fen=2)
D = local(2026, 6, 1)  # the day's first instant


async def _members(db: Database) -> dict[str, int]:
    ids = {
        "A": await add_member(db, local(2025, 4, 20, 10), last_interaction_at=local(2026, 6, 1, 9)),
        "B": await add_member(db, local(2026, 6, 1, 10), mp_openid="oMPb", last_interaction_at=local(2026, 5, 25)),
        "C": await add_member(db, local(2026, 5, 20)),
        "E": await add_member(db, local(2026, 6, 1, 23, 30), opt_out=True),
        "G": await add_member(db, local(2026, 6, 2, 0, 10)),
        "H": await add_member(db, local(2026, 3, 1), status="unsubscribed"),
    }
    async with db.unit_of_work() as session:
        session.add(Member(openid="oVISITORfff", created_at=local(2026, 5, 25), last_interaction_at=local(2026, 5, 25)))
        await session.execute(update(Member).where(Member.id == ids["B"]).values(referrer_id=ids["A"]))
        await session.execute(update(Member).where(Member.id == ids["C"]).values(
            status="deleted", deleted_at=local(2026, 6, 1, 12), openid=None))
        session.add(SubscribeCredit(openid="oMPb", template_id="t", credits=0, updated_at=D))
    return ids


async def _orders(db: Database, m: dict[str, int]) -> None:
    rows = [  # (member, local time, amount fen, refunded fen)
        ("A", (2026, 6, 1, 10), 10000, 0), ("A", (2026, 6, 1, 11), 5000, 2000),  # a refund in the window
        ("B", (2026, 6, 1, 12), 8000, 8000),  # refunded whole: no paid order
        ("A", (2026, 4, 1, 10), 20000, 0), ("E", (2026, 1, 10, 10), 7000, 0),
        ("H", (2026, 5, 1, 10), 3000, 0), ("H", (2025, 5, 15, 10), 99999, 0),  # the last: outside 365 days
    ]
    async with db.unit_of_work() as session:
        for n, (who, at, fen, refunded) in enumerate(rows):
            session.add(PurchaseOrder(order_id=f"o{n}", member_id=m[who], amount_fen=fen, points=0,
                                      refunded_fen=refunded, created_at=local(*at)))


async def _points(db: Database, m: dict[str, int]) -> None:
    ledger = Ledger(RULES, TZ)
    steps = [  # (member, local time, +earn kind / -spend, points)
        ("A", (2025, 5, 10, 10), "checkin", 300),  # lot expires 2026-06-01 00:00: expired on the day
        ("E", (2025, 6, 5, 10), "checkin", 60),  # expires 2026-07-01: within 30 days of the day's end
        ("E", (2025, 7, 3, 10), "checkin", 70),  # expires 2026-08-01: within 90, not 60
        ("H", (2026, 5, 5, 10), "campaign", 200), ("H", (2026, 5, 6, 10), "redeem", 80),
        ("A", (2026, 6, 1, 10), "purchase", 100), ("B", (2026, 6, 1, 10), "signup", 100),
    ]
    for n, (who, at, kind, points) in enumerate(steps):
        async with db.unit_of_work() as session:
            if kind == "redeem":
                await ledger.spend(session, m[who], points, key=f"k{n}", kind=kind, now=local(*at))
            else:
                await ledger.earn(session, m[who], points, key=f"k{n}", kind=kind, now=local(*at))
        if n == 4:
            async with db.unit_of_work() as session:
                await ledger.expire_member(session, m["A"], local(2026, 6, 1, 0, 10))
    async with db.unit_of_work() as session:
        await ledger.spend(session, m["A"], 50, key="k-a", kind="redeem", now=local(2026, 6, 1, 13))


async def _coupons_and_checkins(db: Database, m: dict[str, int]) -> None:
    async with db.unit_of_work() as session:
        reward = Reward(name="券", cost=10, created_at=D)
        session.add(reward)
        await session.flush()
        assert reward.id is not None
        for n, (who, at, status) in enumerate([
            ("A", (2026, 6, 1, 13), "used"), ("H", (2026, 5, 6, 12), "issued"), ("H", (2026, 5, 6, 13), "cancelled"),
        ]):
            session.add(Redemption(
                member_id=m[who], reward_id=reward.id, request_key=f"r{n}", cost=10, code=f"C{n}", status=status,
                created_at=local(*at), expires_at=local(2026, 12, 1), used_at=local(*at) if status == "used" else None,
            ))
        for who, day in [("A", date(2026, 5, 12)), ("A", DAY), ("C", DAY)]:
            session.add(Checkin(member_id=m[who], day=day, streak=1, created_at=datetime.combine(
                day, datetime.min.time(), tzinfo=TZ) + timedelta(hours=8)))
        days = {"A": [DAY, date(2026, 5, 20), date(2026, 5, 10), date(2026, 5, 2)], "B": [DAY],
                "H": [date(2026, 5, 31), date(2026, 5, 4)], "C": [date(2026, 5, 21), date(2026, 5, 22)]}
        for who, dates in days.items():
            session.add_all(InteractionDay(member_id=m[who], day=d) for d in dates)


async def _pushes_and_anomalies(db: Database, m: dict[str, int]) -> None:
    sends = [("A", (2026, 5, 10, 10)), ("A", (2026, 5, 20, 10)), ("A", (2026, 5, 28, 10)), ("A", (2026, 5, 2, 23))]
    sends += [("H", (2026, 5, day, 10)) for day in range(4, 10)]
    rows = [(who, at, "marketing", "sent", None) for who, at in sends]
    rows += [("B", (2026, 5, 20, 10), "transactional", "sent", None),
             ("E", (2026, 5, 20, 10), "marketing", "pending", None),
             ("B", (2026, 6, 1, 9), "marketing", "undeliverable", "no channel"),
             ("E", (2026, 6, 1, 9, 30), "marketing", "undeliverable", "no channel"),
             ("H", (2026, 6, 1, 10), "marketing", "undeliverable", "openid unknown"),
             ("H", (2026, 5, 31, 10), "marketing", "undeliverable", "no channel")]  # the day before
    async with db.unit_of_work() as session:
        for n, (who, at, category, status, error) in enumerate(rows):
            sent = local(*at) if status == "sent" else None
            session.add(Outbox(dedupe_key=f"p{n}", member_id=m[who], openid="o", kind="birthday", category=category,
                               payload="{}", status=status, last_error=error, next_attempt_at=local(*at),
                               created_at=local(*at), sent_at=sent))
        for n, (created, state, resolved) in enumerate([
            ((2026, 5, 1), "open", None), ((2026, 5, 10), "resolved", (2026, 5, 20)),
            ((2026, 5, 15), "acknowledged", None), ((2026, 6, 2, 1), "open", None),
            ((2026, 5, 16), "resolved", (2026, 6, 2, 3)),  # resolved after the day: still open on it
        ]):
            session.add(Anomaly(kind="x", detail="", dedupe_key=f"a{n}", created_at=local(*created), state=state,
                                resolved_at=local(*resolved) if resolved else None))


@pytest.fixture
async def world(db: Database) -> dict[str, int]:
    m = await _members(db)
    await _orders(db, m)
    await _points(db, m)
    await _coupons_and_checkins(db, m)
    await _pushes_and_anomalies(db, m)
    return m


async def test_every_figure_of_the_hand_built_world(db: Database, world: dict[str, int]) -> None:
    async with db.sessions() as session:
        f = await reports.compute(session, DAY, TZ, RULES)
    expected = {
        # growth: followers A B E and the visitor (C deleted, G after the day, H unsubscribed); members A B E H;
        # sign-ups B E; deletions C; referred B of B C E in 30 days; a year before only A was a member: 4/1 - 1
        "followers": 4, "members": 4, "signups": 2, "deletions": 1, "net_growth": 1,
        "referral_share_30d": 0.3333, "yoy_growth": 3.0,
        # spending: A's 100.00 and 50.00 - 20.00 refunded (B's refunded whole is no order); in 90 days A has 3
        # orders, H 1: 1 of 2 repeat; in 365 days A 330.00 of 430.00 (top 1 % of 3 buyers is one)
        "orders": 2, "sales_yuan": 130.0, "aov_yuan": 65.0, "repeat_rate_90d": 0.5, "top1_share_365d": 0.7674,
        # value: issued today 100 + 100, redeemed 50, A's 300 expired at 00:00; in 12 months issued 60 + 70 +
        # 200 + 100 + 100 = 530, redeemed 80 + 50 = 130; liability 300 - 300 + 60 + 70 + 200 - 80 + 100 + 100 - 50
        "points_issued": 200, "points_redeemed": 50, "points_expired": 300, "redemption_rate_12m": 0.2453,
        "coupon_use_rate_12m": 0.5, "liability_points": 400, "liability_yuan": 8.0,
        "expiring_30d": 60, "expiring_60d": 60, "expiring_90d": 130,
        "expiring_30d_yuan": 1.2, "expiring_60d_yuan": 1.2, "expiring_90d_yuan": 2.6,
        # experience: active A (3 days in 30), B (1), H (2): 6 / 3; A checked in today (C is deleted)
        "active_members": 3, "interactions_per_active": 2.0, "checkin_participation": 0.3333,
        # marketing sent in 30 days: A exactly 3, H 6, B and E none: mean 9 / 4
        "touches_mean": 2.25, "touches_share_0": 0.5, "touches_share_3_5": 0.25,
        "touches_hist": {"0": 2, "3": 1, "6+": 1},
        # opted in A and B (E opted out, H unsubscribed): A wrote within 48 h, B's credit is spent
        "push_reach": 0.5, "undeliverable": 3, "undeliverable_reasons": {"no channel": 2, "openid unknown": 1},
        # sent 04-26..05-25: A's 05-02 and 05-20 (nothing within 7 days) and 05-10 (check-in 05-12), H's
        # 05-04..05-09 (redemptions 05-06 12:00 and 13:00 convert the first three): 4 of 9
        "push_conversion_7d": 0.4444, "open_anomalies": 3,
        # no satisfaction survey answered: no NPS (tests/e2e/console/test_surveys.py has one)
        "nps_30d": None, "nps_answers_30d": 0,
        # no ticket in the 30 days: counted 0, the shares and the rating have nothing to read
        "tickets_30d": 0, "tickets_answer_sla_share": None, "tickets_resolve_sla_share": None,
        "ticket_rating_30d": None,
    }
    assert f == expected
    async with db.sessions() as session:  # with a template configured, B is reachable by it too
        assert (await reports.compute(session, DAY, TZ, RULES, templates=True))["push_reach"] == 1.0


async def test_the_snapshot_rerun_and_a_missed_day_rebuilt_by_the_job(db: Database, world: dict[str, int]) -> None:
    ctx = JobContext(db, Ledger(RULES, TZ))
    assert await kpi_snapshot(ctx, local(2026, 6, 2, 0, 30)) == 1  # the night after the day
    first = await _stored(db)
    assert await kpi_snapshot(ctx, local(2026, 6, 2, 9)) == 1  # a re-run: the same row, replaced
    again = await _stored(db)
    assert [(d, f) for d, f, _ in again] == [(d, f) for d, f, _ in first]
    assert again[0][2] == local(2026, 6, 2, 9)
    assert first[0][1]["members"] == 4
    async with db.sessions() as session:
        [(day, figures)] = await reports.series(session, DAY, DAY)
    assert (day, figures) == (DAY, first[0][1])


async def _stored(db: Database) -> list[tuple[date, dict[str, object], datetime]]:
    async with db.sessions() as session:
        rows = (await session.execute(select(KpiSnapshot.day, KpiSnapshot.figures, KpiSnapshot.computed_at))).all()
    return [(d, json.loads(f), at) for d, f, at in rows]


async def test_the_service_figures_of_the_day_read_the_tickets_of_its_30_days(db: Database) -> None:
    """Tickets opened in the 30 days before the day's end (2026-06-01 24:00 local), as they stood then:
    T1 answered in time and resolved in time, rated 5; T2 answered late, resolved in time, rated 2; T3 not
    answered and past its answer time (a miss), not yet due for resolution; T4 not answered and not due yet
    (counted in neither share); T5 opened 31 days before: outside. Answer: 1 of 3 in time; resolve: 2 of 2."""
    member = await add_member(db, local(2026, 5, 1))
    end = local(2026, 6, 2)

    def ticket(code: str, opened: datetime, *, answer_h: int, resolve_h: int, answered: float | None = None,
               resolved: float | None = None, rating: int | None = None) -> Ticket:
        return Ticket(
            code=code, member_id=member, openid="oTICKETS", source="oa", category="服务", created_at=opened,
            answer_due_at=opened + timedelta(hours=answer_h), resolve_due_at=opened + timedelta(hours=resolve_h),
            first_answer_at=None if answered is None else opened + timedelta(hours=answered),
            resolved_at=None if resolved is None else opened + timedelta(hours=resolved), rating=rating,
            state="resolved" if resolved is not None else ("answered" if answered is not None else "open"),
        )

    async with db.unit_of_work() as session:
        session.add_all([
            ticket("T-AAAAA1", local(2026, 5, 20, 10), answer_h=2, resolve_h=48, answered=1, resolved=30, rating=5),
            ticket("T-AAAAA2", local(2026, 5, 25, 10), answer_h=2, resolve_h=48, answered=3, resolved=40, rating=2),
            ticket("T-AAAAA3", end - timedelta(hours=5), answer_h=2, resolve_h=48),
            ticket("T-AAAAA4", end - timedelta(hours=1), answer_h=2, resolve_h=48),
            ticket("T-AAAAA5", end - timedelta(days=31), answer_h=2, resolve_h=48, answered=1, resolved=2, rating=1),
        ])
    async with db.sessions() as session:
        f = await reports.compute(session, DAY, TZ, RULES)
    assert (f["tickets_30d"], f["tickets_answer_sla_share"], f["tickets_resolve_sla_share"],
            f["ticket_rating_30d"]) == (4, 0.3333, 1.0, 3.5)
