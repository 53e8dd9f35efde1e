"""The async engine, sessions and unit of work for SQLite and PostgreSQL; it knows no table and no rule."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, literal_column, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def async_url(url: str) -> str:
    """Accept the URLs operators write (postgresql://, sqlite:///) and pick the async driver."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif driver in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    return make_url(async_url(url)).render_as_string(hide_password=False)


# Connections kept open per process, and how many more a burst may open (closed again when returned).
# A burst past the kept ones costs a connection (a PostgreSQL backend) per transaction, so the kept
# ones cover what 64 webhook requests in flight use at once; 30 in all, as before, per worker.
POOL_SIZE, MAX_OVERFLOW = 20, 10
IDLE_PING_AFTER = 10.0  # seconds a pooled PostgreSQL connection may rest before it is checked
_IDLE_SINCE = "wxbot_idle_since"


# SQLite: one connection per process. Every transaction takes the write lock (BEGIN IMMEDIATE), so two
# connections of one process could never work at once anyway; with several, the waiting ones sat in SQLite's
# busy handler, which sleeps and polls (1 ms, 2 ms, ... 100 ms): under 64 requests in flight that gave
# multi-second replies. One connection makes them wait in the pool's queue instead, first come first served,
# and woken the moment the connection is back. Other processes on the same file still meet the busy timeout.
SQLITE_POOL_TIMEOUT = 30.0
# aiosqlite runs each statement on its own thread and hands the result back to the event loop: several
# handovers per statement. With CPython's default switch interval (5 ms) the thread that wants the GIL back
# waits out the loop's slice every time; 0.1 ms cut the CPU per chat message on SQLite by about a third
# (docs/benchmarks.md, issue 20). It is set for the process, once a SQLite database is opened.
SQLITE_SWITCH_INTERVAL = 0.0001

AUTOCOMMIT_READS = "wxbot.db.autocommit_reads"  # session.info flag set by Database.reads


class Database:
    """Owns the engine. On SQLite every transaction starts with BEGIN IMMEDIATE so that
    read-then-write units of work serialise instead of failing with 'database is locked', and a process
    keeps one connection (see SQLITE_POOL_TIMEOUT)."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW,
        idle_ping_after: float = IDLE_PING_AFTER,
    ) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            _ensure_sqlite_dir(self.url)
            kwargs["connect_args"] = {"timeout": 30}
            if not _in_memory(self.url):
                kwargs.update(pool_size=1, max_overflow=0, pool_timeout=SQLITE_POOL_TIMEOUT)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
            sys.setswitchinterval(min(sys.getswitchinterval(), SQLITE_SWITCH_INTERVAL))
        else:
            _ping_when_idle(self.engine, idle_ping_after)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One transaction: commit on success, roll back on any exception."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reads(self) -> AsyncIterator[AsyncSession]:
        """A session that only reads, for the chat's lookups of the sender: on PostgreSQL the hot path's
        direct statements (storage/direct.py) run in autocommit, each in a snapshot of its own, so a lookup
        costs one round trip instead of BEGIN, the statement and COMMIT. Nothing is committed: a write
        through it is rolled back at the end, as in any session left uncommitted."""
        async with self.sessions() as session:
            session.info[AUTOCOMMIT_READS] = True
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _in_memory(url: str) -> bool:
    return make_url(url).database in (None, "", ":memory:")


def _ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _ping_when_idle(engine: AsyncEngine, after: float) -> None:
    """Check a pooled connection before use only when it has been idle for `after` seconds. The pool's
    own pre-ping would spend a round trip on every checkout, which under load is most of a short
    transaction's cost; a connection in steady use has just proved itself alive. A dead one is replaced."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < after:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool retries with a new connection
            raise DisconnectionError("pooled connection is dead") from exc


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so "begin" below decides the lock mode.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def dialect_insert(session: AsyncSession) -> Any:
    """`insert` of the session's dialect, for ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    bind = session.get_bind()
    return pg_insert if bind.dialect.name == "postgresql" else sqlite_insert


def plus_days(session: AsyncSession, at: Any, days: int) -> Any:
    """The SQL instant `days` after the timestamp expression `at`, in the session's dialect."""
    return plus_seconds(session, at, days * 86_400)


def plus_seconds(session: AsyncSession, at: Any, seconds: int) -> Any:
    """The SQL instant `seconds` (negative: before) after the timestamp expression `at`: an interval on
    PostgreSQL; on SQLite, which keeps naive UTC text (storage.models.UTCDateTime), datetime() reads and writes it.
    A zone's UTC offset added this way gives the local wall time, whose date() is the local day."""
    if session.get_bind().dialect.name == "postgresql":
        return at + literal_column(f"interval '{int(seconds)} seconds'")
    return func.datetime(at, f"{int(seconds):+d} seconds")
