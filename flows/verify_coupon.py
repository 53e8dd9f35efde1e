"""A clerk verifies a coupon in the chat: `核销 CODE` shows the coupon and its owner (phone masked) and
asks 是; 是 uses it once through Rewards.use, recording the clerk's store, audited `coupon.use`."""

from __future__ import annotations

from datetime import datetime

from flows.engine import Abort, Answer, Done, Flow, Next, Stay, StepResult
from flows.store import FlowState
from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Command, is_clerk
from handlers.core.message import Inbound
from handlers.core.reply import Text
from storage import audit, coupons, staff
from storage.errors import ConflictError, NotFoundError
from storage.members import masked_phone

WORD = "核销"
YES, NO = {"是", "yes", "y", "确认", "确定"}, {"否", "no", "n", "不"}


def _local(ctx: ChatContext, at: datetime | None) -> str:
    return at.astimezone(ctx.services.tz).strftime("%Y-%m-%d %H:%M") if at else ""


def _refusal(ctx: ChatContext, found: coupons.Coupon) -> str | None:
    row = found.redemption
    if row.status == "used":
        return texts.CLERK_USED.format(code=row.code, at=_local(ctx, row.used_at), store=row.store or "-")
    if row.status == "cancelled":
        return texts.CLERK_CANCELLED.format(code=row.code)
    if row.expires_at <= ctx.clock.now():
        return texts.CLERK_EXPIRED.format(code=row.code, at=_local(ctx, row.expires_at))
    return None


async def _look_up(ctx: ChatContext, code: str) -> tuple[str | None, coupons.Coupon | None]:
    async with ctx.db.sessions() as session:
        return await staff.clerk_store(session, ctx.msg.openid), await coupons.find(session, code)


def _typed_code(ctx: ChatContext, state: FlowState) -> str:
    """The code as typed (the command's argument is casefolded; pool codes keep the POS's case)."""
    raw = (ctx.msg.text or "").strip()
    if raw.startswith(WORD):
        return raw[len(WORD):].strip()
    return str(state.data.get("code", "")).strip()


async def begin(ctx: ChatContext, state: FlowState) -> Answer:
    code = _typed_code(ctx, state)
    store, found = await _look_up(ctx, code)
    if store is None:
        return Abort([Text(await ctx.help_text())])
    if found is None:
        return Abort([Text(texts.CLERK_UNKNOWN.format(code=code[:64]))])
    refused = _refusal(ctx, found)
    if refused:
        return Abort([Text(refused)])
    row = found.redemption
    owner = masked_phone(ctx.services.pii, found.owner) or "-"
    ask = texts.CLERK_CONFIRM.format(code=row.code, reward=found.reward.name, owner=owner,
                                     expires=_local(ctx, row.expires_at), store=store)
    return Next("confirm", [Text(ask)], {"code": row.code, "store": store})


async def confirm(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    if msg.command in NO:
        return Done([Text(texts.CLERK_DECLINED)])
    if msg.command not in YES:
        return Stay([Text(texts.CLERK_CONFIRM_AGAIN)])
    code, now = state.data["code"], ctx.clock.now()
    async with ctx.db.sessions() as session:
        store = await staff.clerk_store(session, msg.openid)  # still a clerk, still of that store
    if store is None or store != state.data["store"]:
        return Abort([Text(await ctx.help_text())])
    by = f"clerk:{msg.openid}"
    try:
        async with ctx.db.unit_of_work() as session:
            used = await ctx.services.rewards.use(session, code, now, store=store, by=by)
            await audit.record(session, audit.Actor(by, "staff", store), "coupon.use", f"redemption:{used.id}",
                               now=now, before={"status": "issued"},
                               after={"code": used.code, "status": used.status, "store": store})
    except (NotFoundError, ConflictError):
        _, found = await _look_up(ctx, code)
        return Abort([Text((_refusal(ctx, found) if found else None) or texts.CLERK_UNKNOWN.format(code=code))])
    _, found = await _look_up(ctx, code)
    reward = found.reward.name if found else ""
    return Done([Text(texts.CLERK_DONE.format(code=used.code, reward=reward, store=store))])


flow = Flow(
    name="verify_coupon",
    begin=begin,
    steps={"confirm": confirm},
    entry=(Command(WORD, arg="code", arg_required=True), is_clerk),
    ttl=300,
)
