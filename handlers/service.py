"""Member service in the chat: 我的工单, 人工 (a measured hand-off), the rating digit after a resolution,
the answers a member is owed (shown before the reply to their next message), a pending satisfaction
survey (asked with the reply to their next message; flows/survey.py takes the answer), and the service staff's
工单 / 回复 T-… / 解决 T-…. Ticket texts are member data: never logged."""

from __future__ import annotations

import re
from datetime import datetime

from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Command, FilterResult, is_service
from handlers.core.message import OFFICIAL_ACCOUNT, Inbound
from handlers.core.reply import Reply, Text, TransferToAgent
from handlers.core.router import Router
from storage import surveys
from storage import tickets as ticketing
from storage.audit import Actor
from storage.clock import as_utc
from storage.errors import DomainError
from storage.rows import row_id

router = Router("service")
_STAFF = re.compile(r"^\s*(回复|reply|解决|resolve)\s*(T-[0-9A-Za-z]+)?\s*(.*)$", re.S | re.I)
QUEUE_SIZE = 10


@router.on(Command("我的工单", "my tickets", "工单进度"), name="my_tickets")
async def my_tickets(msg: Inbound, ctx: ChatContext) -> Reply:
    member = await ctx.member()
    if member is None:
        return Text(texts.TICKET_NONE)
    async with ctx.db.sessions() as session:
        found = await ctx.services.tickets.of_member(session, row_id(member))
    if not found:
        return Text(texts.TICKET_NONE)
    lines = [texts.TICKET_LIST_HEAD] + [texts.TICKET_LINE.format(
        code=t.code, category=t.category, state=texts.TICKET_STATES.get(t.state, t.state),
        created=f"{as_utc(t.created_at).astimezone(ctx.tz):%m-%d %H:%M}") for t in found]
    return Text("\n".join(lines))


@router.on(Command("人工", "客服", "agent"), name="agent")
async def hand_to_agent(msg: Inbound, ctx: ChatContext) -> Reply:
    """To WeChat's customer-service tool, with a hand-off ticket (so its response is timed); VIP tiers go
    to the configured kf_account."""
    member = await ctx.member()
    if member is None:
        return TransferToAgent()
    async with ctx.db.unit_of_work() as session:
        ticket = await ctx.services.tickets.hand_off(session, member, msg.openid, msg.source, ctx.clock.now())
    ctx.log.info("hand-off ticket id=%s", ticket.id)
    service = ctx.rules.service
    vip = member.joined_at is not None and member.tier in service.vip_tiers and service.vip_kf_account
    return TransferToAgent(service.vip_kf_account if vip else None)


async def rating_due(msg: Inbound, ctx: ChatContext) -> FilterResult:
    """A digit 1-5 from a member who was asked to rate a resolved ticket (anything else carries on)."""
    if not msg.is_text or msg.command not in ("1", "2", "3", "4", "5"):
        return False
    code = await ctx.kv_value(ticketing.rate_key(msg.source, msg.openid))
    return {"code": code} if code else False


@router.on(rating_due, name="ticket_rating")
async def rate(msg: Inbound, ctx: ChatContext, code: str) -> Reply:
    member = await ctx.member()
    if member is None:
        return Text(await ctx.help_text())
    async with ctx.db.unit_of_work() as session:
        ticket = await ctx.services.tickets.rate(session, code, row_id(member), int(msg.command), ctx.clock.now())
    await ctx.kv.delete(ticketing.rate_key(msg.source, msg.openid))
    if ticket.rating is not None and ticket.rating <= ticketing.LOW_RATING:
        return Text(texts.TICKET_LOW_RATING.format(code=ticket.code))
    return Text(texts.TICKET_THANKS)


async def owed(msg: Inbound, ctx: ChatContext) -> list[Reply]:
    """The answers that found no open window, before the reply to this message (the notice key, which the
    intake already read, says whether to look in the database)."""
    key = ticketing.notice_key(msg.source, msg.openid)
    if not await ctx.kv_value(key):
        return []
    async with ctx.db.unit_of_work() as session:
        found = await ctx.services.tickets.pending(session, msg.openid, ctx.clock.now())
        left = await ctx.services.tickets.undelivered(session, msg.openid)
    if not left:
        await ctx.kv.delete(key)
    return [Text((texts.TICKET_ANSWER if p.author == "staff" else texts.TICKET_RESOLVED)
                 .format(code=p.code, body=p.body)) for p in found]


