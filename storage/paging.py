"""The console's lists: newest first, a keyset page older than `before_id`, narrowed by equal-valued
columns and a half-open time range. One statement builder for every such list (anomalies, audit, outbox)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlmodel import col


def newest_first(
    model: Any, *, limit: int, before_id: int | None = None, equal: Mapping[str, object | None] | None = None,
    at: str | None = None, since: datetime | None = None, until: datetime | None = None,
) -> Select[Any]:
    """SELECT model ... ORDER BY id DESC LIMIT limit; `equal` skips the columns given None or "", and the
    range [since, until) applies to the column named `at`."""
    stmt = select(model).order_by(col(model.id).desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(col(model.id) < before_id)
    for name, value in (equal or {}).items():
        if value is not None and value != "":
            stmt = stmt.where(col(getattr(model, name)) == value)
    if at is not None and since is not None:
        stmt = stmt.where(col(getattr(model, at)) >= since)
    if at is not None and until is not None:
        stmt = stmt.where(col(getattr(model, at)) < until)
    return stmt
