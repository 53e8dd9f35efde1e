"""发起活动: a manager starts a group campaign from the chat.

```mermaid
stateDiagram-v2
    [*] --> kind: 发起活动 (staff only; others get the menu)
    kind --> title: 1-4
    title --> points
    title --> prize: lucky draw
    prize --> points: 积分
    prize --> fallback: a live reward's number (a coupon prize)
    fallback --> goal: fallback points, 0 = none
    points --> goal: group-buy N / challenge K / draw W
    points --> cap: join bonus
    goal --> cap
    cap --> end: participant cap
    end --> robot: 3天 / 12月31日 20:00 / 2026-12-31
    robot --> confirm: WeCom robot key or 跳过 (summary with the budget)
    confirm --> [*]: 是 (campaign, code, share text, QR)
    confirm --> [*]: 否
    kind --> kind: bad answers re-prompt at every step
    confirm --> prize: the coupon can no longer be promised (nothing created)
    confirm --> [*]: 取消 / 10 minutes of silence
```

A coupon prize is checked where each fact arrives (storage/drawprize.check): live and not sold out at
the prize step, enough left for W at the goal step, still live at the draw at the end step, and all of it
again when the campaign is created."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlmodel import col

from flows.engine import Abort, Answer, Done, Flow, Next, Stay, StepResult
from flows.store import FlowState
from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.dates import parse_end
from handlers.core.filters import Click, Command, is_staff
from handlers.core.message import Inbound, normalise
from handlers.core.reply import Text
from storage import drawprize
from storage.campaigns import KINDS, budget_for
from storage.errors import DomainError
from storage.grants import remaining
from storage.models import Reward
from storage.rewards import is_live
from storage.rows import row_id
from storage.staff import CAMPAIGN_ROLES

GOAL_RANGE = {"group_buy": (2, 500), "checkin_challenge": (1, 60), "lucky_draw": (1, 100)}
YES, NO = {"是", "yes", "y", "确认"}, {"否", "no", "n"}
SKIP = {"跳过", "skip", "无", "不需要"}
POINTS_PRIZE = {"积分", "points"}
LISTED_PRIZES = 10
_PRIZE = re.compile(r"^(?:券|#|no\.?)?\s*(\d{1,9})$")
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
    if state.data["kind"] == "lucky_draw":
        return Next("prize", [Text(await _prize_prompt(ctx))], {"title": name})
    return Next("points", [Text(texts.CAMPAIGN_ASK_POINTS)], {"title": name})


async def _prize_prompt(ctx: ChatContext) -> str:
    """The prize question with the live rewards that have something left, by id."""
    now = ctx.clock.now()
    async with ctx.db.sessions() as session:
        rewards = (await session.scalars(select(Reward).where(col(Reward.active).is_(True)).order_by(col(Reward.id))))
        live = [r for r in rewards.all() if is_live(r, now) and remaining(r) != 0]
    lines = [texts.CAMPAIGN_PRIZE_LINE.format(
        id=r.id, name=r.name,
        left=texts.CAMPAIGN_PRIZE_UNLIMITED if remaining(r) is None else texts.CAMPAIGN_PRIZE_LEFT.format(
            left=remaining(r)),
    ) for r in live[:LISTED_PRIZES]]
    if len(live) > LISTED_PRIZES:
        lines.append(texts.CAMPAIGN_PRIZE_MORE.format(shown=LISTED_PRIZES))
    return texts.CAMPAIGN_ASK_PRIZE.format(rewards="\n".join(lines) or texts.CAMPAIGN_PRIZE_NONE)


async def prize(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    """积分 (the points prize, as for every other kind) or a live reward's number (a coupon prize)."""
    if msg.command in POINTS_PRIZE:
        return Next("points", [Text(texts.CAMPAIGN_ASK_POINTS)], {"reward_id": None, "reward": None})
    found = _PRIZE.match(normalise(msg.text))
    if found is None:
        return Stay([Text(texts.CAMPAIGN_BAD_PRIZE)])
    try:
        async with ctx.db.sessions() as session:
            reward = await drawprize.check(session, int(found.group(1)), ctx.clock.now(), tz=ctx.tz)
    except DomainError as exc:
        return Stay([Text(f"{texts.domain_text(exc)}\n{texts.CAMPAIGN_BAD_PRIZE}")])
    return Next("fallback", [Text(texts.CAMPAIGN_ASK_FALLBACK.format(reward=reward.name))],
                {"reward_id": reward.id, "reward": reward.name})


