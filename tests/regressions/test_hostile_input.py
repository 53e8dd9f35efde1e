"""Regression (issue 12, finding 5): hostile input was a 500 in 23 of 93 probes, 4 of them without
credentials. Non-ASCII secrets made hmac.compare_digest raise TypeError; a 400-digit timestamp made
float arithmetic raise OverflowError; ids and counts past int4, NUL characters and dates at the ends of
the calendar reached the database (or datetime arithmetic) unchecked; the order webhook answered a
database outage with a plain-text 500 and waited behind a lock for as long as the lock was held.
Each is now a precise 4xx (or a JSON 503) that names the field and changes nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from bot.crypto import sha1_signature
from storage.clock import FrozenClock
from storage.db import Database
from tests.support.fakes import ADMIN, TOKEN, WeChat, make_app, make_settings, serving
from tests.support.helpers import assert_untouched, db_state, plain_params
from tests.support.member_support import ORDER_SECRET, app_with_order_secret, paid, post_order, sign_up
from tests.support.mp_support import MiniProgram

ALICE = "oHOSTILE_ALICE_00000000001"
NON_ASCII = "tëst-ünïcode-密钥".encode()  # sent as raw header bytes; Starlette reads them as latin-1
HUGE_TIMESTAMP = "9" * 400
INT4_MAX = 2**31 - 1


@pytest.fixture
async def wechat(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[WeChat]:
    async with app_with_order_secret(urls, clock) as harness:
        yield harness


def refused(response: Any, status: int, field: str = "") -> None:
    """The JSON error shape, the status, and a message naming the field."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error", "message"}, body
    assert field.lower() in body["message"].lower(), body


# --- secrets that are not ASCII -----------------------------------------------------------------

async def test_non_ascii_admin_token_is_401(wechat: WeChat) -> None:
    response = await wechat.client.get("/api/admin/rewards", headers={b"Authorization": b"Bearer " + NON_ASCII})
    refused(response, 401, "Authorization")


async def test_non_ascii_order_signature_is_401(wechat: WeChat) -> None:
    await sign_up(wechat, ALICE)
    before = await db_state(wechat.services.db)
    ts = str(int(wechat.services.clock.now().timestamp()))
    response = await wechat.client.post(
        "/hooks/orders", content=json.dumps(paid("P-1", 100, openid=ALICE)).encode(),
        headers={b"X-Wxbot-Timestamp": ts.encode(), b"X-Wxbot-Signature": b"sha256=" + NON_ASCII},
    )
    refused(response, 401, "signature")
    assert await db_state(wechat.services.db) == before


@pytest.mark.parametrize(("path", "name"), [
    ("/wechat", "signature"), ("/wechat", "msg_signature"), ("/miniprogram/push", "signature"),
])
async def test_non_ascii_webhook_signature_is_403(wechat: WeChat, path: str, name: str) -> None:
    push = wechat.side.sign(wechat.side.text("oHOSTILE", "帮助"), encrypted=name == "msg_signature")
    response = await wechat.client.post(path, params={**push.params, name: "签名ü"}, content=push.body)
    refused(response, 403, "signature")
    await assert_untouched(wechat)


async def test_non_ascii_signature_on_the_get_verification_is_403(wechat: WeChat) -> None:
    params = {**plain_params(wechat), "signature": "ßignature", "echostr": "x"}
    refused(await wechat.client.get("/wechat", params=params), 403, "signature")


# --- timestamps too long to be a clock's -------------------------------------------------------------

async def test_400_digit_order_timestamp_is_401(wechat: WeChat) -> None:
    await sign_up(wechat, ALICE)
    before = await db_state(wechat.services.db)
    response = await post_order(wechat, paid("P-1", 100, openid=ALICE), timestamp=HUGE_TIMESTAMP)
    refused(response, 401, "X-Wxbot-Timestamp")
    assert await db_state(wechat.services.db) == before


@pytest.mark.parametrize("path", ["/wechat", "/miniprogram/push"])
async def test_400_digit_webhook_timestamp_is_403(wechat: WeChat, path: str) -> None:
    nonce = "1"
    params = {"timestamp": HUGE_TIMESTAMP, "nonce": nonce, "signature": sha1_signature(TOKEN, HUGE_TIMESTAMP, nonce)}
    response = await wechat.client.post(path, params=params, content=wechat.side.sign(
        wechat.side.text("oHOSTILE", "帮助")).body)
    refused(response, 403, "timestamp")
    await assert_untouched(wechat)


# --- integers past int4 ----------------------------------------------------------------------------

PATH_IDS = [INT4_MAX + 1, 2**63, 2**64]
ID_ROUTES = [
    ("PATCH", "/api/admin/rewards/{}", {"cost": 10}),
    ("POST", "/api/admin/rewards/{}/deactivate", None),
    ("POST", "/api/admin/redemptions/{}/cancel", None),
]


@pytest.mark.parametrize("big", PATH_IDS)
@pytest.mark.parametrize(("method", "path", "body"), ID_ROUTES, ids=[r[1] for r in ID_ROUTES])
async def test_path_id_past_int4_is_422(wechat: WeChat, method: str, path: str, body: Any, big: int) -> None:
    response = await wechat.client.request(method, path.format(big), json=body, headers=ADMIN)
    refused(response, 422, "_id")


@pytest.mark.parametrize("big", PATH_IDS)
async def test_code_import_path_id_past_int4_is_422(wechat: WeChat, big: int) -> None:
    response = await wechat.client.post(f"/api/admin/rewards/{big}/codes", content=b"code\nA1\n",
                                        headers={**ADMIN, "Content-Type": "text/csv"})
    refused(response, 422, "reward_id")


