"""WeRoBot, the stateful peer: the same three messages answered from WeRoBot's session, which stores a
member's check-in day and points (its default SQLite session when PEER_SESSION names a file; no session
when it is empty). Runs only in the peer venv bench/compare.py makes (`pip install werobot gunicorn`):
`gunicorn -w 1 bench.peers.werobot_app:app`. Not part of the product and never imported by it."""

from __future__ import annotations

import datetime
import os
from typing import Any

import werobot  # type: ignore[import-not-found]
from werobot.session.sqlitestorage import SQLiteStorage  # type: ignore[import-not-found]

SESSION = os.environ.get("PEER_SESSION", "")
TOKEN = os.environ.get("WECHAT_TOKEN", "wxbot-dev-token")
# session_storage=False would be taken for "not given" (and the default SQLite session used): SESSION_STORAGE
# goes into the config as it is.
robot = werobot.WeRoBot(token=TOKEN, SESSION_STORAGE=SQLiteStorage(SESSION) if SESSION else False)
HELP = "欢迎来到会员俱乐部！回复「签到」每日领积分，回复「积分」查余额。"


@robot.text
def text(message: Any, session: Any = None) -> str:
    if session is None:
        return HELP
    content = message.content.strip()
    if content == "签到":
        today = datetime.date.today().isoformat()
        if session.get("day") == today:
            return f"今天已经签到过了，当前积分 {session.get('points', 0)}"
        session["day"] = today
        session["points"] = session.get("points", 0) + 10
        return f"签到成功，积分 +10，当前积分 {session['points']}"
    if content == "积分":
        return f"当前积分 {session.get('points', 0)}"
    return HELP


def app(environ: dict[str, Any], start_response: Any) -> Any:
    if environ.get("PATH_INFO") == "/healthz":
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "15")])
        return [b'{"status":"ok"}']
    return robot.wsgi(environ, start_response)
