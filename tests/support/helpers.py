"""Helpers shared by the webhook tests: raw signed posts, reply envelopes checked the way WeChat would
check them, state snapshots (members, outbox, KV keys) and a counting handler installed at the port
the app exposes (`app.state.pipeline.conversation`)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlmodel import SQLModel

from bot.crypto import Envelope, sha1_signature
from bot.inbound.parse import parse_xml
from devtools.simclient import SignedPush, xml_message
from flows.engine import Conversation
from flows.store import FlowStore
from handlers.core.context import ChatContext
from handlers.core.message import Inbound
from handlers.core.reply import Reply, Text
from handlers.core.router import Router
from storage.db import Database
from storage.models import LedgerEntry, Member, Outbox
from tests.support.fakes import ACCOUNT, AES_KEY, APPID, TOKEN, WeChat

ENVELOPE_FIELDS = {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}


async def post_signed(wechat: WeChat, push: SignedPush, **params: str) -> httpx.Response:
    return await wechat.client.post(wechat.path, params={**push.params, **params}, content=push.body)


async def post_raw(wechat: WeChat, params: dict[str, str], body: bytes | str) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return await wechat.client.post(wechat.path, params=params, content=content)


def plain_params(wechat: WeChat, *, timestamp: int | None = None, nonce: str = "123456789") -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(wechat.side.now()))
    return {"signature": sha1_signature(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}


def safe_push(
    wechat: WeChat,
    encrypt: str,
    *,
    extra_fields: dict[str, Any] | None = None,
    nonce: str = "415670741",
) -> SignedPush:
    """A safe-mode push whose Encrypt is given verbatim, with valid signature and msg_signature."""
    params = plain_params(wechat, nonce=nonce)
    params["encrypt_type"] = "aes"
    params["msg_signature"] = sha1_signature(TOKEN, params["timestamp"], nonce, encrypt)
    fields = {"ToUserName": ACCOUNT, **(extra_fields or {}), "Encrypt": encrypt}
    return SignedPush(params, xml_message(fields).encode())


def open_reply(
    response: httpx.Response, push: SignedPush, *, encrypted: bool, now: int, openid: str | None = None
) -> dict[str, Any] | None:
    """The reply's fields, checked as WeChat checks them; None for `success`.

    Safe mode: the envelope carries exactly Encrypt/MsgSignature/TimeStamp/Nonce, the Nonce echoes
    the request's, the MsgSignature is valid, and the Encrypt opens with our key and appid."""
    assert response.status_code == 200, response.text
    body = response.content
    if body == b"success":
        return None
    assert body.startswith(b"<xml>"), body[:200]
    fields = parse_xml(body)
    if encrypted:
        assert set(fields) == ENVELOPE_FIELDS, fields
        assert fields["Nonce"] == push.params["nonce"]
        assert fields["TimeStamp"] == str(now)
        expected = sha1_signature(TOKEN, fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
        assert fields["MsgSignature"] == expected
        opened = Envelope([AES_KEY], APPID).decrypt(fields["Encrypt"])
        fields = parse_xml(opened.message)
    else:
        assert "Encrypt" not in fields
    assert fields["FromUserName"] == ACCOUNT
    assert fields["CreateTime"] == str(now)
    if openid is not None:
        assert fields["ToUserName"] == openid
    return fields


def decrypt_envelope(body: bytes) -> bytes:
    fields = parse_xml(body)
    return Envelope([AES_KEY], APPID).decrypt(fields["Encrypt"]).message


async def member_rows(wechat: WeChat) -> list[Any]:
    """(id, openid, status) of every member row; only the columns these tests are about."""
    async with wechat.services.db.sessions() as session:
        query = select(Member.id, Member.openid, Member.status).order_by(Member.id)
        return list((await session.execute(query)).all())


async def sender_ids(wechat: WeChat) -> list[Any]:
    async with wechat.services.db.sessions() as session:
        return list((await session.execute(select(Member.openid).order_by(Member.id))).all())


async def member_status(wechat: WeChat, openid: str) -> str | None:
    async with wechat.services.db.sessions() as session:
        row = await session.execute(select(Member.status).where(Member.openid == openid))
        return row.scalar_one_or_none()


async def outbox_rows(app: FastAPI) -> list[Any]:
    """The outbox rows, with the columns the webhook writes."""
    columns = (Outbox.id, Outbox.dedupe_key, Outbox.openid, Outbox.source, Outbox.kind,
               Outbox.payload, Outbox.status)
    async with app.state.services.db.sessions() as session:
        return list((await session.execute(select(*columns).order_by(Outbox.id))).all())


async def count_rows(app: FastAPI, model: type[Any]) -> int:
    async with app.state.services.db.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def kv_keys(app: FastAPI) -> list[str]:
    """Every key in the app's KV (on a Redis Cluster, every primary's)."""
    from redis.asyncio.cluster import RedisCluster

    client = app.state.services.kv.redis
    if isinstance(client, RedisCluster):
        return sorted(await client.keys("*", target_nodes=RedisCluster.PRIMARIES))
    return sorted(await client.keys("*"))


async def assert_untouched(wechat: WeChat) -> None:
    """A refused request leaves no trace: no member, no outbox row, nothing in the KV."""
    assert await count_rows(wechat.app, Member) == 0
    assert await count_rows(wechat.app, Outbox) == 0
    assert await kv_keys(wechat.app) == []


def payload(row: Any) -> dict[str, Any]:
    return dict(json.loads(row.payload))


def custom_message(row: Any) -> dict[str, Any]:
    """The customer-service message a late or extra reply row carries (payload {"custom": ...})."""
    return dict(payload(row)["custom"])


@dataclass
class CountingHandler:
    """A handler that records every run; its reply names the run, so a second run would show."""

    delay: float = 0.0
    error: bool = False
    gate: asyncio.Event | None = None  # when given, every run waits for it to open
    calls: list[str] = field(default_factory=list)
    finished: int = 0

    async def __call__(self, msg: Inbound, ctx: ChatContext) -> Reply:
        self.calls.append(msg.dedupe_key)
        run = len(self.calls)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.gate is not None:
            await self.gate.wait()
        self.finished += 1
        if self.error:
            raise RuntimeError(f"handler failed on run {run}")
        return Text(f"run {run}: {msg.kind} {msg.event or msg.text}")

    @property
    def runs(self) -> int:
        return len(self.calls)


def install(app: FastAPI, handler: CountingHandler) -> CountingHandler:
    """Swap the running app's conversation for one whose only route is `handler` (as bot/chat.py
    builds it: a Router in a Conversation over the KV flow store, same lock settings)."""
    router = Router("counting")
    router.add(handler, name="counting")
    deadline = app.state.settings.reply_deadline
    app.state.pipeline.conversation = Conversation(
        router, [], FlowStore(app.state.services.kv), lock_ttl=deadline + 10, lock_wait=deadline
    )
    return handler


async def db_state(db: Database) -> dict[str, int]:
    """Rows in every table and the sum of the ledger: what a refused request must leave as it was."""
    counts: dict[str, int] = {}
    async with db.sessions() as session:
        for table in SQLModel.metadata.sorted_tables:
            counts[table.name] = int((await session.execute(select(func.count()).select_from(table))).scalar_one())
        ledger = await session.execute(select(func.coalesce(func.sum(LedgerEntry.delta), 0)))
        counts["ledger_sum"] = int(ledger.scalar_one())
    return counts
