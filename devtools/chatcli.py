"""`wxbot chat`: a terminal member. Posts real signed (optionally encrypted) XML to a server and
prints the replies.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx

from bot.settings import Settings
from devtools.simclient import WeChatSide

USAGE = (
    "Type a message as a member would (try 帮助 or 注册). Special lines:\n"
    "  /subscribe [scene]   follow the account (optionally through a QR scene, e.g. ref_ABC123)\n"
    "  /scan SCENE          scan a QR code while following\n"
    "  /click KEY           press a menu button (SIGNUP, CHECKIN, BALANCE, REDEEM, CAMPAIGNS, HELP)\n"
    "  /unsubscribe         unfollow\n"
    "  /quit                leave\n"
)


def build_fields(side: WeChatSide, openid: str, line: str) -> dict[str, Any]:
    if not line.startswith("/"):
        return side.text(openid, line)
    command, _, arg = line[1:].partition(" ")
    arg = arg.strip()
    if command == "subscribe":
        return side.event(openid, "subscribe", f"qrscene_{arg}" if arg else None)
    if command == "scan":
        return side.event(openid, "SCAN", arg)
    if command == "click":
        return side.event(openid, "CLICK", arg.upper())
    if command == "unsubscribe":
        return side.event(openid, "unsubscribe")
    raise ValueError(f"unknown command /{command}")


def describe(reply: dict[str, Any] | None) -> str:
    if reply is None:
        return "(no reply: success)"
    kind = reply.get("MsgType")
    if kind == "text":
        return str(reply.get("Content", ""))
    if kind == "transfer_customer_service":
        return "(handed to a human agent)"
    if kind == "news":
        items = reply.get("Articles", {}).get("item", [])
        items = items if isinstance(items, list) else [items]
        return "\n".join(f"[{i.get('Title')}] {i.get('Description')} {i.get('Url')}" for i in items)
    return f"({kind} reply)"


def run_chat(settings: Settings, url: str, openid: str, *, encrypted: bool = False) -> int:
    if encrypted and not settings.wechat_aes_key:
        print("--encrypted needs WECHAT_AES_KEY (and the same WECHAT_APPID) as the server", file=sys.stderr)
        return 2
    side = WeChatSide(settings.wechat_token, appid=settings.oa_appid, aes_key=settings.wechat_aes_key)
    print(USAGE)
    with httpx.Client(timeout=10) as client:
        for raw in sys.stdin if not sys.stdin.isatty() else iter(lambda: input("you> "), None):
            line = raw.strip()
            if not line:
                continue
            if line == "/quit":
                break
            try:
                push = side.sign(build_fields(side, openid, line), encrypted=encrypted)
                response = client.post(url, params=push.params, content=push.body)
            except (ValueError, httpx.HTTPError) as exc:
                print(f"!! {exc}")
                continue
            if response.status_code != 200:
                print(f"!! HTTP {response.status_code}: {response.text}")
                continue
            print("bot> " + describe(side.open_reply(response.content)).replace("\n", "\n     "))
    return 0
