"""Broadcasts: an operator's message to an audience (storage/audiences.py), checked before anything is stored,
previewed with a few aggregate queries, expanded by the `broadcasts` job into marketing outbox rows
`broadcast:{id}:{member}` in keyset pages (INSERT ... SELECT, resumable from `cursor`), and cancellable: what
is still pending is dropped and the sender sends no claimed row of a cancelled broadcast.

Every refusal is InvalidFieldError(field, problem); nothing is stored or queued then."""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import String, case, cast, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import audiences, audit, experiments, outbox
from storage.audiences import Audience
from storage.db import Database, dialect_insert
from storage.enums import Source
from storage.errors import InvalidFieldError
from storage.experimentreport import wilson
from storage.models import Broadcast, Experiment, Member, Outbox, SubscribeCredit
from storage.models.core import UTCDateTime
from storage.rows import affected, row_id
from storage.rules import Rules

KINDS = ("campaign", "holiday", "content")
SCHEDULED, SENDING, SENT, CANCELLED = "scheduled", "sending", "sent", "cancelled"
STATUSES = (SCHEDULED, SENDING, SENT, CANCELLED)
NAME_MAX, TEXT_MAX, TITLE_MAX, DESCRIPTION_MAX, URL_MAX = 60, 600, 64, 120, 500
REQUEST_ID_MAX = 64
PAGE = 10_000
# The customer-service window is per openid in the KV (storage/cswindow.py); the preview approximates it
# with the member's last message (member.last_interaction_at within 48 h) - one aggregate, not 1M KV reads.
CS_WINDOW = timedelta(hours=48)
# Up to this many members the preview counts the capped ones member by member (each member's own rows through
# ix_outbox_member_sent, about 80 µs a member on the loaded benchmark machine). A larger audience is counted on
# a sample of about this size, every k-th member id, and the preview says it is an estimate with its 95 % margin:
# reading the window's 2.2 million marketing rows for 1,000,000 members took 13.6 s (bench/marketing.py), and
# the count is a forecast of the send anyway (pushes go out, the window moves, members write in meanwhile).
PER_MEMBER_MAX = 20_000
CANCELLED_REASON = "broadcast cancelled"
LATE = timedelta(minutes=1)  # "now" from a form reaches us a little later: still not the past


@dataclass(frozen=True)
class Draft:
    """A checked broadcast, not stored yet: create() stores it, preview() counts it."""

    name: str
    kind: str
    audience: Audience
    content: dict[str, Any]  # {"text": ...} or {"article": {title, description, picurl, url}}
    send_at: datetime
    deadline: datetime | None
    request_id: str


def checked_content(text: str | None, article: Mapping[str, Any] | None) -> dict[str, Any]:
    """{"text": ...} (1..600 characters) or {"article": ...} (a title; http/https urls); exactly one of them."""
    if (text is None) == (article is None):
        raise InvalidFieldError("content", "give exactly one of text and article")
    if text is not None:
        if not isinstance(text, str) or not text.strip() or len(text) > TEXT_MAX:
            raise InvalidFieldError("content.text", f"1 to {TEXT_MAX} characters")
        return {"text": text.strip()}
    if not isinstance(article, Mapping):
        raise InvalidFieldError("content.article", "an object with a title")
    unknown = set(article) - {"title", "description", "picurl", "url"}
    if unknown:
        raise InvalidFieldError(f"content.article.{sorted(unknown)[0]}", "unknown field")
    title = article.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > TITLE_MAX:
        raise InvalidFieldError("content.article.title", f"required, 1 to {TITLE_MAX} characters")
    out: dict[str, str] = {"title": title.strip()}
    description = article.get("description")
    if description not in (None, ""):
        if not isinstance(description, str) or len(description) > DESCRIPTION_MAX:
            raise InvalidFieldError("content.article.description", f"at most {DESCRIPTION_MAX} characters")
        out["description"] = description.strip()
    for key in ("picurl", "url"):
        value = article.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value) > URL_MAX or not _web_url(value):
            raise InvalidFieldError(f"content.article.{key}", "an http or https address")
        out[key] = value.strip()
    return {"article": out}


