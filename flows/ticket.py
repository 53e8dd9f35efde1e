"""A ticket from the chat: category, description (text, or an image attached by its MediaId/PicUrl),
an optional order id checked against the member's orders; the member gets the code and the promised time.

```mermaid
stateDiagram-v2
    [*] --> category: 投诉 / 建议 / 售后 / complaint / feedback
    [*] --> [*]: already max_open open tickets (refused kindly)
    category --> category: not 1-5 or a category name
    category --> text: a category
    text --> text: blank (re-prompt), or an image (attached; text may follow)
    text --> order: a description, or 好了 after an image
    order --> order: an order id that is not the member's
    order --> [*]: 跳过 or the member's order id (ticket opened)
```"""

from __future__ import annotations

from flows.engine import Abort, Answer, Done, Flow, Next, Pass, Stay, StepResult
from flows.store import FlowState
from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Command
from handlers.core.message import Inbound
from handlers.core.reply import Text
from storage.rows import row_id
from storage.sla import CATEGORIES
from storage.tickets import TooManyTicketsError

SKIP = {"跳过", "skip", "无", "没有", "no"}
DONE = {"好了", "好", "完成", "done", "ok"}


async def begin(ctx: ChatContext, state: FlowState) -> Answer:
    member = await ctx.member()
    if member is None:
        return Abort([Text(await ctx.help_text())])
    limit = ctx.rules.service.max_open
    async with ctx.db.sessions() as session:
        count = await ctx.services.tickets.open_count(session, row_id(member))
    if count >= limit:
        return Abort([Text(texts.ticket_too_many.format(limit=limit))])
    return Next("category", [Text(texts.TICKET_ASK_CATEGORY)])


async def category(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    picked = msg.command.strip()
    if picked.isdigit() and 1 <= int(picked) <= len(CATEGORIES):
        chosen = CATEGORIES[int(picked) - 1]
    elif msg.text.strip() in CATEGORIES:
        chosen = msg.text.strip()
    else:
        return Pass(Stay([Text(texts.TICKET_BAD_CATEGORY)]))
    return Next("text", [Text(texts.TICKET_ASK_TEXT)], {"category": chosen})


async def text(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    if msg.kind == "image":
        media = f"{msg.fields.get('MediaId', '')}|{msg.fields.get('PicUrl', '')}"[:600]
        return Stay([Text(texts.TICKET_IMAGE_TAKEN)], {"media": media})
    body = msg.text.strip()
    if state.data.get("media") and msg.command in DONE:
        body = ""
    elif not body:
        return Stay([Text(texts.TICKET_EMPTY_TEXT)])
    # The flow state lives in the KV for the flow's TTL: the member's words are encrypted even there.
    return Next("order", [Text(texts.TICKET_ASK_ORDER)], {"text": ctx.services.pii.encrypt(body)})


async def order(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    member = await ctx.member()
    if member is None:
        return Abort([Text(await ctx.help_text())])
    order_id = None if msg.command in SKIP else msg.text.strip()[:64]
    tickets = ctx.services.tickets
    try:
        async with ctx.db.unit_of_work() as session:
            if order_id is not None and not await tickets.order_is_members(session, row_id(member), order_id):
                return Stay([Text(texts.TICKET_BAD_ORDER.format(order=order_id[:32]))])
            ticket = await tickets.open(
                session, member, msg.openid, msg.source, category=state.data["category"], now=ctx.clock.now(),
                text=ctx.services.pii.decrypt(state.data["text"]), media=state.data.get("media"), order_id=order_id,
            )
    except TooManyTicketsError as exc:
        return Done([Text(texts.domain_text(exc))])
    ctx.log.info("ticket opened id=%s category=%s", ticket.id, ticket.category)
    due = ticket.answer_due_at.astimezone(ctx.tz)
    opened = texts.TICKET_OPENED.format(code=ticket.code, category=ticket.category, due=f"{due:%m-%d %H:%M}")
    return Done([Text(opened)])


flow = Flow(
    name="ticket",
    begin=begin,
    steps={"category": category, "text": text, "order": order},
    entry=(Command("投诉", "建议", "售后", "complaint", "feedback"),),
    ttl=1800,
    media_steps=frozenset({"text"}),
)
