"""A year of made-up member activity for the demo's dashboard (`wxbot demo`, first run only): members
signing up (some referred, some leaving), interaction days, check-ins, paid and refunded orders,
redemptions and marketing pushes, all through the storage services (points only through the ledger),
then the KPI snapshots of every past day computed by the real `kpi_snapshot` job. Demo data only: the
members' openids start with DEMO_PREFIX and the dashboard says so in demo mode. Deterministic (seeded)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, insert, select
from sqlmodel import col

from scheduler.jobs import JobContext, kpi_snapshot
from storage import checkins, members, orders
from storage.db import Database
from storage.ledger import Ledger
from storage.models import InteractionDay, Member, Outbox, Reward
from storage.rewards import Rewards

DEMO_PREFIX = "oDEMOhistory"
DAYS = 365
MEMBERS = 100


@dataclass
class _Person:
    index: int
    joined: date
    level: float  # how lively: the chance of an interaction on a given day
    referrer: int | None
    leaves: date | None
    member_id: int = 0
    days: list[date] = field(default_factory=list)


def _people(today: date, rng: random.Random) -> list[_Person]:
    start = today - timedelta(days=DAYS)
    people = []
    for i in range(MEMBERS):
        joined = start + timedelta(days=int(DAYS * rng.random() ** 0.8))  # growing: more join lately
        referrer = rng.randrange(i) if i > 5 and rng.random() < 0.25 else None
        leaves = joined + timedelta(days=rng.randint(20, 200)) if rng.random() < 0.05 else None
        leaves = leaves if leaves and leaves < today else None
        people.append(_Person(i, joined, rng.uniform(0.08, 0.6), referrer, leaves))
    return sorted(people, key=lambda p: p.joined)


def _at(day: date, hour: int, ledger: Ledger) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ledger.tz)


async def _join(db: Database, ledger: Ledger, person: _Person, by_index: dict[int, _Person]) -> None:
    now = _at(person.joined, 10, ledger)
    async with db.unit_of_work() as session:
        member = Member(openid=f"{DEMO_PREFIX}{person.index:06d}", created_at=now - timedelta(hours=1),
                        last_interaction_at=now, joined_at=now, referral_code=f"DH{person.index:04d}")
        referrer = by_index.get(person.referrer) if person.referrer is not None else None
        if referrer is not None and referrer.member_id:
            member.referrer_id = referrer.member_id
        session.add(member)
        await session.flush()
        assert member.id is not None
        person.member_id = member.id
        await members.credit_signup_bonus(session, ledger, member.id, now)


async def _live(db: Database, ledger: Ledger, person: _Person, end: date, rng: random.Random, reward: Reward) -> None:
    """One member's days from joining to `end` (or leaving), in one transaction."""
    rewards = Rewards(ledger)
    day, orders_made = person.joined, 0
    last = min(end, person.leaves) if person.leaves else end
    async with db.unit_of_work() as session:
        while day <= last:
            if rng.random() < person.level:
                person.days.append(day)
                if rng.random() < 0.55:
                    await checkins.check_in(session, ledger, person.member_id, _at(day, 9, ledger))
                if rng.random() < 0.12 * person.level:
                    member = await ledger.lock(session, person.member_id)
                    order_id = f"DEMO-{person.index}-{orders_made}"
                    fen = rng.randint(30, 600) * 100 if rng.random() > 0.02 else rng.randint(2000, 8000) * 100
                    await orders.record_paid(session, ledger, member, order_id=order_id, amount_fen=fen,
                                             now=_at(day, 15, ledger))
                    if rng.random() < 0.06:
                        await orders.record_refund(session, ledger, order_id=order_id, refund_id=f"{order_id}-r",
                                                   refund_fen=fen // 2, now=_at(day, 18, ledger))
                    orders_made += 1
                member = await ledger.lock(session, person.member_id)
                if member.balance >= reward.cost and rng.random() < 0.25:
                    assert reward.id is not None
                    issued = await rewards.redeem(session, person.member_id, reward.id,
                                                  request_key=f"demo-{person.index}-{day}", now=_at(day, 12, ledger))
                    if rng.random() < 0.6:  # most coupons are used in a store, a few days later
                        used = min(_at(day + timedelta(days=rng.randint(0, 5)), 17, ledger), _at(end, 17, ledger))
                        await rewards.use(session, issued.redemption.code, used)
            day += timedelta(days=1)
        if person.days:
            days = [{"member_id": person.member_id, "day": d} for d in person.days]
            await session.execute(insert(InteractionDay), days)
        if person.leaves:
            await members.delete(session, person.member_id, _at(person.leaves, 20, ledger))


async def _pushes(db: Database, ledger: Ledger, people: list[_Person], rng: random.Random) -> None:
    """About three marketing pushes a month to each member, most sent, some with no channel."""
    rows = []
    for person in people:
        for n, day in enumerate(d for d in person.days if rng.random() < 0.35):
            at = _at(day, 11, ledger)
            sent = rng.random() < 0.85
            rows.append({
                "dedupe_key": f"demo:{person.index}:{n}", "member_id": person.member_id, "openid": "demo",
                "kind": rng.choice(("birthday", "expiry", "winback")), "category": "marketing", "payload": "{}",
                "status": "sent" if sent else "undeliverable", "last_error": None if sent else "no legal channel",
                "next_attempt_at": at, "created_at": at, "sent_at": at if sent else None, "source": "oa",
                "priority": 0, "attempts": 1,
            })
    async with db.unit_of_work() as session:
        if rows:
            await session.execute(insert(Outbox), rows)


async def seed_history(db: Database, ledger: Ledger, now: datetime) -> bool:
    """The demo's year of activity and its snapshots, once (False when demo members already exist)."""
    async with db.sessions() as session:
        if await session.scalar(select(func.count()).where(col(Member.openid).startswith(DEMO_PREFIX))):
            return False
        reward = await session.scalar(select(Reward).order_by(col(Reward.cost)).limit(1))
    if reward is None:
        return False
    rng = random.Random(15)
    today = now.astimezone(ledger.tz).date()
    people = _people(today, rng)
    by_index = {p.index: p for p in people}
    for person in people:
        await _join(db, ledger, person, by_index)
        await _live(db, ledger, person, today - timedelta(days=1), rng, reward)
    await _pushes(db, ledger, people, rng)
    ctx = JobContext(db, ledger)
    for back in range(DAYS, 0, -1):  # each past day, as the nightly job would have computed it
        await kpi_snapshot(ctx, _at(today - timedelta(days=back - 1), 0, ledger) + timedelta(minutes=30))
    return True
