"""Shared by the member and purchase end-to-end tests: the chat sign-up, database reads for the
assertions, and a POS that signs order webhooks the way the retailer's till does."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select

from handlers import texts
from storage.clock import FrozenClock
from storage.models import Anomaly, LedgerEntry, Member, PointsLot, PurchaseOrder
from tests.support import campaign_support, factories
from tests.support.fakes import WeChat, make_app, make_settings, serving
from tests.support.invariants import assert_points_consistent

ORDER_SECRET = "pos-shared-secret-for-tests"
PHONE = "13800138000"


@asynccontextmanager
async def app_with_order_secret(
    urls: tuple[str, str], clock: FrozenClock, secret: str = ORDER_SECRET
) -> AsyncIterator[WeChat]:
    """The whole app (same backends as the `wechat` fixture) with ORDER_WEBHOOK_SECRET set."""
    app = make_app(make_settings(*urls, order_webhook_secret=secret), clock)
    async with serving(app, clock) as harness:
        yield harness


# --- the chat -----------------------------------------------------------------------------------

async def sign_up(
    wechat: WeChat, openid: str, phone: str = PHONE, birthday: str = "1990-05-20", *,
    encrypted: bool = False,
) -> str:
    """The happy path, every prompt checked; returns the welcome. (Not a test module, so pytest does
    not rewrite these asserts: each names what came back.)"""
    reply = await wechat.say(openid, "注册", encrypted=encrypted)
    assert reply == texts.SIGNUP_ASK_PHONE, reply
    reply = await wechat.say(openid, phone, encrypted=encrypted)
    assert reply == texts.SIGNUP_ASK_BIRTHDAY.format(points=200), reply
    reply = await wechat.say(openid, birthday, encrypted=encrypted)
    assert reply == consent_prompt(), reply
    done = await wechat.say(openid, "同意", encrypted=encrypted)
    assert done.startswith("注册成功"), done
    return done


def consent_prompt() -> str:
    return texts.SIGNUP_ASK_CONSENT.format(version="2026-01")


# --- the database -------------------------------------------------------------------------------

async def member_by_openid(wechat: WeChat, openid: str) -> Member | None:
    return await campaign_support.member_by_openid(wechat.services.db, openid)


async def member_by_id(wechat: WeChat, member_id: int) -> Member:
    async with wechat.services.db.sessions() as session:
        member = await session.get(Member, member_id)
    assert member is not None
    return member


async def joined(wechat: WeChat, openid: str) -> Member:
    member = await member_by_openid(wechat, openid)
    assert member is not None
    assert member.joined_at is not None
    return member


async def entries(wechat: WeChat, member_id: int) -> list[LedgerEntry]:
    async with wechat.services.db.sessions() as session:
        rows = await session.scalars(
            select(LedgerEntry).where(LedgerEntry.member_id == member_id).order_by(LedgerEntry.id)
        )
        return list(rows)


async def entry_by_key(wechat: WeChat, key: str) -> LedgerEntry | None:
    return await factories.entry_by_key(wechat.services.db, key)


async def assert_books_balance(wechat: WeChat, member_id: int) -> int:
    """The invariant: cached balance == sum of the ledger == sum of live lots, and never negative."""
    return (await assert_points_consistent(wechat.services.db, [member_id]))[member_id]


@dataclass(frozen=True)
class Snapshot:
    """Everything a refused request must leave untouched."""

    members: tuple[tuple[Any, ...], ...]
    entries: int
    lots: tuple[tuple[Any, ...], ...]
    orders: tuple[tuple[Any, ...], ...]
    anomalies: int


async def snapshot(wechat: WeChat) -> Snapshot:
    async with wechat.services.db.sessions() as session:
        members = (await session.execute(
            select(Member.id, Member.balance, Member.tier, Member.status, Member.joined_at).order_by(Member.id)
        )).all()
        lots = (await session.execute(select(PointsLot.id, PointsLot.remaining).order_by(PointsLot.id))).all()
        orders = (await session.execute(
            select(PurchaseOrder.order_id, PurchaseOrder.refunded_fen, PurchaseOrder.refunded_points)
            .order_by(PurchaseOrder.id)
        )).all()
        n_entries = await session.scalar(select(func.count()).select_from(LedgerEntry))
        n_anomalies = await session.scalar(select(func.count()).select_from(Anomaly))
    return Snapshot(
        tuple(map(tuple, members)), int(n_entries or 0), tuple(map(tuple, lots)),
        tuple(map(tuple, orders)), int(n_anomalies or 0),
    )


# --- the POS ------------------------------------------------------------------------------------

def signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


async def post_order(
    wechat: WeChat, payload: dict[str, Any] | bytes | str, *, secret: str = ORDER_SECRET,
    timestamp: int | str | None = None, sig: str | None = None, headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST /hooks/orders signed as the POS signs it; any part can be overridden to forge a bad one."""
    if isinstance(payload, dict):
        body = json.dumps(payload, ensure_ascii=False).encode()
    else:
        body = payload.encode() if isinstance(payload, str) else payload
    ts = str(int(wechat.services.clock.now().timestamp()) if timestamp is None else timestamp)
    sent = {
        "Content-Type": "application/json",
        "X-Wxbot-Timestamp": ts,
        "X-Wxbot-Signature": sig if sig is not None else signature(secret, ts, body),
    }
    if headers is not None:
        sent = {**{"Content-Type": "application/json"}, **headers}
    return await wechat.client.post("/hooks/orders", content=body, headers=sent)


def paid(order_id: str, amount_fen: int, **member: str) -> dict[str, Any]:
    return {"order_id": order_id, "status": "paid", "amount_fen": amount_fen, **member}


def refund(order_id: str, amount_fen: int, refund_id: str, refund_fen: int) -> dict[str, Any]:
    return {
        "order_id": order_id, "status": "refunded", "amount_fen": amount_fen,
        "refund_id": refund_id, "refund_amount_fen": refund_fen,
    }


async def pay(wechat: WeChat, order_id: str, amount_fen: int, **member: str) -> dict[str, Any]:
    response = await post_order(wechat, paid(order_id, amount_fen, **member))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result
