"""Browser tests' plumbing: the whole app served by uvicorn on a spare port in a thread of its own, and
Debian's Chromium driven by Playwright (no browser download). Screenshots go to WXBOT_SCREENSHOTS, else
artifacts/screenshots/ in the checkout, for a person to look at."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

CHROMIUM = os.environ.get("WXBOT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("WXBOT_SCREENSHOTS") or ROOT / "artifacts" / "screenshots")


def missing() -> str | None:
    """Why browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live(app: Any) -> Iterator[str]:
    """Serve `app` (lifespan included) on 127.0.0.1 until the block ends; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name=f"live-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot under SCREENSHOTS (the name is the file's stem)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class Outbound:
    """Every request a page made to anywhere but this machine: a test asserts there were none."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, request: Any) -> None:
        url: str = request.url
        if not (url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:", "about:"))):
            self.seen.append(url)
