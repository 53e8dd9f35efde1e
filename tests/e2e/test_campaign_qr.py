"""Joining a campaign by its QR code (scene `camp_CODE`), and the QR code the creation reply links to:
a visitor is signed up first and joined at the end of it without asking again; a member is joined at
once; in demo mode the QR call is recorded and a placeholder shown; with a live secret the QR code is
made by WeChat (the fake here) and the link is its showqrcode URL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from bot.app import create_app
from bot.wechat.client import WeChatQr
from devtools.fakewechat import create_fake_wechat
from handlers import texts
from storage.clock import FrozenClock
from storage.models import OutboundCall
from tests.support.campaign_support import (
    balance,
    campaign_row,
    create_campaign,
    flow_state,
    make_staff,
    member_by_openid,
    member_id,
    openid,
    participants,
    phone,
)
from tests.support.fakes import WeChat, make_settings, serving
from tests.support.member_support import sign_up

FAKE = "http://fake.wechat"


def content(reply: dict[str, object] | None) -> str:
    assert reply is not None
    return str(reply.get("Content", ""))


async def finish_sign_up(wechat: WeChat, who: str, n: int) -> str:
    """The rest of the sign-up a QR scan started: phone, birthday skipped, consent."""
    assert "生日" in await wechat.say(who, phone(n))
    assert "隐私说明" in await wechat.say(who, "跳过")
    return await wechat.say(who, "同意")


async def test_visitor_following_by_campaign_qr_is_signed_up_then_joined(wechat: WeChat) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="join_bonus", title="扫码有礼", points=25, cap=10)).campaign
    visitor = openid(1, "oVISITOR")

    first = content(await wechat.event(visitor, "subscribe", f"qrscene_camp_{c.code}", Ticket="gQH47joAAAAA"))
    assert first.startswith(texts.WELCOME)
    assert texts.CAMPAIGN_JOIN_SIGNUP.strip() in first
    assert first.endswith(texts.SIGNUP_ASK_PHONE)  # the sign-up phone prompt
    assert (await flow_state(wechat, visitor)).flow == "signup"  # type: ignore[union-attr]
    assert await participants(db, c.id) == []  # type: ignore[arg-type]

    done = await finish_sign_up(wechat, visitor, 1)
    assert done.startswith("注册成功")
    assert "已加入活动「扫码有礼」！已有 1/10 人参加" in done  # joined without asking again
    assert texts.CAMPAIGN_NEXT["join_bonus"].format(paid=25) in done
    member = await member_by_openid(db, visitor)
    assert member is not None
    assert member.joined_at is not None
    assert member.status == "active"
    assert await participants(db, c.id) == [member.id]  # type: ignore[arg-type]
    assert await balance(db, visitor) == 125
    assert await flow_state(wechat, visitor) is None
    assert "已经参加过" in await wechat.say(visitor, f"参加 {c.code}")


async def test_follower_scanning_campaign_qr_is_signed_up_then_joined(wechat: WeChat) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="group_buy", title="扫码拼团", points=10, goal=2, cap=5)).campaign
    follower = openid(2, "oFOLLOWER")
    assert content(await wechat.event(follower, "subscribe")) == texts.WELCOME  # followed earlier, no scene

    scanned = content(await wechat.event(follower, "SCAN", f"camp_{c.code}", Ticket="gQH47joAAAAA"))
    assert scanned.startswith(texts.CAMPAIGN_JOIN_SIGNUP.strip())
    assert scanned.endswith(texts.SIGNUP_ASK_PHONE)
    done = await finish_sign_up(wechat, follower, 2)
    assert "已加入活动「扫码拼团」！已有 1/5 人参加" in done
    assert "还差 1 人" in done
    assert await participants(db, c.id) == [await member_id(db, follower)]  # type: ignore[arg-type]


async def test_member_scanning_joins_at_once(wechat: WeChat, clock: FrozenClock) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="lucky_draw", title="扫码抽奖", points=10, goal=1, cap=5)).campaign
    member, returning = openid(3), openid(4)
    await sign_up(wechat, member, phone=phone(3))
    await sign_up(wechat, returning, phone=phone(4))

    scanned = content(await wechat.event(member, "SCAN", f"camp_{c.code}"))
    assert scanned.startswith("已加入活动「扫码抽奖」！已有 1/5 人参加")
    assert "注册" not in scanned
    assert await flow_state(wechat, member) is None
    clock.advance(seconds=5)  # a later scan (the same CreateTime would be WeChat retrying the first)
    assert content(await wechat.event(member, "SCAN", f"camp_{c.code}")) == texts.campaign_already_joined.format(
        title="扫码抽奖"
    )

    # a member who had unfollowed follows again through the poster: joined at once too
    await wechat.event(returning, "unsubscribe")
    followed = content(await wechat.event(returning, "subscribe", f"qrscene_camp_{c.code}"))
    assert "已加入活动「扫码抽奖」！已有 2/5 人参加" in followed
    assert texts.SIGNUP_ASK_PHONE not in followed
    assert (await member_by_openid(db, returning)).status == "active"  # type: ignore[union-attr]
    assert len(await participants(db, c.id)) == 2  # type: ignore[arg-type]


async def test_scanning_an_unknown_or_full_campaign_is_refused_clearly(wechat: WeChat) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="join_bonus", title="一人活动", points=10, cap=1)).campaign
    member, visitor = openid(5), openid(6, "oVISITOR")
    await sign_up(wechat, member, phone=phone(5))
    assert content(await wechat.event(member, "SCAN", "camp_NOPE9")) == texts.campaign_unknown.format(code="NOPE9")
    assert "已加入" in content(await wechat.event(member, "SCAN", f"camp_{c.code}"))

    # a visitor scanning a full campaign is welcomed and told at once, not taken through sign-up first
    reply = content(await wechat.event(visitor, "subscribe", f"qrscene_camp_{c.code}"))
    assert reply == texts.WELCOME + "\n\n" + texts.campaign_full.format(title="一人活动", cap=1)
    assert (await member_by_openid(db, visitor)).joined_at is None  # type: ignore[union-attr]
    assert await participants(db, c.id) == [await member_id(db, member)]  # type: ignore[arg-type]


# --- the QR code in the creation reply -----------------------------------------------------------

async def test_demo_mode_records_the_qr_call_and_shows_a_placeholder(wechat: WeChat) -> None:
    db = wechat.services.db
    await make_staff(wechat)
    made = await create_campaign(wechat, kind="join_bonus", title="演示二维码", cap=5)
    c = await campaign_row(db, made.campaign.id)  # type: ignore[arg-type]
    assert c.qr_url is not None
    assert c.qr_url.startswith("demo://qr/demo-")
    assert f"活动二维码：{c.qr_url}{texts.CAMPAIGN_QR_DEMO}" in made.reply
    async with db.sessions() as session:
        calls = (await session.scalars(
            select(OutboundCall).where(OutboundCall.api == "oa:/cgi-bin/qrcode/create")
        )).all()
    assert len(calls) == 1
    body = json.loads(calls[0].payload)
    assert body == {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": f"camp_{c.code}"}}}


@pytest.fixture
async def live(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[tuple[WeChat, httpx.AsyncClient]]:
    """The app with a live secret, its WeChat API client pointed at the fake WeChat API."""
    settings = make_settings(*urls, wechat_appsecret="x", wechat_api_base=FAKE)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_fake_wechat())) as http:
        app = create_app(settings, clock=clock, http=http)
        async with serving(app, clock) as harness:
            yield harness, http


async def test_live_secret_makes_the_qr_with_scene_camp_code(live: tuple[WeChat, httpx.AsyncClient]) -> None:
    wechat, http = live
    db = wechat.services.db
    await make_staff(wechat)
    made = await create_campaign(wechat, kind="group_buy", title="真二维码", goal=2, cap=5)
    code = made.campaign.code
    calls = (await http.get(f"{FAKE}/_fake/calls", params={"path": "/cgi-bin/qrcode/create"})).json()
    assert len(calls) == 1
    assert calls[0]["body"]["action_info"]["scene"]["scene_str"] == f"camp_{code}"
    assert calls[0]["body"]["action_name"] == "QR_LIMIT_STR_SCENE"  # a poster outlives 30 days
    assert calls[0]["errcode"] == 0
    ticket = calls[0]["response"]["ticket"]
    link = WeChatQr.SHOW + quote(ticket, safe="")
    assert f"活动二维码：{link}\n" in made.reply
    assert texts.CAMPAIGN_QR_DEMO not in made.reply
    assert (await campaign_row(db, made.campaign.id)).qr_url == link  # type: ignore[arg-type]
    async with db.sessions() as session:
        assert (await session.scalars(select(OutboundCall))).all() == []  # nothing recorded: it was sent


async def test_live_qr_failure_still_creates_the_campaign(live: tuple[WeChat, httpx.AsyncClient]) -> None:
    wechat, http = live
    await make_staff(wechat)
    scripted = await http.post(f"{FAKE}/_fake/script", json={"path": "/cgi-bin/qrcode/create", "errcodes": [48001]})
    assert scripted.status_code == 200
    made = await create_campaign(wechat, kind="join_bonus", title="二维码失败", cap=5)
    assert f"活动二维码：{texts.CAMPAIGN_QR_FAILED}" in made.reply
    assert f"回复 参加 {made.campaign.code} 加入活动" in made.reply  # the code can still be shared
    assert (await campaign_row(wechat.services.db, made.campaign.id)).qr_url is None  # type: ignore[arg-type]
