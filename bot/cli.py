"""The `wxbot` command: serve, demo, migrate, keygen, chat, staff, operators, menu, jobs, codes."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from bot import logs
from bot.menu_cli import add_menu_parser
from bot.operators_cli import add_operators_parser
from bot.settings import Settings, SettingsError, new_pii_key
from scheduler.jobs import JOBS

JOB_NAMES = list(JOBS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:
        print(f"wxbot: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wxbot", description="WeChat loyalty bot")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the webhook and API server")
    _host_port(serve)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="everything in one process on the embedded defaults")
    _host_port(demo)
    demo.add_argument("--no-history", dest="history", action="store_false",
                      help="skip the year of demo activity behind the dashboard (made once, on the first run)")
    demo.set_defaults(func=cmd_demo)

    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(func=cmd_migrate)

    keygen = sub.add_parser("keygen", help="print a fresh PII_KEY")
    keygen.set_defaults(func=lambda args: print(new_pii_key()))

    chat = sub.add_parser("chat", help="chat with a running server as a member, from the terminal")
    chat.add_argument("--openid", default="oDEMOmember0000000000000001")
    chat.add_argument("--url", default="http://127.0.0.1:8000",
                      help="the server's base URL (/wechat is added) or the webhook's full URL")
    chat.add_argument("--encrypted", action="store_true", help="use safe mode (needs WECHAT_AES_KEY)")
    chat.set_defaults(func=cmd_chat)

    sched = sub.add_parser("scheduler", help="run the push process (jobs on the leader, the sender everywhere)")
    sched.set_defaults(func=cmd_scheduler)

    jobs = sub.add_parser("jobs", help="scheduler jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    jobs_run = jobs_sub.add_parser("run", help="run one job now, as of --at (re-run a missed day)")
    jobs_run.add_argument("name", choices=[*JOB_NAMES, "sender"])
    jobs_run.add_argument("--at", help="ISO time, e.g. 2026-11-22T09:00:00+08:00 (default: now)")
    jobs_run.set_defaults(func=cmd_jobs_run)
    jobs_list = jobs_sub.add_parser("list", help="each job and its next run")
    jobs_list.set_defaults(func=cmd_jobs_list)

    staff_cmd = sub.add_parser("staff", help="community managers and admins")
    staff_sub = staff_cmd.add_subparsers(dest="staff_command", required=True)
    staff_add = staff_sub.add_parser("add", help="make OPENID a manager (or admin)")
    staff_add.add_argument("openid")
    staff_add.add_argument("--role", choices=["manager", "admin", "service", "clerk"], default="manager")
    staff_add.add_argument("--store", help="the store code a clerk verifies coupons for (required for --role clerk)")
    staff_add.set_defaults(func=cmd_staff)
    staff_remove = staff_sub.add_parser("remove", help="OPENID is no longer staff")
    staff_remove.add_argument("openid")
    staff_remove.set_defaults(func=cmd_staff)
    staff_list = staff_sub.add_parser("list", help="every staff member")
    staff_list.set_defaults(func=cmd_staff)

    add_menu_parser(sub)
    add_operators_parser(sub)

    codes = sub.add_parser("codes", help="reward code pools")
    codes_sub = codes.add_subparsers(dest="codes_command", required=True)
    codes_import = codes_sub.add_parser("import", help="import a CSV of codes (first column) into a reward")
    codes_import.add_argument("reward_id", type=int)
    codes_import.add_argument("file")
    codes_import.set_defaults(func=cmd_codes_import)

    fake = sub.add_parser("fake-wechat", help="run a fake WeChat API (tokens, sends, QR, login) for tests")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, required=True)
    fake.set_defaults(func=cmd_fake_wechat)
    return parser


def _host_port(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings()
    logs.configure(settings.log_level)
    settings.check_production()
    uvicorn.run(
        "bot.app:serve_app", factory=True, host=args.host, port=args.port,
        workers=args.workers, log_config=None, access_log=False,
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.app import create_app
    from bot.demo import DEMO_MANAGER, DEMO_OPERATOR, demo_password, seed, seed_history_in_background
    from bot.migrate import upgrade
    from storage.clock import SystemClock

    settings = Settings().with_demo_secrets()
    logs.configure(settings.log_level)
    asyncio.run(upgrade(settings.database_url))
    if asyncio.run(seed(settings, SystemClock().now())):
        print("seeded the demo catalogue (回复【兑换】 to see it)")
    if args.history:
        seed_history_in_background(settings, SystemClock().now())
        print("demo history: a year of demo activity for the dashboard is made in the background on the first run")
    url = f"http://{args.host}:{args.port}"
    simulator = (f"{url}/simulator    (chat as a member in the browser)" if settings.simulator_enabled
                 else "off (SIMULATOR=0)")
    print(
        "\nwxbot demo is running"
        f"\n  simulator:    {simulator}"
        f"\n  console:      {url}/admin    (sign in as {DEMO_OPERATOR}, password {demo_password()})"
        f"\n  API docs:     {url}/docs     {url}/redoc"
        f"\n  webhook:      {url}/wechat   (token {settings.wechat_token})"
        f"\n  health:       {url}/healthz  {url}/readyz  {url}/metrics"
        f"\n  admin token:  {settings.admin_token}"
        f"\n  database:     {settings.database_url}"
        f"\n  kv:           {settings.redis_url}"
        f"\n  mode:         {'demo (nothing leaves this machine)' if settings.demo else 'production'}"
        f"\nOr chat from another terminal:  .venv/bin/wxbot chat --url {url}"
        f"\nAs the demo community manager: .venv/bin/wxbot chat --url {url} --openid {DEMO_MANAGER}\n",
        flush=True,
    )
    app = create_app(settings, run_scheduler=True)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    import signal

    from bot.runtime import push_runtime

    settings = Settings()
    logs.configure(settings.log_level)
    settings.check_production()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with push_runtime(settings.with_demo_secrets()) as runtime:
            print("wxbot scheduler running (Ctrl-C to stop)", flush=True)
            await runtime.scheduler.run(stop)

    asyncio.run(run())
    return 0


def _parse_at(value: str | None):
    from datetime import datetime

    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise SettingsError(f"--at {value!r} is not an ISO time, e.g. 2026-11-22T09:00:00+08:00") from None
    if at.tzinfo is None:
        raise SettingsError("--at needs a time zone offset, e.g. 2026-11-22T09:00:00+08:00")
    return at


def cmd_jobs_run(args: argparse.Namespace) -> int:
    from bot.runtime import push_runtime, run_named_job

    settings = Settings()
    logs.configure(settings.log_level)
    at = _parse_at(args.at)

    async def run() -> int:
        async with push_runtime(settings.with_demo_secrets()) as runtime:
            return await run_named_job(runtime, args.name, at)

    print(f"{args.name}: {asyncio.run(run())}")
    return 0


def cmd_jobs_list(args: argparse.Namespace) -> int:
    from bot.runtime import push_runtime
    from storage.clock import SystemClock

    settings = Settings()

    async def run() -> None:
        async with push_runtime(settings.with_demo_secrets()) as runtime:
            for name, when in runtime.scheduler.next_runs(SystemClock().now()).items():
                print(f"{name:18} next run {when.isoformat() if when else '-'}")
            print(f"{'sender':18} runs continuously")

    asyncio.run(run())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from bot.migrate import upgrade

    settings = Settings()
    asyncio.run(upgrade(settings.database_url))
    print("database is up to date")
    return 0


def cmd_staff(args: argparse.Namespace) -> int:
    from storage.errors import NotFoundError

    try:
        print(asyncio.run(_staff(Settings(), args)))
    except (ValueError, NotFoundError) as exc:
        print(f"wxbot staff: {exc}", file=sys.stderr)
        return 2
    return 0


async def _staff(settings: Settings, args: argparse.Namespace) -> str:
    """`wxbot staff add|remove|list`: the same appoint/dismiss as the admin API and the console (audited
    as `cli`, tagged on WeChat)."""
    from bot import staffing
    from bot.runtime import wechat_runtime
    from storage import staff
    from storage.audit import Actor
    from storage.clock import SystemClock
    from storage.db import Database

    db = Database(settings.database_url)
    try:
        if args.staff_command == "list":
            async with db.sessions() as session:
                rows = await staff.all_staff(session)
            lines = [f"{s.openid}  {s.role}{'  store ' + s.store if s.store else ''}  added {s.created_at:%Y-%m-%d}"
                     for s in rows]
            return "\n".join(lines) or "no staff"
        who = staffing.Who(Actor("cli", "system"), SystemClock().now())
        async with wechat_runtime(settings) as api:
            if args.staff_command == "add":
                new = await staffing.appoint(db, api, who, args.openid, args.role, args.store)
                return f"{args.openid} is {'now' if new else 'still'} staff ({args.role})"
            gone = await staffing.dismiss(db, api, who, args.openid)
            return f"{args.openid} {'removed' if gone else 'was not staff'}"
    finally:
        await db.dispose()


def cmd_codes_import(args: argparse.Namespace) -> int:
    """The same import as the admin API and the console (bot/api/reward_input): every refused row is
    listed with its line and reason, the import is audited as the command line's."""
    import csv
    from pathlib import Path

    from bot.api.reward_input import CodeFile, import_code_file, read_code_file
    from bot.operators_cli import CLI
    from storage.clock import SystemClock
    from storage.db import Database
    from storage.errors import DomainError
    from storage.ledger import Ledger
    from storage.rewards import Rewards
    from storage.rules import load_rules

    settings = Settings()
    path = Path(args.file)
    if not path.is_file():
        print(f"wxbot: {path} does not exist", file=sys.stderr)
        return 2
    try:
        found = read_code_file(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, csv.Error) as exc:
        print(f"wxbot: {path} is not a UTF-8 CSV file ({exc.__class__.__name__})", file=sys.stderr)
        return 2
    if not found.codes:
        print(f"wxbot: no valid code in {path} ({found.received} rows refused)", file=sys.stderr)
        return 1

    async def run() -> CodeFile:
        db = Database(settings.database_url)
        try:
            async with db.unit_of_work() as session:
                rewards = Rewards(Ledger(load_rules(settings.rules_file), settings.tz))
                return await import_code_file(session, rewards, args.reward_id, found, CLI, SystemClock().now())
        finally:
            await db.dispose()

    try:
        result = asyncio.run(run())
    except DomainError as exc:
        print(f"wxbot: {exc}", file=sys.stderr)
        return 1
    for row in result.refused:
        print(f"line {row.line}: {row.reason} {row.code}")
    print(f"read {result.received} codes, added {len(result.codes)}, refused {len(result.refused)}")
    return 0


