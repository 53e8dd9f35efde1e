"""`wxbot menu push|show`: the account's menus from the rules file to WeChat, and back."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from bot.settings import Settings

DEMO_NOTE = "demo mode (no WECHAT_APPSECRET): nothing left this machine; the calls are recorded in outbound_call"


def add_menu_parser(sub: Any) -> None:
    menu = sub.add_parser("menu", help="the account's custom menu ([menu] in the rules file)")
    menu_sub = menu.add_subparsers(dest="menu_command", required=True)
    push = menu_sub.add_parser("push", help="validate the [menu] rules and create the default and staff menus")
    push.set_defaults(func=cmd_menu)
    show = menu_sub.add_parser("show", help="print the menus WeChat has now")
    show.set_defaults(func=cmd_menu)


def _dump(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, indent=2)


def _report(path: str, body: dict[str, Any]) -> None:
    print(f"{path}:\n{_dump(body)}", flush=True)


def cmd_menu(args: argparse.Namespace) -> int:
    from bot.runtime import wechat_runtime
    from bot.wechat.client import WeChatError
    from bot.wechat.menu import meaning, push_menus, show_menus
    from storage.rules import RulesError, load_rules

    settings = Settings()
    try:
        rules = load_rules(settings.rules_file)
    except RulesError as exc:
        print(f"wxbot: rules file refused, nothing sent: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        async with wechat_runtime(settings) as api:
            if args.menu_command == "show":
                print(_dump(await show_menus(api)))
                return
            await push_menus(api, rules.menu, rules.staff_menu, _report)

    try:
        asyncio.run(run())
    except WeChatError as exc:
        print(f"wxbot: menu {args.menu_command}: {meaning(exc)}", file=sys.stderr)
        return 1
    if settings.demo:
        print(DEMO_NOTE)
    return 0
