"""ChatContext: one per inbound message; everything a handler may touch, so nothing is a global."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import texts
from storage import members, staff
from storage.campaigns import Campaigns
from storage.clock import Clock
from storage.db import Database
from storage.kv import KV
from storage.ledger import Ledger
from storage.members import PiiProtector
from storage.models import Member
from storage.rewards import Rewards
from storage.rules import Rules
from storage.staff import CAMPAIGN_ROLES
from storage.tickets import Tickets

MAX_LOGGED_KEY = 64

if TYPE_CHECKING:
    from handlers.core.message import Inbound
    from handlers.core.reply import Reply


class QrMaker(Protocol):
    """Implemented in bot/wechat/client.py: a parametric QR code for a scene -> (image link, demo?)."""

    async def make(self, scene: str) -> tuple[str, bool]: ...

    @property
    def live(self) -> bool:
        """False in demo mode: a member's poster is then a placeholder and WeChat is not asked."""
        ...

    async def temporary(self, scene: str, seconds: int) -> tuple[str, int]:
        """A temporary QR code for a scene -> (image link, seconds it lives); ("", 0) when WeChat refused."""
        ...


class FlowControl(Protocol):
    """Implemented by flows/engine.py; handlers start flows by name and never import them."""

    async def start(self, name: str, **data: Any) -> list[Reply]: ...

    async def cancel(self) -> bool: ...

    @property
    def active(self) -> str | None: ...


@dataclass
class Services:
    """The long-lived services, built once by the app's lifespan."""

    db: Database
    kv: KV
    clock: Clock
    tz: ZoneInfo
    rules: Rules
    ledger: Ledger
    pii: PiiProtector
    rewards: Rewards
    campaigns: Campaigns
    qr: QrMaker | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    service_robot: str = ""  # SERVICE_WECOM_ROBOT: the service staff's WeCom robot (new tickets, SLA breaches)

    @property
    def tickets(self) -> Tickets:
        return Tickets(self.kv, self.pii, self.rules, self.tz, self.service_robot)


class _NoFlows:
    active = None

    async def start(self, name: str, **data: Any) -> list[Reply]:
        raise RuntimeError(f"no flow engine to start {name!r}")

    async def cancel(self) -> bool:
        return False


@dataclass
class ChatContext:
    msg: Inbound
    services: Services
    log: logging.LoggerAdapter
    flows: FlowControl = field(default_factory=_NoFlows)
    intent: str = "unknown"
    unknown_event: str | None = None  # "click" or "scene": an event with no answer of its own (note_unknown)
    # Set by the pipeline when this message's interaction is still to be recorded (members.touch_member):
    # the first look at the member records it on the way, else the pipeline does after the handler.
    touch_due: datetime | None = None
    first_contact: bool = False  # this message created the sender's row
    # KV values the pipeline's intake already read for this message (bot/inbound/intake.py read_keys):
    # `kv_value` answers from here, so a handler costs no second round trip.
    known: dict[str, str | None] = field(default_factory=dict)
    _member: Member | None = None
    _member_loaded: bool = False
    _staff_role: str | None = None
    _staff_loaded: bool = False

    @property
    def clock(self) -> Clock:
        return self.services.clock

    @property
    def rules(self) -> Rules:
        return self.services.rules

    @property
    def ledger(self) -> Ledger:
        return self.services.ledger

    @property
    def rewards(self) -> Rewards:
        return self.services.rewards

    @property
    def campaigns(self) -> Campaigns:
        return self.services.campaigns

    @property
    def tz(self) -> ZoneInfo:
        return self.services.tz

    async def help_text(self, more: bool = False) -> str:
        """The help menu that fits the sender: visitor, member, or staff (texts.help_menu)."""
        if not self._member_loaded and not self._staff_loaded:  # both in one session (one statement if it can)
            begin = self.db.unit_of_work if self.touch_due is not None else self.db.reads
            async with begin() as session:
                loaded = await self.record_touch(session)
                if loaded is None:
                    loaded, self._staff_role = await members.by_openid_with_role(
                        session, self.msg.openid, self.msg.source
                    )
                else:
                    self._staff_role = await staff.role_of(session, self.msg.openid)
            self._member, self._member_loaded = loaded, True
            self._staff_loaded = True
        member = await self.joined_member() is not None
        return texts.help_menu(member=member, staff=await self.staff_role() in CAMPAIGN_ROLES, more=more)

    def known_help_text(self) -> str:
        """The menu from what this message already loaded, without asking the database (after a failure);
        the visitor's when nothing is known."""
        member = self._member_loaded and self._member is not None and self._member.joined_at is not None
        staff = self._staff_loaded and self._staff_role in CAMPAIGN_ROLES
        return texts.help_menu(member=member, staff=staff)

    def note_unknown(self, kind: str, key: str) -> None:
        """An event the bot has no answer for (a menu key, a QR scene: operator config, not personal data):
        counted by kind in /metrics by the pipeline, and named, capped, in one log line."""
        self.unknown_event = kind
        self.log.info("unknown %s key=%r", kind, key[:MAX_LOGGED_KEY])

    async def joined_member(self) -> Member | None:
        """The sender if they are a member (signed up, not deleted), else None."""
        member = await self.member()
        return member if member is not None and member.joined_at is not None else None

    def loaded_member(self) -> Member | None:
        """The sender's row if this message has loaded it already, else None (never a query)."""
        return self._member if self._member_loaded else None

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def kv(self) -> KV:
        return self.services.kv

    async def kv_value(self, key: str) -> str | None:
        """A KV value: the one the intake read for this message when it did, else asked now."""
        if key in self.known:
            return self.known[key]
        return await self.kv.get(key)

    async def member(self) -> Member | None:
        """The sender's row, loaded once per message (None before first contact is recorded)."""
        if not self._member_loaded:
            # A write only when this message's interaction is still to be recorded (it returns the row).
            begin = self.db.unit_of_work if self.touch_due is not None else self.db.reads
            async with begin() as session:
                member = await self.record_touch(session)
                if member is None:
                    member = await members.by_openid(session, self.msg.openid, self.msg.source)
            self._member, self._member_loaded = member, True
        return self._member

    async def lock_member(self, session: AsyncSession) -> Member | None:
        """The sender's row locked in the caller's transaction, for the ledger too (one statement when
        this message's interaction is still to be recorded: the upsert that records it locks the row)."""
        member = await self.record_touch(session)
        if member is None:
            member = await members.by_openid(session, self.msg.openid, self.msg.source, lock=True)
        if member is not None:
            self.ledger.hold(session, member)
        self._member, self._member_loaded = member, True
        return member

    async def record_touch(self, session: AsyncSession) -> Member | None:
        """Record this message's interaction (creating the visitor's row on first contact) in the caller's
        transaction, if still due. Returns the row when the statement wrote it, else None."""
        if self.touch_due is None:
            return None
        member, created = await members.touch_member(
            session, self.msg.openid, self.touch_due, self.msg.source, self.services.tz
        )
        self.touch_due, self.first_contact = None, self.first_contact or created
        if member is not None:
            self._member, self._member_loaded = member, True
        return member

    async def staff_role(self) -> str | None:
        """'manager', 'admin' or 'service' for staff, else None; loaded once per message."""
        if not self._staff_loaded:
            async with self.db.reads() as session:
                self._staff_role = await staff.role_of(session, self.msg.openid)
            self._staff_loaded = True
        return self._staff_role

    def forget_member(self) -> None:
        """After a handler changed the member, the next read goes to the database."""
        self._member_loaded = False
