"""Campaigns in the chat: joining by code or QR, the list of open ones, and the managers' figures and early end."""

from __future__ import annotations

from datetime import datetime

from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Click, Command, Event, SceneIs, is_staff
from handlers.core.message import Inbound
from handlers.core.reply import Reply, Text
from handlers.core.router import Router
from storage import campaignreport, drawprize, members, sharing
from storage.campaigns import Campaigns, Joined
from storage.enums import CampaignStatus
from storage.errors import DomainError
from storage.models import Campaign

router = Router("campaigns")
STATS_DAYS = 10  # 活动数据 lists the joins of the latest days only, to stay one short message


def _when(ctx: ChatContext, at: datetime) -> str:
    return f"{at.astimezone(ctx.tz):%m-%d %H:%M}"


def joined_text(ctx: ChatContext, joined: Joined) -> str:
    """The reply to a successful join: progress and what happens next, by kind."""
    c = joined.campaign
    if c.kind == "join_bonus":
        following = texts.CAMPAIGN_NEXT["join_bonus"].format(paid=joined.paid_now)
    elif c.kind == "group_buy" and joined.count >= c.goal:
        following = texts.CAMPAIGN_NEXT["group_buy_done"].format(paid=joined.paid_now)
    elif c.kind == "group_buy":
        following = texts.CAMPAIGN_NEXT["group_buy_waiting"].format(
            goal=c.goal, missing=c.goal - joined.count, code=c.code
        )
    else:
        key = "lucky_draw_coupon" if c.kind == "lucky_draw" and joined.prize else c.kind
        following = texts.CAMPAIGN_NEXT[key].format(goal=c.goal, points=c.points, ends=_when(ctx, c.ends_at),
                                                    reward=joined.prize)
    return texts.CAMPAIGN_JOINED.format(title=c.title, count=joined.count, cap=c.cap, next=following)


async def join_campaign(ctx: ChatContext, code: str, referrer_id: int | None = None) -> Reply | list[Reply]:
    """Join as a member, or sign up first and be joined at the end of it (attributed to the sharer whose
    personal invite brought it, if any)."""
    member = await ctx.joined_member()
    if member is None:
        async with ctx.db.sessions() as session:  # a wrong or closed code is said before, not after, sign-up
            Campaigns.check_joinable(await ctx.campaigns.by_code(session, code), ctx.clock.now())
        data: dict[str, object] = {"then_join": code.upper()}
        if referrer_id is not None:
            data["then_join_referrer"] = referrer_id
        return [Text(texts.CAMPAIGN_JOIN_SIGNUP), *await ctx.flows.start("signup", **data)]
    async with ctx.db.unit_of_work() as session:
        joined = await ctx.campaigns.join(session, code, member, ctx.clock.now(), referrer_id=referrer_id)
    return Text(joined_text(ctx, joined))


async def _invite_scan(ctx: ChatContext, code: str, ref: str) -> int | None:
    """A scan of a member's personal campaign invite (`camp_<CODE>_<ref>`): counted for the sharer, and the
    sharer kept as the referrer of a visitor who has none yet. Returns the sharer's id (None: unknown)."""
    now = ctx.clock.now()
    msg = ctx.msg
    async with ctx.db.unit_of_work() as session:
        sharer = await sharing.member_by_code(session, ref)
        if sharer is None or sharer.joined_at is None:
            return None
        campaign = await ctx.campaigns.by_code(session, code)
        if msg.openid in (sharer.openid, sharer.mp_openid):  # one's own invite: no scan, no attribution
            return None
        await sharing.record_scan(session, msg.openid, now, follow=msg.event == "subscribe",
                                  referrer_id=sharer.id, campaign_id=campaign.id)
        await members.record_referrer(session, msg.openid, msg.source, ref, now, ctx.tz)
    ctx.forget_member()
    return sharer.id


@router.on(Command("参加", "join", arg="code", arg_required=True), name="campaign_join")
async def join_by_code(msg: Inbound, ctx: ChatContext, code: str) -> Reply | list[Reply]:
    return await join_campaign(ctx, code)


@router.on(Event("subscribe", "scan"), SceneIs("camp"), name="campaign_scan")
async def join_by_qr(msg: Inbound, ctx: ChatContext, scene_value: str) -> Reply | list[Reply]:
    """`camp_<CODE>`, or a member's personal invite `camp_<CODE>_<referral code>`."""
    code, _, ref = scene_value.partition("_")
    async with ctx.db.unit_of_work() as session:
        await ctx.record_touch(session)  # a first contact's row exists before its status or referrer is set
        if msg.event == "subscribe":
            await members.set_status(session, msg.openid, members.ACTIVE, msg.source)
    if msg.event != "subscribe":
        return await join_campaign(ctx, code, await _invite_scan(ctx, code, ref) if ref else None)
    welcome = texts.WELCOME_BACK if await ctx.joined_member() is not None else texts.WELCOME
    try:
        joined = await join_campaign(ctx, code, await _invite_scan(ctx, code, ref) if ref else None)
    except DomainError as exc:  # a new follower still gets the welcome with the refusal
        joined = Text(texts.domain_text(exc))
    return [Text(welcome), *(joined if isinstance(joined, list) else [joined])]


