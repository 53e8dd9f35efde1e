"""Fault-test fixtures: this test's own redis-server, and the suite's PostgreSQL database emptied."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SERVER
from tests.faults.servers import REDIS_SERVER, RedisServer
from tests.support import backends

pytestmark = pytest.mark.skipif(SERVER is None or REDIS_SERVER is None, reason="needs PostgreSQL and redis-server")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def pg(pg_database: str | None) -> str:
    if pg_database is None:
        pytest.skip("needs PostgreSQL")
    await backends.truncate(pg_database)
    return pg_database
