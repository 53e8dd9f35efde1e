"""Shared fixtures: every app-level test runs once per available backend (SQLite + memory://,
and PostgreSQL + Redis when reachable), on a fresh schema and an empty KV."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.migrate import upgrade
from storage.clock import FrozenClock
from storage.db import Database
from storage.kv import KV
from storage.ledger import Ledger
from tests.support import backends, redis_cluster
from tests.support.factories import make_ledger
from tests.support.fakes import WeChat, make_app, make_settings, serving
from tests.support.mp_support import MiniProgram, mini_program

pytest_plugins = ["tests.support.logcheck"]

SERVER, DESCRIPTION = backends.detect()
BACKENDS = ["sqlite"] + (["postgres"] if SERVER else [])
START = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai


def pytest_report_header(config: pytest.Config) -> str:
    return f"wxbot backends: {DESCRIPTION}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("schema") / "template.db"
    backends.run(upgrade(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    if SERVER is None:
        yield None
        return
    url = backends.run(backends.create_database(SERVER.admin_url))
    backends.run(upgrade(url))
    yield url
    backends.run(backends.drop_database(SERVER.admin_url, url))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis_cluster.RedisCluster]:
    """A Redis Cluster of three masters of this test process's own (issue 20), started when a test first asks."""
    if not redis_cluster.available():
        if os.environ.get("WXBOT_REQUIRE_SERVICES") == "1":
            raise RuntimeError("WXBOT_REQUIRE_SERVICES=1 but redis-server or redis-cli is not installed")
        pytest.skip("redis-server and redis-cli are needed for a Redis Cluster")
    found = redis_cluster.RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        found.start()
        yield found
    finally:
        found.stop()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """sqlite, postgres (when reachable), or cluster (PostgreSQL with the KV on a Redis Cluster): the test runs
    once per value pytest_generate_tests gives it."""
    return str(request.param)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kv_cluster: also run on PostgreSQL + a Redis Cluster of three masters (the `cluster` backend)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test using `backend` runs on each of BACKENDS; one marked kv_cluster (the retry, race, intake,
    leader and pacing suites) on the `cluster` backend too (issue 20). A test naming its own backends in a
    parametrize mark keeps them."""
    if "backend" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if "backend" in ([n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)):
            return
    values = list(BACKENDS)
    if SERVER and metafunc.definition.get_closest_marker("kv_cluster"):
        values.append("cluster")
    metafunc.parametrize("backend", values, indirect=True)


@pytest.fixture
async def urls(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, sqlite_template: Path, pg_database: str | None
) -> AsyncIterator[tuple[str, str]]:
    """(database URL, KV URL) for one test: a copied SQLite schema, or truncated PostgreSQL tables (the KV an
    empty Redis logical database, or for `cluster` an emptied Redis Cluster)."""
    if backend == "sqlite":
        db_file = tmp_path / "wxbot.db"
        shutil.copy(sqlite_template, db_file)
        yield f"sqlite:///{db_file}", f"memory://test-{secrets.token_hex(6)}"
        return
    assert SERVER is not None
    assert pg_database is not None
    await backends.truncate(pg_database)
    if backend == "cluster":
        cluster = request.getfixturevalue("cluster")
        cluster.flush()
        yield pg_database, cluster.url
        return
    redis_url = backends.redis_db_url(SERVER.redis_url)
    kv = KV(redis_url)
    await kv.redis.flushdb()
    await kv.close()
    yield pg_database, redis_url


@pytest.fixture
async def db(urls: tuple[str, str]) -> AsyncIterator[Database]:
    """The storage layer alone, on this test's backend (for tests below the webhook)."""
    database = Database(urls[0])
    yield database
    await database.dispose()


@pytest.fixture
def ledger() -> Ledger:
    return make_ledger()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def settings(urls: tuple[str, str]):  # type: ignore[no-untyped-def]
    return make_settings(*urls)


@pytest.fixture
async def wechat(settings, clock: FrozenClock) -> AsyncIterator[WeChat]:  # type: ignore[no-untyped-def]
    app = make_app(settings, clock)
    async with serving(app, clock) as harness:
        yield harness


@pytest.fixture
async def mp(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[MiniProgram]:
    """The app with a Mini Program configured, the fake WeChat API behind it (tests/support/mp_support.py)."""
    async with mini_program(urls, clock) as world:
        yield world


@pytest.fixture(autouse=True)
def _isolated_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read a developer's .env or write under the repository's var/."""
    monkeypatch.chdir(tmp_path)
