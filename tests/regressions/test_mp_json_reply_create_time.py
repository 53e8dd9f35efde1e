"""Regression: the Mini Program's JSON passive reply (the one it takes: transfer_customer_service)
carried `"CreateTime": "1795312800"`, a string, because the XML reply was turned into JSON field by
field. WeChat's JSON reply format has CreateTime as a number (wechat-protocol.md §3.4 and the MP
customer-service doc), so it is converted; plaintext and safe mode alike."""

from __future__ import annotations

import pytest

from tests.support.mp_support import PUSH, MiniProgram

USER = "oMPuser000000000000000000001"


@pytest.mark.parametrize("encrypted", [False, True], ids=["plaintext", "safe"])
async def test_json_reply_create_time_is_a_number(mp: MiniProgram, encrypted: bool) -> None:
    signed = mp.sign(mp.text(USER, "人工"), encrypted=encrypted)
    response = await mp.client.post(PUSH, params=signed.params, content=signed.body)
    assert response.status_code == 200, response.text
    reply = mp.open_json_reply(response, signed.params["nonce"])
    assert reply == {"ToUserName": USER, "FromUserName": mp.account, "CreateTime": mp.now(),
                     "MsgType": "transfer_customer_service"}
    assert type(reply["CreateTime"]) is int


async def test_xml_reply_is_unchanged(mp: MiniProgram) -> None:
    signed = mp.sign(mp.text(USER, "人工"), fmt="xml")
    response = await mp.client.post(PUSH, params=signed.params, content=signed.body)
    assert response.headers["content-type"].startswith("application/xml")
    assert f"<CreateTime>{mp.now()}</CreateTime>" in response.text
