"""Tickets: opening (at most `max_open` open per member), answering, resolving, rating and reopening,
assignment, and the member's undelivered answers. Member and staff texts are stored encrypted and are
never logged. Each staff move is audited in its transaction. Pushes carry facts; the sender words them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import audit, cswindow, outbox, surveys
from storage.audit import Actor
from storage.codes import unused_code
from storage.errors import DomainError
from storage.kv import KV, member_tag
from storage.members import PiiProtector
from storage.models import Member, Outbox, PurchaseOrder, Staff, Ticket, TicketMessage
from storage.rules import Rules
from storage.sla import HAND_OFF_CATEGORY

OPEN, ANSWERED, RESOLVED = "open", "answered", "resolved"
STATES = (OPEN, ANSWERED, RESOLVED)
LIVE = (OPEN, ANSWERED)
KINDS = ("ticket", "hand-off", "survey")  # survey: a detractor's follow-up (storage/surveys.py)
LOW_RATING = 2
MAX_TEXT = 4000  # a staff answer or note; a member's description is kept whole
RATE_TTL = 7 * 24 * 3600
EXCERPT = 60
CODE_LENGTH = 6  # T-XXXXXX, read aloud or typed from the chat


class TooManyTicketsError(DomainError):
    text_key = "ticket_too_many"


class TicketUnknownError(DomainError):
    text_key = "ticket_unknown"


class TicketResolvedError(DomainError):
    text_key = "ticket_resolved"


class TicketTextError(DomainError):
    text_key = "ticket_text_invalid"


def notice_key(source: str, openid: str) -> str:
    """Set while a member may have an answer waiting: their next message looks in the database."""
    return f"wxbot:ticket:notice:{member_tag(source, openid)}"


def rate_key(source: str, openid: str) -> str:
    """The ticket whose rating the member was asked for (a digit 1-5 answers it within RATE_TTL)."""
    return f"wxbot:ticket:rate:{member_tag(source, openid)}"


def normal_code(raw: str) -> str:
    raw = raw.strip().upper()
    return raw if raw.startswith("T-") else "T-" + raw


@dataclass(frozen=True)
class Pending:
    """An answer or resolution the member has not received yet."""

    code: str
    author: str
    body: str


class Tickets:
    """The ticket service; `kv` for the member's notice and rating keys and the 48-hour window."""

    def __init__(self, kv: KV, pii: PiiProtector, rules: Rules, tz: ZoneInfo, service_robot: str = "") -> None:
        self.kv, self.pii, self.rules, self.tz, self.robot = kv, pii, rules, tz, service_robot

    # --- the member's side ---------------------------------------------------------------------
    async def open_count(self, session: AsyncSession, member_id: int) -> int:
        return int(await session.scalar(
            select(func.count()).select_from(Ticket).where(col(Ticket.member_id) == member_id)
            .where(col(Ticket.state).in_(LIVE)).where(col(Ticket.kind) == "ticket")
        ) or 0)

    async def order_is_members(self, session: AsyncSession, member_id: int, order_id: str) -> bool:
        found = await session.scalar(
            select(col(PurchaseOrder.id)).where(col(PurchaseOrder.order_id) == order_id.strip())
            .where(col(PurchaseOrder.member_id) == member_id)
        )
        return found is not None

    async def open(
        self, session: AsyncSession, member: Member, openid: str, source: str, *, category: str, text: str,
        now: datetime, media: str | None = None, order_id: str | None = None, kind: str = "ticket",
    ) -> Ticket:
        """A new ticket with its first message; refused past max_open open tickets (the member row is locked,
        so two at once cannot both pass). Announced to service staff (robot and chat)."""
        await session.execute(select(col(Member.id)).where(col(Member.id) == member.id).with_for_update())
        if kind == "ticket" and await self.open_count(session, int(member.id or 0)) >= self.rules.service.max_open:
            raise TooManyTicketsError("too many open tickets", limit=self.rules.service.max_open)
        sla = self.rules.service.sla(category)
        code = await unused_code(session, col(Ticket.code), CODE_LENGTH, prefix="T-")
        ticket = Ticket(
            code=code, member_id=int(member.id or 0), openid=openid, source=source,
            kind=kind, category=category, created_at=now, order_id=order_id,
            answer_due_at=self.rules.service.due(now, sla.answer_hours, self.tz),
            resolve_due_at=self.rules.service.due(now, sla.resolve_hours, self.tz),
        )
        session.add(ticket)
        await session.flush()
        self._add(session, ticket, "member", "", text, now, media=media)
        await self._announce(session, ticket, "new", now)
        return ticket

    async def hand_off(self, session: AsyncSession, member: Member, openid: str, source: str, now: datetime) -> Ticket:
        """`人工`: the member's live hand-off ticket, or a new one (never refused: the chat goes to an agent)."""
        live = await session.scalar(
            select(Ticket).where(col(Ticket.member_id) == member.id).where(col(Ticket.kind) == "hand-off")
            .where(col(Ticket.state).in_(LIVE)).order_by(col(Ticket.id).desc()).limit(1)
        )
        if live is not None:
            return live
        return await self.open(session, member, openid, source, category=HAND_OFF_CATEGORY, text="", now=now,
                               kind="hand-off")

    async def of_member(self, session: AsyncSession, member_id: int, limit: int = 10) -> Sequence[Ticket]:
        return (await session.scalars(select(Ticket).where(col(Ticket.member_id) == member_id)
                                      .order_by(col(Ticket.id).desc()).limit(limit))).all()

    async def rate(self, session: AsyncSession, code: str, member_id: int, rating: int, now: datetime) -> Ticket:
        """The member's 1-5; a low one (<= LOW_RATING) reopens the ticket for a supervisor (robot told)."""
        ticket = await self.by_code(session, code, lock=True)
        if ticket is None or ticket.member_id != member_id:
            raise TicketUnknownError("unknown ticket", code=code)
        ticket.rating, ticket.rated_at = rating, now
        if rating <= LOW_RATING and ticket.state == RESOLVED:
            ticket.state, ticket.resolved_at, ticket.supervisor = OPEN, None, True
            ticket.reopens += 1
            await self._announce(session, ticket, "reopened", now)
        return ticket

    async def pending(self, session: AsyncSession, openid: str, now: datetime) -> list[Pending]:
        """Answers not yet received, oldest first, marked delivered (their customer-service message failed,
        or none was sent). One whose message is still queued or was sent is left to the outbox."""
        rows = (await session.execute(
            select(TicketMessage, col(Ticket.code)).join(Ticket, col(Ticket.id) == col(TicketMessage.ticket_id))
            .where(col(TicketMessage.openid) == openid).where(col(TicketMessage.for_member).is_(True))
            .where(col(TicketMessage.delivered_at).is_(None)).order_by(col(TicketMessage.id))
        )).all()
        keys = [f"ticket_msg:{m.id}" for m, _ in rows]
        status = dict((await session.execute(
            select(col(Outbox.dedupe_key), col(Outbox.status)).where(col(Outbox.dedupe_key).in_(keys))
        )).all()) if keys else {}
        found: list[Pending] = []
        for message, code in rows:
            state = status.get(f"ticket_msg:{message.id}")
            if state in (outbox.PENDING, outbox.SENDING):
                continue
            message.delivered_at = now
            if state != outbox.SENT:
                found.append(Pending(code, message.author, self.read(message.body_enc)))
        return found

    async def undelivered(self, session: AsyncSession, openid: str) -> int:
        return int(await session.scalar(
            select(func.count()).select_from(TicketMessage).where(col(TicketMessage.openid) == openid)
            .where(col(TicketMessage.for_member).is_(True)).where(col(TicketMessage.delivered_at).is_(None))
        ) or 0)

    async def add_member_text(self, session: AsyncSession, ticket_id: int, text: str, now: datetime) -> None:
        """More of the member's words on a ticket (a survey's follow-up answer on its follow-up ticket)."""
        ticket = await session.get(Ticket, ticket_id)
        if ticket is not None:
            self._add(session, ticket, "member", "", text, now)

    # --- the staff's side --------------------------------------------------------------------------
    async def queue(self, session: AsyncSession, limit: int = 10) -> list[tuple[Ticket, str]]:
        """Live tickets, oldest first, each with the start of the member's first words (for staff)."""
        rows = (await session.scalars(select(Ticket).where(col(Ticket.state).in_(LIVE))
                                      .order_by(col(Ticket.created_at), col(Ticket.id)).limit(limit))).all()
        first = {}
        if rows:
            found = await session.execute(
                select(col(TicketMessage.ticket_id), func.min(col(TicketMessage.id)))
                .where(col(TicketMessage.ticket_id).in_([t.id for t in rows])).group_by(col(TicketMessage.ticket_id))
            )
            ids = dict(found.all())
            bodies = (await session.scalars(
                select(TicketMessage).where(col(TicketMessage.id).in_(list(ids.values())))
            )).all()
            first = {m.ticket_id: self.read(m.body_enc)[:EXCERPT] for m in bodies}
        return [(t, first.get(int(t.id or 0), "")) for t in rows]

    async def by_code(self, session: AsyncSession, code: str, *, lock: bool = False) -> Ticket | None:
        stmt = select(Ticket).where(col(Ticket.code) == normal_code(code))
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return await session.scalar(stmt)

    async def live_ticket(self, session: AsyncSession, code: str) -> Ticket:
        ticket = await self.by_code(session, code, lock=True)
        if ticket is None:
            raise TicketUnknownError("unknown ticket", code=normal_code(code))
        if ticket.state == RESOLVED:
            raise TicketResolvedError("resolved", code=ticket.code)
        return ticket

    async def answer(
        self, session: AsyncSession, actor: Actor, code: str, text: str, now: datetime, *, client: str | None = None,
    ) -> Ticket:
        """A staff answer to the member: a customer-service message while their window is open, otherwise
        at their next message (the notice key). The first answer stops the first-answer clock."""
        text = _checked(text)
        ticket = await self.live_ticket(session, code)
        ticket.first_answer_at = ticket.first_answer_at or now
        ticket.state = ANSWERED
        await self._to_member(session, ticket, actor, text, now, "ticket_answer")
        await audit.record(session, actor, "ticket.answer", f"ticket:{ticket.code}", now=now,
                           after={"state": ticket.state}, client=client)
        return ticket

    async def resolve(
        self, session: AsyncSession, actor: Actor, code: str, note: str, now: datetime, *, client: str | None = None,
    ) -> Ticket:
        """Resolved, the member told (with the note) and asked to rate it 1-5 in their own session."""
        note = note.strip()[:MAX_TEXT]
        ticket = await self.live_ticket(session, code)
        before = ticket.state
        ticket.state, ticket.resolved_at = RESOLVED, now
        ticket.first_answer_at = ticket.first_answer_at or now
        await self._to_member(session, ticket, actor, note, now, "ticket_resolved")
        await self.kv.set(rate_key(ticket.source, ticket.openid), ticket.code, ex=RATE_TTL)
        if ticket.kind != "survey":  # live_ticket refused a resolved one: once per ticket
            await surveys.trigger(session, "ticket", [ticket.member_id], f"ticket:{ticket.id}", now)
        await audit.record(session, actor, "ticket.resolve", f"ticket:{ticket.code}", now=now,
                           before={"state": before}, after={"state": ticket.state}, client=client)
        return ticket

    async def assign(
        self, session: AsyncSession, actor: Actor, ticket_id: int, to: str | None, now: datetime, *,
        client: str | None = None,
    ) -> Ticket:
        ticket = await session.get(Ticket, ticket_id, with_for_update=True)
        if ticket is None:
            raise TicketUnknownError("unknown ticket")
        before, ticket.assigned_to = ticket.assigned_to, to or None
        await audit.record(session, actor, "ticket.assign", f"ticket:{ticket.code}", now=now,
                           before={"assigned_to": before}, after={"assigned_to": ticket.assigned_to}, client=client)
        return ticket

    def read(self, body_enc: str) -> str:
        """A message's text; empty once erased (the member deleted their membership: members.ERASED)."""
        return self.pii.decrypt(body_enc) if body_enc else ""

    async def thread(self, session: AsyncSession, ticket_id: int) -> list[tuple[TicketMessage, str]]:
        """Every entry, oldest first, with its text decrypted (for the console; never logged)."""
        rows = (await session.scalars(select(TicketMessage).where(col(TicketMessage.ticket_id) == ticket_id)
                                      .order_by(col(TicketMessage.id)))).all()
        return [(m, self.read(m.body_enc)) for m in rows]

    # --- internals ---------------------------------------------------------------------------------
    def _add(
        self, session: AsyncSession, ticket: Ticket, author: str, name: str, text: str, now: datetime, *,
        media: str | None = None, for_member: bool = False,
    ) -> TicketMessage:
        message = TicketMessage(ticket_id=int(ticket.id or 0), openid=ticket.openid, author=author,
                                author_name=name[:64], body_enc=self.pii.encrypt(text), media=media,
                                for_member=for_member, created_at=now)
        session.add(message)
        return message

    async def _to_member(
        self, session: AsyncSession, ticket: Ticket, actor: Actor, text: str, now: datetime, kind: str,
    ) -> None:
        message = self._add(session, ticket, "staff" if kind == "ticket_answer" else "system", actor.name, text, now,
                            for_member=True)
        await session.flush()
        if int(await self.kv.get(cswindow.key(ticket.source, ticket.openid)) or 0) > 0:
            await outbox.enqueue(
                session, dedupe_key=f"ticket_msg:{message.id}", openid=ticket.openid, source=ticket.source,
                member_id=ticket.member_id, kind=kind, now=now, payload={"params": {"code": ticket.code, "body": text}},
            )
        # Before the commit on purpose: a rollback leaves only a key that makes one message look in vain.
        await self.kv.set(notice_key(ticket.source, ticket.openid), "1", ex=30 * 24 * 3600)

    async def _announce(self, session: AsyncSession, ticket: Ticket, stage: str, now: datetime) -> None:
        """The service robot (SERVICE_WECOM_ROBOT) and each service staff member in the chat."""
        params = {"stage": stage, "code": ticket.code, "category": ticket.category, "kind": ticket.kind,
                  "id": ticket.id}
        if self.robot:
            await outbox.enqueue(session, dedupe_key=f"ticket:{ticket.id}:{stage}:{ticket.reopens}", openid="",
                                 source="wecom", kind="ticket", now=now,
                                 payload={"robot_key": self.robot, "params": params})
        staff = (await session.scalars(select(col(Staff.openid)).where(col(Staff.role) == "service"))).all()
        for openid in staff:
            await outbox.enqueue(session, dedupe_key=f"ticket:{ticket.id}:{stage}:{ticket.reopens}:{openid}",
                                 openid=openid, kind="ticket_staff", now=now, payload={"params": params})


def _checked(text: str) -> str:
    text = text.strip()
    if not text or len(text) > MAX_TEXT:
        raise TicketTextError("empty or too long")
    return text
