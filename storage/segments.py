"""The daily RFM layering: each member's recency, frequency and monetary scores (1-5) from paid orders net of
refunds, their class, the local day it last changed, and a history of moves; and the reports over them.

R = how recent the last paid order is, F = paid orders in the 12 months before the run, M = their net paid
amount. With at least `rfm.min_buyers_for_quintiles` buyers the scores are quintiles among buyers (ties share
a score: ceil(5 · cume_dist)); with fewer, the rules' fixed cut-offs. Classes: 高价值 (R, F, M all >= 4),
潜力价值 (R >= 4, F <= 2), 流失风险 (R <= 2, F >= 2), 中价值 the rest; 未消费 without any paid order. Set-based:
one INSERT of the day's moves and one UPDATE of the members whose class or scores changed; a re-run of the day
moves nobody twice (one rfm_move per member and day, its destination kept current). Deleted members are left
alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from storage.audiences import SEGMENTS
from storage.db import dialect_insert
from storage.enums import MemberStatus
from storage.models import Member, MemberSegment, PurchaseOrder, RfmMove, UTCDateTime
from storage.reports import NET_FEN, PAID
from storage.rfmrules import RfmRules
from storage.rows import affected

HIGH, MIDDLE, POTENTIAL, AT_RISK, NO_ORDERS = SEGMENTS
YEAR = timedelta(days=365)


@dataclass(frozen=True)
class Layering:
    buyers: int
    quintiles: bool  # False: the rules' fixed cut-offs
    moved: int
    updated: int


def _members() -> Any:
    return and_(col(Member.joined_at).is_not(None), col(Member.status) != MemberStatus.DELETED.value)


# The run's working tables, temporary (each session its own, dropped at the end of the run): the buyers' raw
# figures, then every member's new class, each computed once. Before, the class was computed from the orders
# once for the moves and again for the update (three passes of the aggregate and its window sorts a night).
_WORK = MetaData()
_STATS = Table(
    "rfm_work_stats", _WORK, Column("member_id", Integer, primary_key=True), Column("last_at", UTCDateTime()),
    Column("f", Integer), Column("m", BigInteger), prefixes=["TEMPORARY"],
)
_NEW = Table(
    "rfm_work_new", _WORK, Column("member_id", Integer, primary_key=True), Column("segment", String(8)),
    Column("r", Integer), Column("f", Integer), Column("m", Integer), prefixes=["TEMPORARY"],
)


def _stats(now: datetime) -> Any:
    """Per joined, undeleted member with a paid order ever: the last one, and the count and net amount of the
    12 months."""
    recent = and_(PAID, col(PurchaseOrder.created_at) >= now - YEAR)
    return (
        select(col(PurchaseOrder.member_id), func.max(col(PurchaseOrder.created_at)),
               func.count().filter(recent), func.coalesce(func.sum(NET_FEN).filter(recent), 0))
        .join(Member, col(Member.id) == PurchaseOrder.member_id).where(PAID, _members())
        .group_by(col(PurchaseOrder.member_id))
    )


def _quintile(order: Any) -> Any:
    """ceil(5 · cume_dist) without ceil() (SQLite may lack it, and PostgreSQL's CAST rounds): ties share a score,
    and an exact fifth (cume_dist 0.2) stays in the lower one."""
    share = func.cume_dist().over(order_by=order)
    return case(*((share > bound, score) for score, bound in ((5, 0.8), (4, 0.6), (3, 0.4), (2, 0.2))), else_=1)


def _cut(value: Any, bounds: tuple[int, ...]) -> Any:
    """1 up to the first bound, ... 5 above the last."""
    return case(*((value <= bound, score) for score, bound in enumerate(bounds, start=1)), else_=5)


def _scored(now: datetime, quintiles: bool, rules: RfmRules) -> Any:
    stats = _STATS.c
    if quintiles:
        r, f, m = _quintile(stats.last_at), _quintile(stats.f), _quintile(stats.m)
    else:
        # Fewer days since the last order score higher: compared as instants, no date arithmetic in SQL.
        r = case(*((stats.last_at >= now - timedelta(days=d), 5 - i) for i, d in enumerate(rules.recency_days)),
                 else_=1)
        f, m = _cut(stats.f, rules.frequency), _cut(stats.m, tuple(y * 100 for y in rules.monetary_yuan))
    return select(stats.member_id, r.label("r"), f.label("f"), m.label("m")).subquery("rfm_scored")


def _classified(now: datetime, quintiles: bool, rules: RfmRules) -> Any:
    """Every joined, undeleted member with their new class and scores (NULL scores: no paid order)."""
    scored = _scored(now, quintiles, rules)
    r, f, m = scored.c.r, scored.c.f, scored.c.m
    klass = case(
        (scored.c.member_id.is_(None), NO_ORDERS),
        (and_(r >= 4, f >= 4, m >= 4), HIGH), (and_(r >= 4, f <= 2), POTENTIAL), (and_(r <= 2, f >= 2), AT_RISK),
        else_=MIDDLE,
    )
    return (
        select(col(Member.id), klass, r, f, m)
        .select_from(Member).outerjoin(scored, scored.c.member_id == Member.id).where(_members())
    )


async def _work_tables(session: AsyncSession, create: bool) -> None:
    def run(sync: Any) -> None:
        (_WORK.create_all if create else _WORK.drop_all)(sync.connection(), checkfirst=False)

    await session.run_sync(run)


async def layer(session: AsyncSession, now: datetime, day: date, rules: RfmRules) -> Layering:
    """Layer every member as of `now` (the moves dated `day`, the programme-local day of the run)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:  # the buyers' aggregate and the three quintile sorts in memory, not spilled in 4 MB batches
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
    await _work_tables(session, create=True)
    await session.execute(insert(_STATS).from_select(["member_id", "last_at", "f", "m"], _stats(now)))
    if postgres:  # a temporary table has no statistics until asked; the joins below are planned on them
        await session.execute(text("ANALYZE rfm_work_stats"))
    buyers = int(await session.scalar(select(func.count()).select_from(_STATS)) or 0)
    quintiles = buyers >= rules.min_buyers_for_quintiles
    await session.execute(insert(_NEW).from_select(["member_id", "segment", "r", "f", "m"],
                                                   _classified(now, quintiles, rules)))
    if postgres:
        await session.execute(text("ANALYZE rfm_work_new"))
    new = _NEW.c
    old = aliased(MemberSegment, name="old")
    changed_class = col(old.segment).is_distinct_from(new.segment)
    moves = (
        select(new.member_id, literal(day), col(old.segment), new.segment)
        .select_from(_NEW).outerjoin(old, col(old.member_id) == new.member_id).where(changed_class)
    )
    dialect = dialect_insert(session)
    into_moves = dialect(RfmMove).from_select(["member_id", "day", "from_class", "to_class"], moves)
    moved = affected(await session.execute(into_moves.on_conflict_do_update(
        index_elements=["day", "member_id"], set_={"to_class": into_moves.excluded.to_class},
    )))
    changed = or_(changed_class, col(old.r).is_distinct_from(new.r), col(old.f).is_distinct_from(new.f),
                  col(old.m).is_distinct_from(new.m))
    writes = (
        select(new.member_id, new.segment, new.r, new.f, new.m, literal(day))
        .select_from(_NEW).outerjoin(old, col(old.member_id) == new.member_id).where(changed)
    )
    into_segments = dialect(MemberSegment).from_select(["member_id", "segment", "r", "f", "m", "since"], writes)
    current = MemberSegment.__table__.c  # type: ignore[attr-defined]
    updated = affected(await session.execute(into_segments.on_conflict_do_update(
        index_elements=["member_id"],
        set_={"segment": into_segments.excluded.segment, "r": into_segments.excluded.r,
              "f": into_segments.excluded.f, "m": into_segments.excluded.m,
              "since": case((current.segment.is_distinct_from(into_segments.excluded.segment), day),
                            else_=current.since)},
    )))
    await _work_tables(session, create=False)
    return Layering(buyers, quintiles, int(moved), int(updated))


# --- reports -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassFigures:
    name: str
    members: int
    sales_fen: int  # net paid in the 12 months before `now`
    share: float | None  # of all members' net sales in those months


async def classes(session: AsyncSession, now: datetime) -> list[ClassFigures]:
    """Each class's size and share of the 12 months' net sales, in the seed's order (unlayered members are
    left out until the first run)."""
    segment = col(MemberSegment.segment)
    sizes = dict((await session.execute(
        select(segment, func.count()).select_from(MemberSegment)
        .join(Member, col(Member.id) == MemberSegment.member_id).where(_members()).group_by(segment)
    )).all())
    sales = dict((await session.execute(
        select(segment, func.coalesce(func.sum(NET_FEN), 0))
        .select_from(PurchaseOrder).join(MemberSegment, col(MemberSegment.member_id) == PurchaseOrder.member_id)
        .join(Member, col(Member.id) == PurchaseOrder.member_id)
        .where(PAID, col(PurchaseOrder.created_at) >= now - YEAR, _members())
        .group_by(segment)
    )).all())
    total = sum(int(v) for v in sales.values())
    return [ClassFigures(name, int(sizes.get(name, 0)), int(sales.get(name, 0)),
                         round(int(sales.get(name, 0)) / total, 4) if total else None) for name in SEGMENTS]


async def flows(session: AsyncSession, first: date, last: date) -> dict[tuple[str | None, str], int]:
    """Moves between classes on the local days first..last: (from, to) -> members (from None: first layering)."""
    rows = await session.execute(
        select(col(RfmMove.from_class), col(RfmMove.to_class), func.count())
        .where(col(RfmMove.day) >= first, col(RfmMove.day) <= last)
        .group_by(col(RfmMove.from_class), col(RfmMove.to_class))
    )
    return {(origin, to): int(n) for origin, to, n in rows.all()}
