"""ChatContext: one per inbound message; everything a handler may touch, so nothing is a global."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from storage import members, staff
from storage.clock import Clock
from storage.db import Database
from storage.kv import KV
from storage.ledger import Ledger
from storage.members import PiiProtector
from storage.models import Member
from storage.rules import Rules

if TYPE_CHECKING:
    from handlers.core.message import Inbound
    from handlers.core.reply import Reply


class QrMaker(Protocol):
    """Implemented in bot/wechat_api.py: a parametric QR code for a scene -> (image link, demo?)."""

    async def make(self, scene: str) -> tuple[str, bool]: ...


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
    qr: QrMaker | None = None
    extras: dict[str, Any] = field(default_factory=dict)


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
    log: logging.LoggerAdapter  # type: ignore[type-arg]
    flows: FlowControl = field(default_factory=_NoFlows)
    intent: str = "unknown"
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
    def tz(self) -> ZoneInfo:
        return self.services.tz

    async def joined_member(self) -> Member | None:
        """The sender if they are a member (signed up, not deleted), else None."""
        member = await self.member()
        return member if member is not None and member.joined_at is not None else None

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def kv(self) -> KV:
        return self.services.kv

    async def member(self) -> Member | None:
        """The sender's row, loaded once per message (None before first contact is recorded)."""
        if not self._member_loaded:
            async with self.db.sessions() as session:
                self._member = await members.by_openid(session, self.msg.openid, self.msg.source)
            self._member_loaded = True
        return self._member

    async def staff_role(self) -> str | None:
        """'manager' or 'admin' for staff, else None; loaded once per message."""
        if not self._staff_loaded:
            async with self.db.sessions() as session:
                self._staff_role = await staff.role_of(session, self.msg.openid)
            self._staff_loaded = True
        return self._staff_role

    def know_member(self, member: Member) -> None:
        """The sender's row as just read or written elsewhere in this message's handling."""
        self._member, self._member_loaded = member, True

    def forget_member(self) -> None:
        """After a handler changed the member, the next read goes to the database."""
        self._member_loaded = False
