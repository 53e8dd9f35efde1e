"""Member identity and status: who someone is across the two doors. No points here; the ledger owns those."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Date, bindparam, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import anomalies, sharing, staff
from storage.codes import unused_code
from storage.direct import Statement, attach, fetch, fetch_first
from storage.enums import MemberStatus, Source
from storage.errors import DomainError
from storage.kv import member_tag
from storage.ledger import Ledger, Movement
from storage.models import InteractionDay, Member, ShareScan, SurveyAsk, Ticket, TicketMessage
from storage.reasons import Reason
from storage.rows import affected, row_id, table_of

# The names callers import (storage.tiers, scheduler.jobs, bot.api.orders): the enum's members themselves.
ACTIVE, UNSUBSCRIBED, DELETED = MemberStatus.ACTIVE, MemberStatus.UNSUBSCRIBED, MemberStatus.DELETED

# The last-interaction time is read in days (win-back) and hours (the 48 h service window
# is tracked in the KV), so one write a minute per member is plenty.
TOUCH_GRANULARITY = timedelta(minutes=1)
_MEMBERS = table_of(Member)
_DAYS = table_of(InteractionDay)
DEFAULT_TZ = ZoneInfo("Asia/Shanghai")  # the settings' default; callers pass services.tz
ERASED = ""  # a deleted member's words in a ticket: the thread keeps its place, not the text


def _build_touch(insert: Any, column: str) -> Any:
    touched = insert(_MEMBERS).values(
        {column: bindparam("who"), "created_at": bindparam("now"), "last_interaction_at": bindparam("now")}
    ).on_conflict_do_update(
        index_elements=[column],
        # Not `excluded`: it proxies every column, each time. A message ends any win-back episode (a dormant
        # member may be marketed to again: storage/winback.py).
        set_={"last_interaction_at": bindparam("now"), "churn_stage": null()},
        where=or_(
            _MEMBERS.c.last_interaction_at.is_(None),
            _MEMBERS.c.last_interaction_at < bindparam("stale"),
        ),
    ).returning(*_MEMBERS.c)
    if insert is not pg_insert:
        return touched  # SQLite runs no DML in a CTE: _DAY follows as a second statement
    # PostgreSQL: the day's row in the same statement, so the hot path keeps one round trip.
    touched = touched.cte("touched")
    day = (
        pg_insert(_DAYS).from_select(["member_id", "day"], select(touched.c.id, bindparam("day", type_=Date)))
        .on_conflict_do_nothing().cte("touched_day")
    )
    return select(*touched.c).add_cte(day)


def _build_day(insert: Any, variant: Any) -> Any:
    return insert(_DAYS).values(member_id=bindparam("member"), day=bindparam("day")).on_conflict_do_nothing()


def _build_by_openid(_insert: Any, variant: tuple[str, bool, bool]) -> Any:
    column, lock, with_role = variant
    query = select(*_MEMBERS.c).where(_MEMBERS.c[column] == bindparam("who"))
    if with_role:  # the sender's staff role beside the row, in the same round trip (storage.staff.role_of)
        query = query.add_columns(staff.role_query("who").scalar_subquery().label(STAFF_ROLE))
    return query.with_for_update() if lock else query


_TOUCH = Statement("members.touch", _build_touch)  # variant: the openid column
_DAY = Statement("members.interaction_day", _build_day)
STAFF_ROLE = "staff_role"  # the extra column of `by_openid_with_role`
_BY_OPENID = Statement("members.by_openid", _build_by_openid)  # variant: (openid column, FOR UPDATE, with role)


def touch_key(source: str, openid: str, day: date) -> str:
    """The KV key that lets one message in TOUCH_GRANULARITY record a member's interaction. It names the
    local day, so that the first message of a new day always records its interaction day."""
    return f"wxbot:touch:{member_tag(source, openid)}:{day.isoformat()}"


def _stale(now: datetime, tz: ZoneInfo) -> datetime:
    """A row touched before this is written again: a minute ago, or the local day's start if later."""
    day_start = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
    return max(now - TOUCH_GRANULARITY, day_start)


def _openid_name(source: str) -> str:
    """The member column that holds an openid of this door."""
    return "mp_openid" if source == Source.MP else "openid"


def _openid_column(source: str) -> Any:
    return Member.mp_openid if source == Source.MP else Member.openid


