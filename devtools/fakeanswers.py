"""The fake WeChat API's answers: errcode/errmsg as WeChat words them, shared by fakewechat and fakemenu."""

from __future__ import annotations

from typing import Any

Answer = dict[str, Any]

ERRMSG: dict[int, str] = {
    -1: "system error",
    0: "ok",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid appid",
    40014: "invalid access_token",
    40029: "invalid code",
    40037: "invalid template_id",
    40097: "invalid args",
    40125: "invalid appsecret",
    40226: "high risk user",
    41001: "access_token missing",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    44002: "empty post data",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit, must slower, retry next minute",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
    47003: "argument invalid!",
    48001: "api unauthorized",
    # custom menus and user tags (devtools/fakemenu.py)
    40016: "invalid button size", 40017: "invalid button type", 40018: "invalid button name size",
    40019: "invalid button key size", 40020: "invalid button url size", 40023: "invalid sub button size",
    40024: "invalid sub button type", 40025: "invalid sub button name size", 40026: "invalid sub button key size",
    40027: "invalid sub button url size", 45157: "invalid tag name",
    45059: "tag count exceeded", 45159: "invalid tag id", 46003: "menu no exist", 65301: "no such menuid",
    65303: "there is no selfmenu, please create selfmenu first", 65304: "match rule empty",
}


def error(code: int, detail: str = "") -> Answer:
    message = ERRMSG.get(code, "fake error")
    return {"errcode": code, "errmsg": f"{message} {detail}".strip()}


def ok(**extra: Any) -> Answer:
    return {"errcode": 0, "errmsg": "ok", **extra}
