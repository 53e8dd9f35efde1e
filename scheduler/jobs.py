"""The scheduler's jobs. Each selects in batches and handles every member in its own transaction,
so one bad member does not stop the rest; every effect is keyed, so a re-run changes nothing.
Pushes carry facts (kind and numbers), never text: the sender renders them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlmodel import col

from storage import anomalies, broadcasts, experiments, outbox, reports, segments, surveys, ticketsla
from storage import winback as winbacks
from storage.campaigns import Campaigns
from storage.clock import local_date
from storage.db import Database
from storage.errors import DomainError
from storage.ledger import Ledger
from storage.members import ACTIVE, DELETED
from storage.models import Member, Outbox, PointsLot, Redemption, Reward, WinbackOffer
from storage.outbox import MARKETING
from storage.reasons import Reason
from storage.rewards import Issued, Rewards
from storage.rows import row_id
from storage.tiers import review_tiers

log = logging.getLogger("wxbot.jobs")
BATCH = 500


@dataclass
class JobContext:
    db: Database
    ledger: Ledger
    ops_robot: str = ""  # OPS_WECOM_ROBOT: the operations group robot new anomalies are announced to
    service_robot: str = ""  # SERVICE_WECOM_ROBOT: the service staff's robot SLA breaches are announced to
    templates: bool = False  # a template message is configured for some push kind (the reports' push reach)
    rewards: Rewards = field(init=False)

    def __post_init__(self) -> None:
        self.rewards = Rewards(self.ledger)  # also gives the tier gifts of upgrades the jobs cause

    @property
    def rules(self):
        return self.ledger.rules

    @property
    def tz(self):
        return self.ledger.tz


async def _each(ctx: JobContext, query, handle: Callable[[int], Awaitable[bool]]) -> int:
    """Run `handle(member_id)` for every id the query yields (keyset pages of BATCH); count Trues."""
    done, last = 0, 0
    while True:
        async with ctx.db.sessions() as session:
            ids = list((await session.scalars(
                query.where(col(Member.id) > last).order_by(col(Member.id)).limit(BATCH)
            )).all())
        for member_id in ids:
            try:
                done += bool(await handle(member_id))
            except Exception:
                log.exception("job step failed for member %s", member_id)
        if len(ids) < BATCH:
            return done
        last = ids[-1]


def _members():
    return select(col(Member.id)).where(col(Member.joined_at).is_not(None)).where(col(Member.status) != DELETED)


# --- birthday ------------------------------------------------------------------------------------
def birthdays_on(day: date):
    """Members whose birthday is `day`; 29 February birthdays fall on 28 February in other years."""
    match = and_(col(Member.birthday_month) == day.month, col(Member.birthday_day) == day.day)
    if day.month == 2 and day.day == 28 and not _leap(day.year):
        match = or_(match, and_(col(Member.birthday_month) == 2, col(Member.birthday_day) == 29))
    return _members().where(match)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


async def birthday(ctx: JobContext, now: datetime) -> int:
    """200 points once per calendar year (`birthday:<member>:<year>`), the rules' coupon for the member's
    tier ([birthday_coupons], `grant:birthday:<member>:<year>`) and one greeting push naming both."""
    day = local_date(now, ctx.tz)

    async def one(member_id: int) -> bool:
        # The coupon first, in its own transaction (a refused one must not cost the points); then the points
        # and the greeting together, so a re-run after a crash between the two still greets once.
        gift = await _birthday_coupon(ctx, member_id, day.year, now)
        async with ctx.db.unit_of_work() as session:
            moved = await ctx.ledger.earn(
                session, member_id, ctx.rules.birthday_points, key=f"birthday:{member_id}:{day.year}",
                kind="birthday", now=now, reason=Reason.BIRTHDAY.stored(year=day.year),
            )
            if moved.repeated and (gift is None or gift.repeated):
                return False
            member = await session.get(Member, member_id)
            if member is None or not member.openid or outbox.may_market(member) is not None:
                return True
            # An experiment over the greeting changes its words or its hour, never whether the points come:
            # a holdout member is credited and sent nothing.
            arm = await experiments.arm_for(session, "birthday", member_id, now)
            if arm is not None and arm.holdout:
                return True
            params: dict[str, Any] = {"points": moved.delta, "balance": moved.balance}
            payload: dict[str, Any] = {"params": params | (ctx.rewards.gift_params(gift) if gift else {})}
            if gift is not None:
                payload["variant"] = "birthday_coupon"
            if arm is not None and "text" in arm.params:
                payload["template"] = arm.params["text"]  # the arm's words, filled in by the sender's renderer
            at = None
            if arm is not None and "hour" in arm.params:
                at = max(now, datetime.combine(day, time(int(arm.params["hour"])), tzinfo=ctx.tz).astimezone(UTC))
            await outbox.enqueue(
                session, dedupe_key=f"birthday:{member_id}:{day.year}", openid=member.openid,
                member_id=member_id, kind="birthday", category=MARKETING, now=now, payload=payload, not_before=at,
                deadline=ctx.rules.day_start(day + timedelta(days=7), ctx.tz),
                experiment_id=arm.experiment_id if arm else None, variant=arm.name if arm else None,
            )
            return True

    return await _each(ctx, birthdays_on(day), one)


async def _birthday_coupon(ctx: JobContext, member_id: int, year: int, now: datetime) -> Issued | None:
    """The birthday coupon of the member's tier, in its own transaction: a coupon that cannot be given (sold
    out, ended, no such reward) is logged and skipped, and the birthday points stand."""
    try:
        async with ctx.db.unit_of_work() as session:
            member = await ctx.ledger.lock(session, member_id)
            reward_id = ctx.rules.birthday_coupon(member.tier)
            if reward_id is None:
                return None
            return await ctx.rewards.grant(session, member_id, reward_id, period=str(year), now=now,
                                           reason="birthday")
    except DomainError as exc:
        log.warning("birthday coupon for member %s not given: %s", member_id, type(exc).__name__)
        return None


# --- expiry ----------------------------------------------------------------------------------------
async def expire_points(ctx: JobContext, now: datetime) -> int:
    """Write the expiry entries of lapsed lots (`expire:<lot>`), one member per transaction."""
    total, last = 0, 0
    while True:
        async with ctx.db.sessions() as session:
            ids = await ctx.ledger.expire_due(session, now, limit=BATCH, after=last)
        for member_id in ids:
            try:
                async with ctx.db.unit_of_work() as session:
                    total += await ctx.ledger.expire_member(session, member_id, now)
            except Exception:
                log.exception("job step failed for member %s", member_id)
        if len(ids) < BATCH:
            return total
        last = ids[-1]


async def expiry_reminders(ctx: JobContext, now: datetime) -> int:
    """Points expiring within 30 days: one reminder per member per expiry month, and again at 7 days."""
    sent = 0
    last = 0
    while True:
        async with ctx.db.sessions() as session:
            rows = (await session.execute(expiring_page(now, last))).all()
        # Most of these members were reminded at this stage already (the job runs daily): find which
        # in one query rather than a transaction each.
        due = {reminder_key(ctx, member_id, expires_at, now): (member_id, points, expires_at)
               for member_id, points, expires_at in rows}
        async with ctx.db.sessions() as session:
            done = set((await session.scalars(
                select(col(Outbox.dedupe_key)).where(col(Outbox.dedupe_key).in_(list(due)))
            )).all())
        for key, (member_id, points, expires_at) in due.items():
            if key not in done:
                sent += await _remind(ctx, member_id, int(points), expires_at, now)
        if len(rows) < BATCH:
            return sent
        last = rows[-1][0]


def expiring_page(now: datetime, last: int) -> Any:
    """expiry_reminders' page: (member, points, earliest expiry) of live points expiring within 30 days."""
    return (
        select(col(PointsLot.member_id), func.sum(col(PointsLot.remaining)), func.min(col(PointsLot.expires_at)))
        .where(col(PointsLot.remaining) > 0).where(col(PointsLot.expires_at) > now)
        .where(col(PointsLot.expires_at) <= now + timedelta(days=30)).where(col(PointsLot.member_id) > last)
        .group_by(col(PointsLot.member_id)).order_by(col(PointsLot.member_id)).limit(BATCH)
    )


