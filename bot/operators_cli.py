"""`wxbot operators add|passwd|disable|list`: console accounts from the server's shell. A password is read
from standard input with --password-stdin, else generated and printed once. Each change is audited
(actor `cli`)."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from typing import Any

from bot.settings import Settings
from storage import audit, operators
from storage.audit import OPERATOR_ROLES, Actor
from storage.clock import SystemClock
from storage.db import Database
from storage.errors import ConflictError, NotFoundError

CLI = Actor("cli", "system")


def add_operators_parser(sub: Any) -> None:
    ops = sub.add_parser("operators", help="console accounts (operators and their roles)")
    ops_sub = ops.add_subparsers(dest="operators_command", required=True)
    add = ops_sub.add_parser("add", help="a new operator with a role")
    add.add_argument("name")
    add.add_argument("--role", choices=OPERATOR_ROLES, required=True)
    add.add_argument("--store", help="the store a clerk verifies coupons for (required for --role clerk)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    passwd = ops_sub.add_parser("passwd", help="set a new password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    disable = ops_sub.add_parser("disable", help="the operator can no longer sign in (sessions end at once)")
    disable.add_argument("name")
    ops_sub.add_parser("list", help="every operator")
    ops.set_defaults(func=cmd_operators)


def new_password() -> str:
    return secrets.token_urlsafe(12)


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """(password, generated)."""
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n"), False
    return new_password(), True


def cmd_operators(args: argparse.Namespace) -> int:
    settings = Settings()
    password, generated = ("", False) if args.operators_command in ("disable", "list") else _password(args)
    try:
        print(asyncio.run(_run(settings, args, password)))
    except (ValueError, ConflictError, NotFoundError) as exc:
        print(f"wxbot operators: {exc}", file=sys.stderr)
        return 2
    if generated:
        print(f"password: {password}  (shown once; change it with `wxbot operators passwd {args.name}`)")
    return 0


async def _run(settings: Settings, args: argparse.Namespace, password: str) -> str:
    db, now = Database(settings.database_url), SystemClock().now()
    command = args.operators_command
    try:
        async with db.unit_of_work() as session:
            if command == "list":
                rows = await operators.all_operators(session)
                return "\n".join(
                    f"{o.name}  {o.role}{'  store ' + o.store if o.store else ''}"
                    f"{'' if o.active else '  (disabled)'}" for o in rows
                ) or "no operators"
            if command == "add":
                found = await operators.add(session, args.name, args.role, password, now, store=args.store)
                after = {"name": found.name, "role": found.role, "store": found.store}
                await audit.record(session, CLI, "operator.add", f"operator:{found.name}", now=now, after=after)
                return f"operator {found.name} added ({found.role})"
            if command == "passwd":
                found = await operators.set_password(session, args.name, password, now)
                await audit.record(session, CLI, "operator.passwd", f"operator:{found.name}", now=now)
                return f"password of {found.name} changed"
            found = await operators.disable(session, args.name)
            await audit.record(session, CLI, "operator.disable", f"operator:{found.name}", now=now,
                               before={"active": True}, after={"active": False})
            return f"operator {found.name} disabled"
    finally:
        await db.dispose()
