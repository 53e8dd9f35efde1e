"""The async engine, sessions and unit of work for SQLite and PostgreSQL; it knows no table and no
business rule.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value


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


class Database:
    """Owns the engine. On SQLite every transaction starts with BEGIN IMMEDIATE so that
    read-then-write units of work serialise instead of failing with 'database is locked'."""

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
        else:
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
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

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


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


class _Statement:
    """A Core statement built once per dialect and, on PostgreSQL, how to run it on the driver directly:
    its SQL, its parameters in order with their bind processors, the defaults of the columns it leaves
    out, and its result columns with their result processors. All of it comes from SQLAlchemy's own
    compilation, so both paths send the same SQL with the same conversions."""

    def __init__(self, statement: Any, dialect: Any) -> None:
        self.statement = statement
        self.direct = dialect.name == "postgresql"  # False: through the session (SQLite, or see below)
        if not self.direct:
            return
        compiled = statement.compile(dialect=dialect)
        self.compiled = compiled
        self.sql: str = compiled.string
        self.names: list[str] = list(compiled.positiontup or ())
        self.binds = [compiled.binds[name].type.bind_processor(dialect) for name in self.names]
        self.defaults: dict[str, Any] = {}
        for column in getattr(compiled, "insert_prefetch", ()) or ():
            default = column.default
            if default is not None and default.is_scalar:
                self.defaults[column.key] = default.arg
            else:  # a default that needs SQLAlchemy's execution context
                self.direct = False
        if getattr(compiled, "update_prefetch", None):  # a Python-side onupdate: SQLAlchemy's to fill in
            self.direct = False
        returned = list(statement.exported_columns)  # a SELECT's columns, or those of RETURNING
        self.columns = [column.key for column in returned]
        self.results = [column.type.result_processor(dialect, None) for column in returned]

    def arguments(self, params: dict[str, Any]) -> list[Any]:
        values = self.compiled.construct_params(params)
        for name, default in self.defaults.items():
            if name not in params:
                values[name] = default
        return [
            value if process is None else process(value)
            for value, process in zip((values[name] for name in self.names), self.binds, strict=True)
        ]

    def row(self, record: Any) -> dict[str, Any]:
        return {
            name: value if process is None else process(value)
            for name, value, process in zip(self.columns, record, self.results, strict=True)
        }


_STATEMENTS: dict[tuple[Any, ...], _Statement] = {}
_DRIVER = "wxbot.db.driver"
_SQL_LOG = logging.getLogger("sqlalchemy.engine.Engine")


def _statement(session: AsyncSession, key: tuple[Any, ...], build: Callable[[Any], Any]) -> _Statement:
    bind = session.get_bind()
    full = (bind.dialect.name, *key)
    found = _STATEMENTS.get(full)
    if found is None:
        found = _STATEMENTS[full] = _Statement(build(dialect_insert(session)), bind.dialect)
    return found


async def fetch(
    session: AsyncSession, key: tuple[Any, ...], build: Callable[[Any], Any], params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run a statement of the hot path (a check-in's) in the session's transaction and return its rows as
    dicts. `build(insert)` makes the statement once per dialect and `key`, with bindparam() for every value
    (`insert` is the dialect's, for ON CONFLICT): SQLAlchemy spends more CPU building a statement and
    deriving its cache key than executing it. On PostgreSQL the compiled SQL then goes straight to the
    asyncpg connection of the session's transaction: SQLAlchemy's execution path costs about 0.2 ms of CPU
    per statement around the driver's 0.08 ms. Rows written this way are not in the session's identity
    map: a caller that needs the ORM object uses `attach`. On SQLite it runs through the session."""
    statement = _statement(session, key, build)
    sync = session.sync_session
    # First the ORM's pending changes, as an ORM statement would (a Core one would not, and `attach`
    # must not overwrite unsaved changes), on both paths alike.
    if sync.autoflush and (sync.new or sync.dirty or sync.deleted):
        await session.flush()
    if not statement.direct:
        result = await session.execute(statement.statement, params)
        # the stubs type every execute() as Result; a Core statement's is a CursorResult
        return [dict(row._mapping) for row in result] if cast(CursorResult[Any], result).returns_rows else []
    driver = await _driver(session)
    arguments = statement.arguments(params)
    if _SQL_LOG.isEnabledFor(logging.INFO):  # echo shows these statements as it shows SQLAlchemy's own
        _SQL_LOG.info("%s", statement.sql)
        _SQL_LOG.info("[direct] %r", tuple(arguments))
    try:
        if not statement.columns:  # nothing asked back (an INSERT may still return its key implicitly)
            await driver.execute(statement.sql, *arguments)
            return []
        records = await driver.fetch(statement.sql, *arguments)
    except Exception:
        await _invalidate_if_closed(session, driver)
        raise
    return [statement.row(record) for record in records]


