"""A simulated year of the push process (issue 6, "Tests that must exist"): the clock moved day by day
through 2026 (not a leap year, so 29 February birthdays fall on 28 February), the scheduler's jobs run
at their hours (expire_points 00:10, birthday 09:00, expiry_reminders 10:00, win-back 11:00) and the
sender after each, as of that time, against the fake WeChat API, which stamps every call with the
simulated clock. The sender also runs at 21:30, after an evening campaign push is queued on Fridays
at 20:30, so the quiet hours have something to hold. A sender run when the outbox has nothing due yet
is skipped (it would claim nothing); every run with a push due is made.

The population (1,000 members on SQLite + memory://, 150 on PostgreSQL + Redis to keep the time
reasonable) has birthdays on every date including 29 February, points lots expiring in every month,
members who go quiet (some coming back to check in after their win-back push), some who opted out,
unfollowed or deleted their membership from the start and some who do so during the year, and some
who wrote to the account (an open customer-service window) while the rest get template messages.

Checked at the end, against what the fake received: every birthday paid once (birthday:<member>:2026)
and greeted once (or, when 4 other pushes had reached the member in those 30 days, dropped for the
cap, which is checked against the calls); every expiry reminder once per stage (30 days and 7 days
before), likewise; win-back pushes exactly when a member has been quiet for 30 days and not more
often than every 30 days; no member over 4 marketing pushes in any rolling 30 days (a few crowded
members make the cap bite); no push in quiet hours (21:00-09:00 local); nothing to opted-out,
unfollowed or deleted members; every call accounted for by exactly one sent outbox row; and
the ledger invariant for every member."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.wechat.client import TOKEN_ERRORS
from devtools import fakewechat
from scheduler.jobs import birthday, expire_points, expiry_reminders, winback
from storage import checkins, cswindow, members, outbox
from storage.models import LedgerEntry, Member, Outbox, PointsLot, WinbackOffer
from storage.rules import Rules
from tests.support.factories import TZ, local
from tests.support.invariants import assert_points_consistent
from tests.support.push_support import (
    CS,
    SEND_PATHS,
    TEMPLATE,
    TEMPLATES,
    LotSpec,
    PushWorld,
    bulk_lots,
    bulk_members,
    openid_for,
    push_world,
)

YEAR = 2026
FIRST, LAST = date(YEAR, 1, 1), date(YEAR, 12, 31)
POPULATION = {"sqlite": 1000, "postgres": 150}
WINDOW, CAP = timedelta(days=30), 4  # PRODUCT.md: at most 4 marketing pushes per rolling 30 days
KIND_OF_TEMPLATE = {template: kind for kind, template in TEMPLATES.items()}
# Dates of a leap year, so every calendar date (29 February too) has birthdays.
DATES = [date(2024, 1, 1) + timedelta(days=i) for i in range(366)]
FIRST_DATES = [date(2024, 2, 29), date(2024, 2, 28), date(2024, 3, 1), date(2024, 1, 1), date(2024, 12, 31)]


@dataclass
class Person:
    """What the simulation decided about one member, to check the outcome against."""

    index: int
    openid: str
    birthday: tuple[int, int] | None
    from_start: str = "active"  # active, opted_out, unsubscribed, deleted
    change: tuple[datetime, str] | None = None  # (when, what) during the year
    quiet_since: datetime | None = None  # last interaction, for members who went quiet
    goes_quiet_on: date | None = None
    returns: bool = False  # checks in two days after the first win-back offer
    returned_at: datetime | None = None
    lot_months: list[int] = field(default_factory=list)  # 2026 months whose end a lot expires at
    window: bool = False
    id: int = 0

    @property
    def clean(self) -> bool:
        """Marketing may reach this member all year."""
        return self.from_start == "active" and self.change is None

    def barred_from(self) -> datetime | None:
        """From when nothing may reach this member (None: never barred)."""
        if self.from_start != "active":
            return datetime(2000, 1, 1, tzinfo=UTC)
        return self.change[0] if self.change else None


def population(n: int, rng: random.Random) -> list[Person]:
    people = []
    for i in range(n):
        day = FIRST_DATES[i] if i < len(FIRST_DATES) else DATES[(i * 7) % 366]
        person = Person(i, openid_for(f"Y{i}"), (day.month, day.day))
        if i >= 732 and i % 10 == 0:
            person.birthday = None  # never said
        slot = i % 50
        if slot == 11:
            person.from_start = "opted_out"
        elif slot == 12:
            person.from_start = "unsubscribed"
        elif slot == 13:
            person.from_start = "deleted"
        elif slot in (14, 15, 16):
            when = local(YEAR, 1, 1, 10, 0) + timedelta(days=rng.randrange(20, 340))
            person.change = (when, {14: "opted_out", 15: "unsubscribed", 16: "deleted"}[slot])
        if i % 40 == 7:  # quiet since before the year began
            person.quiet_since = local(2025, 11, 1, 12, 0) + timedelta(days=rng.randrange(0, 50))
        elif i % 20 == 8:  # goes quiet during the year
            person.goes_quiet_on = FIRST + timedelta(days=rng.randrange(10, 300))
            person.returns = i % 40 == 8
        if i % 3 == 0:  # a third hold points expiring this year, some of them in two months
            person.lot_months.append(i // 3 % 12 + 1)
            if i % 27 == 0:
                person.lot_months.append((i // 3 + 5) % 12 + 1)
        person.window = i % 10 == 1
        if slot == 20:  # crowded: two expiry months, a birthday between their reminders, win-backs
            month = i // 50 % 11 + 1
            person.birthday = (month + 1, 10)
            person.lot_months = [month, month + 1]
            person.quiet_since, person.goes_quiet_on, person.returns = local(2025, 11, 20, 12, 0), None, False
            person.window = False
        people.append(person)
    return people


async def seed(world: PushWorld, people: list[Person]) -> None:
    joined = local(2025, 1, 2, 12, 0)
    rows: list[dict[str, Any]] = []
    for p in people:
        deleted = p.from_start == "deleted"
        rows.append({
            "openid": None if deleted else p.openid,
            "birthday_month": None if deleted or p.birthday is None else p.birthday[0],
            "birthday_day": None if deleted or p.birthday is None else p.birthday[1],
            "status": {"unsubscribed": "unsubscribed", "deleted": "deleted"}.get(p.from_start, "active"),
            "marketing_opt_out": p.from_start in ("opted_out", "deleted"),
            "joined_at": joined,
            "last_interaction_at": p.quiet_since or local(2025, 12, 31, 12, 0),
        })
    ids = await bulk_members(world.db, rows)
    for p, member_id in zip(people, ids, strict=True):
        p.id = member_id
    # A lot earned in month M of 2025 expires at the end of month M of 2026.
    await bulk_lots(world.db, world.ledger, [
        LotSpec(p.id, 50 + 10 * (p.index % 7), local(YEAR - 1, month, 15, 12, 0))
        for p in people for month in p.lot_months
    ])
    for p in people:
        if p.window and p.from_start != "deleted":
            await cswindow.opened_by_message(world.kv, "oa", p.openid)


class Year:
    def __init__(self, world: PushWorld, people: list[Person]) -> None:
        self.world, self.people = world, people
        self.by_id = {p.id: p for p in people}
        self.active = {p.id for p in people if p.quiet_since is None and p.from_start != "deleted"}
        self.offers_seen: set[int] = set()
        self.timings: Counter[str] = Counter()
        self.runs: Counter[str] = Counter()
        self.next_due: datetime | None = None  # the earliest pending push, as the outbox says

    async def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        now = local(day.year, day.month, day.day, hour, minute)
        self.world.clock.set(now)
        return now

    async def job(self, name: str, job: Any, now: datetime) -> None:
        started = time.perf_counter()
        if await job(self.world.ctx, now):
            self.queued(now)
        self.timings[name] += time.perf_counter() - started

    def queued(self, now: datetime) -> None:
        self.next_due = now if self.next_due is None else min(self.next_due, now)

    async def send(self) -> None:
        """The sender, as of the clock's time. When the outbox holds nothing due yet the run is
        counted but not made: it would claim nothing and change nothing (the outbox's earliest
        next_attempt_at is what the claim itself selects on), and a year of such polls costs minutes."""
        now = self.world.clock.now()
        self.runs["sender"] += 1
        if self.next_due is None or self.next_due > now:
            return
        started = time.perf_counter()
        await self.world.drain()
        async with self.world.db.sessions() as session:
            self.next_due = await session.scalar(
                select(func.min(Outbox.next_attempt_at)).where(Outbox.status == outbox.PENDING)
            )
        self.runs["sender with work due"] += 1
        self.timings["sender"] += time.perf_counter() - started

    async def run(self) -> None:
        day = FIRST
        while day <= LAST:
            await self.one_day(day)
            day += timedelta(days=1)

    async def one_day(self, day: date) -> None:
        await self.job("expire_points", expire_points, await self.at(day, 0, 10))
        await self.send()
        await self.job("birthday", birthday, await self.at(day, 9))
        await self.send()
        now = await self.at(day, 10)
        await self.job("expiry_reminders", expiry_reminders, now)
        await self.changes(now)  # between the job that queued a push and the sender that sends it
        await self.send()
        await self.job("winback", winback, await self.at(day, 11))
        await self.send()
        await self.interactions(day, await self.at(day, 12))
        if day.weekday() == 4:  # Friday evening: a campaign push, then the sender inside quiet hours
            await self.campaign(day, await self.at(day, 20, 30))
            await self.at(day, 21, 30)
            await self.send()

    async def changes(self, now: datetime) -> None:
        for p in self.people:
            if p.change is None or p.change[0] != now:
                continue
            async with self.world.db.unit_of_work() as session:
                if p.change[1] == "opted_out":
                    await members.set_marketing_opt_out(session, p.id, True)
                elif p.change[1] == "unsubscribed":
                    await members.set_status(session, p.openid, members.UNSUBSCRIBED)
                else:
                    await members.delete(session, p.id)
            self.active.discard(p.id)

    async def interactions(self, day: date, now: datetime) -> None:
        """Members who still use the account touch it every day; quiet ones stop; returners check in."""
        for p in self.people:
            if p.goes_quiet_on == day:
                self.active.discard(p.id)
                p.quiet_since = now - timedelta(days=1)
        async with self.world.db.sessions() as session:
            offers = (await session.execute(
                select(WinbackOffer.id, WinbackOffer.member_id, WinbackOffer.offered_at)
                .where(WinbackOffer.offered_at > now - timedelta(days=3))
            )).all()
        for offer_id, member_id, offered_at in offers:
            p = self.by_id[member_id]
            if offer_id in self.offers_seen or not p.returns or p.returned_at is not None:
                continue
            if now - offered_at >= timedelta(days=2) - timedelta(hours=1):  # two days later, at 12:00
                self.offers_seen.add(offer_id)
                async with self.world.db.unit_of_work() as session:
                    result = await checkins.check_in(session, self.world.ledger, p.id, now)
                assert result.winback == self.world.rules.winback_bonus, p
                p.returned_at = now
                self.active.add(p.id)
        if self.active:
            async with self.world.db.unit_of_work() as session:
                await session.execute(
                    update(Member).where(Member.id.in_(sorted(self.active))).values(last_interaction_at=now)  # type: ignore[union-attr]
                )

    async def campaign(self, day: date, now: datetime) -> None:
        """An evening campaign push (marketing, deadline two days on) for a slice of the members."""
        week = day.isocalendar().week
        for p in self.people:
            if p.index % 8 != 5 or p.index // 8 % 53 != week % 53 or p.from_start == "deleted":
                continue
            await self.world.queue(
                f"campaign:{week}:{p.id}", member_id=p.id, openid=p.openid, kind="campaign",
                category=outbox.MARKETING, now=now, deadline=now + timedelta(days=2),
                payload={"text": f"【周末活动 W{week}】本周末到店消费积分翻倍"},
            )
            self.queued(now)


# --- what the fake received ------------------------------------------------------------------------


def call_time(call: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(call["time"], UTC)


CS_KINDS = (("生日快乐", "birthday"), ("温馨提醒", "expiry"), ("想您了", "winback_warn"), ("好久不见", "winback"),
            ("周末活动", "campaign"))


def identity_of_call(call: dict[str, Any]) -> tuple[str, str, str]:
    """(openid, kind, detail) of one accepted send: detail is the expiry date or campaign week."""
    body = call["body"]
    if call["path"] == TEMPLATE:
        kind = KIND_OF_TEMPLATE[body["template_id"]]
        return body["touser"], kind, _detail_of_key(kind, body["client_msg_id"])
    assert call["path"] == CS, call
    content = body["text"]["content"]
    kind = next(k for marker, k in CS_KINDS if marker in content)
    if kind == "expiry":
        found = re.search(r"\d{4}-\d{2}-\d{2}", content)
        assert found, content
        return body["touser"], kind, found.group(0)[:7]
    if kind == "campaign":
        found = re.search(r"W(\d+)", content)
        assert found, content
        return body["touser"], kind, found.group(1)
    return body["touser"], kind, ""


def _detail_of_key(kind: str, key: str) -> str:
    parts = key.split(":")
    if kind == "expiry":  # expiry:<member>:<YYYY-MM>:<stage>
        return parts[2]
    if kind == "campaign":  # campaign:<week>:<member>
        return parts[1]
    return ""


def identity_of_row(row: Outbox) -> tuple[str, str, str]:
    return row.openid, row.kind, _detail_of_key(row.kind, row.dedupe_key)


def expiry_day(month: int) -> date:
    """The last day of `month` in 2026: lots earned that month in 2025 expire at its end."""
    first_next = date(YEAR + (month == 12), month % 12 + 1, 1)
    return first_next - timedelta(days=1)


def expected_winbacks(p: Person, rules: Rules) -> dict[str, list[date]]:
    """The days a quiet member's win-back pushes are due, by kind (storage/winback.py's stages): the warning
    on the first run (11:00) more than 30 days after the last interaction, the points offer a stage gap
    later (recall 1), the offer again a gap after that (recall 2: no coupon in these rules), then dormant
    for the rest of the year. A member who came back (checked in after the offer and kept visiting) is no
    longer at risk, so the episode ends there."""
    if p.quiet_since is None or not p.clean:
        return {}
    first = (p.quiet_since + timedelta(days=rules.winback_after_days)).astimezone(TZ)
    warn = max(first.date() if first.hour < 11 else first.date() + timedelta(days=1), FIRST)
    gap = timedelta(days=rules.winback.stage_gap_days)
    offers = [warn + gap] if p.returned_at is not None else [warn + gap, warn + 2 * gap]
    due = {"winback_warn": [warn], "winback": offers}
    return {kind: [d for d in days if d <= LAST] for kind, days in due.items() if any(d <= LAST for d in days)}


def dormant_from(p: Person, rules: Rules) -> datetime | None:
    """When a quiet member who never came back goes dormant (three stage gaps after the warning, at the job's
    11:00): no marketing reaches them after it (storage/winback.py)."""
    due = expected_winbacks(p, rules)
    if "winback_warn" not in due or p.returned_at is not None:
        return None
    day = due["winback_warn"][0] + 3 * timedelta(days=rules.winback.stage_gap_days)
    return local(day.year, day.month, day.day, 11, 0) if day <= LAST else None


def expected_at(p: Person, rules: Rules, at: datetime) -> bool | None:
    """Whether a clean member's push due `at` must reach them: True before they went dormant, False after,
    None within a day of it (a push held for the cap may fall either side)."""
    asleep = dormant_from(p, rules)
    if asleep is None or at < asleep - timedelta(days=1):
        return True
    return False if at > asleep + timedelta(days=1) else None


@pytest.mark.slow
async def test_a_simulated_year(
    urls: tuple[str, str], backend: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake's tokens live two hours of its (simulated) clock; here they outlive the year, so the
    # calls are the pushes themselves (token refresh on 42001 is covered in test_channels.py).
    monkeypatch.setattr(fakewechat, "TOKEN_TTL", 400 * 86400)
    rng = random.Random(2026)
    people = population(POPULATION[backend], rng)
    if len(people) >= len(DATES):  # every date of the year has a birthday a push may greet
        assert {p.birthday for p in people if p.clean and p.birthday} == {(d.month, d.day) for d in DATES}
    started = time.perf_counter()
    async with push_world(
        urls, at=local(YEAR, 1, 1, 0, 0), wechat_template_ids=TEMPLATES, relaxed_commits=True,
    ) as world:
        await seed(world, people)
        year = Year(world, people)
        await year.run()
        simulated = time.perf_counter() - started
        calls = await world.calls()
        rows = await world.rows()
        async with world.db.sessions() as session:
            entries = (await session.execute(
                select(LedgerEntry.member_id, LedgerEntry.idempotency_key, LedgerEntry.delta, LedgerEntry.kind)
            )).all()
            member_ids = list((await session.scalars(select(Member.id))).all())
            expired_lots = (await session.execute(
                select(PointsLot.id, PointsLot.remaining, PointsLot.expires_at)
            )).all()
        await assert_points_consistent(world.db, member_ids)  # the ledger consistent for everyone
        rules = world.rules

    with capsys.disabled():
        print(f"\nsimulated year, {len(people)} members on {backend}: {simulated:.1f}s;"
              f" {len(rows)} pushes {dict(Counter(r.status for r in rows))}, {len(calls)} calls; time in "
              + ", ".join(f"{k} {v:.1f}s" for k, v in year.timings.most_common())
              + f"; sender runs {dict(year.runs)}")

    by_openid = {p.openid: p for p in people}
    sends = [c for c in calls if c["path"] in SEND_PATHS]
    delivered = [c for c in sends if c["errcode"] == 0]
    # Nothing was refused but (rarely) a token, which was refreshed and the call retried.
    assert {c["errcode"] for c in sends} <= {0, *TOKEN_ERRORS}
    assert delivered, "nothing was sent"

    # --- every call is one sent row, every sent row one call --------------------------------------
    sent_rows = [r for r in rows if r.status == "sent"]
    assert Counter(identity_of_call(c) for c in delivered) == Counter(identity_of_row(r) for r in sent_rows)
    template_keys = Counter(c["body"]["client_msg_id"] for c in delivered if c["path"] == TEMPLATE)
    assert set(template_keys.values()) == {1}
    assert set(template_keys) == {r.dedupe_key for r in sent_rows if r.channel == "template"}
    cs_sent = Counter(r.channel for r in sent_rows)["cs"]
    assert cs_sent == sum(c["path"] == CS for c in delivered)
    if backend == "sqlite":  # memory://: no other test process can flush the windows away
        assert cs_sent > 0

    # --- quiet hours -------------------------------------------------------------------------------
    loud = [(c["body"]["touser"], call_time(c).astimezone(TZ)) for c in delivered
            if not 9 <= call_time(c).astimezone(TZ).hour < 21]
    assert not loud, loud[:5]

    # --- at most 4 marketing pushes in any rolling 30 days --------------------------------------------
    times: dict[str, list[datetime]] = {}
    for c in delivered:
        times.setdefault(c["body"]["touser"], []).append(call_time(c))
    busiest = 0
    for openid, when in times.items():
        when.sort()
        for i, start in enumerate(when):
            in_window = sum(1 for t in when[i:] if t < start + WINDOW)
            busiest = max(busiest, in_window)
            assert in_window <= CAP, (openid, [t.astimezone(TZ).isoformat() for t in when])
    assert busiest == CAP  # the cap was reached, and held

    # --- nothing to members who opted out, unfollowed or left ----------------------------------------
    for openid, when in times.items():
        p = by_openid[openid]
        barred = p.barred_from()
        assert barred is None or all(t < barred for t in when), (p, when)
    for p in people:
        if p.from_start != "active":
            assert p.openid not in times

    # --- rows: final, or waiting beyond the year's end --------------------------------------------------
    end = local(YEAR, 12, 31, 21, 30)
    for row in rows:
        assert row.status in outbox.FINAL or (row.status == "pending" and row.next_attempt_at > end), row
        if row.status == "dropped":
            assert row.last_error, row
    cap_drops = {r.dedupe_key: r for r in rows if r.status == "dropped" and "monthly cap" in (r.last_error or "")}
    # Held (for the cap or quiet hours) until after the member went dormant: dropped, as the rules say.
    dormant_drops = {r.dedupe_key for r in rows if r.status == "dropped" and "dormant" in (r.last_error or "")}

    def cap_justified(row: Outbox) -> bool:
        """4 pushes reached the member in the 30 days up to the row's deadline."""
        limit = row.deadline or row.created_at + WINDOW
        return sum(1 for t in times.get(row.openid, []) if row.created_at - WINDOW < t <= limit) >= 4

    # The crowded members met the cap: some pushes waited for a free slot (a day or more; the
    # evening campaigns wait only for the morning), or were dropped.
    assert cap_drops or any(r.sent_at and r.sent_at - r.created_at > timedelta(days=1) for r in sent_rows)
    for row in cap_drops.values():
        assert cap_justified(row), row.dedupe_key
    rows_by_key = {r.dedupe_key: r for r in rows}
    delivered_keys = {r.dedupe_key for r in sent_rows}

    def reached(key: str) -> bool:
        """Sent exactly once (the call accounting above), dropped for the cap with 4 others sent, or dropped
        because the member went dormant while it waited."""
        return key in delivered_keys or key in cap_drops or key in dormant_drops

    # --- birthdays: paid once for everyone with a birthday, greeted once if marketing may reach them ----
    paid = Counter(key for _, key, delta, kind in entries if kind == "birthday" and delta == 200)
    for p in people:
        key = f"birthday:{p.id}:{YEAR}"
        if p.birthday is None or p.from_start == "deleted":
            assert key not in paid
            continue
        day = Rules.birthday_in(YEAR, *p.birthday)
        greet_at = local(YEAR, day.month, day.day, 9, 0)
        if p.change and p.change[1] == "deleted" and p.change[0] < greet_at:
            assert key not in paid, p
            continue
        assert paid[key] == 1, p
        if p.clean and expected_at(p, rules, greet_at):
            assert reached(key), (p, rows_by_key.get(key))
        elif p.clean and expected_at(p, rules, greet_at) is False:
            assert key not in delivered_keys, p  # dormant: no marketing
        elif not p.clean and (p.from_start != "active" or (p.change and p.change[0] <= greet_at)):
            assert key not in delivered_keys, p
    feb29 = [p for p in people if p.birthday == (2, 29) and p.clean]
    assert feb29
    assert all(f"birthday:{p.id}:{YEAR}" in paid for p in feb29)
    for p in feb29:  # greeted on 28 February
        key = f"birthday:{p.id}:{YEAR}"
        if key in delivered_keys:
            [call] = [c for c in delivered if identity_of_call(c) == (p.openid, "birthday", "")]
            assert call_time(call).astimezone(TZ).date() == date(YEAR, 2, 28)

    # --- expiry reminders: once per stage for every month a member had points expiring -------------
    for p in people:
        for month in p.lot_months:
            for stage in ("30d", "7d"):
                key = f"expiry:{p.id}:{expiry_day(month):%Y-%m}:{stage}"
                due = expiry_day(month) + timedelta(days=1) - timedelta(days=30 if stage == "30d" else 7)
                expected = expected_at(p, rules, local(due.year, due.month, due.day, 10, 0)) if p.clean else None
                if expected:
                    assert reached(key), (key, rows_by_key.get(key))
                elif expected is False:
                    assert key not in delivered_keys, key  # dormant: no marketing
                elif p.from_start != "active":
                    assert key not in rows_by_key
    reminders = [r for r in rows if r.kind == "expiry"]
    for row in reminders:  # queued in the right stage
        expires = datetime.combine(date.fromisoformat(row.dedupe_key.split(":")[2] + "-01"), datetime.min.time(),
                                   tzinfo=TZ)
        expires = (expires + timedelta(days=32)).replace(day=1)
        ahead = expires - row.created_at
        if row.dedupe_key.endswith(":7d"):
            assert ahead <= timedelta(days=7), row.dedupe_key
        else:
            assert timedelta(days=7) < ahead <= timedelta(days=30), row.dedupe_key

    # --- lots expired, ledger consistent ------------------------------------------------------------------
    for lot_id, remaining, expires_at in expired_lots:
        if expires_at <= end:
            assert remaining == 0, lot_id
    expired = {key for _, key, _, kind in entries if kind == "expire"}
    assert len(expired) == sum(1 for _, _, expires_at in expired_lots if expires_at <= end)

    # --- win-back: 30 days quiet, one stage a week, then left alone; honoured by a check-in ------------------
    winbacks: dict[int, dict[str, list[date]]] = {}
    for row in rows:
        if row.kind in ("winback", "winback_warn"):
            winbacks.setdefault(row.member_id or 0, {}).setdefault(row.kind, []).append(
                row.created_at.astimezone(TZ).date())
    for p in people:
        got = {kind: sorted(days) for kind, days in winbacks.get(p.id, {}).items()}
        if p.clean:
            assert got == expected_winbacks(p, rules), (p, got)
        stages = sorted(day for days in got.values() for day in days)
        for a, b in zip(stages, stages[1:], strict=False):
            assert b - a >= timedelta(days=rules.winback.stage_gap_days)
        if p.from_start != "active":
            assert not got
    returners = [p for p in people if p.returns and p.clean]
    assert returners
    assert all(p.returned_at is not None for p in returners)
    bonus = {member_id for member_id, _, delta, kind in entries if kind == "winback" and delta == 50}
    assert {p.id for p in returners} <= bonus

    # --- the evening campaigns waited for the morning ---------------------------------------------------
    campaign_calls = [c for c in delivered if identity_of_call(c)[1] == "campaign"]
    assert campaign_calls
    for c in campaign_calls:
        at = call_time(c).astimezone(TZ)
        assert (at.hour, at.minute) == (9, 0), at
