"""Which backends the suite runs on: SQLite + memory:// always; PostgreSQL + Redis when reachable
(TEST_DATABASE_URL / TEST_REDIS_URL, else the local servers). WXBOT_REQUIRE_SERVICES=1 requires them."""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
import socket
from dataclasses import dataclass

from sqlalchemy.engine import make_url

DEFAULT_PG = "postgresql://root@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379"


@dataclass(frozen=True)
class ServerBackend:
    admin_url: str
    redis_url: str


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def detect() -> tuple[ServerBackend | None, str]:
    pg = os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG
    redis = os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS
    pg_url, redis_url = make_url(pg), make_url(redis)
    ok_pg = _reachable(pg_url.host or "127.0.0.1", pg_url.port or 5432)
    ok_redis = _reachable(redis_url.host or "127.0.0.1", redis_url.port or 6379)
    if ok_pg and ok_redis:
        where = f"PostgreSQL ({pg_url.host}:{pg_url.port}) + Redis ({redis_url.host}:{redis_url.port})"
        return ServerBackend(pg, redis), where + " and SQLite + memory://"
    missing = ", ".join(n for n, ok in (("PostgreSQL", ok_pg), ("Redis", ok_redis)) if not ok)
    if os.environ.get("WXBOT_REQUIRE_SERVICES") == "1":
        raise RuntimeError(f"WXBOT_REQUIRE_SERVICES=1 but {missing} cannot be reached")
    return None, f"SQLite + memory:// only ({missing} not reachable)"


async def create_database(admin_url: str) -> str:
    """A fresh, uniquely named database on the server; returns its URL."""
    name = f"wxbot_test_{os.getpid()}_{secrets.token_hex(3)}"
    await _on_server(admin_url, f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(admin_url: str, database_url: str) -> None:
    name = make_url(database_url).database
    await _on_server(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _on_server(admin_url: str, sql: str) -> None:
    """One statement outside any transaction (CREATE and DROP DATABASE refuse one), as the admin user."""
    import asyncpg

    url = make_url(admin_url)
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password,
        database=url.database or "postgres",
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def truncate(url: str) -> None:
    """Empty every table of the database (not the migration marker) and restart its ids."""
    from sqlalchemy import text

    from storage.db import Database

    db = Database(url, pool_size=1)
    try:
        async with db.engine.begin() as conn:
            rows = await conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"
            ))
            tables = ", ".join(f'"{r[0]}"' for r in rows)
            if tables:
                await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await db.dispose()


async def kill_pooled_connection(db: object, admin_url: str, *, rest: float = 0.0) -> None:
    """Terminate from the server's side the one connection in `db`'s pool (a pool of one), after it has
    rested `rest` seconds, as a database restart or a network cut would: SQLAlchemy is not told."""
    from sqlalchemy import text

    from storage.db import Database

    assert isinstance(db, Database)
    tag = f"wxbot-kill-{secrets.token_hex(4)}"
    async with db.engine.begin() as conn:  # committed, so the name outlives the transaction
        await conn.execute(text(f"SET application_name = '{tag}'"))
    await asyncio.sleep(rest)
    admin = Database(admin_url, pool_size=1)
    try:
        async with admin.engine.begin() as conn:
            killed = (await conn.execute(
                text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :tag"),
                {"tag": tag},
            )).scalar()
    finally:
        await admin.dispose()
    assert killed == 1
    await asyncio.sleep(0.05)  # the client side sees the socket close


_CLAIMED: dict[str, str] = {}
CLAIM_TTL = 3 * 3600  # a claim left by a killed run frees itself


def redis_db_url(base: str) -> str:
    """A Redis logical database (1-15) claimed by this test process for its lifetime, so parallel
    runs never flush or read each other's keys (picking by pid alone let two runs share one).
    The claims live in database 0; if all fifteen are taken, fall back to the pid's database."""
    if base not in _CLAIMED:
        _CLAIMED[base] = _claim(base)
    return _CLAIMED[base]


def _claim(base: str) -> str:
    import redis

    url = make_url(base)
    owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    client = redis.Redis.from_url(url.set(database="0").render_as_string(hide_password=False))
    first = os.getpid() % 15
    try:
        for step in range(15):
            db = 1 + (first + step) % 15
            if client.set(f"wxbot:test:redis-db:{db}", owner, nx=True, ex=CLAIM_TTL):
                atexit.register(_release, client, db, owner)
                return url.set(database=str(db)).render_as_string(hide_password=False)
    except redis.RedisError:
        pass
    return url.set(database=str(1 + first)).render_as_string(hide_password=False)


def _release(client: object, db: int, owner: str) -> None:
    script = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
    try:
        client.eval(script, 1, f"wxbot:test:redis-db:{db}", owner)  # type: ignore[attr-defined]
    except Exception:  # the server may be gone at exit; the claim then expires by itself
        pass


def run(coro):  # type: ignore[no-untyped-def]
    """Run a coroutine to its end from synchronous code, also where a loop is already running in this
    thread (Playwright's sync API keeps one): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
