"""A birthday from the job to the fake WeChat API: points once, one greeting through the open window."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from bot.crypto import PiiCipher
from bot.runtime import make_api, make_sender
from devtools.fakewechat import create_fake_wechat
from scheduler.jobs import JobContext, birthday
from storage import cswindow, members
from storage.clock import FrozenClock
from storage.db import Database
from storage.kv import KV
from storage.ledger import Ledger
from storage.models import Outbox
from storage.rules import Rules
from tests.support.fakes import make_settings


@pytest.fixture
async def world(urls: tuple[str, str]) -> AsyncIterator[dict]:  # type: ignore[type-arg]
    settings = make_settings(*urls, wechat_appsecret="live-secret", wechat_api_base="http://fake.wechat")
    fake = create_fake_wechat()
    db, kv = Database(settings.database_url), KV(settings.redis_url)
    clock = FrozenClock(datetime(2026, 5, 20, 1, 0, tzinfo=UTC))  # 09:00 Shanghai on 20 May
    ledger = Ledger(Rules(), settings.tz)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake)) as http:
        api = make_api(settings, http, kv, db, clock)
        sender = make_sender(settings, db, kv, ledger, api, clock)
        yield {"db": db, "kv": kv, "ledger": ledger, "clock": clock, "sender": sender, "http": http,
               "pii": PiiCipher(settings.pii_key)}
    await kv.close()
    await db.dispose()


async def test_birthday_paid_once_and_greeted_once(world: dict) -> None:  # type: ignore[type-arg]
    db, ledger, clock = world["db"], world["ledger"], world["clock"]
    async with db.unit_of_work() as session:
        await members.sign_up(session, ledger, world["pii"], openid="oBDAY", source="oa", phone="13900001111",
                              birthday=(5, 20, 1990), now=clock.now())
    await cswindow.opened_by_message(world["kv"], "oa", "oBDAY")
    ctx = JobContext(db, ledger)
    assert await birthday(ctx, clock.now()) == 1
    assert await birthday(ctx, clock.now()) == 0  # a re-run changes nothing
    assert await world["sender"].run_once() == 1
    async with db.sessions() as session:
        row = await session.scalar(select(Outbox).where(Outbox.kind == "birthday"))
    assert row is not None
    assert row.status == "sent"
    assert row.channel == "cs"
    calls = (await world["http"].get("http://fake.wechat/_fake/calls?path=/cgi-bin/message/custom/send")).json()
    assert len(calls) == 1
    assert "生日快乐" in calls[0]["body"]["text"]["content"]
    assert "300" in calls[0]["body"]["text"]["content"]  # 100 sign-up + 200 birthday
