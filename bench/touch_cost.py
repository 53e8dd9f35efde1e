"""What recording interaction days adds to the touch (issue 15), measured in-process: the CPU of one touch
with the interaction-day write (storage/members.touch_member: one CTE statement on PostgreSQL, a second
statement on SQLite) against the touch statement as it was before (the same upsert without the day),
for first contacts and for stale touches of existing rows, in alternating blocks, lowest of the rounds.
Run by hand; see docs/benchmarks.md ("Interaction days").

    .venv/bin/python -m bench.touch_cost                                  # SQLite in a temporary file
    .venv/bin/python -m bench.touch_cost --database-url postgresql://root@127.0.0.1:5432/wxbot_bench_touch
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, or_

from bench.harness import migrate
from storage import members
from storage.db import Database
from storage.direct import Statement, attach, fetch_first
from storage.models import Member
from storage.rows import table_of

TZ = ZoneInfo("Asia/Shanghai")
_MEMBERS = table_of(Member)


def _build_before(insert: Any, column: str) -> Any:
    """The touch statement before issue 15 (storage/members.py at 94cda3e)."""
    return insert(_MEMBERS).values(
        {column: bindparam("who"), "created_at": bindparam("now"), "last_interaction_at": bindparam("now")}
    ).on_conflict_do_update(
        index_elements=[column], set_={"last_interaction_at": bindparam("now")},
        where=or_(_MEMBERS.c.last_interaction_at.is_(None), _MEMBERS.c.last_interaction_at < bindparam("stale")),
    ).returning(*_MEMBERS.c)


_BEFORE = Statement("bench.touch_before", _build_before)


async def touch_before(session: Any, openid: str, now: datetime) -> None:
    params = {"who": openid, "now": now, "stale": now - members.TOUCH_GRANULARITY}
    row = await fetch_first(session, _BEFORE, params, "openid")
    if row is not None:
        attach(session, Member, row)


async def touch_after(session: Any, openid: str, now: datetime) -> None:
    await members.touch_member(session, openid, now, "oa", TZ)


async def block(db: Database, variant: str, openids: list[str], now: datetime) -> float:
    """CPU seconds per touch over the block, each touch in its own transaction (as in the pipeline)."""
    touch = touch_before if variant == "before" else touch_after
    started = time.process_time()
    for openid in openids:
        async with db.unit_of_work() as session:
            await touch(session, openid, now)
    return (time.process_time() - started) / len(openids)


async def measure(url: str, count: int, rounds: int) -> dict[str, float]:
    db = Database(url)
    best: dict[str, float] = {}
    now = datetime(2026, 11, 22, 2, tzinfo=UTC)
    try:
        for round_ in range(rounds):
            for variant in ("before", "after") if round_ % 2 == 0 else ("after", "before"):
                fresh = [f"oTOUCH{variant}{round_}{secrets.token_hex(8)}" for _ in range(count)]
                first = await block(db, variant, fresh, now)
                stale = await block(db, variant, fresh, now + timedelta(minutes=2 + round_))  # written again
                for name, value in ((f"{variant} first contact", first), (f"{variant} stale touch", stale)):
                    best[name] = min(best.get(name, value), value)
    finally:
        await db.dispose()
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--count", type=int, default=2000, help="touches per block (default 2000)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds, alternating the order (default 4)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'touch.db'}"
        migrate({**os.environ, "DATABASE_URL": url}, Path(tmp))
        best = asyncio.run(measure(url, args.count, args.rounds))
    print(f"touch CPU per call on {url.split(':')[0]}, lowest of {args.rounds} rounds of {args.count}")
    for kind in ("first contact", "stale touch"):
        before, after = best[f"before {kind}"], best[f"after {kind}"]
        print(f"  {kind:14s} before {before * 1e3:6.3f} ms   after {after * 1e3:6.3f} ms   "
              f"added {(after - before) * 1e3:+6.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