@pytest.mark.parametrize("field", ["per_member_limit", "total_limit"])
async def test_body_integer_past_int4_is_422(wechat: WeChat, field: str) -> None:
    body = {"name": "券", "cost": 10, field: INT4_MAX + 1}
    refused(await wechat.client.post("/api/admin/rewards", json=body, headers=ADMIN), 422, field)
    assert (await db_state(wechat.services.db))["reward"] == 0


# --- NUL characters ------------------------------------------------------------------------------------

async def test_nul_in_a_reward_name_is_422(wechat: WeChat) -> None:
    body = {"name": "满减\x00券", "cost": 10}
    refused(await wechat.client.post("/api/admin/rewards", json=body, headers=ADMIN), 422, "name")
    assert (await db_state(wechat.services.db))["reward"] == 0


async def test_nul_in_a_staff_openid_is_422(wechat: WeChat) -> None:
    response = await wechat.client.post("/api/admin/staff", json={"openid": "o\x00x"}, headers=ADMIN)
    refused(response, 422, "openid")
    refused(await wechat.client.delete("/api/admin/staff/o%00x", headers=ADMIN), 422, "openid")
    assert (await db_state(wechat.services.db))["staff"] == 0


async def test_nul_in_a_coupon_code_is_422(wechat: WeChat) -> None:
    refused(await wechat.client.post("/api/admin/coupons/AB%00CD/use", headers=ADMIN), 422, "code")


async def test_nul_in_an_imported_code_is_422(wechat: WeChat) -> None:
    created = await wechat.client.post("/api/admin/rewards", json={"name": "池", "cost": 10, "kind": "code_pool"},
                                       headers=ADMIN)
    reward_id = created.json()["id"]
    response = await wechat.client.post(f"/api/admin/rewards/{reward_id}/codes", content=b"code\nA\x00B\n",
                                        headers={**ADMIN, "Content-Type": "text/csv"})
    refused(response, 422, "code")
    assert (await db_state(wechat.services.db))["reward_code"] == 0


async def test_nul_in_an_order_openid_is_422(wechat: WeChat) -> None:
    await sign_up(wechat, ALICE)
    before = await db_state(wechat.services.db)
    refused(await post_order(wechat, paid("P-1", 100, openid=ALICE + "\x00")), 422, "openid")
    assert await db_state(wechat.services.db) == before


async def test_nul_in_a_campaign_code_is_422(mp: MiniProgram) -> None:
    token = await mp.member_for("oMPhostile0000000000000001", None, phone="13700001111")
    response = await mp.post(token, "/campaigns/AB%00/join")
    refused(response, 422, "code")


async def test_nul_in_a_mini_program_push_is_400(mp: MiniProgram) -> None:
    before = await db_state(mp.services.db)
    fields = mp.text("oMP\x00hostile", "帮助")
    response = await mp.push(fields, openid="oMPhostile")
    refused(response, 400, "FromUserName")
    assert await db_state(mp.services.db) == before


# --- dates at the ends of the calendar ---------------------------------------------------------

@pytest.mark.parametrize("moment", [
    "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00", "9999-12-31T00:00:00Z",
])
@pytest.mark.parametrize("field", ["starts_at", "ends_at"])
async def test_reward_date_at_the_ends_of_the_calendar_is_422(wechat: WeChat, field: str, moment: str) -> None:
    body = {"name": "券", "cost": 10, field: moment}
    refused(await wechat.client.post("/api/admin/rewards", json=body, headers=ADMIN), 422, field)
    assert (await db_state(wechat.services.db))["reward"] == 0


# --- the order webhook under an outage --------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite"])  # the database is a closed port whatever the backend
async def test_order_webhook_database_outage_is_a_json_503(urls: tuple[str, str], clock: FrozenClock) -> None:
    settings = make_settings("postgresql://nobody@127.0.0.1:9/wxbot", urls[1], order_webhook_secret=ORDER_SECRET)
    async with serving(make_app(settings, clock), clock) as down:
        response = await post_order(down, paid("P-1", 100, openid=ALICE))
    refused(response, 503, "")
    assert response.json()["error"] == "unavailable"


async def hold_write_lock(url: str, held: asyncio.Event, release: asyncio.Event) -> None:
    """Another transaction holding the lock the webhook needs: SQLite's write lock, a PostgreSQL table lock."""
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            if db.is_sqlite:
                await session.execute(text("UPDATE member SET balance = balance"))
            else:
                await session.execute(text("LOCK TABLE purchase_order IN EXCLUSIVE MODE"))
            held.set()
            await release.wait()
    finally:
        await db.dispose()


async def test_order_webhook_lock_wait_past_the_deadline_is_503(urls: tuple[str, str], clock: FrozenClock) -> None:
    app = make_app(make_settings(*urls, order_webhook_secret=ORDER_SECRET, api_deadline=1.0), clock)
    async with serving(app, clock) as harness:
        await sign_up(harness, ALICE)
        before = await db_state(app.state.services.db)
        held, release = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(hold_write_lock(urls[0], held, release))
        await held.wait()
        asyncio.get_running_loop().call_later(6, release.set)  # the old code waited as long as this
        started = time.monotonic()
        response = await post_order(harness, paid("P-1", 100, openid=ALICE))
        waited = time.monotonic() - started
        release.set()
        await holder
        refused(response, 503, "")
        assert response.json()["error"] == "unavailable"
        assert waited < 3, waited
        assert await db_state(app.state.services.db) == before
        retried = await post_order(harness, paid("P-1", 100, openid=ALICE))  # the POS retries: applied once
        assert retried.status_code == 200, retried.text
        assert retried.json()["repeated"] is False

