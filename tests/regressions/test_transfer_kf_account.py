"""Regression: TransferToAgent(kf_account=...) rendered without the account.

bot/inbound/render.py built wechatpy's TransferCustomerServiceReply, which has no field for it, so a handler
asking for a specific agent silently got "any agent". The reply now carries TransInfo/KfAccount
(the form WeRoBot implements; wechat-protocol.md §4.2)."""

from __future__ import annotations

from bot.inbound.parse import parse_xml
from bot.inbound.render import render
from handlers.core.reply import TransferToAgent


def test_kf_account_is_rendered_as_trans_info() -> None:
    xml = render(TransferToAgent("kf2001@gh_000000000001"), account="gh_000000000001", openid="oU",
                 now=1716000001, is_event=False)
    fields = parse_xml(xml.encode())
    assert fields["MsgType"] == "transfer_customer_service"
    assert fields["TransInfo"] == {"KfAccount": "kf2001@gh_000000000001"}
    assert fields["ToUserName"] == "oU"


def test_without_kf_account_there_is_no_trans_info() -> None:
    xml = render(TransferToAgent(), account="gh", openid="oU", now=1, is_event=False)
    assert "TransInfo" not in xml
