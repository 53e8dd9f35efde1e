"""Follow and unfollow, menu views, locations, delivery reports and the other events and non-text messages."""

from __future__ import annotations

from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Event, Kind, SceneIs
from handlers.core.message import Inbound
from handlers.core.reply import Ack, Reply, Text
from handlers.core.router import Router
from storage import members, outbox, sharing, subscriptions
from storage.rows import row_id

router = Router("events")


@router.on(Event("subscribe", "scan"), SceneIs("ref"), name="referral_scan")
async def referral_scan(msg: Inbound, ctx: ChatContext, scene_value: str) -> Reply:
    """A member's own QR code: remember the referrer for a visitor who has not signed up yet."""
    now = ctx.clock.now()
    async with ctx.db.unit_of_work() as session:
        await ctx.record_touch(session)  # a first contact's row exists before anything is set on it
        if msg.event == "subscribe":
            await members.set_status(session, msg.openid, members.ACTIVE, msg.source)
        await members.record_referrer(session, msg.openid, msg.source, scene_value, now, ctx.services.tz)
        referrer = await sharing.member_by_code(session, scene_value)
        if referrer is not None and msg.openid not in (referrer.openid, referrer.mp_openid):  # not one's own
            await sharing.record_scan(session, msg.openid, now, follow=msg.event == "subscribe",
                                      referrer_id=referrer.id)
    ctx.forget_member()
    if await ctx.joined_member() is not None:
        return Text(texts.WELCOME_BACK if msg.event == "subscribe" else texts.already_member)
    visitor = await ctx.member()
    recorded = visitor is not None and visitor.referrer_id is not None  # an unknown code records nothing
    noted = texts.REFERRAL_NOTED if recorded else texts.JOIN_FIRST.format(bonus=ctx.rules.signup_bonus)
    if msg.event == "subscribe":
        return Text(texts.WELCOME + "\n" + noted if recorded else texts.WELCOME)
    return Text(noted)


@router.on(Event("subscribe", "scan"), SceneIs("chan"), name="channel_scan")
async def channel_scan(msg: Inbound, ctx: ChatContext, scene_value: str) -> Reply:
    """An operator's channel QR code (a store, a poster): the scan is counted and the person's first channel
    kept; an unknown channel is an unknown scene, welcomed the same."""
    now = ctx.clock.now()
    async with ctx.db.unit_of_work() as session:
        person = await ctx.record_touch(session)  # a first contact's row exists before anything is set on it
        if msg.event == "subscribe":
            await members.set_status(session, msg.openid, members.ACTIVE, msg.source)
        channel = await sharing.channel_by_name(session, scene_value)
        if channel is not None:
            person = person or await members.by_openid(session, msg.openid, msg.source)
            if person is not None:
                await sharing.record_channel(session, row_id(person), channel.name)
            await sharing.record_scan(session, msg.openid, now, follow=msg.event == "subscribe",
                                      channel=channel.name)
    if channel is None:
        ctx.note_unknown("scene", msg.event_key)
    ctx.forget_member()
    joined = await ctx.joined_member() is not None
    if msg.event == "subscribe":
        return Text(texts.WELCOME_BACK if joined else texts.WELCOME)
    return Text(texts.already_member if joined else texts.JOIN_FIRST.format(bonus=ctx.rules.signup_bonus))


@router.on(Event("subscribe"), name="subscribe")
async def welcome(msg: Inbound, ctx: ChatContext) -> Reply:
    """A new follower, also one who scanned a poster whose scene we do not know (counted, then welcomed)."""
    if msg.scene is not None and msg.scene.kind == "other":
        ctx.note_unknown("scene", msg.event_key)
    async with ctx.db.unit_of_work() as session:
        await ctx.record_touch(session)
        await members.set_status(session, msg.openid, members.ACTIVE, msg.source)
    if await ctx.joined_member() is not None:
        return Text(texts.WELCOME_BACK)
    return Text(texts.WELCOME)


@router.on(Event("unsubscribe"), name="unsubscribe")
async def farewell(msg: Inbound, ctx: ChatContext) -> Reply:
    """Nobody sees a reply to an unfollow; we only stop marketing to them."""
    async with ctx.db.unit_of_work() as session:
        await ctx.record_touch(session)
        await members.set_status(session, msg.openid, members.UNSUBSCRIBED, msg.source)
    ctx.forget_member()
    return Ack()


@router.on(Event("templatesendjobfinish"), name="template_report")
async def template_report(msg: Inbound, ctx: ChatContext) -> Reply:
    """WeChat's final word on a template message we sent: update the outbox row."""
    msgid, status = str(msg.fields.get("MsgID", "")), str(msg.fields.get("Status", ""))
    if msgid:
        async with ctx.db.unit_of_work() as session:
            await outbox.mark_delivery(session, msgid, status)
    return Ack()


@router.on(Event("subscribe_msg_popup_event", "subscribe_msg_change_event"), name="subscribe_choice")
async def subscribe_choice(msg: Inbound, ctx: ChatContext) -> Reply:
    """Each `accept` is one Mini Program subscription credit for that template; rejects are noted."""
    now = ctx.clock.now()
    async with ctx.db.unit_of_work() as session:
        for item in msg.items:
            template = item.get("TemplateId", "")
            status = item.get("SubscribeStatusString", "").lower()
            if template and status in ("accept", "reject"):
                await subscriptions.record_choice(session, msg.openid, template, status == "accept", now)
    return Ack()


tail = Router("events_tail")


@tail.on(Kind("location"), name="location")
async def location(msg: Inbound, ctx: ChatContext) -> Reply:
    return Text(texts.LOCATION)


def _not_text(msg: Inbound, ctx: ChatContext) -> bool:
    return not msg.is_text


@tail.on(
    Kind("image", "voice", "video", "shortvideo", "link", "miniprogrampage"), _not_text, name="non_text"
)
async def non_text(msg: Inbound, ctx: ChatContext) -> Reply:
    return Text(texts.NON_TEXT)


@tail.on(Kind("event"), name="event_ack")
async def other_event(msg: Inbound, ctx: ChatContext) -> Reply:
    """VIEW, LOCATION reports, delivery reports and events we do not know: acknowledged quietly."""
    return Ack()
