"""One `wxbot scheduler` process for the fault tests: a PushScheduler with its sender, against the
given database, Redis and fake WeChat, on a clock running at real speed from an instant the test
sets (and may move forward) in a file every process reads."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bot.runtime import make_api, make_sender
from scheduler.jobs import JobContext
from scheduler.main import PushScheduler
from storage.db import Database
from storage.kv import KV
from storage.ledger import Ledger
from storage.rules import Rules
from tests.support.fakes import make_settings
from tests.support.push_support import TEMPLATES


class OffsetClock:
    """Real time shifted by the offset (seconds) in a file: every process reading it agrees on the
    time, and the test moves them all forward at once by rewriting it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = float(path.read_text())
        self._checked = time.monotonic()

    def now(self) -> datetime:
        if time.monotonic() - self._checked > 0.05:
            self._checked = time.monotonic()
            self.offset = float(self.path.read_text() or self.offset)
        return datetime.fromtimestamp(time.time() + self.offset, UTC)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    for name in ("--db", "--redis", "--fake"):
        parser.add_argument(name, required=True)
    parser.add_argument("--clock", type=Path, required=True, help="a file: simulated minus real time, seconds")
    parser.add_argument("--lease", type=float, default=2.0, help="the leader's lease, seconds")
    parser.add_argument("--renew", type=float, default=0.5)
    parser.add_argument("--sender-lease", type=float, default=3.0)
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    settings = make_settings(
        args.db, args.redis, wechat_appsecret="oa-live-secret", wechat_api_base=args.fake,
        wechat_template_ids=TEMPLATES, wechat_push_qps=0,
    )
    clock = OffsetClock(args.clock)
    db, kv = Database(settings.database_url), KV(settings.redis_url)
    ledger = Ledger(Rules(), settings.tz)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with httpx.AsyncClient(timeout=10) as http:
        sender = make_sender(settings, db, kv, ledger, make_api(settings, http, kv, db, clock), clock)
        sender.config = replace(sender.config, lease=timedelta(seconds=args.sender_lease))
        scheduler = PushScheduler(JobContext(db, ledger), kv, clock, sender, lease=args.lease, renew_every=args.renew)
        print(scheduler.instance, flush=True)  # the test tells the leader by this id
        try:
            await scheduler.run(stop)
        finally:
            await kv.close()
            await db.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    for noisy in ("sqlalchemy", "httpx", "aiosqlite", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(main(parse(sys.argv[1:])))
