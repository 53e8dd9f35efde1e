"""Schema migrations through Alembic, on SQLite or PostgreSQL, from inside or outside an event loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

import migrations
from storage.db import Database


def alembic_config(connection: Any = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to `revision`; running it again changes nothing."""
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), revision))
    finally:
        await db.dispose()


async def revision(database_url: str, message: str) -> None:
    """Developer helper: autogenerate a revision against an up-to-date database."""
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(
                lambda c: command.revision(alembic_config(c), message=message, autogenerate=True)
            )
    finally:
        await db.dispose()