async def by_openid(
    session: AsyncSession, openid: str, source: str = Source.OA, *, lock: bool = False
) -> Member | None:
    """The sender's row (locked until the transaction ends with `lock`), as the session's own object,
    refreshed from the row. Asked of nearly every message: a direct statement (storage.direct)."""
    row = await fetch_first(session, _BY_OPENID, {"who": openid}, (_openid_name(source), lock, False))
    return None if row is None else attach(session, Member, row)


async def by_openid_with_role(
    session: AsyncSession, openid: str, source: str = Source.OA
) -> tuple[Member | None, str | None]:
    """`by_openid` and the sender's staff role (storage.staff.role_of), for the help menu, which asks both
    of nearly every message it answers: one statement, or two when there is no member row (staff are named
    by openid, with or without one)."""
    row = await fetch_first(session, _BY_OPENID, {"who": openid}, (_openid_name(source), False, True))
    if row is None:
        return None, await staff.role_of(session, openid)
    role = row.pop(STAFF_ROLE)
    return attach(session, Member, row), role


async def touch(
    session: AsyncSession, openid: str, now: datetime, source: str = Source.OA, tz: ZoneInfo = DEFAULT_TZ
) -> bool:
    """Record an interaction: creates the visitor row on first contact, else moves
    last_interaction_at forward. Idempotent and safe under concurrency. True on first contact."""
    return (await touch_member(session, openid, now, source, tz))[1]


async def touch_member(
    session: AsyncSession, openid: str, now: datetime, source: str = Source.OA, tz: ZoneInfo = DEFAULT_TZ
) -> tuple[Member | None, bool]:
    """`touch` in one statement that also returns the row it created or moved forward (None when the
    row was touched less than TOUCH_GRANULARITY ago in the same local day and nothing was written), and
    whether it is new. A write also records the local day in interaction_day (once per member and day):
    in the same statement on PostgreSQL, in a second one on SQLite (no DML in its CTEs)."""
    day = now.astimezone(tz).date()
    params = {"who": openid, "now": now, "stale": _stale(now, tz), "day": day}
    row = await fetch_first(session, _TOUCH, params, _openid_name(source))
    if row is None:
        return None, False
    if session.get_bind().dialect.name != "postgresql":
        await fetch(session, _DAY, {"member": row["id"], "day": day})
    return attach(session, Member, row), row["created_at"] == now


async def set_status(session: AsyncSession, openid: str, status: MemberStatus, source: str = Source.OA) -> bool:
    """Mark a follower (un)subscribed. Returns False when nobody has that openid."""
    result = await session.execute(
        update(Member)
        .where(_openid_column(source) == openid)
        .where(col(Member.status) != DELETED)
        .values(status=status)
    )
    return bool(affected(result))


# --- sign-up, referral, rights ----------------------------------------------------------------

REFERRAL_CODE_LENGTH = 6
_PHONE = re.compile(r"^1[3-9][0-9]{9}$")  # ASCII digits only: other scripts' digits would dodge the unique hash


class PiiProtector(Protocol):
    """Implemented by bot/crypto.PiiCipher: phone numbers never reach the database in clear."""

    def encrypt(self, value: str) -> str: ...

    def decrypt(self, token: str) -> str: ...

    def lookup_hash(self, value: str) -> str: ...


class PhoneTakenError(DomainError):
    text_key = "phone_taken"


class AlreadyMemberError(DomainError):
    text_key = "already_member"


def normalise_phone(raw: str) -> str | None:
    """A mainland mobile number (1[3-9] + 9 digits), tolerating spaces, dashes and +86; else None."""
    digits = re.sub(r"[\s\-()]", "", unicodedata.normalize("NFKC", raw))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    return digits if _PHONE.fullmatch(digits) else None


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


def masked_phone(pii: PiiProtector, member: Member | None) -> str | None:
    """The member's phone as an operator or a clerk may see it (138****8000); None when there is none, or
    when it cannot be read (a ciphertext under another key is a ValueError): never an error page."""
    if member is None or not member.phone_enc:
        return None
    try:
        return mask_phone(pii.decrypt(member.phone_enc))
    except ValueError:
        return None


@dataclass(frozen=True)
class Signup:
    member_id: int
    referral_code: str
    bonus: Movement
    referrer_rewarded: bool


async def by_id(session: AsyncSession, member_id: int) -> Member | None:
    return await session.get(Member, member_id)


