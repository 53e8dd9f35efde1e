"""Staff: who may run campaigns from the chat (managers), administer them (admins), answer tickets (service),
and the clerks who verify coupons in the chat for the store they are bound to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Select, bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.db import dialect_insert
from storage.direct import Statement, fetch_value
from storage.models import Staff
from storage.rows import affected, table_of

ROLES = ("manager", "admin", "service", "clerk")
# Who runs campaigns from the chat: service staff answer tickets and clerks verify coupons, no campaigns.
CAMPAIGN_ROLES = ("manager", "admin")


async def by_openid(session: AsyncSession, openid: str) -> Staff | None:
    return await session.scalar(select(Staff).where(col(Staff.openid) == openid))


def role_query(param: str = "openid") -> Select[tuple[str]]:
    """The role of the staff member whose openid is bound as `param` (no row: not staff); also run as a
    scalar subquery beside the member's row (storage.members.by_openid_with_role)."""
    return select(table_of(Staff).c.role).where(table_of(Staff).c.openid == bindparam(param))


_ROLE_OF = Statement("staff.role_of", lambda _, __: role_query())


async def role_of(session: AsyncSession, openid: str) -> str | None:
    """Asked of every message that shows the help menu: a direct statement (storage.direct)."""
    return cast("str | None", await fetch_value(session, _ROLE_OF, {"openid": openid}))


async def clerk_store(session: AsyncSession, openid: str) -> str | None:
    """The store a clerk verifies for (None: not a clerk)."""
    return await session.scalar(
        select(col(Staff.store)).where(col(Staff.openid) == openid).where(col(Staff.role) == "clerk")
    )


async def add(
    session: AsyncSession, openid: str, role: str, added_by: str, now: datetime, *, store: str | None = None,
) -> bool:
    """Add or change a staff member's role (a clerk names their store); True when they were not staff."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if (role == "clerk") != (store is not None):
        raise ValueError("a clerk, and only a clerk, is bound to a store")
    existed = await role_of(session, openid) is not None
    stmt = dialect_insert(session)(Staff).values(openid=openid, role=role, store=store, added_by=added_by,
                                                 created_at=now)
    await session.execute(stmt.on_conflict_do_update(index_elements=["openid"], set_={"role": role, "store": store}))
    return not existed


async def remove(session: AsyncSession, openid: str) -> bool:
    return bool(affected(await session.execute(delete(Staff).where(col(Staff.openid) == openid))))


async def all_staff(session: AsyncSession) -> Sequence[Staff]:
    return (await session.scalars(select(Staff).order_by(col(Staff.id)))).all()
