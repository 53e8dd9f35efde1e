"""The simulator's reads and its time travel: members to pick, the pushes one of them received (demo mode
records them in outbound_call), and one scheduler job run as of a chosen time (`wxbot jobs run --at`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from bot.demo import DEMO_MANAGER
from bot.runtime import push_runtime, run_named_job
from bot.settings import Settings
from bot.simulator import bubbles
from storage import members
from storage.clock import FrozenClock
from storage.db import Database
from storage.models import Member, OutboundCall

PAGE = 200
RECENT_MEMBERS = 20


async def people(db: Database) -> list[dict[str, Any]]:
    """The demo manager first, then the most recent members who have an Official Account openid."""
    async with db.sessions() as session:
        rows = (await session.scalars(
            select(Member).where(col(Member.openid).is_not(None)).order_by(col(Member.id).desc())
            .limit(RECENT_MEMBERS)
        )).all()
    found = [{"openid": m.openid, "joined": m.joined_at is not None, "status": m.status} for m in rows]
    others = [p for p in found if p["openid"] != DEMO_MANAGER]
    return [{"openid": DEMO_MANAGER, "joined": any(p["openid"] == DEMO_MANAGER for p in found),
             "status": "manager"}, *others]


@dataclass
class Pushes:
    items: list[bubbles.Bubble]
    last: int


async def pushes_for(db: Database, openid: str, after: int) -> Pushes:
    """Pushes to this member (its OA or Mini Program openid) recorded after call `after`, oldest first;
    `last` is the cursor for the next poll (it passes calls to others too)."""
    async with db.sessions() as session:
        member = await members.by_openid(session, openid)
        calls = (await session.scalars(
            select(OutboundCall).where(col(OutboundCall.id) > after).order_by(col(OutboundCall.id)).limit(PAGE)
        )).all()
    mine = {openid} | ({member.mp_openid} if member is not None and member.mp_openid else set())
    items: list[bubbles.Bubble] = []
    for call in calls:
        found = bubbles.from_push(int(call.id or 0), call.api, call.payload)
        if found is not None and found[0] in mine:
            items.append(found[1])
    return Pushes(items, int(calls[-1].id or after) if calls else after)


async def travel(settings: Settings, job: str, at: datetime) -> tuple[int, int]:
    """Run `job` as of `at` the way `wxbot jobs run JOB --at` does, then the sender as of the same time,
    so what the job queued is delivered (recorded) now: (handled by the job, pushes sent)."""
    async with push_runtime(settings, FrozenClock(at)) as runtime:
        handled = await run_named_job(runtime, job, at)
        sent = await run_named_job(runtime, "sender", at) if job != "sender" else 0
    return handled, sent
