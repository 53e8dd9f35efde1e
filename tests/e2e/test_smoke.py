from __future__ import annotations

from handlers import texts
from tests.support.fakes import WeChat


async def test_help_and_welcome_plain_and_safe_mode(wechat: WeChat) -> None:
    assert await wechat.say("oUSER1", "帮助") == texts.HELP_VISITOR
    assert await wechat.say("oUSER1", " HELP ", encrypted=True) == texts.HELP_VISITOR
    reply = await wechat.event("oUSER1", "subscribe")
    assert reply is not None
    assert reply["Content"] == texts.WELCOME
