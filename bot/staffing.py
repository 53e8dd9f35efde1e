"""Making and unmaking staff, written once for the admin API, the console and `wxbot staff`: the staff
row, its audit entry (same transaction), then the WeChat staff tag that shows the staff menu (best
effort: WeChat failing never undoes the change)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.api.validation import OpenId
from bot.wechat.client import WeChatAPI
from bot.wechat.menu import StaffTag
from storage import audit, staff, stores
from storage.audit import Actor
from storage.db import Database


class StaffIn(BaseModel):
    """A staff member to add or change: the admin API's body and the console's form."""

    model_config = ConfigDict(extra="forbid")

    openid: OpenId
    role: Literal["manager", "admin", "service"] = "manager"


@dataclass(frozen=True)
class Who:
    """Who makes the change and from where: the audit entry's actor and client, the row's added_by."""

    actor: Actor
    now: datetime
    client: str | None = None
    added_by: str | None = None


async def appoint(
    db: Database, api: WeChatAPI, who: Who, openid: str, role: str, store: str | None = None,
) -> bool:
    """Add `openid` as staff with `role` (a clerk with the code of an existing store), or change their role;
    returns True when they were not staff. Audited `staff.add` or `staff.role` (nothing when the role is
    unchanged); tagged on WeChat. NotFoundError for an unknown store, ValueError for a clerk without one."""
    async with db.unit_of_work() as session:
        if store is not None:
            store = (await stores.by_code(session, store)).code
        before = await staff.role_of(session, openid)
        new = await staff.add(session, openid, role, who.added_by or who.actor.name, who.now, store=store)
        if before != role:
            after = {"role": role} if store is None else {"role": role, "store": store}
            await audit.record(
                session, who.actor, "staff.add" if before is None else "staff.role", f"staff:{openid}",
                now=who.now, before=None if before is None else {"role": before}, after=after,
                client=who.client,
            )
    await StaffTag(api).set(openid, staff=True)
    return new


async def dismiss(db: Database, api: WeChatAPI, who: Who, openid: str) -> bool:
    """Remove `openid` from staff; returns False (nothing audited or untagged) when they were not staff."""
    async with db.unit_of_work() as session:
        before = await staff.role_of(session, openid)
        if before is None or not await staff.remove(session, openid):
            return False
        await audit.record(session, who.actor, "staff.remove", f"staff:{openid}", now=who.now,
                           before={"role": before}, client=who.client)
    await StaffTag(api).set(openid, staff=False)
    return True