async def fallback(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    """A coupon draw's points for a winner whose coupon cannot be granted; 0 = none."""
    value = _int(msg.text, 0, 1000)
    if value is None:
        return Stay([Text(texts.CAMPAIGN_BAD_FALLBACK)])
    return Next("goal", [Text(texts.CAMPAIGN_ASK_GOAL["lucky_draw"])], {"points": value})


async def _prize_refusal(
    ctx: ChatContext, state: FlowState, winners: int, draw_at: datetime | None = None,
) -> drawprize.PrizeError | None:
    """The coupon prize (if any) checked against what is now known; the refusal, or None."""
    reward_id = state.data.get("reward_id")
    if reward_id is None:
        return None
    try:
        async with ctx.db.sessions() as session:
            await drawprize.check(session, int(reward_id), ctx.clock.now(), winners=winners, draw_at=draw_at, tz=ctx.tz)
    except drawprize.PrizeError as exc:
        return exc
    return None


async def _choose_again(ctx: ChatContext, exc: DomainError) -> StepResult:
    """The chosen coupon can no longer be the prize (ended, sold out): say why and ask for the prize again."""
    why = f"{texts.domain_text(exc)}\n{texts.CAMPAIGN_PRIZE_AGAIN}"
    return Next("prize", [Text(why), Text(await _prize_prompt(ctx))])


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
    refused = await _prize_refusal(ctx, state, value)
    if isinstance(refused, drawprize.PrizeShortError) and refused.details["left"] > 0:
        short = texts.CAMPAIGN_GOAL_SHORT.format(left=refused.details["left"])
        return Stay([Text(f"{texts.domain_text(refused)}\n{short}")])
    if refused is not None:
        return await _choose_again(ctx, refused)
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
    refused = await _prize_refusal(ctx, state, state.data["goal"], ends)
    if isinstance(refused, drawprize.PrizeEndsEarlyError):
        return Stay([Text(f"{texts.domain_text(refused)}\n{texts.CAMPAIGN_END_EARLIER}")])
    if refused is not None:
        return await _choose_again(ctx, refused)
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
    prize_line = (texts.CAMPAIGN_COUPON_LINE.format(reward=data["reward"], fallback=data["points"] or "无")
                  if data.get("reward_id") is not None else texts.CAMPAIGN_POINTS_LINE.format(points=data["points"]))
    summary = texts.CAMPAIGN_SUMMARY.format(
        kind=texts.CAMPAIGN_KIND_NAMES[data["kind"]], title=data["title"], prize_line=prize_line,
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
    try:
        async with ctx.db.unit_of_work() as session:
            campaign = await ctx.campaigns.create(
                session, kind=data["kind"], title=data["title"], points=data["points"], goal=data["goal"],
                cap=data["cap"], ends_at=datetime.fromisoformat(data["ends_at"]), created_by=msg.openid,
                now=ctx.clock.now(), robot_key=data.get("robot_key"), reward_id=data.get("reward_id"),
            )
    except drawprize.PrizeError as exc:  # the coupon changed since it was chosen: nothing was created
        return await _choose_again(ctx, exc)
    qr, demo = await ctx.services.qr.make(f"camp_{campaign.code}") if ctx.services.qr else ("", True)
    async with ctx.db.unit_of_work() as session:
        await ctx.campaigns.set_qr(session, row_id(campaign), qr)
    pitch = pitch_text(campaign.kind, campaign.points, campaign.goal, data.get("reward"))
    reply = texts.CAMPAIGN_CREATED.format(
        code=campaign.code, title=campaign.title, pitch=pitch,
        qr=(qr + (texts.CAMPAIGN_QR_DEMO if demo else "")) if qr else texts.CAMPAIGN_QR_FAILED,
    )
    return Done([Text(reply)])


def pitch_text(kind: str, points: int, goal: int, reward: str | None) -> str:
    """The share text's promise: the points, or a coupon draw's reward."""
    key = "lucky_draw_coupon" if kind == "lucky_draw" and reward else kind
    return texts.CAMPAIGN_PITCH[key].format(points=points, goal=goal, reward=reward)


flow = Flow(
    name="campaign_create",
    begin=begin,
    steps={"kind": kind, "title": title, "prize": prize, "fallback": fallback, "points": points, "goal": goal,
           "cap": cap, "end": end, "robot": robot, "confirm": confirm},
    entry=(Command("发起活动", "new campaign"), is_staff),
    extra_entries=((Click("STAFF_NEW_CAMPAIGN"), is_staff),),
    ttl=600,
)
