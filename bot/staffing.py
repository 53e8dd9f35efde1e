"""Making and unmaking staff, written once for the admin API, the console and `wxbot staff`: the staff
row, its audit entry (same transaction), then the WeChat staff tag that shows the staff menu (best
effort: WeChat failing never undoes the change)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

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
    role: Literal["manager", "admin", "service", "clerk"] = "manager"
    store: str | None = Field(default=None, min_length=1, max_length=32, validate_default=True,
                              description="the store's code; a clerk's, and only a clerk's")

    @field_validator("store")
    @classmethod
    def _clerk_has_a_store(cls, store: str | None, info: ValidationInfo) -> str | None:
        clerk = info.data.get("role") == "clerk"
        if clerk and store is None:
            raise PydanticCustomError("clerk_store_required", "a clerk is bound to a store: give its code")
        if not clerk and store is not None:
            raise PydanticCustomError("store_only_clerk", "only a clerk is bound to a store")
        return store


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
        found = await staff.by_openid(session, openid)
        before = None if found is None else _shown(found.role, found.store)
        new = await staff.add(session, openid, role, who.added_by or who.actor.name, who.now, store=store)
        if before != _shown(role, store):
            await audit.record(
                session, who.actor, "staff.add" if before is None else "staff.role", f"staff:{openid}",
                now=who.now, before=before, after=_shown(role, store), client=who.client,
            )
    await StaffTag(api).set(openid, staff=True)
    return new


def _shown(role: str, store: str | None) -> dict[str, str]:
    """A staff member as the audit trail records them: the role, and a clerk's store."""
    return {"role": role} if store is None else {"role": role, "store": store}


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
