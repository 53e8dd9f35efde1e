"""我的券: the member's unused codes. (Choosing and redeeming is the redeem flow.)"""

from __future__ import annotations

from datetime import timedelta

from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Click, Command
from handlers.core.message import Inbound
from handlers.core.reply import Reply, Text
from handlers.core.router import Router
from storage.rows import row_id

router = Router("rewards")


@router.on(Command("我的券", "coupons", "我的优惠券", "券"), name="coupons")
@router.on(Click("COUPONS"), name="coupons")
async def my_coupons(msg: Inbound, ctx: ChatContext) -> Reply:
    member = await ctx.joined_member()
    if member is None:
        return Text(texts.JOIN_FIRST.format(bonus=ctx.rules.signup_bonus))
    async with ctx.db.sessions() as session:
        held = await ctx.rewards.coupons(session, row_id(member), ctx.clock.now())
    if not held:
        return Text(texts.COUPONS_EMPTY)
    lines = [texts.COUPONS_HEAD]
    for redemption, reward in held:
        last_day = (redemption.expires_at.astimezone(ctx.tz) - timedelta(seconds=1)).date()
        lines.append(texts.COUPONS_LINE.format(
            name=reward.name, code=redemption.code, expires=f"{last_day:%Y-%m-%d}"
        ))
    return Text("\n".join(lines))
