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

from sqlalchemy import and_, case, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from storage.audiences import SEGMENTS
from storage.db import dialect_insert
from storage.enums import MemberStatus
from storage.models import Member, PurchaseOrder, RfmMove
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


def _stats(now: datetime) -> Any:
    """Per member with a paid order ever: the last one, and the count and net amount of the 12 months."""
    recent = and_(PAID, col(PurchaseOrder.created_at) >= now - YEAR)
    return (
        select(col(PurchaseOrder.member_id).label("member_id"),
               func.max(col(PurchaseOrder.created_at)).label("last_at"),
               func.count().filter(recent).label("f"), func.coalesce(func.sum(NET_FEN).filter(recent), 0).label("m"))
        .where(PAID).group_by(col(PurchaseOrder.member_id)).subquery("rfm_stats")
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
    stats = _stats(now)
    if quintiles:
        r, f, m = _quintile(stats.c.last_at), _quintile(stats.c.f), _quintile(stats.c.m)
    else:
        # Fewer days since the last order score higher: compared as instants, no date arithmetic in SQL.
        r = case(*((stats.c.last_at >= now - timedelta(days=d), 5 - i) for i, d in enumerate(rules.recency_days)),
                 else_=1)
        f, m = _cut(stats.c.f, rules.frequency), _cut(stats.c.m, tuple(y * 100 for y in rules.monetary_yuan))
    return select(stats.c.member_id, r.label("r"), f.label("f"), m.label("m")).subquery("rfm_scored")


def _classified(now: datetime, quintiles: bool, rules: RfmRules) -> Any:
    """Every joined, undeleted member with their new class and scores (NULL scores: no paid order)."""
    scored = _scored(now, quintiles, rules)
    who = aliased(Member, name="rfm_member")
    r, f, m = scored.c.r, scored.c.f, scored.c.m
    klass = case(
        (scored.c.member_id.is_(None), NO_ORDERS),
        (and_(r >= 4, f >= 4, m >= 4), HIGH), (and_(r >= 4, f <= 2), POTENTIAL), (and_(r <= 2, f >= 2), AT_RISK),
        else_=MIDDLE,
    )
    return (
        select(col(who.id).label("id"), klass.label("klass"), r.label("r"), f.label("f"), m.label("m"))
        .select_from(who).outerjoin(scored, scored.c.member_id == who.id)
        .where(col(who.joined_at).is_not(None), col(who.status) != MemberStatus.DELETED.value)
        .subquery("rfm_new")
    )


async def layer(session: AsyncSession, now: datetime, day: date, rules: RfmRules) -> Layering:
    """Layer every member as of `now` (the moves dated `day`, the programme-local day of the run)."""
    buyers = int(await session.scalar(
        select(func.count(func.distinct(col(PurchaseOrder.member_id)))).select_from(PurchaseOrder)
        .join(Member, col(Member.id) == PurchaseOrder.member_id).where(PAID, _members())
    ) or 0)
    quintiles = buyers >= rules.min_buyers_for_quintiles
    new = _classified(now, quintiles, rules)
    changed_class = col(Member.rfm_class).is_distinct_from(new.c.klass)
    moves = (
        select(new.c.id, literal(day), col(Member.rfm_class), new.c.klass)
        .select_from(new).join(Member, col(Member.id) == new.c.id).where(changed_class)
    )
    insert = dialect_insert(session)(RfmMove).from_select(["member_id", "day", "from_class", "to_class"], moves)
    moved = affected(await session.execute(insert.on_conflict_do_update(
        index_elements=["member_id", "day"], set_={"to_class": insert.excluded.to_class},
    )))
    changed = or_(changed_class, col(Member.rfm_r).is_distinct_from(new.c.r),
                  col(Member.rfm_f).is_distinct_from(new.c.f), col(Member.rfm_m).is_distinct_from(new.c.m))
    updated = affected(await session.execute(
        update(Member).where(col(Member.id) == new.c.id).where(changed).values(
            rfm_class=new.c.klass, rfm_r=new.c.r, rfm_f=new.c.f, rfm_m=new.c.m,
            rfm_since=case((changed_class, day), else_=col(Member.rfm_since)),
        ).execution_options(synchronize_session=False)
    ))
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
    sizes = dict((await session.execute(
        select(col(Member.rfm_class), func.count()).where(_members(), col(Member.rfm_class).is_not(None))
        .group_by(col(Member.rfm_class))
    )).all())
    sales = dict((await session.execute(
        select(col(Member.rfm_class), func.coalesce(func.sum(NET_FEN), 0))
        .select_from(PurchaseOrder).join(Member, col(Member.id) == PurchaseOrder.member_id)
        .where(PAID, col(PurchaseOrder.created_at) >= now - YEAR, col(Member.rfm_class).is_not(None), _members())
        .group_by(col(Member.rfm_class))
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
