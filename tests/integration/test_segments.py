"""The RFM layering on hand-built worlds: every member's expected class (and scores) worked out below, by the
small programme's fixed cut-offs and by quintiles; a re-run of the day changes nothing; a member who moves is in
the history once per day; deleted members are left alone; the reports read the classes back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from scheduler.jobs import JobContext, rfm
from storage import segments
from storage.db import Database
from storage.models import Member, MemberSegment, PurchaseOrder, RfmMove
from storage.rfmrules import RfmRules
from storage.rules import Rules, RulesError, rules_from_dict
from tests.support.factories import TZ, add_member, make_ledger

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
DAY = date(2026, 12, 1)


async def _orders(db: Database, member_id: int, *orders: tuple[int, int] | tuple[int, int, int]) -> None:
    """(days ago, yuan[, yuan refunded]) per order."""
    async with db.unit_of_work() as session:
        for n, (days, yuan, *refund) in enumerate(orders):
            session.add(PurchaseOrder(
                order_id=f"RFM-{member_id}-{n}-{days}", member_id=member_id, amount_fen=yuan * 100, points=yuan,
                refunded_fen=(refund[0] if refund else 0) * 100, created_at=NOW - timedelta(days=days),
            ))


async def _layer(db: Database, rules: RfmRules | None = None, now: datetime = NOW) -> segments.Layering:
    async with db.unit_of_work() as session:
        return await segments.layer(session, now, now.astimezone(TZ).date(), rules or RfmRules())


async def _state(db: Database, ids: dict[str, int]) -> dict[str, tuple[str | None, int | None, int | None, int | None]]:
    async with db.sessions() as session:
        out = {}
        for name, member_id in ids.items():
            assert await session.get(Member, member_id) is not None
            segment = await session.get(MemberSegment, member_id)
            out[name] = (segment.segment, segment.r, segment.f, segment.m) if segment else (None, None, None, None)
        return out


async def _moves(db: Database) -> list[tuple[int, date, str | None, str]]:
    async with db.sessions() as session:
        rows = (await session.scalars(select(RfmMove).order_by(RfmMove.member_id, RfmMove.day))).all()
    return [(r.member_id, r.day, r.from_class, r.to_class) for r in rows]


async def test_fixed_cut_offs_give_each_member_the_class_worked_out_here(db: Database) -> None:
    ids = {name: await add_member(db, NOW - timedelta(days=500), openid=f"oRFM{name}")
           for name in ("loyal", "new", "lapsing", "steady", "refunded", "none", "gone", "old")}
    # loyal: 9 orders in the year, the last 5 days ago, ¥2,700 net (one ¥300 order half refunded: ¥150 counts,
    # so ¥2,550): R 5 (<= 30 days), F 5 (> 8), M 5 (> ¥2,000) -> 高价值.
    await _orders(db, ids["loyal"], (5, 300, 150), *((10 * k, 300) for k in range(1, 9)))
    # new: one ¥50 order 10 days ago: R 5, F 1, M 1 -> R >= 4 and F <= 2: 潜力价值.
    await _orders(db, ids["new"], (10, 50))
    # lapsing: 3 orders 200-300 days ago, ¥100 each: R 2 (<= 365), F 3 (3-4), M 2 (<= ¥300) -> 流失风险.
    await _orders(db, ids["lapsing"], (200, 100), (250, 100), (300, 100))
    # steady: 3 orders 60-80 days ago, ¥200 each: R 4 (<= 90), F 3, M 3 (<= ¥800) -> 中价值.
    await _orders(db, ids["steady"], (60, 200), (70, 200), (80, 200))
    # refunded: the one order fully refunded is no paid order -> 未消费; none: no order at all -> 未消费.
    await _orders(db, ids["refunded"], (3, 500, 500))
    # old: one order 400 days ago: R 1, F 1 (none in the year), M 1 -> 中价值 (the rest).
    await _orders(db, ids["old"], (400, 999))
    await _orders(db, ids["gone"], (5, 5000))
    async with db.unit_of_work() as session:
        gone = await session.get(Member, ids["gone"])
        assert gone is not None
        gone.status = "deleted"

    done = await _layer(db)
    assert (done.buyers, done.quintiles, done.moved) == (5, False, 7)
    assert await _state(db, ids) == {
        "loyal": ("高价值", 5, 5, 5), "new": ("潜力价值", 5, 1, 1), "lapsing": ("流失风险", 2, 3, 2),
        "steady": ("中价值", 4, 3, 3), "refunded": ("未消费", None, None, None), "none": ("未消费", None, None, None),
        "gone": (None, None, None, None), "old": ("中价值", 1, 1, 1),
    }
    first = await _moves(db)
    assert sorted((m[0], m[2]) for m in first) == sorted((ids[n], None) for n in ids if n != "gone")

    again = await _layer(db)
    assert (again.moved, again.updated) == (0, 0)
    assert await _moves(db) == first

    # The new member buys four more times the same day: moved once today (the move's destination follows),
    # and tomorrow's run sees no change, so the history keeps one row for them.
    await _orders(db, ids["new"], (0, 500), (0, 500), (0, 500), (0, 600))
    await _layer(db, now=NOW + timedelta(hours=1))
    await _layer(db, now=NOW + timedelta(days=1))
    async with db.sessions() as session:
        new = await session.get(MemberSegment, ids["new"])
    assert new is not None
    assert (new.segment, new.r, new.f, new.m, new.since) == ("高价值", 5, 4, 5, DAY)
    assert [m for m in await _moves(db) if m[0] == ids["new"]] == [(ids["new"], DAY, None, "高价值")]


async def test_quintiles_among_buyers_once_there_are_enough(db: Database) -> None:
    # Ten buyers: buyer i ordered i days ago for ¥100·(11 - i), and buyers 1-5 twice more (¥10) 100+ days ago.
    ids = {i: await add_member(db, NOW - timedelta(days=500), openid=f"oRFMq{i:02d}") for i in range(1, 11)}
    for i, member_id in ids.items():
        await _orders(db, member_id, (i, 100 * (11 - i)), *(((100 + i, 10), (120 + i, 10)) if i <= 5 else ()))
    await add_member(db, NOW, openid="oRFMqnone")
    done = await _layer(db, RfmRules(min_buyers_for_quintiles=10))
    assert (done.buyers, done.quintiles) == (10, True)
    # R by recency: buyers 1-2 score 5, 3-4 4, 5-6 3, 7-8 2, 9-10 1. F: five with 1 order (6-10: cume_dist 0.5,
    # so 3) and five with 3 (1-5: 1.0, so 5). M, net: 1020, 920, 820, 720, 620, 500, 400, 300, 200, 100 yuan:
    # buyers 1-2 score 5, 3-4 4, 5-6 3, 7-8 2, 9-10 1.
    expected_r = {1: 5, 2: 5, 3: 4, 4: 4, 5: 3, 6: 3, 7: 2, 8: 2, 9: 1, 10: 1}
    expected_f = {i: 5 if i <= 5 else 3 for i in ids}
    expected_m = expected_r
    # 1-4: R, F, M >= 4 -> 高价值; 5-6: R 3 -> 中价值; 7-10: R <= 2 and F >= 2 -> 流失风险.
    klass = {i: "高价值" if i <= 4 else "中价值" if i <= 6 else "流失风险" for i in ids}
    state = await _state(db, {str(i): m for i, m in ids.items()})
    assert state == {str(i): (klass[i], expected_r[i], expected_f[i], expected_m[i]) for i in ids}


async def test_the_job_and_the_reports(db: Database) -> None:
    loyal = await add_member(db, NOW - timedelta(days=500), openid="oRFMjobloyal")
    new = await add_member(db, NOW - timedelta(days=500), openid="oRFMjobnew")
    await add_member(db, NOW, openid="oRFMjobnone")
    await _orders(db, loyal, *((10 * k, 300) for k in range(9)))
    await _orders(db, new, (3, 300))
    ctx = JobContext(db, make_ledger(Rules()))
    assert await rfm(ctx, NOW) == 3
    assert await rfm(ctx, NOW) == 0
    async with db.sessions() as session:
        figures = {c.name: (c.members, c.sales_fen, c.share) for c in await segments.classes(session, NOW)}
        flows = await segments.flows(session, DAY, DAY)
    assert figures == {"高价值": (1, 270_000, 0.9), "中价值": (0, 0, 0.0),
                       "潜力价值": (1, 30_000, 0.1), "流失风险": (0, 0, 0.0), "未消费": (1, 0, 0.0)}
    assert flows == {(None, "高价值"): 1, (None, "潜力价值"): 1, (None, "未消费"): 1}


def test_an_unusable_rfm_section_is_refused_at_start_up_naming_the_key() -> None:
    for section, key in (({"frequency": [3, 2, 1, 0]}, "rfm.frequency"),
                         ({"recency_days": [30, 60]}, "rfm.recency_days"),
                         ({"min_buyers_for_quintiles": 2}, "rfm.min_buyers_for_quintiles"),
                         ({"colour": 1}, "rfm.colour")):
        with pytest.raises(RulesError, match=key.replace(".", r"\.")):
            rules_from_dict({"rfm": section})
    assert rules_from_dict({"rfm": {"frequency": [1, 3, 6, 12]}}).rfm.frequency == (1, 3, 6, 12)
