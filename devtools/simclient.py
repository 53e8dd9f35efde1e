"""WeChat's side of the webhook for the development tools: it lives in the product now
(bot/simulator/wechatside.py, which /simulator needs), re-exported here for `wxbot chat`, benches, tests."""

from __future__ import annotations

from bot.simulator.wechatside import SignedPush, WeChatSide, xml_message

__all__ = ["SignedPush", "WeChatSide", "xml_message"]
