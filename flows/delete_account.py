"""Deleting a membership, confirmed first.

```mermaid
stateDiagram-v2
    [*] --> confirm: 注销 / delete (members only)
    confirm --> confirm: anything but 确认注销
    confirm --> [*]: 确认注销 (PII cleared, status deleted, ledger kept)
    confirm --> [*]: 取消 / 5 minutes of silence
```"""

from __future__ import annotations

from flows.engine import Abort, Answer, Done, Flow, Next, Stay, StepResult
from flows.store import FlowState
from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Command
from handlers.core.message import Inbound
from handlers.core.reply import Text
from storage import members
from storage.clock import local_date

CONFIRM = {"确认注销", "confirm delete", "confirm"}


async def begin(ctx: ChatContext, state: FlowState) -> Answer:
    member = await ctx.joined_member()
    if member is None:
        return Abort([Text(texts.MYDATA_VISITOR)])
    return Next("confirm", [Text(texts.DELETE_CONFIRM.format(balance=member.balance))], {"member": member.id})


async def confirm(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    if msg.command not in CONFIRM:
        return Stay([Text(texts.DELETE_NEED_CONFIRM)])
    async with ctx.db.unit_of_work() as session:
        await members.delete(session, int(state.data["member"]), ctx.clock.now())
    await ctx.kv.delete(members.touch_key(msg.source, msg.openid, local_date(msg.received_at, ctx.tz)))
    ctx.forget_member()
    return Done([Text(texts.DELETED)])


flow = Flow(
    name="delete_account",
    begin=begin,
    steps={"confirm": confirm},
    entry=(Command("注销", "delete", "注销会员"),),
    ttl=300,
)
