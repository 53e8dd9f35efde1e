"""/simulator's JSON endpoints over HTTP: what the member does goes through the real webhook (signed,
encrypted when the server has an AES key), pushes come back per member, time travel runs a job as of a
chosen time; bad input is a precise 4xx with nothing written; outside demo mode the page is absent."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.cli import main, webhook_url
from bot.demo import DEMO_MANAGER
from handlers import texts
from storage import staff
from storage.clock import FrozenClock
from storage.models import Member, OutboundCall
from tests.support.fakes import TOKEN, make_app, make_settings, serving
from tests.support.helpers import CountingHandler, install
from tests.support.simulator_site import simulator_site

ANN = "oSIMann0000000000000000001"
BEN = "oSIMben0000000000000000001"
PHONE = "13800138000"


@pytest.fixture
async def client(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(make_app(make_settings(*urls), clock), clock) as wechat:
        yield wechat.client


async def say(client: httpx.AsyncClient, openid: str, **action: Any) -> dict[str, Any]:
    response = await client.post("/simulator/api/say", json={"openid": openid, **action})
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()["reply"]
    return reply


async def sign_up(client: httpx.AsyncClient, openid: str, birthday: str = "1990-11-23") -> str:
    for line in ("注册", PHONE if openid == ANN else "13900139000", birthday):
        await say(client, openid, kind="text", content=line)
    done = await say(client, openid, kind="text", content="同意")
    return str(done["text"])


async def member(client: httpx.AsyncClient, openid: str) -> Member | None:
    async with client._transport.app.state.services.db.sessions() as session:  # type: ignore[attr-defined]
        found: Member | None = await session.scalar(select(Member).where(Member.openid == openid))
        return found


async def test_a_text_goes_through_the_encrypted_webhook_and_the_reply_comes_back(client: httpx.AsyncClient) -> None:
    response = await client.post("/simulator/api/say", json={"openid": ANN, "kind": "text", "content": "注册"})
    assert response.status_code == 200
    assert response.json() == {"reply": {"channel": "reply", "kind": "text", "text": texts.SIGNUP_ASK_PHONE},
                               "safe_mode": True}
    assert (await sign_up(client, ANN)).startswith("注册成功")
    joined = await member(client, ANN)
    assert joined is not None
    assert joined.joined_at is not None
    assert joined.birthday_month == 11


async def test_the_menu_is_the_production_menu_and_its_check_in_key_checks_in(client: httpx.AsyncClient) -> None:
    menu = (await client.get("/simulator/api/menu", params={"openid": ANN})).json()
    keys = [b["key"] for top in menu["button"] for b in top["sub_button"]]
    assert keys == ["SIGNUP", "CHECKIN", "BALANCE", "REDEEM", "COUPONS", "CAMPAIGNS", "HELP"]
    assert menu["staff"] is False
    await sign_up(client, ANN)
    reply = await say(client, ANN, kind="click", key="CHECKIN")
    assert reply["text"].startswith("签到成功！")
    found = await member(client, ANN)
    assert found is not None
    assert f"当前积分 {found.balance}" in reply["text"]


async def test_follow_scan_image_location_and_unfollow_each_reach_the_webhook(client: httpx.AsyncClient) -> None:
    replies = [await say(client, BEN, **action) for action in (
        {"kind": "subscribe", "key": "ref_ABC123"}, {"kind": "scan", "key": "camp_7"}, {"kind": "image"},
        {"kind": "location", "latitude": 31.23, "longitude": 121.47},
    )]
    assert [r["channel"] for r in replies] == ["reply"] * 4
    assert "感谢关注" in replies[0]["text"]  # the follow's welcome
    assert "活动码 7" in replies[1]["text"]  # the scene camp_7 was read: no such campaign
    assert "目前我只看得懂文字消息" in replies[2]["text"]
    assert "已收到您的位置" in replies[3]["text"]
    assert (await say(client, BEN, kind="unsubscribe"))["kind"] == "note"
    gone = await member(client, BEN)
    assert gone is not None
    assert gone.status == "unsubscribed"


async def test_a_birthday_push_reaches_only_its_member_through_time_travel(client: httpx.AsyncClient) -> None:
    await sign_up(client, ANN)
    await sign_up(client, BEN, birthday="1991-03-03")
    start = (await client.get("/simulator/api/pushes", params={"openid": ANN})).json()
    assert start["pushes"] == []
    travelled = await client.post("/simulator/api/travel", json={"job": "birthday", "at": "2026-11-23T09:00:00+08:00"})
    assert travelled.status_code == 200, travelled.text
    assert travelled.json()["handled"] == 1
    assert travelled.json()["sent"] == 1
    pushes = (await client.get("/simulator/api/pushes", params={"openid": ANN, "after": start["last"]})).json()
    assert [(p["channel"], p["kind"]) for p in pushes["pushes"]] == [("cs", "text")]
    assert "生日" in pushes["pushes"][0]["text"]
    assert pushes["last"] > start["last"]
    later = (await client.get("/simulator/api/pushes", params={"openid": ANN, "after": pushes["last"]})).json()
    assert later["pushes"] == []
    ben = (await client.get("/simulator/api/pushes", params={"openid": BEN})).json()
    assert ben["pushes"] == []


@pytest.mark.parametrize(("body", "needle"), [
    ({"kind": "text", "content": "hi"}, "openid"),
    ({"openid": "has space here", "kind": "text", "content": "hi"}, "openid"),
    ({"openid": ANN, "kind": "shout", "content": "hi"}, "kind"),
    ({"openid": ANN, "kind": "text", "content": "   "}, "a text message needs content"),
    ({"openid": ANN, "kind": "text", "content": "x" * 601}, "content"),
    ({"openid": ANN, "kind": "click"}, "a click needs key"),
    ({"openid": ANN, "kind": "scan", "key": "bad scene!"}, "key"),
    ({"openid": ANN, "kind": "location", "latitude": 31.2}, "a location needs latitude and longitude"),
    ({"openid": ANN, "kind": "location", "latitude": 91, "longitude": 0}, "latitude"),
])
async def test_bad_actions_are_refused_precisely_and_reach_nothing(
    client: httpx.AsyncClient, body: dict[str, Any], needle: str,
) -> None:
    response = await client.post("/simulator/api/say", json=body)
    assert response.status_code == 422
    assert needle in response.text
    async with client._transport.app.state.services.db.sessions() as session:  # type: ignore[attr-defined]
        assert await session.scalar(select(func.count()).select_from(Member)) == 0


async def test_an_unknown_menu_key_and_bad_queries_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/simulator/api/say", json={"openid": ANN, "kind": "click", "key": "NOPE"})
    assert response.status_code == 422
    assert response.json() == {"error": "invalid", "message": "unknown menu key 'NOPE'"}
    assert (await client.get("/simulator/api/pushes", params={"openid": "x"})).status_code == 422
    assert (await client.get("/simulator/api/pushes", params={"openid": ANN, "after": -1})).status_code == 422
    assert (await client.get("/simulator/api/menu")).status_code == 422


@pytest.mark.parametrize(("body", "needle"), [
    ({"job": "nap", "at": "2026-11-23T09:00:00+08:00"}, "job"),
    ({"job": "birthday", "at": "2026-11-23T09:00:00"}, "at needs a time zone offset"),
    ({"job": "birthday", "at": "tomorrow"}, "at"),
])
async def test_bad_time_travel_is_refused_and_runs_nothing(
    client: httpx.AsyncClient, body: dict[str, Any], needle: str,
) -> None:
    response = await client.post("/simulator/api/travel", json=body)
    assert response.status_code == 422
    assert needle in response.text
    async with client._transport.app.state.services.db.sessions() as session:  # type: ignore[attr-defined]
        assert await session.scalar(select(func.count()).select_from(OutboundCall)) == 0


async def test_the_page_names_the_mode_and_the_people_start_with_the_demo_manager(client: httpx.AsyncClient) -> None:
    page = await client.get("/simulator")
    assert page.status_code == 200
    assert "安全模式（加密）" in page.text
    assert "/simulator/static/simulator.js" in page.text
    people = (await client.get("/simulator/api/people")).json()["people"]
    assert people[0]["openid"] == "oDEMOmanager00000000000001"


async def test_production_has_no_simulator_unless_asked_and_never_time_travel(
    urls: tuple[str, str], clock: FrozenClock,
) -> None:
    live = make_settings(*urls, wechat_appsecret="a-real-secret")
    async with serving(make_app(live, clock), clock) as wechat:
        for path in ("/simulator", "/simulator/static/simulator.js", "/simulator/api/people"):
            assert (await wechat.client.get(path)).status_code == 404
        docs = await wechat.client.get("/docs")
        assert docs.status_code == 200
    asked = make_settings(*urls, wechat_appsecret="a-real-secret", simulator=True)
    async with serving(make_app(asked, clock), clock) as wechat:
        assert (await wechat.client.get("/simulator")).status_code == 200
        refused = await wechat.client.post("/simulator/api/travel",
                                           json={"job": "birthday", "at": "2026-11-23T09:00:00+08:00"})
        assert refused.status_code == 403
    off = make_settings(*urls, simulator=False)
    async with serving(make_app(off, clock), clock) as wechat:
        assert (await wechat.client.get("/simulator")).status_code == 404


async def test_docs_and_redoc_load_their_assets_from_the_package(client: httpx.AsyncClient) -> None:
    for path, assets in (("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")), ("/redoc", ("redoc.standalone.js",))):
        page = await client.get(path)
        assert page.status_code == 200
        assert "cdn.jsdelivr.net" not in page.text
        assert "fonts.googleapis.com" not in page.text
        for asset in assets:
            assert f"/docs/static/{asset}" in page.text
            assert (await client.get(f"/docs/static/{asset}")).status_code == 200


@pytest.mark.parametrize(("given", "expected"), [
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000/wechat"),
    ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/wechat"),
    ("http://127.0.0.1:8000/wechat", "http://127.0.0.1:8000/wechat"),
    ("https://bot.example.com/base/wechat?x=1", "https://bot.example.com/base/wechat?x=1"),
])
def test_wxbot_chat_accepts_a_base_url(given: str, expected: str) -> None:
    assert webhook_url(given) == expected


async def test_a_late_reply_that_went_to_the_outbox_shows_up_once_sent(
    urls: tuple[str, str], clock: FrozenClock,
) -> None:
    app = make_app(make_settings(*urls, reply_deadline=0.3), clock)
    async with serving(app, clock) as wechat:
        gate = asyncio.Event()
        install(app, CountingHandler(gate=gate))
        now = await say(wechat.client, ANN, kind="text", content="签到")
        assert now == {"channel": "reply", "kind": "note", "text": "（公众号未回复：success）"}
        gate.set()
        await wechat.pipeline.drain()
        assert (await wechat.client.get("/simulator/api/pushes", params={"openid": ANN})).json()["pushes"] == []
        sent = await wechat.client.post("/simulator/api/travel", json={"job": "sender", "at": clock.now().isoformat()})
        assert sent.json()["handled"] == 1
        pushes = (await wechat.client.get("/simulator/api/pushes", params={"openid": ANN})).json()["pushes"]
    assert [(p["channel"], p["text"]) for p in pushes] == [("cs", "run 1: text 签到")]


async def test_staff_see_the_staff_menu(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    async with client._transport.app.state.services.db.unit_of_work() as session:  # type: ignore[attr-defined]
        await staff.add(session, DEMO_MANAGER, "manager", "test", clock.now())
    menu = (await client.get("/simulator/api/menu", params={"openid": DEMO_MANAGER})).json()
    keys = {b["key"] for top in menu["button"] for b in top["sub_button"]}
    assert menu["staff"] is True
    assert {"STAFF_NEW_CAMPAIGN", "STAFF_CAMPAIGNS"} <= keys
    reply = await say(client, DEMO_MANAGER, kind="click", key="STAFF_CAMPAIGNS")
    assert reply["kind"] == "text"


def test_wxbot_chat_talks_to_a_base_url(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    now = FrozenClock(datetime.now(UTC))  # `wxbot chat` signs with the wall clock
    with simulator_site(sqlite_template, tmp_path, now) as site:
        monkeypatch.setenv("WECHAT_TOKEN", TOKEN)
        monkeypatch.setattr(sys, "stdin", io.StringIO("注册\n/quit\n"))
        assert main(["chat", "--url", site.url, "--openid", ANN]) == 0
    assert "bot> " + texts.SIGNUP_ASK_PHONE in capsys.readouterr().out