def reminder_key(ctx: JobContext, member_id: int, expires_at: datetime, now: datetime) -> str:
    """`expiry:<member>:<month of the last day>:<30d|7d>`: one reminder per stage per expiry month."""
    expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=now.tzinfo)
    last_day = (expires_at.astimezone(ctx.tz) - timedelta(days=1)).date()
    stage = "7d" if expires_at - now <= timedelta(days=7) else "30d"
    return f"expiry:{member_id}:{last_day:%Y-%m}:{stage}"


async def _remind(ctx: JobContext, member_id: int, points: int, expires_at: datetime, now: datetime) -> int:
    expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=now.tzinfo)
    last_day = (expires_at.astimezone(ctx.tz) - timedelta(days=1)).date()
    async with ctx.db.unit_of_work() as session:
        member = await session.get(Member, member_id)
        if member is None or not member.openid or outbox.may_market(member) is not None:
            return 0
        queued = await outbox.enqueue(
            session, dedupe_key=reminder_key(ctx, member_id, expires_at, now), openid=member.openid,
            member_id=member_id, kind="expiry", category=MARKETING, now=now, deadline=expires_at,
            payload={"params": {"points": points, "date": last_day.isoformat()}},
        )
    return int(queued)


# --- coupons about to lapse ------------------------------------------------------------------------
LAPSE_NOTICE_DAYS = 3