async def ask_survey(msg: Inbound, ctx: ChatContext, answer: list[Reply]) -> list[Reply]:
    """A pending satisfaction survey, asked with the reply to this message (an afterword: merged into the
    one passive text, never pushed). Only when the member's row this message loaded anyway says one is due
    (Member.survey_due_until), so no other message costs a query or a KV round trip; not while a flow runs
    or a ticket rating is asked (its digit comes first), and only where the reply is one passive text."""
    if msg.source != OFFICIAL_ACCOUNT or ctx.flows.active is not None or not answer:
        return []
    if not all(isinstance(r, Text) for r in answer):
        return []
    now = ctx.clock.now()
    member = ctx.loaded_member()
    if member is None or member.joined_at is None or not surveys.due(member, now):
        return []
    if await ctx.kv_value(ticketing.rate_key(msg.source, msg.openid)):
        return []
    async with ctx.db.unit_of_work() as session:
        asked = await surveys.take(session, row_id(member), now)
    member.survey_due_until = None
    if asked is None:
        return []
    ctx.log.info("survey asked ask=%s", asked.ask_id)
    intent = ctx.intent
    replies = await ctx.flows.start("survey", ask=asked.ask_id, title=asked.name, kind=asked.kind,
                                    question=asked.question, followup=asked.followup)
    ctx.intent = intent
    return replies


# --- service staff ---------------------------------------------------------------------------------
@router.on(Command("工单", "tickets"), is_service, name="staff_tickets")
async def staff_queue(msg: Inbound, ctx: ChatContext) -> Reply:
    now = ctx.clock.now()
    async with ctx.db.sessions() as session:
        rows = await ctx.services.tickets.queue(session, limit=QUEUE_SIZE)
    if not rows:
        return Text(texts.STAFF_TICKETS_NONE)
    lines = [texts.STAFF_TICKETS_HEAD]
    for ticket, excerpt in rows:
        late = ticket.escalated_at is not None or _late(ticket, now)
        lines.append(texts.STAFF_TICKET_LINE.format(
            code=ticket.code, category=ticket.category, state=texts.TICKET_STATES.get(ticket.state, ticket.state),
            waited=_waited(now - as_utc(ticket.created_at)), late=texts.STAFF_TICKET_LATE if late else "",
            excerpt=excerpt or (texts.HAND_OFF_EXCERPT if ticket.kind == "hand-off" else texts.IMAGE_EXCERPT),
        ))
    return Text("\n".join(lines))


def _late(ticket: ticketing.Ticket, now: datetime) -> bool:
    due = ticket.answer_due_at if ticket.first_answer_at is None else ticket.resolve_due_at
    return as_utc(due) < now


def _waited(delta: object) -> str:
    minutes = int(getattr(delta, "total_seconds", lambda: 0)() // 60)
    return f"{minutes // 60} 小时 {minutes % 60} 分" if minutes >= 60 else f"{minutes} 分钟"


async def _staff_command(msg: Inbound, ctx: ChatContext) -> FilterResult:
    """回复/解决 with a ticket code (`T-…`), or said by service staff (who get the usage). A member's own
    "回复太慢了" or "解决不了" is not a staff command: it goes on to the member's handlers and flows."""
    if not msg.is_text:
        return False
    found = _STAFF.match(msg.text)
    if found is None or (found.group(2) is None and not await is_service(msg, ctx)):
        return False
    verb = "reply" if found.group(1).casefold() in ("回复", "reply") else "resolve"
    return {"verb": verb, "code": found.group(2) or "", "body": found.group(3).strip()}


@router.on(_staff_command, name="staff_ticket_move")
async def staff_move(msg: Inbound, ctx: ChatContext, verb: str, code: str, body: str) -> Reply:
    """回复 T-… text / 解决 T-… [note]: service staff only; anyone else is told so and nothing is sent."""
    if not await is_service(msg, ctx):
        return Text(texts.STAFF_ONLY_SERVICE)
    if not code or (verb == "reply" and not body):
        return Text(texts.STAFF_REPLY_USAGE if verb == "reply" else texts.STAFF_RESOLVE_USAGE)
    actor = Actor(f"staff:{msg.openid}", "service")
    tickets = ctx.services.tickets
    try:
        async with ctx.db.unit_of_work() as session:
            if verb == "reply":
                ticket = await tickets.answer(session, actor, code, body, ctx.clock.now())
            else:
                ticket = await tickets.resolve(session, actor, code, body, ctx.clock.now())
    except DomainError as exc:
        return Text(texts.domain_text(exc))
    ctx.log.info("ticket %s id=%s by staff", verb, ticket.id)
    return Text((texts.STAFF_ANSWERED if verb == "reply" else texts.STAFF_RESOLVED).format(code=ticket.code))
