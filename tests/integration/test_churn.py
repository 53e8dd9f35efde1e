"""Churn risk from each member's own rhythm on a hand-built world (every member's expected flag worked out
below), the win-back offer under an experiment (the holdout gets nothing, an arm's offer size is what the
push and the check-in give), and the report per stage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from scheduler.jobs import JobContext, winback
from storage import audit, experiments
from storage import winback as winbacks
from storage.db import Database
from storage.models import (
    ExperimentAssignment,
    InteractionDay,
    Member,
    Outbox,
    PurchaseOrder,
    WinbackOffer,
    WinbackStep,
)
from storage.rules import Rules
from tests.support.factories import TZ, add_member, make_ledger

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai, the job's hour
TODAY = NOW.astimezone(TZ).date()


async def _orders(db: Database, member_id: int, *days_ago: int) -> None:
    async with db.unit_of_work() as session:
        for days in days_ago:
            session.add(PurchaseOrder(order_id=f"CH-{member_id}-{days}", member_id=member_id, amount_fen=5000,
                                      points=50, created_at=NOW - timedelta(days=days)))


async def _visits(db: Database, member_id: int, *days_ago: int) -> None:
    async with db.unit_of_work() as session:
        for days in days_ago:
            session.add(InteractionDay(member_id=member_id, day=TODAY - timedelta(days=days)))


async def test_each_member_is_flagged_by_their_own_rhythm(db: Database) -> None:
    seen = NOW - timedelta(days=1)
    ids = {name: await add_member(db, NOW - timedelta(days=800), openid=f"oCHURN{name}", last_interaction_at=seen)
           for name in ("weekly_late", "weekly_fine", "monthly_fine", "one_old", "one_recent", "fading",
                        "steady_visits", "quiet_no_orders", "active_no_orders")}
    # Orders every 7 days, the last 20 days ago: 20 > 2 x 7 -> at risk.
    await _orders(db, ids["weekly_late"], 20, 27, 34, 41)
    # Every 7 days, the last 10 days ago: 10 <= 14 -> fine.
    await _orders(db, ids["weekly_fine"], 10, 17, 24)
    # Gaps 30, 30, 90 (median 30), the last 50 days ago: 50 <= 60 -> fine.
    await _orders(db, ids["monthly_fine"], 50, 80, 110, 200)
    # One order 61 days ago: over the 60 days for a one-order member -> at risk; 59 days ago -> fine.
    await _orders(db, ids["one_old"], 61)
    await _orders(db, ids["one_recent"], 59)
    # A regular buyer whose visits fell from 10 days to 4 (less than half) -> at risk despite the orders.
    await _orders(db, ids["fading"], 5, 12, 19)
    await _visits(db, ids["fading"], *range(1, 5), *range(31, 41))
    # 5 visit days then 6: no fall -> fine (and a recent order).
    await _orders(db, ids["steady_visits"], 3)
    await _visits(db, ids["steady_visits"], *range(1, 6), *range(31, 37))
    expected = {"weekly_late": True, "weekly_fine": False, "monthly_fine": False, "one_old": True,
                "one_recent": False, "fading": True, "steady_visits": False, "quiet_no_orders": True,
                "active_no_orders": False}
    async with db.unit_of_work() as session:
        quiet = await session.get(Member, ids["quiet_no_orders"])
        assert quiet is not None
        quiet.last_interaction_at = NOW - timedelta(days=31)
    async with db.sessions() as session:
        found = await winbacks.rhythms(session, list(ids.values()), NOW, TODAY)
    flags = {name: winbacks.at_risk(found[member_id], NOW, Rules()) for name, member_id in ids.items()}
    assert flags == expected
    assert winbacks.median_gap_days(found[ids["monthly_fine"]].orders) == 30


async def test_the_offer_under_an_experiment_and_the_report(db: Database) -> None:
    ledger = make_ledger()
    ctx = JobContext(db, ledger)
    ids = [await add_member(db, NOW - timedelta(days=800), openid=f"oCHURNexp{n:03d}",
                            last_interaction_at=NOW - timedelta(days=40)) for n in range(60)]
    async with db.unit_of_work() as session:
        experiment, _ = await experiments.create(
            session, name="回归礼大小", target="winback", holdout=20, request_id="wb-1", now=NOW,
            arms=[{"name": "control", "weight": 50}, {"name": "double", "weight": 50, "params": {"points": 100}}],
            actor=audit.Actor("op", "operator"),
        )
    assert await winback(ctx, NOW) == 60  # warn, before any experiment draw
    later = NOW + timedelta(days=7)
    assert await winback(ctx, later) == 60  # recall 1, under the experiment
    async with db.sessions() as session:
        arms = dict((await session.execute(select(ExperimentAssignment.member_id, ExperimentAssignment.arm))).all())
        offers = dict((await session.execute(select(WinbackOffer.member_id, WinbackOffer.points))).all())
        pushes = {r.member_id: r for r in (await session.scalars(select(Outbox).where(Outbox.kind == "winback")))}
        held = (await session.scalars(select(WinbackStep.member_id).where(WinbackStep.held_out.is_(True)))).all()
    assert sorted(arms) == sorted(ids)
    assert sorted(held) == sorted(m for m, a in arms.items() if a == "holdout")
    for member_id, arm in arms.items():
        if arm == "holdout":
            assert member_id not in offers
            assert member_id not in pushes
        else:
            assert offers[member_id] == (100 if arm == "double" else 50)
            assert (pushes[member_id].experiment_id, pushes[member_id].variant) == (experiment.id, arm)
            assert f'"points": {offers[member_id]}' in pushes[member_id].payload

    # Two of the warned come back within the week (one also pays within 30 days); one pays 31 days later.
    await _visits(db, ids[0], -2)
    await _visits(db, ids[1], -3)
    await _orders(db, ids[1], -10)
    await _orders(db, ids[2], -31)
    async with db.sessions() as session:
        report = await winbacks.stage_report(session, NOW - timedelta(days=1), NOW + timedelta(days=1), TZ)
    figures = {f.stage: f for f in report}
    warn = figures["warn"]
    assert (warn.reached, warn.recalled, warn.reactivated) == (60, 2, 1)
    assert (warn.recall_rate, warn.reactivation_rate) == (round(2 / 60, 4), round(1 / 60, 4))
    assert figures["recall2"].reached == 0