def _web_url(value: str) -> bool:
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in value.strip())


def checked(
    *, name: str, kind: str, audience: Audience, content: dict[str, Any], send_at: datetime | None,
    deadline: datetime | None, request_id: str, tiers: Iterable[str], now: datetime,
) -> Draft:
    """The draft if every field is acceptable (the database's part is exists()); else InvalidFieldError."""
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > NAME_MAX:
        raise InvalidFieldError("name", f"1 to {NAME_MAX} characters")
    if kind not in KINDS:
        raise InvalidFieldError("kind", f"one of {', '.join(KINDS)}")
    audiences.checked(audience, tiers)
    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > REQUEST_ID_MAX:
        raise InvalidFieldError("request_id", f"1 to {REQUEST_ID_MAX} characters")
    at = now if send_at is None else send_at
    if at.tzinfo is None:
        raise InvalidFieldError("send_at", "needs a time zone")
    if at < now - LATE:
        raise InvalidFieldError("send_at", "in the past")
    at = max(at, now)
    if deadline is not None:
        if deadline.tzinfo is None:
            raise InvalidFieldError("deadline", "needs a time zone")
        if deadline <= at:
            raise InvalidFieldError("deadline", "must be after send_at")
    return Draft(name.strip(), kind, audience, content, at, deadline, request_id.strip())


async def nonempty(session: AsyncSession, draft: Draft, now: datetime) -> None:
    """InvalidFieldError when the audience names what is not there, or matches nobody."""
    await audiences.exists(session, draft.audience)
    if not await session.scalar(audiences.select_ids(draft.audience, now, limit=1)):
        raise InvalidFieldError("audience", "no member matches this audience")


async def running_experiment(session: AsyncSession, experiment_id: int | None) -> None:
    """InvalidFieldError unless the experiment (when one is named) runs over broadcasts."""
    if experiment_id is None:
        return
    experiment = await session.get(Experiment, experiment_id)
    if experiment is None:
        raise InvalidFieldError("experiment_id", "unknown experiment")
    if experiment.target != "broadcast" or experiment.status != experiments.RUNNING:
        raise InvalidFieldError("experiment_id", "not a running experiment over broadcasts")


async def create(
    session: AsyncSession, draft: Draft, *, actor: audit.Actor, now: datetime, client: str | None = None,
    campaign_id: int | None = None, experiment_id: int | None = None,
) -> tuple[Broadcast, bool]:
    """Store the broadcast (audited), or answer the one stored under the same request id: (broadcast, created)."""
    earlier = await by_request(session, draft.request_id)
    if earlier is not None:
        return earlier, False
    await nonempty(session, draft, now)
    await running_experiment(session, experiment_id)
    made = Broadcast(
        request_id=draft.request_id, name=draft.name, kind=draft.kind, audience=draft.audience.to_json(),
        content=json.dumps(draft.content, ensure_ascii=False), send_at=draft.send_at, deadline=draft.deadline,
        campaign_id=campaign_id if campaign_id is not None else draft.audience.campaign_id,
        experiment_id=experiment_id, created_by=actor.name[:64], created_at=now,
    )
    session.add(made)
    await session.flush()
    await audit.record(session, actor, "broadcast.create", f"broadcast:{made.id}", now=now, client=client,
                       after={"name": made.name, "kind": made.kind, "audience": made.audience,
                              "send_at": made.send_at, "deadline": made.deadline})
    return made, True


async def by_request(session: AsyncSession, request_id: str) -> Broadcast | None:
    return (await session.scalars(select(Broadcast).where(col(Broadcast.request_id) == request_id))).first()


def payload_of(content: dict[str, Any], broadcast_id: int | None) -> dict[str, Any]:
    """What an outbox row carries (bot/wechat/pushtexts.py renders it): a text, or one `news` article for the
    customer-service channel and its title for template and subscription fields."""
    base: dict[str, Any] = {"broadcast_id": broadcast_id}
    if "text" in content:
        return base | {"text": content["text"]}
    article = dict(content["article"])
    return base | {"title": article["title"], "url": article.get("url"),
                   "custom": {"msgtype": "news", "news": {"articles": [article]}}}