async def fetch_first(
    session: AsyncSession, key: tuple[Any, ...], build: Callable[[Any], Any], params: dict[str, Any]
) -> dict[str, Any] | None:
    rows = await fetch(session, key, build, params)
    return rows[0] if rows else None


async def fetch_value(
    session: AsyncSession, key: tuple[Any, ...], build: Callable[[Any], Any], params: dict[str, Any]
) -> Any:
    """The first column of the first row, or None."""
    rows = await fetch(session, key, build, params)
    return next(iter(rows[0].values())) if rows else None


async def _driver(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's current transaction, with that transaction begun
    (SQLAlchemy's adapter begins it lazily, on its first statement)."""
    known = transaction_cache(session, _DRIVER).get("driver")
    if known is not None:
        return known
    connection = await session.connection()  # a SAVEPOINT too, when a nested transaction has not sent it
    adapted = (await connection.get_raw_connection()).dbapi_connection
    assert adapted is not None  # None only once the pool has invalidated it; it is checked out here
    driver = adapted.driver_connection
    if adapted._transaction is None:  # noqa: SLF001 (the adapter's lazy BEGIN; pinned SQLAlchemy)
        try:
            await adapted._start_transaction()  # noqa: SLF001
        except Exception:
            await _invalidate_if_closed(session, driver)
            raise
    transaction_cache(session, _DRIVER)["driver"] = driver  # the transaction has begun by now
    return driver


def transaction_cache(session: AsyncSession, name: str) -> dict[Any, Any]:
    """A dict that lives as long as the transaction statements run in now (a savepoint's while one is
    open): what a transaction learnt, the rows it locked or its driver connection, is forgotten with it."""
    sync = session.sync_session
    current = sync.get_nested_transaction() or sync.get_transaction()
    kept = session.info.get(name)
    if kept is None or kept[0] is not current or current is None or not current.is_active:
        kept = session.info[name] = (current, {})
    return kept[1]


async def _invalidate_if_closed(session: AsyncSession, driver: Any) -> None:
    """A connection that died under a direct statement is one SQLAlchemy did not see die: tell the pool,
    so that it is replaced instead of handed to the next transaction."""
    if driver.is_closed():
        session.info.pop(_DRIVER, None)
        await (await session.connection()).invalidate()


def dialect_insert(session: AsyncSession) -> Any:
    """`insert` of the session's dialect, for ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    bind = session.get_bind()
    return pg_insert if bind.dialect.name == "postgresql" else sqlite_insert


def attach(session: AsyncSession, model: type[Any], row: dict[str, Any]) -> Any:
    """The ORM object for a row read with `fetch`, in the session as a query would have loaded it: the
    object already in the identity map, refreshed, or a new one with no pending changes. A new one is
    made as the ORM's loader makes it (the mapper's new instance, values in its dict), not through the
    model's constructor, which validates and tracks every field and costs five times as much."""
    sync = session.sync_session
    existing = sync.identity_map.get(sync.identity_key(model, row["id"]))
    if existing is not None:
        for name, value in row.items():
            set_committed_value(existing, name, value)
        return existing
    instance = inspect(model).class_manager.new_instance()
    instance.__dict__.update(row)
    make_transient_to_detached(instance)
    sync.add(instance)
    return instance
