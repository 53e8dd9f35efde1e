"""WeChat's customer-service window, counted in the KV: a member's message opens 5 sends for 48 h;
a follow, scan or menu click opens 3 for one minute (never shrinking a bigger window)."""

from __future__ import annotations

from storage.kv import KV, member_tag

MESSAGE_QUOTA, MESSAGE_WINDOW = 5, 48 * 3600
EVENT_QUOTA, EVENT_WINDOW = 3, 60
_TAKE = """
local v = redis.call('get', KEYS[1])
if v and tonumber(v) > 0 then return redis.call('decr', KEYS[1]) end
return -1
"""


def key(source: str, openid: str) -> str:
    return f"wxbot:cswin:{member_tag(source, openid)}"


OPENING_EVENTS = ("subscribe", "scan", "click", "user_enter_tempsession")


def opening(is_event: bool, event: str = "") -> tuple[int, int, bool] | None:
    """What an inbound message or event opens: (sends, seconds, only if none is open), or None.
    The webhook opens it with the rest of its intake (bot/inbound/intake.py), in one script."""
    if not is_event:
        return MESSAGE_QUOTA, MESSAGE_WINDOW, False
    if event in OPENING_EVENTS:
        return EVENT_QUOTA, EVENT_WINDOW, True
    return None


async def opened_by_message(kv: KV, source: str, openid: str) -> None:
    await kv.set(key(source, openid), MESSAGE_QUOTA, ex=MESSAGE_WINDOW)


async def take(kv: KV, source: str, openid: str) -> bool:
    """Use one send of the window; False when it is closed or used up."""
    return int(await kv.eval(_TAKE, [key(source, openid)], [])) >= 0


async def close(kv: KV, source: str, openid: str) -> None:
    """WeChat said 45015 or 45047: believe it until the member writes again."""
    await kv.delete(key(source, openid))