async def by_phone(session: AsyncSession, pii: PiiProtector, phone: str) -> Member | None:
    result = await session.execute(select(Member).where(col(Member.phone_hash) == pii.lookup_hash(phone)))
    return result.scalar_one_or_none()


async def by_unionid(session: AsyncSession, unionid: str) -> Member | None:
    result = await session.execute(
        select(Member).where(col(Member.unionid) == unionid).where(col(Member.status) != DELETED).limit(1)
    )
    return result.scalar_one_or_none()


async def phone_available(session: AsyncSession, pii: PiiProtector, phone: str, openid: str) -> bool:
    holder = await by_phone(session, pii, phone)
    return holder is None or holder.openid == openid or holder.mp_openid == openid


async def sign_up(
    session: AsyncSession, ledger: Ledger, pii: PiiProtector, *, openid: str, source: str,
    phone: str, birthday: tuple[int, int, int | None] | None, now: datetime,
) -> Signup:
    """Make the sender a member and credit the sign-up bonus (`signup:<member>`), in the caller's
    transaction; reward the referrer (`referral:<member>`) within the monthly limit."""
    await touch(session, openid, now, source, ledger.tz)
    # The referrer is locked before the member: once this transaction has updated the member's row,
    # a second update makes PostgreSQL re-check its referrer_id key (FOR KEY SHARE on the referrer),
    # and two referees of one referrer then deadlock upgrading that to the ledger's FOR UPDATE.
    referrer_id = await session.scalar(select(col(Member.referrer_id)).where(_openid_column(source) == openid))
    if referrer_id is not None:
        await ledger.lock(session, referrer_id)
    member = await session.scalar(
        select(Member).where(_openid_column(source) == openid).with_for_update()
    )
    assert member is not None
    if member.joined_at is not None:
        raise AlreadyMemberError("already a member")
    if not await phone_available(session, pii, phone, openid):
        raise PhoneTakenError("phone bound to another member")
    member.phone_enc = pii.encrypt(phone)
    member.phone_hash = pii.lookup_hash(phone)
    if birthday is not None:
        member.birthday_month, member.birthday_day, member.birthday_year = birthday
    member.consent_at = now
    member.consent_version = ledger.rules.privacy_notice_version
    member.referral_code = await unused_code(session, Member.referral_code, REFERRAL_CODE_LENGTH)
    member.joined_at = now
    member.status = ACTIVE
    await session.flush()
    assert member.id is not None
    bonus = await credit_signup_bonus(session, ledger, member.id, now)
    rewarded = await _reward_referrer(session, ledger, member, now)
    return Signup(member.id, member.referral_code, bonus, rewarded)


async def credit_signup_bonus(session: AsyncSession, ledger: Ledger, member_id: int, now: datetime) -> Movement:
    """The sign-up bonus (`signup:<member>`), as sign_up credits it."""
    return await ledger.earn(
        session, member_id, ledger.rules.signup_bonus, key=f"signup:{member_id}", kind="signup",
        now=now, reason=Reason.SIGNUP.stored(),
    )


async def _reward_referrer(session: AsyncSession, ledger: Ledger, member: Member, now: datetime) -> bool:
    if member.referrer_id is None:
        return False
    # Counted under the referrer's row lock, so referees signing up together cannot all see 19.
    referrer = await ledger.lock(session, member.referrer_id)
    if referrer.joined_at is None or referrer.status == DELETED:
        return False
    rewarded = await sharing.rewarded_this_month(session, row_id(referrer), now, ledger.tz)
    if rewarded >= ledger.rules.referral_monthly_limit:
        return False
    await ledger.earn(
        session, row_id(referrer), ledger.rules.referral_bonus, key=f"referral:{member.id}",
        kind="referral", now=now, reason=Reason.REFERRAL.stored(),
    )
    return True


async def record_referrer(
    session: AsyncSession, openid: str, source: str, code: str, now: datetime, tz: ZoneInfo = DEFAULT_TZ,
) -> bool:
    """From a `ref_<code>` QR scene: remember who invited a not-yet-member (first referrer wins)."""
    await touch(session, openid, now, source, tz)
    referrer = await session.scalar(
        select(Member).where(col(Member.referral_code) == code.upper()).where(col(Member.status) != DELETED)
    )
    if referrer is None:
        return False
    result = await session.execute(
        update(Member).where(_openid_column(source) == openid).where(col(Member.joined_at).is_(None))
        .where(col(Member.referrer_id).is_(None)).where(col(Member.id) != referrer.id)
        .values(referrer_id=referrer.id)
    )
    return bool(affected(result))