DEVTOOLS_MISSING = (
    "wxbot: `{command}` is a development tool: it ships with the source checkout, not with the installed "
    "package. Run it from a development install (`make install` in the repository)."
)


def cmd_chat(args: argparse.Namespace) -> int:
    try:
        from devtools.chatcli import run_chat
    except ImportError:
        print(DEVTOOLS_MISSING.format(command="wxbot chat"), file=sys.stderr)
        return 2
    return run_chat(Settings(), webhook_url(args.url), args.openid, encrypted=args.encrypted)


def webhook_url(url: str) -> str:
    """`wxbot chat --url`: a base URL (http://127.0.0.1:8000) gets /wechat; a full path is kept."""
    parts = urlsplit(url)
    if parts.path.rstrip("/"):
        return url
    return urlunsplit(parts._replace(path="/wechat"))


def cmd_fake_wechat(args: argparse.Namespace) -> int:
    import uvicorn

    try:
        from devtools.fakewechat import create_fake_wechat
    except ImportError:
        print(DEVTOOLS_MISSING.format(command="wxbot fake-wechat"), file=sys.stderr)
        return 2

    print(f"fake WeChat API on http://{args.host}:{args.port} (control API under /_fake/)", flush=True)
    uvicorn.run(create_fake_wechat(), host=args.host, port=args.port, access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
