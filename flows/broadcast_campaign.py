"""A manager broadcasts their own campaign to members: `推送活动 CODE [等级]` previews who it reaches (the
audience, those the monthly cap holds back, when sending starts) and asks 是; 是 creates a `campaign`
broadcast (storage/broadcasts.py: the same push policy as the console's, audited as the staff member), once
per campaign and tier, with the campaign's end as its deadline. An admin may broadcast any campaign."""

from __future__ import annotations

from datetime import datetime

from flows.engine import Abort, Answer, Done, Flow, Next, Stay, StepResult
from flows.store import FlowState
from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Command, is_staff
from handlers.core.message import Inbound
from handlers.core.reply import Text
from storage import audit, broadcasts
from storage.audiences import Audience
from storage.enums import CampaignStatus
from storage.errors import DomainError, InvalidFieldError
from storage.models import Campaign

WORD = "推送活动"
YES, NO = {"是", "yes", "y", "确认", "确定"}, {"否", "no", "n", "不"}


def _local(ctx: ChatContext, at: datetime) -> str:
    return at.astimezone(ctx.services.tz).strftime("%m-%d %H:%M")


def _draft(ctx: ChatContext, campaign: Campaign, tier: str | None) -> broadcasts.Draft:
    text = texts.CAMPAIGN_PUSH_TEXT.format(title=campaign.title, kind=texts.CAMPAIGN_KIND_NAMES[campaign.kind],
                                           ends=_local(ctx, campaign.ends_at), code=campaign.code)
    return broadcasts.checked(
        name=f"{WORD} {campaign.code}"[:broadcasts.NAME_MAX], kind="campaign",
        audience=Audience(tiers=(tier,) if tier else ()), content={"text": text}, send_at=None,
        deadline=campaign.ends_at, request_id=f"chat:{campaign.id}:{tier or '*'}",
        tiers=[t.name for t in ctx.services.rules.tiers], now=ctx.clock.now(),
    )


async def _campaign(ctx: ChatContext, code: str) -> Campaign | str:
    """The campaign this staff member may broadcast, or the refusal to say."""
    try:
        async with ctx.db.sessions() as session:
            campaign = await ctx.campaigns.by_code(session, code)
    except DomainError as exc:
        return texts.domain_text(exc)
    if campaign.created_by != ctx.msg.openid and await ctx.staff_role() != "admin":
        return texts.CAMPAIGN_PUSH_NOT_OWN.format(code=campaign.code)
    if campaign.status != CampaignStatus.OPEN or campaign.ends_at <= ctx.clock.now():
        return texts.CAMPAIGN_ALREADY_ENDED.format(title=campaign.title)
    return campaign


async def begin(ctx: ChatContext, state: FlowState) -> Answer:
    parts = str(state.data.get("rest", "")).split()
    tiers = [t.name for t in ctx.services.rules.tiers]
    if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1] not in tiers):
        return Abort([Text(texts.CAMPAIGN_PUSH_USAGE.format(tiers="、".join(tiers)))])
    found = await _campaign(ctx, parts[0])
    if isinstance(found, str):
        return Abort([Text(found)])
    tier = parts[1] if len(parts) == 2 else None
    draft = _draft(ctx, found, tier)
    now = ctx.clock.now()
    async with ctx.db.sessions() as session:
        earlier = await broadcasts.by_request(session, draft.request_id)
        seen = await broadcasts.preview(session, draft, now, rules=ctx.services.rules, tz=ctx.services.tz)
    if earlier is not None:
        return Abort([Text(texts.CAMPAIGN_PUSH_REPEATED.format(title=found.title, id=earlier.id))])
    if seen.reachable <= 0:
        return Abort([Text(texts.CAMPAIGN_PUSH_NOBODY)])
    ask = texts.CAMPAIGN_PUSH_CONFIRM.format(
        title=found.title, audience=tier or texts.CAMPAIGN_PUSH_EVERYONE, n=seen.reachable, capped=seen.capped,
        starts=_local(ctx, seen.starts_at), ends=_local(ctx, found.ends_at),
    )
    return Next("confirm", [Text(ask)], {"code": found.code, "tier": tier})


async def confirm(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    if msg.command in NO:
        return Done([Text(texts.CAMPAIGN_PUSH_DECLINED)])
    if msg.command not in YES:
        return Stay([Text(texts.CAMPAIGN_PUSH_AGAIN)])
    found = await _campaign(ctx, state.data["code"])  # still theirs, still open
    if isinstance(found, str):
        return Abort([Text(found)])
    actor = audit.Actor(f"staff:{msg.openid}", await ctx.staff_role() or "staff")
    try:
        draft = _draft(ctx, found, state.data.get("tier"))
        async with ctx.db.unit_of_work() as session:
            made, created = await broadcasts.create(session, draft, actor=actor, now=ctx.clock.now(),
                                                    campaign_id=found.id)
    except InvalidFieldError:
        return Abort([Text(texts.CAMPAIGN_PUSH_NOBODY)])
    if not created:
        return Done([Text(texts.CAMPAIGN_PUSH_REPEATED.format(title=found.title, id=made.id))])
    return Done([Text(texts.CAMPAIGN_PUSH_DONE.format(title=found.title, id=made.id))])


flow = Flow(
    name="broadcast_campaign",
    begin=begin,
    steps={"confirm": confirm},
    entry=(Command(WORD, arg="rest", arg_required=True), is_staff),
    ttl=300,
)
