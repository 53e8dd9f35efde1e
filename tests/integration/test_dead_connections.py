"""A pooled PostgreSQL connection that the server ended (a restart, a network cut) is replaced, whether it
died while idle or under a statement sent straight to the driver, which SQLAlchemy does not see fail:
a pool's only connection, handed out dead, would fail every transaction after it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text

from storage.checkins import check_in
from storage.db import Database
from storage.ledger import Ledger
from tests.conftest import SERVER
from tests.support import backends
from tests.support.factories import add_member, local
from tests.support.invariants import consistent_points

pytestmark = pytest.mark.skipif(SERVER is None, reason="needs PostgreSQL")
NOW = local(2026, 5, 4, 9)


@pytest.fixture
async def one_connection(pg_database: str) -> AsyncIterator[Callable[..., Database]]:
    """Databases whose pool holds one connection and never opens a second."""
    made: list[Database] = []

    def make(**options: Any) -> Database:
        made.append(Database(pg_database, pool_size=1, max_overflow=0, **options))
        return made[-1]

    yield make
    for db in made:
        await db.dispose()


async def kill(db: Database, *, rest: float = 0.0) -> None:
    assert SERVER is not None
    await backends.kill_pooled_connection(db, SERVER.admin_url, rest=rest)


async def test_a_connection_killed_while_idle_is_replaced_before_use(one_connection: Callable[..., Database]) -> None:
    db = one_connection(idle_ping_after=0.05)
    await kill(db, rest=0.1)
    async with db.sessions() as session:  # would fail with "connection is closed" without the check
        assert await session.scalar(text("SELECT 1")) == 1


async def test_a_connection_that_died_under_a_direct_statement_is_replaced(
    one_connection: Callable[..., Database], ledger: Ledger
) -> None:
    db = one_connection()
    member_id = await add_member(db, NOW)
    await kill(db)
    with pytest.raises(Exception, match="(?i)connection"):  # used within the idle-ping window: not checked
        async with db.unit_of_work() as session:
            await check_in(session, ledger, member_id, NOW)
    async with db.unit_of_work() as session:  # the next transaction gets a new connection
        result = await check_in(session, ledger, member_id, NOW)
    assert result.points == 5
    assert (await consistent_points(db, member_id)).balance == 5
