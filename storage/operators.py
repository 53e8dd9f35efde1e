"""Operator accounts: create, change a password, disable, and check a sign-in. Passwords are argon2id
hashes; an unknown name is checked against a dummy hash so both answers take the same time."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.audit import OPERATOR_ROLES, Actor
from storage.errors import ConflictError, NotFoundError
from storage.models import Operator

_HASHER = PasswordHasher()


@cache
def _dummy() -> str:
    """A hash to check an unknown name's password against (made on the first sign-in, not at import)."""
    return _HASHER.hash("wxbot: a password nobody has")

NAME = re.compile(r"[A-Za-z0-9_.\-\u4e00-\u9fff]{2,40}")
MIN_PASSWORD = 10


class WeakPasswordError(ValueError):
    """A password too short or too long; the message says the bounds."""


def check_name(name: str) -> str | None:
    """None when `name` may name an operator, else why not (English, for the CLI and the API)."""
    if not NAME.fullmatch(name):
        return "2-40 letters, digits, Chinese characters, '.', '_' or '-'"
    return None


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD or len(password) > 200:
        raise WeakPasswordError(f"a password is {MIN_PASSWORD} to 200 characters")


def hash_password(password: str) -> str:
    check_password(password)
    return _HASHER.hash(password)


async def by_name(session: AsyncSession, name: str) -> Operator | None:
    return (await session.scalars(select(Operator).where(col(Operator.name) == name))).first()


async def by_id(session: AsyncSession, operator_id: int) -> Operator | None:
    return await session.get(Operator, operator_id)


async def add(
    session: AsyncSession, name: str, role: str, password: str, now: datetime, store: str | None = None,
) -> Operator:
    """A new active operator. ConflictError when the name is taken, ValueError on a bad name or role."""
    problem = check_name(name)
    if problem:
        raise ValueError(f"name: {problem}")
    if role not in OPERATOR_ROLES:
        raise ValueError(f"role must be one of {', '.join(OPERATOR_ROLES)}")
    if role == "clerk" and not store:
        raise ValueError("a clerk needs --store")
    if await by_name(session, name) is not None:
        raise ConflictError(f"operator {name} exists")
    operator = Operator(
        name=name, role=role, store=store if role == "clerk" else None, password_hash=hash_password(password),
        created_at=now, password_changed_at=now,
    )
    session.add(operator)
    await session.flush()
    return operator


async def set_password(session: AsyncSession, name: str, password: str, now: datetime) -> Operator:
    operator = await _existing(session, name)
    operator.password_hash = hash_password(password)
    operator.password_changed_at = now
    return operator


async def disable(session: AsyncSession, name: str) -> Operator:
    operator = await _existing(session, name)
    operator.active = False
    return operator


async def all_operators(session: AsyncSession) -> Sequence[Operator]:
    return (await session.scalars(select(Operator).order_by(col(Operator.name)))).all()


async def _existing(session: AsyncSession, name: str) -> Operator:
    operator = await by_name(session, name)
    if operator is None:
        raise NotFoundError(f"no operator {name}")
    return operator


def password_matches(operator: Operator | None, password: str) -> bool:
    """Constant work whether or not the operator exists: an unknown name still costs one argon2 check."""
    try:
        return _HASHER.verify(operator.password_hash if operator else _dummy(), password) and operator is not None
    except (VerificationError, InvalidHashError):
        return False


async def authenticate(session: AsyncSession, name: str, password: str, now: datetime) -> Operator | None:
    """The active operator with this name and password (sign-in time recorded), else None."""
    operator = await by_name(session, name)
    if not password_matches(operator, password) or operator is None or not operator.active:
        return None
    operator.last_sign_in_at = now
    return operator


def actor_of(operator: Operator) -> Actor:
    return Actor(operator.name, operator.role, operator.store)
