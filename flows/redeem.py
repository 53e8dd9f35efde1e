"""Redemption in the chat: the list, a choice, a quote, and `是` within 5 minutes.

The quote is a database row (storage/rewards.py) and its id is the redemption's key, so `是` redeems
once even when the flow state is gone: a replay of the quoting message finds the same quote, and a `是`
with no flow after a redeemed quote of the last 10 minutes gets that code again, never a second
deduction.

```mermaid
stateDiagram-v2
    [*] --> choose: 兑换 / 积分商城 / redeem / menu REDEEM (list, 8 a page)
    [*] --> confirm: 兑换 N (quote item N at once)
    [*] --> choose: 兑换 N refused (not enough points, sold out, limit): the refusal and the list
    [*] --> [*]: not a member, nothing to redeem, or no item N
    [*] --> [*]: 是 with no flow, a quote of the last 10 minutes redeemed (its code again, nothing spent)
    choose --> choose: 下一页, 兑换 / 兑换 N (begun afresh), or a number not on the list, or text no route takes
    choose --> [*]: another command (签到, 积分 ...): the flow ends and the command runs
    choose --> choose: a refused number (not enough points, sold out, tier, limit, ended): why, and pick another
    choose --> confirm: a number (quote: cost and balance after)
    confirm --> confirm: anything but 是 / 否 that no route takes, or 是 after the cost changed (quoted afresh)
    confirm --> [*]: another command: the flow ends and the command runs
    confirm --> [*]: 否 (nothing spent)
    confirm --> [*]: 是 within 5 minutes (points, stock and a code, one transaction)
    confirm --> choose: 是 refused (expired, not enough points, sold out, tier, limit, ended; nothing spent)
    choose --> [*]: 取消 / 10 minutes of silence
    confirm --> [*]: 取消 / 10 minutes of silence
```"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import timedelta
from typing import Any

from flows.engine import Abort, Answer, Done, Flow, Next, Pass, Stay, StepResult
from flows.store import FlowState
from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Click, Command
from handlers.core.message import Inbound
from handlers.core.reply import Text
from storage.errors import DomainError
from storage.ledger import InsufficientPointsError
from storage.models import Member, Redemption, Reward
from storage.rewards import (
    Issued,
    LimitReachedError,
    OutOfStockError,
    PriceChangedError,
    QuoteExpiredError,
    RewardEndedError,
    TierTooLowError,
)
from storage.rows import row_id

PAGE = 8
# What can be refused about one reward: each keeps the member at the choice step, to pick another.
REFUSALS = (
    InsufficientPointsError, OutOfStockError, LimitReachedError, TierTooLowError, RewardEndedError,
    QuoteExpiredError,
)
QUOTE_VALID = timedelta(minutes=5)
YES = {"是", "yes", "y", "确认", "确定", "好"}
NO = {"否", "no", "n", "不", "不要"}
NEXT_PAGE = {"下一页", "next", "更多"}
ENTRY = Command("兑换", "积分商城", "redeem", arg="item")
RECENT = timedelta(minutes=10)  # the flow's TTL: a bare `是` this soon after a quote is about that quote


def join_first(ctx: ChatContext) -> Text:
    return Text(texts.JOIN_FIRST.format(bonus=ctx.rules.signup_bonus))


async def begin(ctx: ChatContext, state: FlowState) -> Answer:
    member = await ctx.joined_member()
    if member is None:
        return Abort([join_first(ctx)])
    if state.data.get("quote") is not None:  # `是` whose flow state is gone (entry: recent_quote)
        return await _resume(ctx, int(state.data["quote"]))
    async with ctx.db.sessions() as session:
        items = await ctx.rewards.catalogue(session, member, ctx.clock.now())
    if not items:
        return Abort([Text(texts.REDEEM_EMPTY)])
    ids = [r.id for r in items]
    pick = state.data.get("item")
    if pick is not None:
        number = int(pick) if str(pick).isdigit() else 0
        if not 1 <= number <= len(ids):
            return Abort([Text(texts.REDEEM_NO_SUCH_ITEM.format(n=pick))])
        try:
            return await _quote(ctx, member, items[number - 1], {"ids": ids})
        except REFUSALS as exc:  # the list was never shown: the refusal and the list to pick another from
            return Next("choose", [Text(_refusal(ctx, exc) + "\n" + _page(items, member, 0))], {"ids": ids, "page": 0})
    return Next("choose", [Text(_page(items, member, 0))], {"ids": ids, "page": 0})


def _page(items: list[Reward], member: Member, page: int) -> str:
    lines = [texts.REDEEM_HEAD.format(balance=member.balance)]
    start = page * PAGE
    for n, reward in enumerate(items[start:start + PAGE], start=start + 1):
        note = ""
        if reward.stock == 0:
            note = texts.REDEEM_NOTE_SOLD_OUT
        elif reward.cost > member.balance:
            note = texts.REDEEM_NOTE_SHORT.format(missing=reward.cost - member.balance)
        lines.append(texts.REDEEM_LINE.format(n=n, name=reward.name, cost=reward.cost, note=note))
    lines.append(texts.REDEEM_FOOT)
    if start + PAGE < len(items):
        lines.append(texts.REDEEM_MORE)
    return "\n".join(lines)


def _refusal(ctx: ChatContext, exc: DomainError) -> str:
    """Why this reward cannot be had; not enough points also says how to earn them."""
    if isinstance(exc, InsufficientPointsError):
        needed, balance = int(exc.details["needed"]), int(exc.details["balance"])
        return texts.insufficient_points_redeem.format(
            needed=needed, balance=balance, missing=needed - balance,
            checkin=ctx.rules.checkin_points, referral=ctx.rules.referral_bonus,
        )
    return texts.domain_text(exc)


def _choose_again(ctx: ChatContext, exc: DomainError, state: FlowState) -> Answer:
    """A refusal keeps the member at the choice step: why, and how to pick another or leave."""
    again = texts.REDEEM_CHOOSE_AGAIN.format(count=len(state.data["ids"]))
    return Next("choose", [Text(_refusal(ctx, exc) + "\n" + again)])


async def _quote(ctx: ChatContext, member: Member, reward: Reward, data: dict[str, Any]) -> Answer:
    """The quote for `reward`; raises one of REFUSALS (nothing quoted) when 是 could not succeed."""
    if reward.cost > member.balance:  # never quote a negative "balance after": say what is missing
        raise InsufficientPointsError("short at the quote", needed=reward.cost, balance=member.balance)
    async with ctx.db.unit_of_work() as session:
        await ctx.rewards.check_redeemable(session, reward, member, ctx.clock.now())
        quote, redeemed = await ctx.rewards.quote(
            session, row_id(member), reward, request_key=_quote_request(ctx.msg), now=ctx.clock.now(),
            valid=QUOTE_VALID,
        )
    if redeemed is not None:  # a replay of a message whose quote was already confirmed
        return Done([_already(ctx, reward, redeemed)])
    text = texts.REDEEM_QUOTE.format(
        name=reward.name, description=reward.description, cost=quote.cost, after=member.balance - quote.cost,
    )
    return Next("confirm", [Text(text)], {"reward": reward.id, "quote": quote.id, **data})


def _quote_request(msg: Inbound) -> str:
    """The quote's request key: the delivery that asked, so its replay finds the same quote. A push
    without a MsgId has no stable identity and gets a quote of its own."""
    return f"chat:{msg.dedupe_key}" if msg.msg_id else f"chat:once:{secrets.token_hex(8)}"


async def _resume(ctx: ChatContext, quote_id: int) -> Answer:
    """`是` after the flow state was lost, to a quote the database says was redeemed: its code again."""
    async with ctx.db.sessions() as session:
        rewards = ctx.rewards
        redeemed = await rewards.redemption_of(session, quote_id)
        reward = await rewards.get(session, redeemed.reward_id) if redeemed is not None else None
    if redeemed is None or reward is None:  # recent_quote saw it redeemed; only a cancellation undoes that
        return Abort([Text(await ctx.help_text())])
    return Done([_already(ctx, reward, redeemed)])


def _already(ctx: ChatContext, reward: Reward, redemption: Redemption) -> Text:
    return Text(texts.REDEEM_ALREADY_DONE.format(
        name=reward.name, code=redemption.code, expires=_last_day(ctx, redemption),
    ))


def _last_day(ctx: ChatContext, redemption: Redemption) -> str:
    return f"{(redemption.expires_at.astimezone(ctx.tz) - timedelta(seconds=1)).date():%Y-%m-%d}"


async def recent_quote(msg: Inbound, ctx: ChatContext) -> bool | dict[str, int]:
    """Entry filter: a bare `是` from a member whose quote of the last 10 minutes was redeemed ->
    {"quote": id}: most likely a replay whose flow state is gone. (A declined or open quote is left to
    the router: nothing was spent, and the state that knew the member's choice is lost.)"""
    if not msg.is_text or msg.command not in YES:
        return False
    member = await ctx.joined_member()
    if member is None:
        return False
    async with ctx.db.sessions() as session:
        rewards = ctx.rewards
        quote = await rewards.latest_quote(session, row_id(member), ctx.clock.now() - RECENT)
        if quote is None or await rewards.redemption_of(session, row_id(quote)) is None:
            return False
    return {"quote": row_id(quote)}


async def choose(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    member = await ctx.joined_member()
    if member is None:
        return Abort([join_first(ctx)])
    ids: list[int] = state.data["ids"]
    again = ENTRY(msg, ctx)
    if isinstance(again, dict):  # 兑换 / 兑换 N once more: a fresh list (or quote), as from the start
        return Stay(await ctx.flows.start(flow.name, **again))
    if msg.command in NEXT_PAGE:
        page = int(state.data.get("page", 0)) + 1
        if page * PAGE >= len(ids):
            return Stay([Text(texts.REDEEM_NO_MORE)])
        async with ctx.db.sessions() as session:
            items = [await ctx.rewards.get(session, i) for i in ids]
        return Stay([Text(_page(items, member, page))], {"page": page})
    bad_choice = Stay([Text(texts.REDEEM_BAD_CHOICE.format(count=len(ids)))])
    if not msg.command.isdigit():  # another command (签到, as the refusal suggests) runs; anything else re-asks
        return Pass(bad_choice)
    if not 1 <= int(msg.command) <= len(ids):
        return bad_choice
    async with ctx.db.sessions() as session:
        reward = await ctx.rewards.get(session, ids[int(msg.command) - 1])
    try:
        return await _quote(ctx, member, reward, {})
    except REFUSALS as exc:
        return _choose_again(ctx, exc, state)


async def confirm(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    if msg.command in NO:
        return Done([Text(texts.REDEEM_DECLINED)])
    if msg.command not in YES:
        return Pass(Stay([Text(texts.REDEEM_CONFIRM_AGAIN)]))
    member = await ctx.joined_member()
    if member is None:
        return Abort([join_first(ctx)])
    if "quote" not in state.data:  # a flow state saved before quotes were rows: quote afresh
        return Done([Text(texts.quote_expired)])
    try:
        async with ctx.db.unit_of_work() as session:
            issued = await ctx.rewards.confirm(session, row_id(member), int(state.data["quote"]), ctx.clock.now())
    except PriceChangedError:
        return await _requote(ctx, member, int(state.data["reward"]), state)
    except REFUSALS as exc:  # the quote is over, nothing spent: back to the list to pick another
        return _choose_again(ctx, exc, state)
    except DomainError as exc:  # not found and the like: nothing to go back to
        return Done([Text(texts.domain_text(exc))])
    ctx.forget_member()
    return Done([_done(ctx, issued)])


async def _requote(ctx: ChatContext, member: Member, reward_id: int, state: FlowState) -> Answer:
    """The operator changed the cost since the quote: quote it afresh (or refuse it at the new cost)."""
    async with ctx.db.sessions() as session:
        reward = await ctx.rewards.get(session, reward_id)
    changed = Text(texts.REDEEM_PRICE_CHANGED.format(cost=reward.cost))
    try:
        fresh = await _quote(ctx, member, reward, {})
    except REFUSALS as exc:
        fresh = _choose_again(ctx, exc, state)
    return replace(fresh, replies=[changed, *fresh.replies])


def _done(ctx: ChatContext, issued: Issued) -> Text:
    reward, redemption = issued.reward, issued.redemption
    if issued.repeated:
        return _already(ctx, reward, redemption)
    usage = {"gift": texts.USAGE_GIFT, "code_pool": texts.USAGE_POOL}.get(reward.kind, texts.USAGE_COUPON)
    return Text(texts.REDEEM_DONE.format(
        name=reward.name, code=redemption.code, expires=_last_day(ctx, redemption), usage=usage,
        cost=redemption.cost, balance=issued.balance,
    ))


flow = Flow(
    name="redeem",
    begin=begin,
    steps={"choose": choose, "confirm": confirm},
    entry=(ENTRY,),
    extra_entries=((Click("REDEEM"),), (recent_quote,)),
    ttl=600,
)