async def coupon_lapse(ctx: JobContext, now: datetime) -> int:
    """One marketing reminder per unused coupon (`coupon_lapse:<redemption>`) when its last day is 3 local
    days away, or nearer on a catch-up run; never for a coupon issued inside those 3 days, nor a used,
    cancelled or lapsed one. The sender applies the cap, quiet hours and opt-out (priority just under the
    points' expiry reminder); the row is dropped once the coupon has lapsed (deadline)."""
    today = local_date(now, ctx.tz)
    queued, last = 0, 0
    while True:
        async with ctx.db.sessions() as session:
            rows = (await session.execute(
                select(Redemption, col(Reward.name)).join(Reward, col(Reward.id) == Redemption.reward_id)
                .where(col(Redemption.status) == "issued").where(col(Redemption.expires_at) > now)
                .where(col(Redemption.expires_at) <= now + timedelta(days=LAPSE_NOTICE_DAYS + 1))
                .where(col(Redemption.id) > last).order_by(col(Redemption.id)).limit(BATCH)
            )).all()
            keys = [f"coupon_lapse:{r.id}" for r, _ in rows]
            done = set((await session.scalars(
                select(col(Outbox.dedupe_key)).where(col(Outbox.dedupe_key).in_(keys))
            )).all())
        for redemption, name in rows:
            last_day = local_date(redemption.expires_at - timedelta(seconds=1), ctx.tz)
            notice_day = last_day - timedelta(days=LAPSE_NOTICE_DAYS)
            if f"coupon_lapse:{redemption.id}" in done or today < notice_day:
                continue
            if local_date(redemption.created_at, ctx.tz) > notice_day:
                continue  # issued with 3 days or less to run: the member has just been given it
            try:
                queued += await _remind_coupon(ctx, redemption, name, last_day, now)
            except Exception:
                log.exception("job step failed for member %s", redemption.member_id)
        if len(rows) < BATCH:
            return queued
        last = row_id(rows[-1][0])