@router.on(Command("活动", "campaigns", "活动列表"), name="campaigns")
@router.on(Click("CAMPAIGNS"), name="campaigns")
async def list_campaigns(msg: Inbound, ctx: ChatContext) -> Reply:
    return await _open_campaigns(ctx, texts.CAMPAIGNS_HEAD)


@router.on(Click("STAFF_CAMPAIGNS"), is_staff, name="staff_campaigns")
async def staff_campaigns(msg: Inbound, ctx: ChatContext) -> Reply:
    """The staff menu's 活动数据: the open campaigns, each with the code `活动数据 CODE` takes."""
    return await _open_campaigns(ctx, texts.STAFF_CAMPAIGNS_HEAD)


async def _open_campaigns(ctx: ChatContext, head: str) -> Reply:
    async with ctx.db.sessions() as session:
        found = await ctx.campaigns.open_campaigns(session, ctx.clock.now())
    if not found:
        return Text(texts.CAMPAIGNS_NONE)
    lines = [head] + [
        texts.CAMPAIGNS_LINE.format(
            code=c.code, title=c.title, kind=texts.CAMPAIGN_KIND_NAMES[c.kind], count=c.participants,
            cap=c.cap, ends=_when(ctx, c.ends_at),
        )
        for c in found[:10]
    ]
    return Text("\n".join(lines))


@router.on(Command("活动数据", arg="code", arg_required=True), is_staff, name="campaign_stats")
async def campaign_stats(msg: Inbound, ctx: ChatContext, code: str) -> Reply:
    async with ctx.db.sessions() as session:
        found = await campaignreport.report(session, ctx.campaigns, await ctx.campaigns.by_code(session, code))
        reward = await ctx.campaigns.prize(session, found.campaign)
    c, per_day = found.campaign, found.joins_per_day
    shown = [f"{d:%m-%d} {n} 人" for d, n in per_day[-STATS_DAYS:]]  # the latest days: one short message
    days = ("…，" if len(per_day) > STATS_DAYS else "") + "，".join(shown) if shown else "暂无"
    money = texts.CAMPAIGN_STATS_MONEY.format(
        cost=f"{found.cost_fen / 100:,.2f}", incremental=_yuan(found.incremental_fen),
        roi=texts.CAMPAIGN_STATS_NONE if found.roi is None else f"{found.roi:.2f}",
    )
    return Text(texts.CAMPAIGN_STATS.format(
        title=c.title, code=c.code, kind=texts.CAMPAIGN_KIND_NAMES[c.kind],
        status=texts.CAMPAIGN_STATUS.get(c.status, c.status), count=c.participants, cap=c.cap,
        paid=c.paid_out, left=c.budget - c.paid_out, ends=_when(ctx, c.ends_at), per_day=days, money=money,
        prize=_prize_line(c, reward),
    ))


def _prize_line(c: Campaign, reward: str | None) -> str:
    """A coupon draw's prize in 活动数据: the reward, and once drawn, how the winners were paid."""
    if reward is None:
        return ""
    if not c.draw_record:
        return texts.CAMPAIGN_STATS_PRIZE.format(reward=reward)
    done = drawprize.outcomes(c)
    return texts.CAMPAIGN_STATS_DRAWN.format(reward=reward, coupons=done.coupons, points=done.points,
                                             unpaid=done.unpaid)


def _yuan(fen: int | None) -> str:
    return texts.CAMPAIGN_STATS_NONE if fen is None else campaignreport.yuan(fen)


@router.on(Command("结束活动", arg="code", arg_required=True), is_staff, name="campaign_end")
async def end_campaign(msg: Inbound, ctx: ChatContext, code: str) -> Reply:
    async with ctx.db.unit_of_work() as session:
        c = await ctx.campaigns.by_code(session, code, lock=True)
        if c.status != CampaignStatus.OPEN:
            return Text(texts.CAMPAIGN_ALREADY_ENDED.format(title=c.title))
        paid = await ctx.campaigns.settle(session, c, ctx.clock.now())
        reward = await ctx.campaigns.prize(session, c)
    if reward is not None:
        done = drawprize.outcomes(c)
        return Text(texts.CAMPAIGN_ENDED_DRAW_COUPON.format(
            title=c.title, reward=reward, coupons=done.coupons, points=done.points, unpaid=done.unpaid, paid=paid,
        ))
    return Text(texts.CAMPAIGN_ENDED_BY_MANAGER.format(title=c.title, paid=paid, total=c.paid_out))