async def set_marketing_opt_out(session: AsyncSession, member_id: int, opt_out: bool) -> None:
    await session.execute(update(Member).where(col(Member.id) == member_id).values(marketing_opt_out=opt_out))


async def delete(session: AsyncSession, member_id: int, now: datetime | None = None) -> None:
    """Forget the person, keep the audit: PII and identifiers cleared, status deleted, ledger rows kept.
    The openid is released, so the same person writing again starts as a new visitor. What the member wrote
    in tickets (their words and pictures) and in survey follow-ups is erased, and their sharing scans no
    longer name their openid; the tickets, their staff answers, the scores and the scans stay for the figures."""
    own_tickets = select(col(Ticket.id)).where(col(Ticket.member_id) == member_id)
    await session.execute(
        update(TicketMessage).where(col(TicketMessage.ticket_id).in_(own_tickets))
        .where(col(TicketMessage.author) == "member").values(body_enc=ERASED, media=None)
    )
    # The openid is released: a later answer must not reach whoever writes from it next.
    await session.execute(update(TicketMessage).where(col(TicketMessage.ticket_id).in_(own_tickets)).values(openid=""))
    await session.execute(update(Ticket).where(col(Ticket.member_id) == member_id).values(openid=""))
    await session.execute(update(SurveyAsk).where(col(SurveyAsk.member_id) == member_id).values(followup_enc=None))
    doors = (await session.execute(select(col(Member.openid), col(Member.mp_openid))
                                   .where(col(Member.id) == member_id))).one_or_none()
    if doors is not None and (openids := [o for o in doors if o]):  # a scan keeps counting as one person, unnamed
        await session.execute(update(ShareScan).where(col(ShareScan.openid).in_(openids))
                              .values(openid=f"deleted:{member_id}"))
    await session.execute(
        update(Member).where(col(Member.id) == member_id).values(
            openid=None, mp_openid=None, unionid=None, phone_enc=None, phone_hash=None,
            birthday_month=None, birthday_day=None, birthday_year=None, referral_code=None,
            share_qr_url=None, share_qr_expires_at=None,  # the poster encodes the referral code
            status=DELETED, marketing_opt_out=True, deleted_at=now,
        )
    )


# --- one person, two doors ----------------------------------------------------------------------


async def link_unionid(
    session: AsyncSession, *, openid: str, source: str, unionid: str, now: datetime, tz: ZoneInfo = DEFAULT_TZ,
) -> Member:
    """Bind a unionid to the member behind (source, openid). When the other door already has a row
    with that unionid, the two become one: a visitor row hands its door over to the row that holds
    the membership. Two separate memberships are left apart and raised for operators."""
    await touch(session, openid, now, source, tz)
    mine = await session.scalar(
        select(Member).where(_openid_column(source) == openid).with_for_update()
        .execution_options(populate_existing=True)
    )
    assert mine is not None
    assert mine.id is not None
    other = await session.scalar(
        select(Member).where(col(Member.unionid) == unionid).where(col(Member.id) != mine.id)
        .where(col(Member.status) != DELETED).with_for_update().limit(1)
    )
    if other is None:
        mine.unionid = unionid
        return mine
    door, far = ("mp_openid", "openid") if source == Source.MP else ("openid", "mp_openid")
    if mine.joined_at is not None and other.joined_at is not None:
        mine.unionid = unionid
        await anomalies.record(
            session, member_id=mine.id, kind="duplicate_membership", now=now,
            detail=f"members {other.id} and {mine.id} share a unionid; merge them by hand",
            dedupe_key=f"duplicate:{min(row_id(mine), row_id(other))}:{max(row_id(mine), row_id(other))}",
        )
        return mine
    if getattr(other, door) not in (None, openid):
        return mine  # the other row already has another account on this door: leave both alone
    keep, drop = (mine, other) if mine.joined_at is not None else (other, mine)
    moving = door if drop is mine else far
    value = getattr(drop, moving)
    setattr(drop, moving, None)
    if drop.unionid == unionid:
        drop.unionid = None
    await session.flush()  # free the unique openid before the other row takes it
    setattr(keep, moving, value)
    keep.unionid = unionid
    if keep.referrer_id is None and keep.joined_at is None and drop.referrer_id not in (None, keep.id):
        keep.referrer_id = drop.referrer_id
    await session.flush()
    return keep
