"""Console sign-in: sessions in the KV (a signed, HttpOnly cookie names one; idle expiry is its TTL),
the CSRF token of each session, the sign-in lockout, and the role each right needs. Roles are checked
here, at the edge, never inside a storage service."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from itsdangerous import BadSignature, Signer

from bot.api.deps import ServicesDep, SettingsDep, client_of
from bot.console import texts
from bot.crypto import secret_equals
from bot.settings import Settings
from handlers.core.context import Services
from storage import operators
from storage.audit import Actor
from storage.kv import KV
from storage.models import Operator

COOKIE = "wxbot_console"
LOGIN_COOKIE = "wxbot_console_login"  # the sign-in form's CSRF token (no session holds it yet)
LOCK_AFTER = 5
LOCK_SECONDS = 15 * 60

# Which roles hold each right. admin holds every right; the rest as PRODUCT.md's capability 11 says.
RIGHTS: dict[str, tuple[str, ...]] = {
    "members.read": ("admin", "operator", "analyst"),
    "members.write": ("admin", "operator"),
    "phone.reveal": ("admin",),
    "points.large": ("admin",),
    "members.merge": ("admin",),
    "anomalies.read": ("admin", "operator", "analyst"),
    "anomalies.write": ("admin", "operator"),
    "tickets.read": ("admin", "operator", "analyst"),
    "tickets.write": ("admin", "operator"),
    "surveys.read": ("admin", "operator", "analyst"),
    "surveys.write": ("admin", "operator"),
    "rewards.read": ("admin", "operator", "analyst"),
    "rewards.write": ("admin", "operator"),
    "campaigns.read": ("admin", "operator", "analyst"),
    "campaigns.write": ("admin", "operator"),
    "staff.read": ("admin", "operator"),
    "staff.write": ("admin",),
    "pushes.read": ("admin", "operator", "analyst"),
    "audit.read": ("admin", "analyst"),
    "exports": ("admin", "analyst"),
    "coupons.verify": ("admin", "clerk"),
    "dashboard.read": ("admin", "operator", "analyst"),
    "stores.read": ("admin", "operator", "analyst"),
    "stores.write": ("admin",),
    "sharing.read": ("admin", "operator", "analyst"),
    "sharing.write": ("admin", "operator"),
    "segments.read": ("admin", "operator", "analyst"),
    "experiments.read": ("admin", "operator", "analyst"),
    "experiments.write": ("admin", "operator"),
    "broadcasts.read": ("admin", "operator", "analyst"),
    "broadcasts.write": ("admin", "operator"),
}


def may(role: str, right: str) -> bool:
    return role in RIGHTS[right]


class ConsoleError(Exception):
    """A refusal the console renders as a page: status and the Chinese text that explains it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignInRequired(Exception):
    """No live session: the console redirects to the sign-in page."""


@dataclass(frozen=True)
class ConsoleSession:
    sid: str
    operator: Operator
    csrf: str
    services: Services
    client: str | None

    @property
    def actor(self) -> Actor:
        return operators.actor_of(self.operator)

    @property
    def role(self) -> str:
        return self.operator.role

    def may(self, right: str) -> bool:
        return may(self.role, right)

    def require(self, right: str) -> None:
        if not self.may(right):
            needed = "、".join(texts.ROLE_NAMES[r] for r in RIGHTS[right])
            raise ConsoleError(403, texts.FORBIDDEN.format(role=texts.ROLE_NAMES[self.role], needed=needed))


def console_secret(settings: Settings) -> bytes:
    """CONSOLE_SECRET, or (unset) a key derived from ADMIN_TOKEN, which production requires anyway."""
    if settings.console_secret:
        return settings.console_secret.encode()
    return hmac.new(settings.admin_token.encode(), b"wxbot console session", hashlib.sha256).digest()


