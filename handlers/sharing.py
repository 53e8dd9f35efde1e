"""Sharing in the chat: `邀请` gives a member their referral code and their own poster, a temporary
`ref_<code>` QR code from WeChat kept until it lapses (a placeholder in demo mode, where WeChat is not asked);
`邀请 活动码` gives their personal invite to a campaign, `camp_<CODE>_<referral code>`, so joins through it are
attributed to them."""

from __future__ import annotations

from datetime import timedelta

from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Command
from handlers.core.message import Inbound
from handlers.core.reply import Reply, Text
from handlers.core.router import Router
from storage import sharing
from storage.campaigns import Campaigns
from storage.models import Member
from storage.rows import row_id

router = Router("sharing")


@router.on(Command("邀请好友", "邀请", "invite", arg="code"), name="invite")
async def invite(msg: Inbound, ctx: ChatContext, code: str | None) -> Reply:
    member = await ctx.joined_member()
    if member is None or not member.referral_code:
        return Text(texts.JOIN_FIRST.format(bonus=ctx.rules.signup_bonus))
    if code:
        return Text(await _campaign_invite(ctx, member, code))
    return Text(texts.INVITE.format(
        code=member.referral_code, qr=await _poster(ctx, member), referral=ctx.rules.referral_bonus,
        limit=ctx.rules.referral_monthly_limit,
    ))


async def _poster(ctx: ChatContext, member: Member) -> str:
    """The member's kept poster while it lives; else a new temporary QR code from WeChat, kept on the member."""
    code = member.referral_code or ""
    qr = ctx.services.qr
    if qr is None or not qr.live:
        return texts.INVITE_QR_DEMO.format(code=code)
    now = ctx.clock.now()
    kept = sharing.live_poster(member, now)
    expires_at = member.share_qr_expires_at
    if kept is None:
        kept, seconds = await qr.temporary(sharing.poster_scene(code), sharing.POSTER_SECONDS)
        if not kept:
            return texts.INVITE_QR_FAILED
        expires_at = now + timedelta(seconds=seconds)
        async with ctx.db.unit_of_work() as session:
            await sharing.keep_poster(session, row_id(member), kept, expires_at)
        member.share_qr_url, member.share_qr_expires_at = kept, expires_at  # what was written: no re-read
    assert expires_at is not None
    return kept + texts.INVITE_QR_UNTIL.format(until=f"{expires_at.astimezone(ctx.tz):%Y-%m-%d}")


async def _campaign_invite(ctx: ChatContext, member: Member, code: str) -> str:
    """A personal invite to an open campaign: a temporary QR until the campaign ends (30 days at most)."""
    now = ctx.clock.now()
    async with ctx.db.sessions() as session:
        campaign = await ctx.campaigns.by_code(session, code)  # unknown: the domain error's own answer
    Campaigns.check_joinable(campaign, now)
    scene = f"camp_{campaign.code}_{member.referral_code}"
    qr = ctx.services.qr
    if qr is None or not qr.live:
        link = texts.CAMPAIGN_INVITE_DEMO.format(scene=scene)
    else:
        seconds = max(60, min(sharing.POSTER_SECONDS, int((campaign.ends_at - now).total_seconds())))
        link, _ = await qr.temporary(scene, seconds)
        link = link or texts.INVITE_QR_FAILED
    return texts.CAMPAIGN_INVITE.format(title=campaign.title, qr=link, code=campaign.code)
