"""A demo-mode site for the simulator's browser tests: a SQLite database (optionally seeded through the
whole app), then served live for Chromium. Demo mode (no app secret) with an AES key: safe mode."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from storage.clock import FrozenClock
from tests.support import backends, browser
from tests.support.console_site import Seed, Site
from tests.support.fakes import make_app, make_settings, serving


@contextmanager
def simulator_site(
    template: Path, folder: Path, clock: FrozenClock, seed: Seed | None = None, **overrides: Any,
) -> Iterator[Site]:
    db_file = folder / "simulator.db"
    shutil.copy(template, db_file)
    settings = make_settings(f"sqlite:///{db_file}", f"memory://simulator-{secrets.token_hex(4)}", **overrides)

    async def prepare() -> None:
        async with serving(make_app(settings, clock), clock) as wechat:
            await seed(wechat)  # type: ignore[misc]  # only called when given

    if seed is not None:
        backends.run(prepare())
    with browser.live(make_app(settings, clock)) as url:
        yield Site(url, settings.database_url)
