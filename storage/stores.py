"""Stores: the shops that verify coupons and send orders, and their API credentials (a random secret
shown once, kept as its SHA-256; rotated or revoked by an admin, each change audited by the caller)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.errors import ConflictError, NotFoundError
from storage.models import Store

CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")


def hashed(secret: str) -> str:
    """A credential's stored form: the secret is 32 random bytes, so a plain SHA-256 cannot be guessed back."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Credential:
    """What a store presents: `Authorization: Bearer <store code>:<secret>`."""

    code: str
    secret: str

    @property
    def bearer(self) -> str:
        return f"{self.code}:{self.secret}"


class StoreCredentialError(Exception):
    """A credential that names one store and is another's (403), as opposed to an unknown one (None)."""


async def by_code(session: AsyncSession, code: str, *, lock: bool = False) -> Store:
    stmt = select(Store).where(col(Store.code) == code.strip().upper())
    found = await session.scalar(stmt.with_for_update() if lock else stmt)
    if found is None:
        raise NotFoundError(f"store {code} does not exist")
    return found


async def all_stores(session: AsyncSession) -> Sequence[Store]:
    return (await session.scalars(select(Store).order_by(col(Store.code)))).all()


async def add(session: AsyncSession, code: str, name: str, city: str, now: datetime) -> tuple[Store, Credential]:
    """A new active store and its first credential. ConflictError when the code is taken."""
    code = code.strip().upper()
    if not CODE.match(code):
        raise ValueError("store code: letters, digits, - or _, up to 32")
    if await session.scalar(select(col(Store.id)).where(col(Store.code) == code)) is not None:
        raise ConflictError(f"store {code} exists")
    secret = new_secret()
    store = Store(code=code, name=name.strip(), city=city.strip(), secret_hash=hashed(secret),
                  secret_set_at=now, created_at=now)
    session.add(store)
    await session.flush()
    return store, Credential(code, secret)


async def rotate(session: AsyncSession, code: str, now: datetime) -> Credential:
    """A new secret: the old one stops working at once."""
    store = await by_code(session, code, lock=True)
    secret = new_secret()
    store.secret_hash, store.secret_set_at = hashed(secret), now
    await session.flush()
    return Credential(store.code, secret)


async def revoke(session: AsyncSession, code: str, now: datetime) -> Store:
    """No credential works for this store until the next rotation."""
    store = await by_code(session, code, lock=True)
    store.secret_hash, store.secret_set_at = None, now
    await session.flush()
    return store


async def set_active(session: AsyncSession, code: str, active: bool) -> Store:
    store = await by_code(session, code, lock=True)
    store.active = active
    await session.flush()
    return store


def parse_bearer(value: str) -> Credential | None:
    code, sep, secret = value.partition(":")
    if not sep or not code or not secret:
        return None
    return Credential(code.strip().upper(), secret)


async def authenticate(session: AsyncSession, credential: Credential) -> Store | None:
    """The active store whose secret this is; None for an unknown secret. StoreCredentialError when the
    secret is a real store's but the credential names another store (or the store is closed)."""
    found = await session.scalar(select(Store).where(col(Store.secret_hash) == hashed(credential.secret)))
    if found is None:
        return None
    if found.code != credential.code or not found.active:
        raise StoreCredentialError(credential.code)
    return found
