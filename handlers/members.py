"""Member rights in the chat: marketing opt-out and opt-in, what we hold about the member, and the
dynamic member code shown at the till (会员码)."""

from __future__ import annotations

from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Command
from handlers.core.message import Inbound
from handlers.core.reply import Reply, Text
from handlers.core.router import Router
from storage import membercode, members
from storage.rows import row_id

router = Router("members")


@router.on(Command("退订", "td", "stop"), name="opt_out")
async def opt_out(msg: Inbound, ctx: ChatContext) -> Reply:
    return await _set_opt_out(ctx, True, texts.OPTED_OUT)


@router.on(Command("订阅", "start"), name="opt_in")
async def opt_in(msg: Inbound, ctx: ChatContext) -> Reply:
    return await _set_opt_out(ctx, False, texts.OPTED_IN)


async def _set_opt_out(ctx: ChatContext, value: bool, reply: str) -> Reply:
    member = await ctx.member()
    if member is None:
        return Text(await ctx.help_text())
    async with ctx.db.unit_of_work() as session:
        await members.set_marketing_opt_out(session, row_id(member), value)
    return Text(reply)


@router.on(Command("我的数据", "mydata", "my data"), name="mydata")
async def my_data(msg: Inbound, ctx: ChatContext) -> Reply:
    member = await ctx.joined_member()
    if member is None:
        return Text(texts.MYDATA_VISITOR)
    async with ctx.db.sessions() as session:
        entries = await ctx.ledger.entry_count(session, row_id(member))
    phone = texts.NOT_SET
    if member.phone_enc:
        phone = members.mask_phone(ctx.services.pii.decrypt(member.phone_enc))
    if member.birthday_month:
        year = f"{member.birthday_year}-" if member.birthday_year else ""
        born = f"{year}{member.birthday_month:02d}-{member.birthday_day:02d}"
    else:
        born = texts.NOT_SET
    joined = member.joined_at.astimezone(ctx.tz) if member.joined_at else None
    return Text(texts.MYDATA.format(
        phone=phone, birthday=born, joined=f"{joined:%Y-%m-%d}" if joined else texts.NOT_SET,
        consent=member.consent_version or texts.NOT_SET, tier=member.tier, balance=member.balance,
        entries=entries, code=member.referral_code or texts.NOT_SET,
        marketing=texts.MARKETING_OFF if member.marketing_opt_out else texts.MARKETING_ON,
    ))


@router.on(Command("会员码", "membercode"), name="member_code")
async def member_code(msg: Inbound, ctx: ChatContext) -> Reply:
    member = await ctx.joined_member()
    if member is None:
        return Text(await ctx.help_text())
    code = await membercode.issue(ctx.kv, ctx.services.pii, row_id(member), ctx.clock.now())
    return Text(texts.MEMBER_CODE.format(code=code, seconds=membercode.VALID_SECONDS))
