"""A satisfaction survey inside the member's own session: the question rides on the reply to the member's
message (handlers/service.py ask_survey starts this flow then), the next message answers it. A digit in
the scale answers; out of the scale re-asks once, then lets go; `取消` declines; anything else ends the
survey (the ask is dropped) and is handled as if it had not been asked. The open follow-up, if the
survey has one, takes the next text whole (encrypted, never logged).

```mermaid
stateDiagram-v2
    [*] --> score: a pending ask, with the reply to the member's message
    score --> score: a number out of the scale (re-asked once)
    score --> [*]: out of the scale again (let go), 取消 (declined), anything else (dropped, handled as usual)
    score --> followup: a score, the survey has a follow-up question
    score --> [*]: a score (thanks; a detractor's follow-up ticket opened)
    followup --> [*]: a text (kept), 取消, or anything not text (handled as usual)
```"""

from __future__ import annotations

from flows.engine import Answer, Done, Flow, Leave, Next, Stay, StepResult
from flows.store import FlowState
from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.message import Inbound
from handlers.core.reply import Reply, Text
from storage import surveys
from storage.errors import NotFoundError

TTL = int(surveys.ANSWER_WINDOW.total_seconds())


async def begin(ctx: ChatContext, state: FlowState) -> Answer:
    kind = state.data["kind"]
    return Next("score", [Text(texts.SURVEY_ASK.format(question=state.data["question"],
                                                       scale=texts.SURVEY_SCALES[kind]))])


async def score(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    ask_id, kind = int(state.data["ask"]), state.data["kind"]
    typed = msg.command.strip() if msg.is_text else ""
    if not (typed.isascii() and typed.isdigit()):
        await _close(ctx, ask_id, "dropped")
        return Leave()
    low, high = surveys.SCALES[kind]
    if not surveys.in_scale(kind, int(typed)):
        if not state.data.get("reasked"):
            return Stay([Text(texts.SURVEY_OUT_OF_RANGE.format(low=low, high=high))], {"reasked": True})
        await _close(ctx, ask_id, "dropped")
        return Done([Text(texts.SURVEY_LET_GO)])
    value = int(typed)
    async with ctx.db.unit_of_work() as session:
        member = await ctx.lock_member(session)
        if member is None:
            return Done([Text(await ctx.help_text())])
        try:
            answered = await surveys.answer(
                session, ask_id, member, value, ctx.clock.now(), ledger=ctx.ledger, tickets=ctx.services.tickets,
                openid=msg.openid, source=msg.source, ticket_text=texts.SURVEY_TICKET_TEXT.format(
                    name=state.data.get("title", ""), score=value, scale=texts.SURVEY_SCALE_NAMES[kind]),
            )
        except NotFoundError:  # the question is closed: the digit is the member's own message
            return Leave()
    ctx.log.info("survey answered ask=%s detractor=%s", ask_id, answered.ticket_code is not None)
    words = texts.SURVEY_THANKS
    if answered.thanked:
        words += texts.SURVEY_THANKS_POINTS.format(points=answered.thanked)
    if answered.ticket_code:
        words += texts.SURVEY_SORRY.format(code=answered.ticket_code)
    followup = state.data.get("followup")
    if followup and not answered.repeated:
        return Next("followup", [Text(words + "\n" + texts.SURVEY_FOLLOWUP.format(question=followup))])
    return Done([Text(words)])


async def followup(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    if not msg.is_text or not msg.text.strip():
        return Leave()
    async with ctx.db.unit_of_work() as session:
        await surveys.add_followup(session, int(state.data["ask"]), msg.text, ctx.clock.now(), pii=ctx.services.pii,
                                   tickets=ctx.services.tickets)
    ctx.log.info("survey follow-up kept ask=%s", state.data["ask"])
    return Done([Text(texts.SURVEY_FOLLOWUP_THANKS)])


async def cancelled(ctx: ChatContext, state: FlowState) -> list[Reply]:
    """取消: at the score the ask is declined; at the follow-up the score stays and the question is skipped."""
    if state.step == "followup":
        return [Text(texts.SURVEY_FOLLOWUP_SKIPPED)]
    await _close(ctx, int(state.data["ask"]), "declined")
    return [Text(texts.SURVEY_DECLINED)]


async def _close(ctx: ChatContext, ask_id: int, how: str) -> None:
    async with ctx.db.unit_of_work() as session:
        await surveys.close(session, ask_id, how)
    ctx.log.info("survey %s ask=%s", how, ask_id)


flow = Flow(
    name="survey",
    begin=begin,
    steps={"score": score, "followup": followup},
    ttl=TTL,
    media_steps=frozenset({"score", "followup"}),
    on_cancel=cancelled,
)
