"""The help menu, and the last route: anything no other handler takes gets the menu, never silence."""

from __future__ import annotations

from handlers import texts
from handlers.core.context import ChatContext
from handlers.core.filters import Click, Command
from handlers.core.message import Inbound
from handlers.core.reply import Ack, Reply, Text, TransferToAgent
from handlers.core.router import Router
from storage.menu import STAFF_KEYS

router = Router("fallback")
HELP_WORDS = ("帮助", "菜单", "?", "help", "menu")


@router.on(Command(*HELP_WORDS), name="help")
@router.on(Click("HELP"), name="help")
@router.on(Click(*STAFF_KEYS), name="help")  # a staff-menu key from a non-staff member: the staff routes refused it
async def show_help(msg: Inbound, ctx: ChatContext) -> Reply:
    return Text(texts.HELP)


@router.on(Command("人工", "客服", "agent"), name="agent")
async def hand_to_agent(msg: Inbound, ctx: ChatContext) -> Reply:
    return TransferToAgent()


async def unknown(msg: Inbound, ctx: ChatContext) -> Reply:
    """Text nobody understood gets the menu; a message type we do not know is acknowledged."""
    if msg.kind in ("text", "voice"):
        return Text(texts.HELP)
    return Ack()


catch_all = Router("catch_all")
catch_all.add(unknown, name="unknown")
