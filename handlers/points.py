"""Check-in, balance and history: the member's points in the chat."""

from __future__ import annotations

from datetime import date

from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Click, Command
from handlers.core.message import Inbound
from handlers.core.reply import Reply, Text
from handlers.core.router import Router
from storage.balances import balance_summary
from storage.checkins import check_in as record_checkin
from storage.clock import local_date
from storage.rows import row_id

router = Router("points")


def join_first(ctx: ChatContext) -> Reply:
    return Text(texts.JOIN_FIRST.format(bonus=ctx.rules.signup_bonus))


def tier_up(ctx: ChatContext, tier: str | None) -> str:
    if not tier:
        return ""
    return texts.TIER_UP.format(tier=tier, multiplier=ctx.rules.tier_named(tier).multiplier)


def member_day(ctx: ChatContext, day: date, tier: str, *, told: str = "") -> str:
    """One line for a day with a multiplier for this member's tier (a member day), else nothing;
    `told`: an earning the reply has already explained, left out."""
    found = [(rule, kept) for rule, earnings in ctx.rules.multipliers_on(day, tier)
             if (kept := tuple(e for e in earnings if e != told))]
    if not found:
        return ""
    return "\n" + texts.MEMBER_DAY_JOIN.join(
        texts.MEMBER_DAY.format(
            name=rule.name, factor=rule.factor_text,
            earnings=texts.EARNING_JOIN.join(texts.EARNING_LABELS[e] for e in earnings),
        )
        for rule, earnings in found
    )


@router.on(Command("签到", "checkin", "打卡"), name="checkin")
@router.on(Click("CHECKIN"), name="checkin")
async def check_in(msg: Inbound, ctx: ChatContext) -> Reply:
    async with ctx.db.unit_of_work() as session:  # one transaction: the member's row, locked, and the check-in
        member = await ctx.lock_member(session)
        if member is None or member.joined_at is None:
            result = None
        else:
            result = await record_checkin(session, ctx.ledger, row_id(member), ctx.clock.now())
    if result is None:
        return join_first(ctx)
    tier = member.tier if member else ""
    if result.already:
        return Text(texts.CHECKIN_ALREADY.format(streak=result.streak, balance=result.balance)
                    + member_day(ctx, result.day, tier))
    bonus = texts.CHECKIN_STREAK_BONUS.format(bonus=result.bonus) if result.bonus else ""
    text = texts.CHECKIN_DONE.format(
        points=result.points, bonus=bonus, streak=result.streak, balance=result.balance
    )
    if result.boost:
        text += texts.CHECKIN_BOOST.format(
            name=result.boost.name, factor=result.boost.factor_text, points=result.points
        )
    text += member_day(ctx, result.day, tier, told="checkin" if result.boost else "")
    if result.winback:
        text += texts.WINBACK_BONUS.format(points=result.winback)
    if result.capped:
        text += texts.CHECKIN_CAPPED.format(cap=ctx.rules.daily_earn_cap)
    return Text(text + tier_up(ctx, result.upgraded_to))


@router.on(Command("积分", "余额", "balance", "我的积分"), name="balance")
@router.on(Click("BALANCE"), name="balance")
async def balance(msg: Inbound, ctx: ChatContext) -> Reply:
    # One transaction: the sender's row, locked once, serves the member check and the summary (whose
    # expiry may write), instead of a read and then a second transaction that reads it again.
    async with ctx.db.unit_of_work() as session:
        member = await ctx.lock_member(session)
        joined = member if member is not None and member.joined_at is not None else None
        summary = await balance_summary(session, ctx.ledger, joined, ctx.clock.now()) if joined else None
    if summary is None:
        return join_first(ctx)
    progress = (
        texts.BALANCE_PROGRESS.format(gap=summary.points_to_next_tier, next=summary.next_tier)
        if summary.next_tier else texts.BALANCE_TOP
    )
    if summary.expiring_points and summary.expiring_on is not None:
        expiry = texts.BALANCE_EXPIRING.format(points=summary.expiring_points, date=f"{summary.expiring_on:%Y-%m-%d}")
    else:
        expiry = texts.BALANCE_NO_EXPIRING
    text = texts.BALANCE.format(balance=summary.balance, tier=summary.tier, progress=progress, expiring=expiry)
    return Text(text + member_day(ctx, local_date(ctx.clock.now(), ctx.tz), summary.tier))


@router.on(Command("明细", "history", "积分明细"), name="history")
async def history(msg: Inbound, ctx: ChatContext) -> Reply:
    member = await ctx.joined_member()
    if member is None:
        return join_first(ctx)
    async with ctx.db.sessions() as session:
        entries = await ctx.ledger.history(session, row_id(member))
    if not entries:
        return Text(texts.HISTORY_EMPTY)
    lines = [texts.HISTORY_HEAD]
    for entry in entries:
        label = texts.KIND_LABELS.get(entry.kind, entry.kind)
        if boost := texts.boost_of(entry.reason):
            label += texts.HISTORY_BOOST.format(name=boost)
        when = entry.created_at.astimezone(ctx.tz)
        lines.append(texts.HISTORY_LINE.format(date=f"{when:%m-%d}", label=label, delta=entry.delta))
    return Text("\n".join(lines))
