"""The help menu (fitting who asks), and the last routes: anything no other handler takes gets the menu,
never silence; a menu key or QR scene nobody registered gets it too, counted and logged."""

from __future__ import annotations

from handlers.core.context import ChatContext
from handlers.core.filters import Click, Command, Event
from handlers.core.message import Inbound
from handlers.core.reply import Ack, Reply, Text
from handlers.core.router import Router
from storage.menu import STAFF_KEYS

router = Router("fallback")
HELP_WORDS = ("帮助", "菜单", "?", "help", "menu")
MORE_WORDS = ("帮助 更多", "帮助更多", "菜单 更多", "更多功能", "help more", "menu more")


@router.on(Command(*HELP_WORDS), name="help")
@router.on(Click("HELP"), name="help")
@router.on(Click(*STAFF_KEYS), name="help")  # a staff-menu key from a non-staff member: the staff routes refused it
async def show_help(msg: Inbound, ctx: ChatContext) -> Reply:
    return Text(await ctx.help_text())


@router.on(Command(*MORE_WORDS), name="help_more")
async def show_all(msg: Inbound, ctx: ChatContext) -> Reply:
    return Text(await ctx.help_text(more=True))


@router.on(Event("click"), name="unknown_click")
async def unknown_click(msg: Inbound, ctx: ChatContext) -> Reply:
    """A menu key no route registered (registered keys come first and win): the menu, counted."""
    ctx.note_unknown("click", msg.event_key)
    return Text(await ctx.help_text())


def _unknown_scan(msg: Inbound, ctx: ChatContext) -> bool:
    return msg.is_event and msg.event == "scan" and msg.scene is not None and msg.scene.kind == "other"


@router.on(_unknown_scan, name="unknown_scene")
async def unknown_scene(msg: Inbound, ctx: ChatContext) -> Reply:
    """A follower scanned a QR code whose scene we do not know: the menu, counted. (On subscribe the
    follower is welcomed by handlers/events.py and counted there.)"""
    ctx.note_unknown("scene", msg.event_key)
    return Text(await ctx.help_text())


async def unknown(msg: Inbound, ctx: ChatContext) -> Reply:
    """Text nobody understood gets the menu; a message type we do not know is acknowledged."""
    if msg.kind in ("text", "voice"):
        return Text(await ctx.help_text())
    return Ack()


catch_all = Router("catch_all")
catch_all.add(unknown, name="unknown", catch_all=True)
