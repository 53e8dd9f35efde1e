"""Tickets for tests: open one through the chat, add service staff and orders, read tickets and threads."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from storage import staff
from storage.models import Outbox, PurchaseOrder, Ticket, TicketMessage
from tests.support.fakes import WeChat

CODE = re.compile(r"T-[2-9A-HJKMNP-Z]{6}")


async def add_staff(wechat: WeChat, openid: str, role: str = "service") -> None:
    async with wechat.services.db.unit_of_work() as session:
        await staff.add(session, openid, role, "test", wechat.services.clock.now())


async def add_order(wechat: WeChat, member_id: int, order_id: str) -> None:
    async with wechat.services.db.unit_of_work() as session:
        session.add(PurchaseOrder(order_id=order_id, member_id=member_id, amount_fen=1000, points=10,
                                  created_at=wechat.services.clock.now()))


async def open_ticket(wechat: WeChat, openid: str, text: str = "商品有破损", category: str = "1") -> str:
    """投诉 -> category -> description -> 跳过; the new ticket's code."""
    await wechat.say(openid, "投诉")
    await wechat.say(openid, category)
    await wechat.say(openid, text)
    reply = await wechat.say(openid, "跳过")
    found = CODE.search(reply)
    assert found is not None, reply
    return found.group(0)


async def ticket(wechat: WeChat, code: str) -> Ticket:
    async with wechat.services.db.sessions() as session:
        row = await session.scalar(select(Ticket).where(col(Ticket.code) == code))
    assert row is not None
    return row


async def tickets_of(wechat: WeChat, member_id: int) -> list[Ticket]:
    async with wechat.services.db.sessions() as session:
        return list((await session.scalars(select(Ticket).where(col(Ticket.member_id) == member_id)
                                           .order_by(col(Ticket.id)))).all())


async def thread(wechat: WeChat, code: str) -> list[tuple[TicketMessage, str]]:
    found = await ticket(wechat, code)
    async with wechat.services.db.sessions() as session:
        return await wechat.services.tickets.thread(session, int(found.id or 0))


async def outbox_rows(wechat: WeChat, **where: Any) -> list[Outbox]:
    stmt = select(Outbox).order_by(col(Outbox.id))
    for name, value in where.items():
        stmt = stmt.where(getattr(Outbox, name) == value)
    async with wechat.services.db.sessions() as session:
        return list((await session.scalars(stmt)).all())
