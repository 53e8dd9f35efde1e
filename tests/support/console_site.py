"""A console site for the browser tests: a SQLite database seeded through the whole app (members signed
up in the chat, one operator per role), then the same database served live for Chromium."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.clock import FrozenClock
from storage.db import Database
from tests.support import backends, browser
from tests.support.console_support import PASSWORD, ROLES, add_operator
from tests.support.fakes import WeChat, make_app, make_settings, serving

Seed = Callable[[WeChat], Awaitable[None]]


@dataclass
class Site:
    url: str
    database_url: str

    def read(self, work: Callable[[Database], Awaitable[object]]) -> object:
        """Run `work` against the site's database from the test's thread (its own engine)."""

        async def run() -> object:
            db = Database(self.database_url)
            try:
                return await work(db)
            finally:
                await db.dispose()

        return backends.run(run())


def sign_in(page: Any, site: Site, name: str, target: str = "/admin") -> None:
    """Open `target` in the browser, which asks for a sign-in first, and sign in as the operator `name`
    (one of ROLES, made by console_site with PASSWORD)."""
    page.goto(f"{site.url}{target}")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


@contextmanager
def console_site(template: Path, folder: Path, clock: FrozenClock, seed: Seed | None = None) -> Iterator[Site]:
    db_file = folder / "site.db"
    shutil.copy(template, db_file)
    settings = make_settings(f"sqlite:///{db_file}", f"memory://site-{secrets.token_hex(4)}")

    async def prepare() -> None:
        async with serving(make_app(settings, clock), clock) as wechat:
            for role in ROLES:
                await add_operator(wechat.services.db, role, role, clock.now())
            if seed is not None:
                await seed(wechat)

    backends.run(prepare())
    with browser.live(make_app(settings, clock)) as url:
        yield Site(url, settings.database_url)