async def _remind_coupon(ctx: JobContext, redemption: Redemption, name: str, last_day: date, now: datetime) -> int:
    async with ctx.db.unit_of_work() as session:
        member = await session.get(Member, redemption.member_id)
        if member is None or not member.openid or outbox.may_market(member) is not None:
            return 0
        return int(await outbox.enqueue(
            session, dedupe_key=f"coupon_lapse:{redemption.id}", openid=member.openid, member_id=member.id,
            kind="coupon_lapse", category=MARKETING, now=now, deadline=redemption.expires_at,
            payload={"params": {"reward": name, "code": redemption.code, "date": last_day.isoformat()}},
        ))


# --- win-back --------------------------------------------------------------------------------------
def winback_candidates() -> Any:
    """Members a win-back may concern: joined, active, open to marketing; the risk and the stage are judged
    per page (storage/winback.py)."""
    return _members().where(col(Member.status) == ACTIVE).where(col(Member.marketing_opt_out).is_(False))


async def winback(ctx: JobContext, now: datetime) -> int:
    """The staged win-back (storage/winback.py): each member at risk moves at most one stage a run, each stage
    at most one push (`winback:<member>:<stage>:<day>`), stages a week apart; returns how many moved."""
    day = local_date(now, ctx.tz)
    moved, last = 0, 0
    while True:
        async with ctx.db.sessions() as session:
            ids = [int(i) for i in (await session.scalars(
                winback_candidates().where(col(Member.id) > last).order_by(col(Member.id)).limit(BATCH)
            )).all()]
            found = await winbacks.rhythms(session, ids, now, day) if ids else {}
        for member_id in ids:
            rhythm = found[member_id]
            risk = winbacks.at_risk(rhythm, now, ctx.rules)
            if winbacks.next_step(rhythm.stage, rhythm.stage_at, risk, now, ctx.rules) is None:
                continue  # most members: nothing to do, so no transaction and no lock
            try:
                moved += await _winback_one(ctx, member_id, risk, now, day)
            except Exception:
                log.exception("job step failed for member %s", member_id)
        if len(ids) < BATCH:
            return moved
        last = ids[-1]


async def _winback_one(ctx: JobContext, member_id: int, risk: bool, now: datetime, day: date) -> bool:
    rules = ctx.rules
    async with ctx.db.unit_of_work() as session:
        member = await ctx.ledger.lock(session, member_id)  # the page's stage again, now under the lock
        stage = winbacks.next_step(member.churn_stage, member.churn_stage_at, risk, now, rules)
        if stage == winbacks.LEAVE:
            winbacks.leave(member)
            return False
        if stage is None or outbox.may_market(member) is not None or not member.openid:
            return False
        arm = await experiments.arm_for(session, "winback", member_id, now) if stage == winbacks.RECALL1 else None
        held_out = arm is not None and arm.holdout
        if not await winbacks.enter(session, member, stage, now, day, held_out=held_out):
            return False
        if held_out or stage == winbacks.DORMANT:
            return True
        base: dict[str, Any] = {"dedupe_key": f"winback:{member_id}:{stage}:{day.isoformat()}", "openid": member.openid,
                "member_id": member_id, "category": MARKETING, "now": now, "deadline": now + timedelta(days=2)}
        if stage == winbacks.WARN:
            await outbox.enqueue(session, kind="winback_warn", payload={"params": {}}, **base)
            return True
        if stage == winbacks.RECALL2 and rules.winback.recall_reward is not None:
            try:  # a refused grant writes nothing (Rewards.grant), so the offer below may follow it
                gift = await ctx.rewards.grant(session, member_id, rules.winback.recall_reward,
                                               period=day.isoformat(), now=now, reason="winback")
                await outbox.enqueue(session, kind="winback_coupon", payload={"params": ctx.rewards.gift_params(gift)},
                                     **base)
                return True
            except DomainError as exc:  # sold out or ended: the points offer instead, never nothing
                log.warning("win-back coupon for member %s not given: %s", member_id, type(exc).__name__)
        points = int(arm.params.get("points", rules.winback_bonus)) if arm is not None else rules.winback_bonus
        await outbox.enqueue(session, kind="winback", payload={"params": {"points": points,
                                                                          "days": rules.winback_valid_days}},
                             experiment_id=arm.experiment_id if arm else None, variant=arm.name if arm else None,
                             **base)
        valid_until = now + timedelta(days=rules.winback_valid_days)
        session.add(WinbackOffer(member_id=member_id, points=points, offered_at=now, valid_until=valid_until))
        member.winback_until = valid_until  # check-in looks for the offer while this lasts
        return True


