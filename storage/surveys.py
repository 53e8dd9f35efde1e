"""Satisfaction surveys (NPS 0-10, CSAT 1-5): an operator defines them (audited); a touchpoint (a coupon used
at a store, a paid order, a campaign settled, a ticket resolved, the weekly sample of active members)
records a pending ask per member, once per trigger; the member's next message within ASK_WINDOW asks it
inside their own session (never a push), at most once per QUIET across every survey. A pending ask is
marked on the member's row (`Member.survey_due_until`), which the chat loads anyway, so a message looks
for an ask only when one is due. The follow-up answer is member data: encrypted, never logged.

Figures: NPS = % promoters (9-10) - % detractors (0-6); CSAT mean and share of 4-5; a detractor (NPS 0-6,
CSAT 1-2) gets a follow-up ticket (kind `survey`) in the queue."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import audit
from storage.audit import Actor
from storage.clock import as_utc, local_date
from storage.db import dialect_insert
from storage.enums import MemberStatus
from storage.errors import NotFoundError
from storage.models import Campaign, CampaignMember, Member, Reward, Survey, SurveyAsk, Ticket
from storage.reasons import Reason

if TYPE_CHECKING:  # storage.tickets triggers surveys: imported for the types only
    from storage.ledger import Ledger
    from storage.members import PiiProtector
    from storage.tickets import Tickets

NPS, CSAT = "nps", "csat"
KINDS = (NPS, CSAT)
TOUCHPOINTS = ("coupon", "order", "campaign", "ticket", "sample")
ACTIVE, PAUSED = "active", "paused"
SCALES = {NPS: (0, 10), CSAT: (1, 5)}
ASK_WINDOW = timedelta(days=7)  # asked at the member's next message within this of the trigger, else never
QUIET = timedelta(days=90)  # at most one ask per member in this, across surveys
ANSWER_WINDOW = timedelta(days=3)  # an asked question waits this long for its digit (the flow's lifetime)
ACTIVE_DAYS = 30  # the weekly sample draws from members who wrote within this many days
MAX_THANKS = 50
FOLLOWUP_CATEGORY = "服务"
_PAGE = 1000


def is_detractor(kind: str, score: int) -> bool:
    return score <= 6 if kind == NPS else score <= 2


def in_scale(kind: str, score: int) -> bool:
    low, high = SCALES[kind]
    return low <= score <= high


@dataclass(frozen=True)
class Draft:
    """A survey as the console form gives it (checked there, field by field)."""

    name: str
    kind: str
    question: str
    followup: str | None
    touchpoint: str
    sample_percent: int = 0
    thanks_points: int = 0


def _shown(survey: Survey) -> dict[str, object]:
    return {"name": survey.name, "kind": survey.kind, "touchpoint": survey.touchpoint, "status": survey.status,
            "followup": survey.followup is not None, "sample_percent": survey.sample_percent,
            "thanks_points": survey.thanks_points}


# --- the operator's side -----------------------------------------------------------------------------
async def create(session: AsyncSession, actor: Actor, draft: Draft, now: datetime, *,
                 client: str | None = None) -> Survey:
    survey = Survey(name=draft.name, kind=draft.kind, question=draft.question, followup=draft.followup or None,
                    touchpoint=draft.touchpoint, sample_percent=draft.sample_percent if draft.touchpoint == "sample"
                    else 0, thanks_points=draft.thanks_points, created_at=now, created_by=actor.name[:64])
    session.add(survey)
    await session.flush()
    await audit.record(session, actor, "survey.create", f"survey:{survey.id}", now=now, after=_shown(survey),
                       client=client)
    return survey


async def set_status(session: AsyncSession, actor: Actor, survey_id: int, status: str, now: datetime, *,
                     client: str | None = None) -> Survey:
    """Pause (no new asks; pending ones are not asked) or resume a survey."""
    survey = await session.get(Survey, survey_id, with_for_update=True)
    if survey is None:
        raise NotFoundError(f"survey {survey_id} does not exist")
    before = survey.status
    survey.status = status
    await audit.record(session, actor, "survey.pause" if status == PAUSED else "survey.resume",
                       f"survey:{survey.id}", now=now, before={"status": before}, after={"status": status},
                       client=client)
    return survey


async def all_surveys(session: AsyncSession) -> Sequence[Survey]:
    return (await session.scalars(select(Survey).order_by(col(Survey.id).desc()))).all()


# --- triggers ------------------------------------------------------------------------------------------
async def trigger(
    session: AsyncSession, touchpoint: str, member_ids: Iterable[int], key: str, now: datetime, *,
    reward_id: int | None = None, campaign_id: int | None = None,
) -> int:
    """A pending ask of every active survey of this touchpoint for each member, once per (survey, key); a
    member asked within QUIET gets none. Marks the members' rows so their next message looks. In the
    caller's transaction. Returns the asks recorded."""
    ids = sorted(set(member_ids))
    surveys = (await session.scalars(
        select(Survey).where(col(Survey.touchpoint) == touchpoint).where(col(Survey.status) == ACTIVE)
        .order_by(col(Survey.id))
    )).all() if ids else []
    recorded = 0
    for start in range(0, len(ids), _PAGE):
        for survey in surveys:
            recorded += await _trigger_one(session, survey, ids[start:start + _PAGE], key[:80], now,
                                           reward_id=reward_id, campaign_id=campaign_id)
    return recorded