class Sessions:
    """Console sessions in the KV: `wxbot:console:session:<sid>` -> operator id and CSRF token."""

    def __init__(self, kv: KV, settings: Settings) -> None:
        self.kv = kv
        self.signer = Signer(console_secret(settings), salt="wxbot-console")
        self.idle = settings.console_idle_minutes * 60

    @staticmethod
    def _key(sid: str) -> str:
        return f"wxbot:console:session:{sid}"

    async def open(self, operator_id: int) -> tuple[str, str]:
        """A new session; returns (cookie value, CSRF token)."""
        sid, csrf = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        await self.kv.set(self._key(sid), json.dumps({"operator": operator_id, "csrf": csrf}), ex=self.idle)
        return self.signer.sign(sid).decode(), csrf

    async def find(self, cookie: str | None) -> tuple[str, int, str] | None:
        """(sid, operator id, csrf) of a live session, its idle clock restarted; None otherwise."""
        if not cookie:
            return None
        try:
            sid = self.signer.unsign(cookie).decode()
        except BadSignature:
            return None
        raw = await self.kv.get(self._key(sid))
        if raw is None:
            return None
        await self.kv.expire(self._key(sid), self.idle)
        data = json.loads(raw)
        return sid, int(data["operator"]), str(data["csrf"])

    async def close(self, sid: str) -> None:
        await self.kv.delete(self._key(sid))


class Lockout:
    """Failed sign-ins per name, in the KV so every worker counts the same: the fifth locks it for 15 min."""

    def __init__(self, kv: KV) -> None:
        self.kv = kv

    @staticmethod
    def _key(name: str) -> str:
        return f"wxbot:console:fails:{hashlib.sha256(name.encode()).hexdigest()[:32]}"

    async def locked(self, name: str) -> bool:
        count = await self.kv.get(self._key(name))
        return count is not None and int(count) >= LOCK_AFTER

    async def failed(self, name: str) -> None:
        await self.kv.incr(self._key(name), ex=LOCK_SECONDS)

    async def clear(self, name: str) -> None:
        await self.kv.delete(self._key(name))


def sessions_of(request: Request) -> Sessions:
    return request.app.state.console_sessions


async def current(request: Request, services: ServicesDep, config: SettingsDep) -> ConsoleSession:
    """The signed-in operator of this request, else SignInRequired. The operator row is read afresh,
    so a disabled account or a changed role takes effect on the next click."""
    found = await sessions_of(request).find(request.cookies.get(COOKIE))
    if found is None:
        raise SignInRequired()
    sid, operator_id, csrf = found
    async with services.db.sessions() as session:
        operator = await operators.by_id(session, operator_id)
    if operator is None or not operator.active:
        await sessions_of(request).close(sid)
        raise SignInRequired()
    return ConsoleSession(sid, operator, csrf, services, client_of(request))


Console = Annotated[ConsoleSession, Depends(current)]


async def checked(request: Request, console: Console) -> ConsoleSession:
    """A state-changing request: the session's CSRF token must come with it (form field `csrf` or the
    `X-CSRF-Token` header htmx sends); otherwise 403 and nothing changes."""
    given = request.headers.get("x-csrf-token")
    if not given:
        form = await request.form()
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    if not given or not secret_equals(console.csrf, given):
        raise ConsoleError(403, texts.CSRF_FAILED)
    return console


Checked = Annotated[ConsoleSession, Depends(checked)]


def needs(right: str) -> Callable[[ConsoleSession], Awaitable[ConsoleSession]]:
    """A dependency: the signed-in operator, who must hold `right` (else a 403 page naming the roles)."""

    async def check(console: Console) -> ConsoleSession:
        console.require(right)
        return console

    return check


def needs_checked(right: str) -> Callable[[ConsoleSession], Awaitable[ConsoleSession]]:
    """As `needs`, for a form post: the CSRF token is checked first."""

    async def check(console: Checked) -> ConsoleSession:
        console.require(right)
        return console

    return check