# --- segments ------------------------------------------------------------------------------------------
async def rfm(ctx: JobContext, now: datetime) -> int:
    """The daily RFM layering (storage/segments.py), after the night's expiry and before the KPI snapshot; a
    re-run the same day changes only what changed since. Returns how many members moved class."""
    async with ctx.db.unit_of_work() as session:
        done = await segments.layer(session, now, local_date(now, ctx.tz), ctx.rules.rfm)
    log.info("rfm: %s buyers (%s), %s moved, %s updated", done.buyers,
             "quintiles" if done.quintiles else "fixed cut-offs", done.moved, done.updated)
    return done.moved


# --- tiers ---------------------------------------------------------------------------------------------
async def tier_review(ctx: JobContext, now: datetime) -> int:
    review = await review_tiers(ctx.db, ctx.ledger, now)
    return review.downgraded


async def campaigns(ctx: JobContext, now: datetime) -> int:
    """Settle campaigns whose end has come (challenge and draw payouts); safe to run concurrently."""
    return await Campaigns(ctx.ledger).finalize_due(ctx.db, now)


# --- anomalies ---------------------------------------------------------------------------------------
async def announce_anomalies(ctx: JobContext, now: datetime) -> int:
    """One robot message per new anomaly (outbox `anomaly:<id>`, source wecom: the sender paces it like a
    campaign robot); with no robot set, new anomalies are only marked, so setting one later does not post
    the past. A repeat (two leaders, a crash between the two writes) meets the outbox key: never twice."""
    queued = 0
    while True:
        async with ctx.db.unit_of_work() as session:
            found = await anomalies.unannounced(session, BATCH)
            for anomaly in found if ctx.ops_robot else ():
                queued += await outbox.enqueue(
                    session, dedupe_key=f"anomaly:{anomaly.id}", openid="", source="wecom", kind="anomaly",
                    now=now, payload={"robot_key": ctx.ops_robot, "params": {
                        "id": anomaly.id, "kind": anomaly.kind, "member_id": anomaly.member_id,
                        "detail": anomaly.detail,
                    }},
                )
            await anomalies.mark_announced(session, [a.id for a in found if a.id is not None], now)
        if len(found) < BATCH:
            return queued


# --- tickets -----------------------------------------------------------------------------------------
async def ticket_sla(ctx: JobContext, now: datetime) -> int:
    """Escalate each live ticket past its first-answer or resolution due time, once (storage/ticketsla.py)."""
    async with ctx.db.unit_of_work() as session:
        return await ticketsla.escalate_due(session, now, robot=ctx.service_robot)


# --- surveys -----------------------------------------------------------------------------------------
async def survey_sample(ctx: JobContext, now: datetime) -> int:
    """The weekly sample of active members for each active `sample` survey (storage/surveys.py): a stable
    draw of the survey's share, once per survey and ISO week; asked at each one's next message within 7 days."""
    async with ctx.db.unit_of_work() as session:
        return await surveys.sample_week(session, now, ctx.tz)


# --- reports -------------------------------------------------------------------------------------------
async def kpi_snapshot(ctx: JobContext, now: datetime) -> int:
    """The KPI snapshot of the local day before `now` (the job runs after midnight; `jobs run kpi_snapshot
    --at` a later time rebuilds a missed day). A re-run replaces the day's row; returns 1."""
    day = local_date(now, ctx.tz) - timedelta(days=1)
    async with ctx.db.unit_of_work() as session:
        await reports.snapshot(session, day, ctx.tz, ctx.rules, now, templates=ctx.templates)
    return 1


