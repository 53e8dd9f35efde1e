"""Ticket codes were drawn at random without looking: a draw equal to an existing ticket's code broke the
unique constraint and the member's complaint was lost. A new ticket now takes a code no ticket holds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storage import codes
from tests.e2e.test_redeem_chat import join
from tests.support.fakes import WeChat
from tests.support.ticket_support import open_ticket, ticket

ALICE = "oALICE00000000000000collide"
BOB = "oBOB0000000000000000collide"


async def test_a_second_ticket_never_takes_the_first_ones_code(wechat: WeChat, monkeypatch: pytest.MonkeyPatch) -> None:
    draws: Iterator[str] = iter(["AAAAAA", "AAAAAA", "BBBBBB"])
    monkeypatch.setattr(codes, "random_code", lambda length: next(draws))
    await join(wechat, ALICE)
    await join(wechat, BOB, phone="13800138001")
    first = await open_ticket(wechat, ALICE, text="杯子有裂缝")
    second = await open_ticket(wechat, BOB, text="送货太慢")
    assert (first, second) == ("T-AAAAAA", "T-BBBBBB")
    assert (await ticket(wechat, second)).openid == BOB
