"""Instructions per chat message, counted by callgrind: a figure that does not move with the machine's load
(issue 20), for comparing this tree with a baseline commit in the same run.

    .venv/bin/python bench/instructions.py --baseline 7e2bef9
    .venv/bin/python bench/instructions.py --baseline HEAD~3 --mix 帮助 --messages 100,300

Each measurement is one process under `valgrind --tool=callgrind` with instrumentation off while it starts,
seeds fresh members, builds the app (PostgreSQL + Redis) and sends `--warmup` messages; then instrumentation
is switched on (callgrind_control) and `--messages` more messages go through the whole ASGI app in turn (the
signature, the XML, the pipeline, the handler, the reply: everything but the HTTP server). Two counts, for a
few and for more messages, give the cost of one message as the slope, without what switching on costs.
The baseline's code runs from a git worktree of that commit on PYTHONPATH (this script, this venv), and the
worktree is removed after.
Counts are of this process only: PostgreSQL's and Redis's own work is not in them.

The members are seeded joined and each message is `--mix` in turn from `--members` members, after warm-up
messages that did each member's first check-in and recorded their interaction; the interaction is recorded
again once an hour instead of once a minute (under callgrind a minute is a few messages), so the figures are
those of members who chat within a minute. Needs valgrind (Debian's package).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.compare import DEFAULT_PG, DEFAULT_REDIS, ensure_database
from bench.harness import BIN, HERE, migrate
from bench.webhook import server_env

ROOT = HERE.parent
MIX = "签到,积分,hello"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--baseline", help="a commit to measure beside this tree (a git worktree of it)")
    add("--mix", default=MIX, help=f"the messages, comma-separated, sent in turn (default {MIX})")
    add("--members", type=int, default=100, help="members sending them (default 100)")
    add("--warmup", type=int, default=300, help="messages before counting (default 300)")
    add("--messages", default="100,300", help="the two counts of counted messages (default 100,300)")
    add("--database-url", default=DEFAULT_PG, help=f"PostgreSQL (default {DEFAULT_PG}, created if missing)")
    add("--redis-url", default=DEFAULT_REDIS, help=f"Redis (default {DEFAULT_REDIS})")
    add("--worker", action="store_true", help=argparse.SUPPRESS)  # one measured process
    add("--count", type=int, default=0, help=argparse.SUPPRESS)
    add("--marker", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- one measured process -----------------------------------------------------------------------------------


async def work(args: argparse.Namespace) -> None:
    import storage.members as members_module
    from bench.breakdown import TOKEN, asgi_call
    from bench.webhook import seed_members
    from bot.app import create_app
    from bot.inbound import intake
    from bot.settings import Settings, new_pii_key
    from devtools.simclient import WeChatSide

    members_module.TOUCH_GRANULARITY = intake.TOUCH_GRANULARITY = timedelta(hours=1)
    tag = secrets.token_hex(4)
    openids = [f"oINS{tag}{i:016d}" for i in range(args.members)]
    await seed_members(args.database_url, openids)
    settings = Settings(
        wechat_token=TOKEN, wechat_appsecret="", wechat_appid="", wechat_aes_key="",
        database_url=args.database_url, redis_url=args.redis_url, admin_token=secrets.token_urlsafe(24),
        pii_key=new_pii_key(), log_level="WARNING", reply_deadline=4.8,
    )
    # Under callgrind a message takes a good part of a second: what runs by the clock would be counted in
    # proportion to how long the run takes, so more on a busy machine. Off here: renewing a delivery's
    # lease (every second with the usual 3 s lease) and the late-delivery sweep (every 5 s).
    app = create_app(settings.model_copy(update={"delivery_lease": 600.0, "late_sweep_interval": 86_400.0}))
    side, mix = WeChatSide(TOKEN), args.mix.split(",")
    requests = []
    for n in range(args.warmup + args.count):
        push = side.sign(side.text(openids[n % len(openids)], mix[n % len(mix)]))
        requests.append((push.params, push.body))
    marker = Path(args.marker)
    async with app.router.lifespan_context(app):
        for request in requests[:args.warmup]:
            await asgi_call(app, *request)
        marker.with_suffix(".warm").touch()
        # The parent switches instrumentation on meanwhile, then makes the file: another process's signal.
        while not marker.with_suffix(".go").exists():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for request in requests[args.warmup:]:
            await asgi_call(app, *request)


# --- the parent ---------------------------------------------------------------------------------------------


def start(code: Path, count: int, args: argparse.Namespace, tmp: Path, label: str) -> tuple[subprocess.Popen, Path]:
    marker = tmp / f"{label}-{count}"
    out = marker.with_suffix(".callgrind")
    env = {**os.environ, "PYTHONPATH": str(code)}
    argv = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
        str(BIN / "python"), str(HERE / "instructions.py"), "--worker", "--count", str(count),
        "--marker", str(marker), "--mix", args.mix, "--members", str(args.members), "--warmup", str(args.warmup),
        "--database-url", args.database_url, "--redis-url", args.redis_url,
    ]
    log = (tmp / f"{label}-{count}.log").open("w")
    return subprocess.Popen(argv, env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT), marker


def finish(proc: subprocess.Popen, marker: Path) -> int:
    """Switch instrumentation on once the process is warm; the instructions it then counted."""
    while not marker.with_suffix(".warm").exists():
        if proc.poll() is not None:
            raise SystemExit(f"instructions: a measured process failed; see {marker.with_suffix('.log')}")
        time.sleep(0.5)
    subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
    marker.with_suffix(".go").touch()
    if proc.wait() != 0:
        raise SystemExit(f"instructions: a measured process failed; see {marker.with_suffix('.log')}")
    for line in marker.with_suffix(".callgrind").read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit("instructions: callgrind wrote no total")


def measure(code: Path, args: argparse.Namespace, tmp: Path, label: str) -> float:
    """Instructions per message: the slope between the two counts (both processes run at once)."""
    few, more = (int(n) for n in args.messages.split(","))
    started = [start(code, few, args, tmp, label), start(code, more, args, tmp, label)]
    totals = [finish(proc, marker) for proc, marker in started]
    return (totals[1] - totals[0]) / (more - few)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        logging.basicConfig(level=logging.WARNING)
        import uvloop

        uvloop.run(work(args))
        return 0
    if shutil.which("valgrind") is None:
        print("instructions: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    ensure_database(args.database_url)
    tmp = Path(tempfile.mkdtemp(prefix="wxbot-instructions-"))
    migrate(server_env(args.database_url, args.redis_url, "WARNING"), tmp)
    figures: dict[str, float] = {}
    try:
        if args.baseline:
            base = tmp / "baseline"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(base),
                            args.baseline], check=True)
            try:
                figures[f"baseline {args.baseline}"] = measure(base, args, tmp, "baseline")
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)
        figures["this tree"] = measure(ROOT, args, tmp, "tree")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ninstructions per message, mix {args.mix}, {args.members} members, PostgreSQL + Redis (callgrind)\n")
    print("| code | instructions per message | against the first |")
    print("| --- | --- | --- |")
    first = next(iter(figures.values()))
    for name, value in figures.items():
        print(f"| {name} | {value / 1e6:.2f} M | {value / first - 1:+.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
