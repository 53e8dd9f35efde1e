"""What storage/direct.py takes from SQLAlchemy beyond its public API, pinned: an upgrade that changes it
fails here, by name, before the hot path misbehaves."""

from __future__ import annotations

import pytest
import sqlalchemy

from storage import direct, ledger
from storage.db import Database


def test_the_installed_sqlalchemy_is_the_one_direct_was_checked_against() -> None:
    assert sqlalchemy.__version__ == direct.SQLALCHEMY_VERSION, (
        f"SQLAlchemy {sqlalchemy.__version__} is installed; storage/direct.py was checked against "
        f"{direct.SQLALCHEMY_VERSION}: re-check begin_lazily (the asyncpg adapter's private lazy BEGIN) "
        "and Compiled (positiontup, binds, insert_prefetch), run this file on PostgreSQL, then move the pin"
    )


async def test_the_asyncpg_adapter_begins_lazily_as_begin_lazily_expects(db: Database, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("the asyncpg adapter is PostgreSQL's")
    async with db.sessions() as session, session.begin():
        connection = await session.connection()
        adapted = (await connection.get_raw_connection()).dbapi_connection
        driver = adapted.driver_connection
        assert not driver.is_in_transaction()  # SQLAlchemy's BEGIN waits for the first statement
        assert await direct.begin_lazily(adapted) is True
        assert driver.is_in_transaction()
        assert await direct.begin_lazily(adapted) is False  # the adapter knows it has begun
        await session.execute(sqlalchemy.text("SELECT 1"))  # and SQLAlchemy carries on in that transaction
        assert driver.is_in_transaction()


def test_a_statement_name_is_taken_once() -> None:
    assert repr(ledger._LOCK_MEMBER) == "Statement('ledger.lock_member')"  # noqa: SLF001
    with pytest.raises(ValueError, match="already defined"):
        direct.Statement("ledger.lock_member", lambda insert, _: None)
