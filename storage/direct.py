"""The hot path's statements run on the driver connection directly (asyncpg, or aiosqlite in one hand-over);
it owns no table and no business rule."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any, cast

from sqlalchemy import inspect
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from storage.db import AUTOCOMMIT_READS, dialect_insert

# The SQLAlchemy release whose private attributes `begin_lazily` touches; tests/integration/
# test_direct_statements.py fails when the installed one differs, so an upgrade is a conscious step.
SQLALCHEMY_VERSION = "2.1.9"

Build = Callable[[Any, Any], Any]  # (the dialect's insert, the variant) -> a Core statement

_NAMES: dict[str, Statement] = {}
_DRIVER = "wxbot.db.driver"
_SQL_LOG = logging.getLogger("sqlalchemy.engine.Engine")


class Statement:
    """A statement of the hot path, named once in the process: `build(insert, variant)` makes it with
    bindparam() for every value (`insert` is the dialect's, for ON CONFLICT), once per dialect and
    variant (a hashable naming what changes its shape, such as the columns it sets). A module-level
    object, not a tuple key, so two modules cannot pick the same cache entry by accident."""

    def __init__(self, name: str, build: Build) -> None:
        if name in _NAMES:
            raise ValueError(f"direct statement {name!r} is already defined")
        _NAMES[name] = self
        self.name = name
        self.build = build
        self._compiled: dict[tuple[str, Hashable], Compiled] = {}

    def compiled(self, session: AsyncSession, variant: Hashable = None) -> Compiled:
        dialect = session.get_bind().dialect
        key = (dialect.name, variant)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = Compiled(self.build(dialect_insert(session), variant), dialect)
        return found

    def __repr__(self) -> str:
        return f"Statement({self.name!r})"


class Compiled:
    """A Core statement built for one dialect and, on PostgreSQL, how to run it on the driver directly:
    its SQL, its parameters in order with their bind processors, the defaults of the columns it leaves
    out, and its result columns with their result processors. All of it comes from SQLAlchemy's own
    compilation, so both paths send the same SQL with the same conversions."""

    def __init__(self, statement: Any, dialect: Any) -> None:
        self.statement = statement
        self.sqlite = dialect.name == "sqlite"
        self.direct = dialect.name in ("postgresql", "sqlite")  # False: through the session (see below)
        if not self.direct:
            return
        compiled = statement.compile(dialect=dialect)
        self.compiled = compiled
        self.sql: str = compiled.string
        self.names: list[str] = list(compiled.positiontup or ())
        # SQLite's conversions (a datetime to SQLAlchemy's text form and back) live in the dialect's own types.
        typed = (lambda t: t.dialect_impl(dialect)) if self.sqlite else (lambda t: t)
        self.binds = [typed(compiled.binds[name].type).bind_processor(dialect) for name in self.names]
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
        self.results = [typed(column.type).result_processor(dialect, None) for column in returned]

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


async def fetch(
    session: AsyncSession, statement: Statement, params: dict[str, Any], variant: Hashable = None
) -> list[dict[str, Any]]:
    """Run a statement of the hot path (a check-in's) in the session's transaction and return its rows as
    dicts. SQLAlchemy spends more CPU building a statement and deriving its cache key than executing it,
    hence `Statement`. The compiled SQL then goes straight to the driver connection of the session's
    transaction: on PostgreSQL, SQLAlchemy's execution path costs about 0.2 ms of CPU per statement around
    asyncpg's 0.08 ms; on SQLite it makes four hand-overs to aiosqlite's thread (cursor, execute, fetch,
    close) where `execute_fetchall` makes one. Rows written this way are not in the session's identity map:
    a caller that needs the ORM object uses `attach`."""
    compiled = statement.compiled(session, variant)
    sync = session.sync_session
    # First the ORM's pending changes, as an ORM statement would (a Core one would not, and `attach`
    # must not overwrite unsaved changes), on both paths alike.
    if sync.autoflush and (sync.new or sync.dirty or sync.deleted):
        await session.flush()
    if not compiled.direct:
        result = cast("CursorResult[Any]", await session.execute(compiled.statement, params))
        return [dict(row._mapping) for row in result] if result.returns_rows else []
    driver = await _driver(session)
    arguments = compiled.arguments(params)
    if _SQL_LOG.isEnabledFor(logging.INFO):  # echo shows these statements as it shows SQLAlchemy's own
        _SQL_LOG.info("%s", compiled.sql)
        _SQL_LOG.info("[direct] %r", tuple(arguments))
    if compiled.sqlite:  # a local file: no connection to lose under the statement
        return [compiled.row(record) for record in await driver.execute_fetchall(compiled.sql, arguments)]
    try:
        if not compiled.columns:  # nothing asked back (an INSERT may still return its key implicitly)
            await driver.execute(compiled.sql, *arguments)
            return []
        records = await driver.fetch(compiled.sql, *arguments)
    except Exception:
        await _invalidate_if_closed(session, driver)
        raise
    return [compiled.row(record) for record in records]


async def fetch_first(
    session: AsyncSession, statement: Statement, params: dict[str, Any], variant: Hashable = None
) -> dict[str, Any] | None:
    rows = await fetch(session, statement, params, variant)
    return rows[0] if rows else None


async def fetch_value(
    session: AsyncSession, statement: Statement, params: dict[str, Any], variant: Hashable = None
) -> Any:
    """The first column of the first row, or None."""
    rows = await fetch(session, statement, params, variant)
    return next(iter(rows[0].values())) if rows else None


async def _driver(session: AsyncSession) -> Any:
    """The driver connection (asyncpg's or aiosqlite's) under the session's current transaction, with that
    transaction begun (on SQLite, SQLAlchemy's begin sent BEGIN IMMEDIATE when the connection was taken);
    in a session of Database.reads, on PostgreSQL, with no transaction begun (autocommit)."""
    known = transaction_cache(session, _DRIVER).get("driver")
    if known is not None:
        return known
    connection = await session.connection()  # a SAVEPOINT too, when a nested transaction has not sent it
    adapted = (await connection.get_raw_connection()).dbapi_connection
    assert adapted is not None  # a checked-out connection always has one
    driver = adapted.driver_connection
    if connection.dialect.name == "sqlite":
        transaction_cache(session, _DRIVER)["driver"] = driver
        return driver
    try:
        if not session.info.get(AUTOCOMMIT_READS):  # Database.reads: no transaction for its lookups
            await begin_lazily(adapted)
    except Exception:
        await _invalidate_if_closed(session, driver)
        raise
    transaction_cache(session, _DRIVER)["driver"] = driver  # the transaction has begun by now
    return driver


async def begin_lazily(adapted: Any) -> bool:
    """Send the BEGIN that SQLAlchemy's asyncpg adapter defers to its first statement, unless it has been
    sent; True when this call sent it. The only place that touches SQLAlchemy's private attributes
    (pinned: SQLALCHEMY_VERSION)."""
    if adapted._transaction is not None:  # noqa: SLF001
        return False
    await adapted._start_transaction()  # noqa: SLF001
    return True


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
