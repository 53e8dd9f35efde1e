"""What the type checker cannot see about rows: a persisted row's id, a table's Table, a DML result's count.
Typing only: it reads no database and changes no value."""

from __future__ import annotations

from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, Result, Table
from sqlmodel import SQLModel


class _Row(Protocol):
    id: int | None


def row_id(row: _Row) -> int:
    """The id of a row read from the database or flushed to it. SQLModel types `id` as `int | None`
    because a new row has none until it is flushed; past that point None is a bug, so it raises."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id: it was never flushed")
    return row.id


def table_of(model: type[SQLModel]) -> Table:
    """The model's Core table, for statements that bypass the ORM."""
    return model.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ at class creation


def affected(result: Result[Any]) -> int:
    """Rows matched by an UPDATE or DELETE (or inserted by an INSERT)."""
    # AsyncSession.execute is typed as returning Result for every statement; for DML it is a CursorResult.
    return cast(CursorResult[Any], result).rowcount