async def kpi_digest(ctx: JobContext, now: datetime) -> int:
    """Monday 09:00: the latest snapshot's headline figures (reports.HEADLINES) and the same day a week
    before, to the operations robot (outbox `kpi_digest:<ISO week>`, source wecom; the sender renders the
    words). Once a week: job_run lets the scheduler run each due time once, and the week's key stops a
    re-run (`jobs run kpi_digest --at`, a second leader) from posting again. No robot, or no snapshot in
    the 7 days before: nothing."""
    if not ctx.ops_robot:
        return 0
    today = local_date(now, ctx.tz)
    year, week, _ = today.isocalendar()
    async with ctx.db.unit_of_work() as session:
        rows = dict(await reports.series(session, today - timedelta(days=14), today - timedelta(days=1)))
        recent = [day for day in rows if day >= today - timedelta(days=7)]
        if not recent:
            log.warning("kpi_digest: no KPI snapshot in the week before %s; nothing posted", today.isoformat())
            return 0
        day = max(recent)

        def pick(figures: dict[str, Any]) -> dict[str, Any]:
            return {name: figures.get(name) for name in reports.HEADLINES}

        before = rows.get(day - timedelta(days=7))
        queued = await outbox.enqueue(
            session, dedupe_key=f"kpi_digest:{year}-W{week:02d}", openid="", source="wecom", kind="kpi_digest",
            now=now, payload={"robot_key": ctx.ops_robot, "params": {
                "day": day.isoformat(), "figures": pick(rows[day]), "previous": pick(before or {}),
            }},
        )
    return int(queued)


# --- broadcasts --------------------------------------------------------------------------------------
async def broadcast_expansion(ctx: JobContext, now: datetime) -> int:
    """Due broadcasts into marketing outbox rows (storage/broadcasts.expand: keyset pages from the cursor,
    INSERT ... SELECT, a re-run adds nothing); how many rows were queued."""
    queued = 0
    for broadcast_id in await broadcasts.due(ctx.db, now):
        try:
            queued += await broadcasts.expand(ctx.db, broadcast_id, now, rules=ctx.rules, tz=ctx.tz)
        except Exception:  # one broadcast's failure must not hold the others; its cursor resumes next minute
            log.exception("expansion of broadcast %s failed", broadcast_id)
    return queued


Job = Callable[[JobContext, datetime], Awaitable[int]]
JOBS: dict[str, Job] = {
    "birthday": birthday,
    "expire_points": expire_points,
    "expiry_reminders": expiry_reminders,
    "coupon_lapse": coupon_lapse,
    "winback": winback,
    "rfm": rfm,
    "tier_review": tier_review,
    "campaigns": campaigns,
    "announce_anomalies": announce_anomalies,
    "ticket_sla": ticket_sla,
    "survey_sample": survey_sample,
    "kpi_snapshot": kpi_snapshot,
    "kpi_digest": kpi_digest,
    "broadcasts": broadcast_expansion,
}
# name -> cron fields in the programme's time zone
SCHEDULE: dict[str, dict[str, str]] = {
    "birthday": {"hour": "9", "minute": "0"},
    "expire_points": {"hour": "0", "minute": "10"},
    "expiry_reminders": {"hour": "10", "minute": "0"},
    "coupon_lapse": {"hour": "10", "minute": "15"},
    "winback": {"hour": "11", "minute": "0"},
    "rfm": {"hour": "0", "minute": "20"},  # after expire_points (00:10), before kpi_snapshot (00:30)
    "tier_review": {"day": "1", "hour": "3", "minute": "0"},
    "campaigns": {"minute": "*"},
    "announce_anomalies": {"minute": "*"},
    "ticket_sla": {"minute": "*"},
    "broadcasts": {"minute": "*"},
    "survey_sample": {"day_of_week": "mon", "hour": "8", "minute": "0"},
    "kpi_snapshot": {"hour": "0", "minute": "30"},  # after expire_points, so the day's expiry is in
    "kpi_digest": {"day_of_week": "mon", "hour": "9", "minute": "0"},
}

__all__ = ["JOBS", "SCHEDULE", "JobContext", "Outbox"]
