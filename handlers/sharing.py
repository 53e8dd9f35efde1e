"""Sharing in the chat: `邀请` gives a member their referral code and their own poster, a temporary
`ref_<code>` QR code from WeChat kept until it lapses (a placeholder in demo mode, where WeChat is not asked)."""

from __future__ import annotations

from datetime import timedelta

from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Command
from handlers.core.message import Inbound
from handlers.core.reply import Reply, Text
from handlers.core.router import Router
from storage import sharing
from storage.models import Member
from storage.rows import row_id

router = Router("sharing")


@router.on(Command("邀请", "invite", "邀请好友"), name="invite")
async def invite(msg: Inbound, ctx: ChatContext) -> Reply:
    member = await ctx.joined_member()
    if member is None or not member.referral_code:
        return Text(texts.JOIN_FIRST.format(bonus=ctx.rules.signup_bonus))
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
        ctx.forget_member()
    assert expires_at is not None
    return kept + texts.INVITE_QR_UNTIL.format(until=f"{expires_at.astimezone(ctx.tz):%Y-%m-%d}")
