"""发起活动: a manager starts a group campaign from the chat.

```mermaid
stateDiagram-v2
    [*] --> kind: 发起活动 (staff only; others get the menu)
    kind --> title: 1-4
    title --> points
    points --> goal: group-buy N / challenge K / draw W
    points --> cap: join bonus
    goal --> cap
    cap --> end: participant cap
    end --> robot: 3天 / 12月31日 20:00 / 2026-12-31
    robot --> confirm: WeCom robot key or 跳过 (summary with the budget)
    confirm --> [*]: 是 (campaign, code, share text, QR)
    confirm --> [*]: 否
    kind --> kind: bad answers re-prompt at every step
    confirm --> [*]: 取消 / 10 minutes of silence
```"""

from __future__ import annotations

import re
from datetime import datetime

from flows.engine import Abort, Answer, Done, Flow, Next, Stay, StepResult
from flows.store import FlowState
from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.dates import parse_end
from handlers.core.filters import Click, Command, is_staff
from handlers.core.message import Inbound, normalise
from handlers.core.reply import Text
from storage.campaigns import KINDS, budget_for
from storage.rows import row_id
from storage.staff import CAMPAIGN_ROLES

GOAL_RANGE = {"group_buy": (2, 500), "checkin_challenge": (1, 60), "lucky_draw": (1, 100)}
YES, NO = {"是", "yes", "y", "确认"}, {"否", "no", "n"}
SKIP = {"跳过", "skip", "无", "不需要"}
_ROBOT = re.compile(r"^[A-Za-z0-9-]{8,64}$")


def _int(text: str, low: int, high: int) -> int | None:
    value = normalise(text)
    return int(value) if value.isdigit() and low <= int(value) <= high else None


async def begin(ctx: ChatContext, state: FlowState) -> Answer:
    return Next("kind", [Text(texts.CAMPAIGN_ASK_KIND)])


async def kind(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    choice = _int(msg.text, 1, 4)
    if choice is None:
        return Stay([Text(texts.CAMPAIGN_BAD_KIND)])
    return Next("title", [Text(texts.CAMPAIGN_ASK_TITLE)], {"kind": KINDS[choice - 1]})


async def title(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    name = " ".join(msg.text.split())
    if not 2 <= len(name) <= 20:
        return Stay([Text(texts.CAMPAIGN_BAD_TITLE)])
    return Next("points", [Text(texts.CAMPAIGN_ASK_POINTS)], {"title": name})


async def points(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    value = _int(msg.text, 1, 1000)
    if value is None:
        return Stay([Text(texts.CAMPAIGN_BAD_POINTS)])
    if state.data["kind"] == "join_bonus":
        return Next("cap", [Text(texts.CAMPAIGN_ASK_CAP.format(low=1))], {"points": value, "goal": 0})
    return Next("goal", [Text(texts.CAMPAIGN_ASK_GOAL[state.data["kind"]])], {"points": value})


async def goal(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    low, high = GOAL_RANGE[state.data["kind"]]
    value = _int(msg.text, low, high)
    if value is None:
        return Stay([Text(texts.CAMPAIGN_BAD_GOAL.format(low=low, high=high))])
    least = value if state.data["kind"] in ("group_buy", "lucky_draw") else 1
    return Next("cap", [Text(texts.CAMPAIGN_ASK_CAP.format(low=least))], {"goal": value})


async def cap(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    least = state.data["goal"] if state.data["kind"] in ("group_buy", "lucky_draw") else 1
    value = _int(msg.text, least, 10_000)
    if value is None:
        return Stay([Text(texts.CAMPAIGN_BAD_CAP.format(low=least))])
    return Next("end", [Text(texts.CAMPAIGN_ASK_END)], {"cap": value})


async def end(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    ends = parse_end(msg.text, ctx.clock.now(), ctx.tz)
    if ends is None:
        return Stay([Text(texts.CAMPAIGN_BAD_END)])
    return Next("robot", [Text(texts.CAMPAIGN_ASK_ROBOT)], {"ends_at": ends.isoformat()})


async def robot(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    if msg.command in SKIP:
        key = None
    elif _ROBOT.match(msg.text.strip()):
        key = msg.text.strip()
    else:
        return Stay([Text(texts.CAMPAIGN_BAD_ROBOT)])
    data = {**state.data, "robot_key": key}
    goal_line = texts.CAMPAIGN_GOAL_LINE.get(data["kind"], "").format(goal=data["goal"])
    ends = datetime.fromisoformat(data["ends_at"]).astimezone(ctx.tz)
    summary = texts.CAMPAIGN_SUMMARY.format(
        kind=texts.CAMPAIGN_KIND_NAMES[data["kind"]], title=data["title"], points=data["points"],
        goal_line=goal_line, cap=data["cap"], ends=f"{ends:%Y-%m-%d %H:%M}", robot="已设置" if key else "无",
        budget=budget_for(data["kind"], data["points"], data["goal"], data["cap"]),
    )
    return Next("confirm", [Text(summary)], {"robot_key": key})


async def confirm(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    if msg.command in NO:
        return Done([Text(texts.CAMPAIGN_DECLINED)])
    if msg.command not in YES:
        return Stay([Text(texts.CAMPAIGN_CONFIRM_AGAIN)])
    if await ctx.staff_role() not in CAMPAIGN_ROLES:
        return Abort([Text(await ctx.help_text())])
    data = state.data
    async with ctx.db.unit_of_work() as session:
        campaign = await ctx.campaigns.create(
            session, kind=data["kind"], title=data["title"], points=data["points"], goal=data["goal"],
            cap=data["cap"], ends_at=datetime.fromisoformat(data["ends_at"]), created_by=msg.openid,
            now=ctx.clock.now(), robot_key=data.get("robot_key"),
        )
    qr, demo = await ctx.services.qr.make(f"camp_{campaign.code}") if ctx.services.qr else ("", True)
    async with ctx.db.unit_of_work() as session:
        await ctx.campaigns.set_qr(session, row_id(campaign), qr)
    pitch = texts.CAMPAIGN_PITCH[campaign.kind].format(points=campaign.points, goal=campaign.goal)
    reply = texts.CAMPAIGN_CREATED.format(
        code=campaign.code, title=campaign.title, pitch=pitch,
        qr=(qr + (texts.CAMPAIGN_QR_DEMO if demo else "")) if qr else texts.CAMPAIGN_QR_FAILED,
    )
    return Done([Text(reply)])


flow = Flow(
    name="campaign_create",
    begin=begin,
    steps={"kind": kind, "title": title, "points": points, "goal": goal, "cap": cap, "end": end,
           "robot": robot, "confirm": confirm},
    entry=(Command("发起活动", "new campaign"), is_staff),
    extra_entries=((Click("STAFF_NEW_CAMPAIGN"), is_staff),),
    ttl=600,
)
