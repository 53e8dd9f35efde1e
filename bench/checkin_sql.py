"""Counts the SQL statements of one `签到` through the whole app (a first check-in of the day), in-process.

Counted from the `sqlalchemy.engine` echo log, which shows SQLAlchemy's statements and those storage.db
sends straight to the driver alike; each is labelled by the way it went (`direct` or `sqlalchemy`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from bench.breakdown import asgi_call
from bench.webhook import TOKEN, make_openids, seed_members
from bot.app import create_app
from bot.migrate import upgrade
from bot.settings import Settings, new_pii_key
from devtools.simclient import WeChatSide


async def main_async(database_url: str, redis_url: str, checkins: int) -> None:
    await upgrade(database_url)
    names = make_openids(checkins + 1)
    await seed_members(database_url, names)
    settings = Settings(
        wechat_token=TOKEN, wechat_appsecret="", wechat_appid="", wechat_aes_key="",
        database_url=database_url, redis_url=redis_url, admin_token=secrets.token_urlsafe(24),
        pii_key=new_pii_key(), log_level="WARNING",
    )
    side = WeChatSide(TOKEN)
    app = create_app(settings)
    statements: Counter[str] = Counter()
    engine_log = logging.getLogger("sqlalchemy.engine.Engine")

    class Count(logging.Handler):
        """The echo log: a statement, then a line of its parameters ("[direct] ..." on the driver path,
        "[generated ...]" or "[cached ...]" through SQLAlchemy); BEGIN and COMMIT have none."""

        last = ""

        def emit(self, record: logging.LogRecord) -> None:
            line = record.getMessage()
            word = line.split()[0] if line else ""
            if word in ("BEGIN", "COMMIT", "ROLLBACK"):  # SQLite's BEGIN IMMEDIATE follows BEGIN (implicit)
                if line != "BEGIN IMMEDIATE":
                    statements[f"{'sqlalchemy':<10} {word}"] += 1
                self.last = ""
            elif not line.startswith("["):
                self.last = line
            elif self.last:
                way = "direct" if line.startswith("[direct]") else "sqlalchemy"
                statements[f"{way:<10} {' '.join(self.last.split()[:3])[:60]}"] += 1

    counter = Count()
    async with app.router.lifespan_context(app):
        push = side.sign(side.text(names[0], "签到"))  # warm-up: pools, caches
        await asgi_call(app, push.params, push.body)
        level = engine_log.level
        engine_log.addHandler(counter)
        engine_log.setLevel(logging.INFO)
        try:
            for name in names[1:]:
                push = side.sign(side.text(name, "签到"))
                await asgi_call(app, push.params, push.body)
        finally:
            engine_log.removeHandler(counter)
            engine_log.setLevel(level)
    total = sum(n for text, n in statements.items() if not text.endswith(("BEGIN", "COMMIT", "ROLLBACK")))
    backend = database_url.split(":")[0]
    print(f"{total / checkins:.1f} SQL statements per check-in, transaction control aside ({checkins}, {backend})")
    for text, n in statements.most_common():
        print(f"{n / checkins:6.2f}  {text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="memory://")
    parser.add_argument("--checkins", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wxbot-sql-"))
    try:
        asyncio.run(main_async(args.database_url or f"sqlite:///{tmp / 'sql.db'}", args.redis_url, args.checkins))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