async def trigger_campaign(session: AsyncSession, campaign_id: int, now: datetime) -> int:
    """A campaign settled: each of its participants."""
    members = (await session.scalars(
        select(col(CampaignMember.member_id)).where(col(CampaignMember.campaign_id) == campaign_id)
    )).all()
    return await trigger(session, "campaign", members, f"campaign:{campaign_id}", now, campaign_id=campaign_id)


def sampled(survey_id: int, week: str, member_id: int, percent: int) -> bool:
    """Stable: the same survey, week and member always draw the same; `percent` of members on average."""
    digest = hashlib.sha256(f"survey:{survey_id}:{week}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 10000 < percent * 100


def week_of(now: datetime, tz: ZoneInfo) -> str:
    year, week, _ = local_date(now, tz).isocalendar()
    return f"{year}-W{week:02d}"


async def sample_week(session: AsyncSession, now: datetime, tz: ZoneInfo) -> int:
    """The weekly sample (a scheduler job): for each active `sample` survey, its share of the members who
    wrote within ACTIVE_DAYS, drawn stably (sampled); once per survey and week (trigger key)."""
    surveys = (await session.scalars(
        select(Survey).where(col(Survey.touchpoint) == "sample").where(col(Survey.status) == ACTIVE)
        .where(col(Survey.sample_percent) > 0)
    )).all()
    if not surveys:
        return 0
    week, recorded, after = week_of(now, tz), 0, 0
    while True:
        ids = (await session.scalars(
            select(col(Member.id)).where(col(Member.id) > after).where(col(Member.joined_at).is_not(None))
            .where(col(Member.status) == MemberStatus.ACTIVE)
            .where(col(Member.last_interaction_at) >= now - timedelta(days=ACTIVE_DAYS))
            .order_by(col(Member.id)).limit(_PAGE)
        )).all()
        if not ids:
            return recorded
        after = int(ids[-1] or 0)
        for survey in surveys:
            drawn = [int(m or 0) for m in ids if sampled(int(survey.id or 0), week, int(m or 0), survey.sample_percent)]
            recorded += await _trigger_one(session, survey, drawn, f"sample:{week}", now)


async def _trigger_one(
    session: AsyncSession, survey: Survey, member_ids: list[int], key: str, now: datetime, *,
    reward_id: int | None = None, campaign_id: int | None = None,
) -> int:
    """Pending asks of one survey for these members (none for a member asked within QUIET), once per key."""
    if not member_ids:
        return 0
    quiet = set((await session.scalars(
        select(col(SurveyAsk.member_id)).where(col(SurveyAsk.member_id).in_(member_ids))
        .where(col(SurveyAsk.asked_at) >= now - QUIET)
    )).all())
    rows = [{"survey_id": survey.id, "member_id": m, "trigger_key": key, "touchpoint": survey.touchpoint,
             "reward_id": reward_id, "campaign_id": campaign_id, "triggered_at": now, "state": "pending",
             "thanked": 0} for m in member_ids if m not in quiet]
    if not rows:
        return 0
    inserted = (await session.scalars(
        dialect_insert(session)(SurveyAsk).values(rows)
        .on_conflict_do_nothing(index_elements=["survey_id", "member_id", "trigger_key"])
        .returning(col(SurveyAsk.member_id))
    )).all()
    if inserted:
        await session.execute(update(Member).where(col(Member.id).in_(list(inserted)))
                              .values(survey_due_until=now + ASK_WINDOW))
    return len(inserted)


# --- the member's side ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Asked:
    """The ask the member's message is to carry (the flow state keeps these facts)."""

    ask_id: int
    name: str
    kind: str
    question: str
    followup: str | None


def due(member: Member | None, now: datetime) -> bool:
    """Whether the member's row says an ask may be waiting (no query when not)."""
    until = member.survey_due_until if member is not None else None
    return until is not None and as_utc(until) > now


async def take(session: AsyncSession, member_id: int, now: datetime) -> Asked | None:
    """The newest pending ask within ASK_WINDOW of its trigger, marked asked; every other pending ask of the
    member is skipped (or expired past its window), and the member's mark cleared: one ask, then QUIET. An
    earlier question left unanswered past ANSWER_WINDOW (its flow lapsed) is expired, not left `asked`."""
    await session.execute(update(SurveyAsk).where(col(SurveyAsk.member_id) == member_id)
                          .where(col(SurveyAsk.state) == "asked").where(col(SurveyAsk.asked_at) < now - ANSWER_WINDOW)
                          .values(state="expired"))
    pending = (await session.scalars(
        select(SurveyAsk).where(col(SurveyAsk.member_id) == member_id).where(col(SurveyAsk.state) == "pending")
        .order_by(col(SurveyAsk.triggered_at).desc(), col(SurveyAsk.id).desc()).with_for_update()
    )).all()
    recent = await session.scalar(
        select(func.count()).select_from(SurveyAsk).where(col(SurveyAsk.member_id) == member_id)
        .where(col(SurveyAsk.asked_at) >= now - QUIET)
    )
    surveys = {s.id: s for s in (await session.scalars(
        select(Survey).where(col(Survey.id).in_({a.survey_id for a in pending}))
    )).all()} if pending else {}
    chosen: Asked | None = None
    for ask in pending:
        survey = surveys.get(ask.survey_id)
        fresh = as_utc(ask.triggered_at) > now - ASK_WINDOW
        if chosen is None and not recent and fresh and survey is not None and survey.status == ACTIVE:
            ask.state, ask.asked_at = "asked", now
            chosen = Asked(int(ask.id or 0), survey.name, survey.kind, survey.question, survey.followup)
        else:
            ask.state = "skipped" if fresh else "expired"
    await session.execute(update(Member).where(col(Member.id) == member_id).values(survey_due_until=None))
    return chosen


@dataclass(frozen=True)
class Answered:
    score: int
    thanked: int
    ticket_code: str | None
    repeated: bool = False


async def answer(
    session: AsyncSession, ask_id: int, member: Member, score: int, now: datetime, *, ledger: Ledger,
    tickets: Tickets, openid: str, source: str, ticket_text: str,
) -> Answered:
    """The member's score (in the survey's scale, checked by the caller): the thank-you credited once under
    the daily cap (`survey:{ask}`), and a detractor's follow-up ticket opened. A repeat returns the first."""
    ask = await session.get(SurveyAsk, ask_id, with_for_update=True)
    if ask is None or ask.member_id != member.id:
        raise NotFoundError(f"survey ask {ask_id} is not the member's")
    if ask.state not in ("asked", "answered"):  # declined, dropped or expired meanwhile: nothing to score
        raise NotFoundError(f"survey ask {ask_id} is {ask.state}")
    if ask.state == "answered" and ask.score is not None:
        code = None
        if ask.ticket_id is not None:
            code = await session.scalar(select(col(Ticket.code)).where(col(Ticket.id) == ask.ticket_id))
        return Answered(ask.score, ask.thanked, code, repeated=True)
    survey = await session.get(Survey, ask.survey_id)
    assert survey is not None
    ask.state, ask.score, ask.answered_at = "answered", score, now
    if survey.thanks_points > 0:
        moved = await ledger.earn(session, int(member.id or 0), survey.thanks_points, key=f"survey:{ask.id}",
                                  kind="survey", now=now, reason=Reason.SURVEY.stored(name=survey.name[:40]),
                                  ref=f"survey:{survey.id}")
        ask.thanked = moved.delta
    code = None
    if is_detractor(survey.kind, score):
        ticket = await tickets.open(session, member, openid, source, category=FOLLOWUP_CATEGORY, text=ticket_text,
                                    now=now, kind="survey")
        ask.ticket_id, code = ticket.id, ticket.code
    return Answered(score, ask.thanked, code)


async def add_followup(session: AsyncSession, ask_id: int, text: str, now: datetime, *, pii: PiiProtector,
                       tickets: Tickets) -> None:
    """The member's open answer, kept whole and encrypted; also added to the follow-up ticket's thread."""
    ask = await session.get(SurveyAsk, ask_id, with_for_update=True)
    if ask is None or ask.followup_enc is not None:
        return
    ask.followup_enc = pii.encrypt(text)
    if ask.ticket_id is not None:
        await tickets.add_member_text(session, ask.ticket_id, text, now)


async def close(session: AsyncSession, ask_id: int, state: str) -> None:
    """`declined` (取消) or `dropped` (the member wrote something else, or twice out of range)."""
    await session.execute(update(SurveyAsk).where(col(SurveyAsk.id) == ask_id).where(col(SurveyAsk.state) == "asked")
                          .values(state=state))


# --- figures -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figures:
    """NPS or CSAT figures of a set of scores."""

    kind: str
    answers: int
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    nps: float | None = None  # percentage points, -100..100
    csat_mean: float | None = None
    csat_top_share: float | None = None  # share of 4-5, 0..1
    histogram: dict[int, int] = field(default_factory=dict)


def figures_of(kind: str, counts: dict[int, int]) -> Figures:
    """From {score: how many}."""
    total = sum(counts.values())
    if kind == NPS:
        promoters = sum(n for s, n in counts.items() if s >= 9)
        detractors = sum(n for s, n in counts.items() if s <= 6)
        nps = round((promoters - detractors) * 100 / total, 1) if total else None
        return Figures(NPS, total, promoters, total - promoters - detractors, detractors, nps=nps,
                       histogram=dict(sorted(counts.items())))
    mean = round(sum(s * n for s, n in counts.items()) / total, 2) if total else None
    top = round(sum(n for s, n in counts.items() if s >= 4) / total, 4) if total else None
    detractors = sum(n for s, n in counts.items() if s <= 2)
    return Figures(CSAT, total, detractors=detractors, csat_mean=mean, csat_top_share=top,
                   histogram=dict(sorted(counts.items())))


@dataclass(frozen=True)
class Report:
    survey: Survey
    figures: Figures
    states: dict[str, int]
    by_reward: list[tuple[str, Figures]]
    by_campaign: list[tuple[str, Figures]]


def _group(kind: str, rows: Iterable[tuple[object, object, object]]) -> dict[object, Figures]:
    counts: dict[object, dict[int, int]] = {}
    for key, score, n in rows:
        counts.setdefault(key, {})[int(str(score))] = int(str(n))
    return {key: figures_of(kind, found) for key, found in counts.items()}


async def report(session: AsyncSession, survey_id: int) -> Report:
    """One survey's figures (counted in SQL by score), its asks by state, by reward and by campaign."""
    survey = await session.get(Survey, survey_id)
    if survey is None:
        raise NotFoundError(f"survey {survey_id} does not exist")
    answered = (col(SurveyAsk.survey_id) == survey_id, col(SurveyAsk.state) == "answered")
    scores = dict((await session.execute(
        select(col(SurveyAsk.score), func.count()).where(*answered).group_by(col(SurveyAsk.score))
    )).all())
    states = dict((await session.execute(
        select(col(SurveyAsk.state), func.count()).where(col(SurveyAsk.survey_id) == survey_id)
        .group_by(col(SurveyAsk.state))
    )).all())
    rewards = _group(survey.kind, (await session.execute(
        select(col(Reward.name), col(SurveyAsk.score), func.count()).join(Reward, col(Reward.id) == SurveyAsk.reward_id)
        .where(*answered).group_by(col(Reward.name), col(SurveyAsk.score))
    )).all())
    campaigns = _group(survey.kind, (await session.execute(
        select(col(Campaign.title), col(SurveyAsk.score), func.count())
        .join(Campaign, col(Campaign.id) == SurveyAsk.campaign_id)
        .where(*answered).group_by(col(Campaign.title), col(SurveyAsk.score))
    )).all())
    return Report(survey, figures_of(survey.kind, {int(s or 0): int(n) for s, n in scores.items()}),
                  {str(k): int(v) for k, v in states.items()},
                  sorted(((str(k), f) for k, f in rewards.items()), key=lambda x: x[0]),
                  sorted(((str(k), f) for k, f in campaigns.items()), key=lambda x: x[0]))


@dataclass(frozen=True)
class Summary:
    rows: list[tuple[Survey, Figures]]
    nps_by_touchpoint: dict[str, Figures]
    csat_by_touchpoint: dict[str, Figures]


async def summary(session: AsyncSession) -> Summary:
    """Every survey's figures, and NPS and CSAT by touchpoint across surveys."""
    surveys = await all_surveys(session)
    per = (await session.execute(
        select(col(SurveyAsk.survey_id), col(SurveyAsk.score), func.count())
        .where(col(SurveyAsk.state) == "answered").group_by(col(SurveyAsk.survey_id), col(SurveyAsk.score))
    )).all()
    by_survey: dict[int, dict[int, int]] = {}
    for survey_id, score, n in per:
        by_survey.setdefault(int(survey_id), {})[int(score or 0)] = int(n)
    touch: dict[tuple[str, str], dict[int, int]] = {}
    for survey in surveys:
        found = by_survey.get(int(survey.id or 0), {})
        bucket = touch.setdefault((survey.kind, survey.touchpoint), {})
        for score, n in found.items():
            bucket[score] = bucket.get(score, 0) + n
    return Summary(
        [(s, figures_of(s.kind, by_survey.get(int(s.id or 0), {}))) for s in surveys],
        {tp: figures_of(NPS, c) for (kind, tp), c in sorted(touch.items()) if kind == NPS and c},
        {tp: figures_of(CSAT, c) for (kind, tp), c in sorted(touch.items()) if kind == CSAT and c},
    )


async def nps_between(session: AsyncSession, start: datetime, end: datetime) -> Figures:
    """NPS of the NPS answers given in [start, end) (the dashboard's experience figures)."""
    rows = (await session.execute(
        select(col(SurveyAsk.score), func.count()).join(Survey, col(Survey.id) == SurveyAsk.survey_id)
        .where(col(Survey.kind) == NPS, col(SurveyAsk.state) == "answered")
        .where(col(SurveyAsk.answered_at) >= start, col(SurveyAsk.answered_at) < end)
        .group_by(col(SurveyAsk.score))
    )).all()
    return figures_of(NPS, {int(s or 0): int(n) for s, n in rows})


async def of_member(session: AsyncSession, member_id: int, limit: int = 20) -> list[tuple[SurveyAsk, Survey]]:
    """The member's answered, declined and dropped asks, newest first (the member's 360 page)."""
    rows = (await session.execute(
        select(SurveyAsk, Survey).join(Survey, col(Survey.id) == SurveyAsk.survey_id)
        .where(col(SurveyAsk.member_id) == member_id).where(col(SurveyAsk.asked_at).is_not(None))
        .order_by(col(SurveyAsk.asked_at).desc()).limit(limit)
    )).all()
    return [(a, s) for a, s in rows]