def content_of(broadcast: Broadcast) -> dict[str, Any]:
    return dict(json.loads(broadcast.content))


# --- preview ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preview:
    audience: int
    cs_window: int  # approximate: last message within 48 h (see CS_WINDOW)
    template: int  # an Official Account openid and a template configured for the kind
    subscription: int  # a Mini Program subscription credit for the kind's template
    capped: int  # already at the month's cap: a broadcast (priority below the birthday's) is dropped for them
    cap: int  # the cap on the send day (a festival raises it)
    quiet_hours: bool  # the send time is in quiet hours: everything waits until `starts_at`
    starts_at: datetime
    payload: dict[str, Any]  # the sample message, as an outbox row carries it
    # `capped` estimated from this many members (every k-th id of the audience), None when counted exactly;
    # then `capped_margin` is its 95 % margin in members (the Wilson interval of the sample's share).
    capped_sample: int | None = None
    capped_margin: int = 0

    @property
    def reachable(self) -> int:
        return self.audience - self.capped


async def preview(
    session: AsyncSession, draft: Draft, now: datetime, *, rules: Rules, tz: ZoneInfo,
    templates: Collection[str] = (), subscribe_templates: Mapping[str, str] | None = None,
) -> Preview:
    """The numbers of a draft, read-only, in two aggregate queries over the audience (the capped count member
    by member for an audience of at most PER_MEMBER_MAX, else estimated on a sample of about that many)."""
    await audiences.exists(session, draft.audience)
    conditions = audiences.where(draft.audience, now)
    window = timedelta(days=rules.marketing_window_days)
    subscribe = (subscribe_templates or {}).get(draft.kind)
    # IN over the template's credits, not a correlated EXISTS: one hashed subplan instead of an index probe per
    # member (1.65 s -> 0.45 s for 960,000 members in bench/marketing.py).
    credit = col(Member.mp_openid).in_(
        select(col(SubscribeCredit.openid)).where(col(SubscribeCredit.template_id) == subscribe)
        .where(col(SubscribeCredit.credits) > 0)
    )
    one = literal(1)
    figures = (await session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((col(Member.last_interaction_at) >= now - CS_WINDOW, one), else_=0)), 0),
            func.coalesce(func.sum(case((col(Member.openid).is_not(None), one), else_=0)), 0)
            if draft.kind in templates else literal(0),
            func.coalesce(func.sum(case((credit, one), else_=0)), 0) if subscribe else literal(0),
        ).select_from(Member).where(*conditions)
    )).one()
    starts = rules.next_send_time(draft.send_at, tz)
    cap = rules.marketing_cap_at(starts, tz)
    since = draft.send_at - window
    audience = int(figures[0])
    # Each member's own rows through ix_outbox_member_sent (9.5 s -> 0.7 s for 20,000 of 1,000,000 members in
    # bench/marketing.py against grouping the window's marketing rows of everyone).
    own = (
        select(func.count()).select_from(Outbox).where(col(Outbox.member_id) == Member.id)
        .where(*outbox.counted_since(since)).scalar_subquery()
    )
    step = -(-audience // PER_MEMBER_MAX) if audience > PER_MEMBER_MAX else 1
    sample, hits = await _capped_among(session, conditions, own >= cap, step)
    if step > 1 and sample == 0:  # an audience whose ids all miss the sample (say, an uploaded list): all of it
        step = 1
        sample, hits = await _capped_among(session, conditions, own >= cap, step)
    capped, sampled, margin = hits, None, 0
    if step > 1:
        share = hits / sample
        low, high = wilson(hits, sample) or (share, share)
        capped = round(share * audience)
        margin = math.ceil(max(share - low, high - share) * audience)
        sampled = sample
    return Preview(
        audience=int(figures[0]), cs_window=int(figures[1]), template=int(figures[2]), subscription=int(figures[3]),
        capped=capped, cap=cap, quiet_hours=starts != draft.send_at, starts_at=starts,
        payload=payload_of(draft.content, None), capped_sample=sampled, capped_margin=margin,
    )


async def _capped_among(session: AsyncSession, conditions: list[Any], at_cap: Any, step: int) -> tuple[int, int]:
    """(members counted, how many of them are at the cap): the audience, or every `step`-th member id of it."""
    counted = select(func.count(), func.coalesce(func.sum(case((at_cap, literal(1)), else_=0)), 0)).select_from(
        Member).where(*conditions)
    if step > 1:
        counted = counted.where(col(Member.id) % step == 0)
    sample, hits = (await session.execute(counted)).one()
    return int(sample or 0), int(hits or 0)


# --- expansion --------------------------------------------------------------------------------------
async def due(db: Database, now: datetime) -> list[int]:
    """Broadcasts to expand: scheduled and due, or sending (a crashed expansion resumes)."""
    async with db.sessions() as session:
        rows = await session.scalars(
            select(col(Broadcast.id)).where(
                ((col(Broadcast.status) == SCHEDULED) & (col(Broadcast.send_at) <= now))
                | (col(Broadcast.status) == SENDING)
            ).order_by(col(Broadcast.id))
        )
        return [int(i or 0) for i in rows.all()]


async def expand(db: Database, broadcast_id: int, now: datetime, *, rules: Rules, tz: ZoneInfo,
                 page: int = PAGE) -> int:
    """Queue the broadcast's rows page by page from its cursor (each page one transaction); how many were
    queued by this call. Stops between pages when the broadcast is cancelled; a re-run queues nothing new."""
    queued = 0
    while True:
        async with db.unit_of_work() as session:
            stmt = select(Broadcast).where(col(Broadcast.id) == broadcast_id)
            if db.dialect == "postgresql":
                stmt = stmt.with_for_update()
            cast_ = (await session.scalars(stmt)).first()
            if cast_ is None or cast_.status not in (SCHEDULED, SENDING):
                return queued
            cast_.status = SENDING
            audience = Audience.from_json(cast_.audience)
            ids = [int(i) for i in (await session.scalars(
                audiences.select_ids(audience, now, after_id=cast_.cursor, limit=page))).all()]
            if not ids:
                cast_.status, cast_.expanded_at = SENT, now
                return queued
            not_before = rules.next_send_time(max(now, cast_.send_at), tz)
            if cast_.experiment_id is None:
                added = await _insert_page(session, cast_, audience, now, not_before, ids[-1])
            else:
                added = await _experiment_page(session, cast_, ids, now, not_before)
            cast_.cursor = ids[-1]
            cast_.queued += added
            queued += added
            if len(ids) < page:
                cast_.status, cast_.expanded_at = SENT, now
                return queued


async def _insert_page(
    session: AsyncSession, cast_: Broadcast, audience: Audience, now: datetime, not_before: datetime, last: int,
) -> int:
    """One page as one INSERT ... SELECT from member (ids after the cursor up to `last`), ON CONFLICT DO NOTHING."""
    payload = json.dumps(payload_of(content_of(cast_), cast_.id), ensure_ascii=False)
    prefix = f"broadcast:{cast_.id}:"
    rows = select(
        literal(prefix) + cast(col(Member.id), String),
        func.coalesce(col(Member.openid), col(Member.mp_openid), ""),
        case((col(Member.openid).is_not(None), Source.OA.value), else_=Source.MP.value),
        col(Member.id), literal(cast_.kind), literal(outbox.MARKETING), literal(payload),
        literal(outbox.PRIORITY.get(cast_.kind, 0)), literal(outbox.PENDING), literal(0),
        literal(not_before, type_=UTCDateTime()), literal(cast_.deadline, type_=UTCDateTime()),
        literal(now, type_=UTCDateTime()),
        literal(cast_.id),
    ).where(*audiences.where(audience, now)).where(col(Member.id) > cast_.cursor).where(col(Member.id) <= last)
    columns = ["dedupe_key", "openid", "source", "member_id", "kind", "category", "payload", "priority", "status",
               "attempts", "next_attempt_at", "deadline", "created_at", "broadcast_id"]
    stmt = dialect_insert(session)(Outbox).from_select(columns, rows).on_conflict_do_nothing(
        index_elements=["dedupe_key"])
    return int(affected(await session.execute(stmt)))


async def _experiment_page(
    session: AsyncSession, cast_: Broadcast, ids: list[int], now: datetime, not_before: datetime,
) -> int:
    """An experiment's page, member by member: a holdout member gets no row (counted in held_out); others get
    their arm's name as the variant and its params over the content."""
    experiment = await session.get(Experiment, cast_.experiment_id)
    if experiment is None:
        return 0
    content = content_of(cast_)
    members = {m.id: m for m in (await session.scalars(select(Member).where(col(Member.id).in_(ids)))).all()}
    added = 0
    for member_id in ids:
        member = members.get(member_id)
        if member is None:
            continue
        arm = await experiments.assign(session, experiment, member_id, now)
        if arm.holdout:
            cast_.held_out += 1
            continue
        added += await outbox.enqueue(
            session, dedupe_key=f"broadcast:{cast_.id}:{member_id}", openid=member.openid or member.mp_openid or "",
            source=Source.OA if member.openid else Source.MP, member_id=member_id, kind=cast_.kind,
            category=outbox.MARKETING, payload=payload_of(arm_content(content, arm.params), cast_.id), now=now,
            not_before=not_before, deadline=cast_.deadline, experiment_id=row_id(experiment), variant=arm.name[:16],
            broadcast_id=cast_.id,
        )
    return added


def arm_content(content: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The broadcast's content as an arm varies it (storage/experiments.TARGET_PARAMS["broadcast"]): its own
    text, or article fields over the broadcast's article; an arm that varies nothing sends the content."""
    if "text" in params:
        return {"text": params["text"]}
    fields = {key: params[key] for key in ("title", "description", "picurl", "url") if key in params}
    article = {**content.get("article", {}), **fields}
    return {"article": article} if fields and "title" in article else content


# --- cancel and progress ----------------------------------------------------------------------------
async def cancel(
    session: AsyncSession, broadcast_id: int, *, actor: audit.Actor, now: datetime, client: str | None = None,
) -> tuple[Broadcast, int]:
    """Cancel (audited): every still-pending row is dropped; (broadcast, rows dropped). Cancelling a cancelled
    broadcast changes nothing."""
    found = await session.get(Broadcast, broadcast_id, with_for_update=True)
    if found is None:
        raise InvalidFieldError("id", "unknown broadcast")
    if found.status == CANCELLED:
        return found, 0
    before = found.status
    found.status, found.cancelled_at, found.cancelled_by = CANCELLED, now, actor.name[:64]
    await session.flush()
    result = await session.execute(
        update(Outbox).where(col(Outbox.broadcast_id) == broadcast_id).where(col(Outbox.status) == outbox.PENDING)
        .values(status=outbox.DROPPED, last_error=CANCELLED_REASON)
    )
    dropped = int(affected(result))
    await audit.record(session, actor, "broadcast.cancel", f"broadcast:{broadcast_id}", now=now, client=client,
                       before={"status": before}, after={"status": CANCELLED, "dropped": dropped})
    return found, dropped


async def is_cancelled(session: AsyncSession, broadcast_id: int) -> bool:
    """One primary-key read: the sender asks it of each claimed row of a broadcast."""
    status = await session.scalar(select(col(Broadcast.status)).where(col(Broadcast.id) == broadcast_id))
    return status == CANCELLED


async def progress(session: AsyncSession, broadcast_id: int) -> dict[str, int]:
    """The broadcast's outbox rows by status (one grouped count over ix_outbox_broadcast_id)."""
    rows = await session.execute(
        select(col(Outbox.status), func.count()).where(col(Outbox.broadcast_id) == broadcast_id)
        .group_by(col(Outbox.status))
    )
    return {status: int(n) for status, n in rows.all()}


async def recent(session: AsyncSession, *, before_id: int | None = None, limit: int = 50) -> list[Broadcast]:
    stmt = select(Broadcast).order_by(col(Broadcast.id).desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(col(Broadcast.id) < before_id)
    return list((await session.scalars(stmt)).all())
