"""Sharing that keeps its promise (issue 17 item 6), through signed WeChat XML and the whole app: `邀请` gives
the referral code and the member's own temporary `ref_` poster (made by the fake WeChat, kept, made again when
it lapses; a placeholder in demo mode with no call at all); a referral code typed during sign-up is recorded,
or refused with a clear answer (own, unknown, over the referrer's monthly limit) while the sign-up goes on."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select, update

from bot.app import create_app
from bot.wechat.client import WeChatQr
from devtools.fakewechat import create_fake_wechat
from handlers import texts
from storage import members, sharing
from storage.clock import FrozenClock
from storage.models import CampaignMember, Member, OutboundCall, ShareScan
from tests.support.campaign_support import create_campaign, make_staff
from tests.support.fakes import WeChat, make_settings, serving
from tests.support.member_support import (
    assert_books_balance,
    consent_prompt,
    entries,
    entry_by_key,
    member_by_openid,
    sign_up,
)

FAKE = "http://fake.wechat"
ALICE = "oSHARE_ALICE_00000000000001"
BOB = "oSHARE_BOB_0000000000000002"
CAROL = "oSHARE_CAROL_00000000000003"
QR_PATH = "/cgi-bin/qrcode/create"


@pytest.fixture
async def live(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[tuple[WeChat, httpx.AsyncClient]]:
    """The app with a live secret, its WeChat API client pointed at the fake WeChat API."""
    settings = make_settings(*urls, wechat_appsecret="x", wechat_api_base=FAKE)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_fake_wechat())) as http:
        app = create_app(settings, clock=clock, http=http)
        async with serving(app, clock) as harness:
            yield harness, http


async def qr_calls(http: httpx.AsyncClient) -> list[dict[str, object]]:
    return list((await http.get(f"{FAKE}/_fake/calls", params={"path": QR_PATH})).json())


async def member(wechat: WeChat, openid: str) -> Member:
    found = await member_by_openid(wechat, openid)
    assert found is not None
    return found


# --- 邀请 --------------------------------------------------------------------------------------------

async def test_invite_gives_code_and_a_temporary_poster_kept_until_it_lapses(
    live: tuple[WeChat, httpx.AsyncClient], clock: FrozenClock,
) -> None:
    wechat, http = live
    await sign_up(wechat, ALICE)
    alice = await member(wechat, ALICE)
    code = alice.referral_code
    assert code

    reply = await wechat.say(ALICE, "邀请")
    calls = await qr_calls(http)
    assert len(calls) == 1
    body = calls[0]["body"]
    assert body == {  # a temporary string-scene QR for 30 days
        "expire_seconds": 2_592_000, "action_name": "QR_STR_SCENE",
        "action_info": {"scene": {"scene_str": f"ref_{code}"}},
    }
    link = WeChatQr.SHOW + quote(str(calls[0]["response"]["ticket"]), safe="")  # type: ignore[index]
    until = (clock.now() + timedelta(days=30)).astimezone(wechat.services.tz)
    assert reply == texts.INVITE.format(
        code=code, qr=link + texts.INVITE_QR_UNTIL.format(until=f"{until:%Y-%m-%d}"), referral=50, limit=20,
    )
    kept = await member(wechat, ALICE)
    assert kept.share_qr_url == link
    assert kept.share_qr_expires_at == clock.now() + timedelta(days=30)

    clock.advance(days=28)  # still two days left: the same poster, WeChat not asked again
    assert link in await wechat.say(ALICE, "invite")
    assert len(await qr_calls(http)) == 1

    clock.advance(days=1, seconds=1)  # less than a day left: made again
    again = await wechat.say(ALICE, "邀请")
    calls = await qr_calls(http)
    assert len(calls) == 2
    fresh = WeChatQr.SHOW + quote(str(calls[1]["response"]["ticket"]), safe="")  # type: ignore[index]
    assert fresh != link
    assert fresh in again
    assert link not in again
    assert (await member(wechat, ALICE)).share_qr_url == fresh


async def test_invite_in_demo_mode_shows_a_placeholder_and_calls_nothing(wechat: WeChat) -> None:
    await sign_up(wechat, ALICE)
    code = (await member(wechat, ALICE)).referral_code
    reply = await wechat.say(ALICE, "邀请")
    assert reply == texts.INVITE.format(code=code, qr=texts.INVITE_QR_DEMO.format(code=code), referral=50, limit=20)
    async with wechat.services.db.sessions() as session:
        assert (await session.scalars(select(OutboundCall))).all() == []  # not even recorded: nothing asked
    assert (await member(wechat, ALICE)).share_qr_url is None


async def test_invite_from_a_visitor_is_the_sign_up_prompt(live: tuple[WeChat, httpx.AsyncClient]) -> None:
    wechat, http = live
    assert await wechat.say(CAROL, "邀请") == texts.JOIN_FIRST.format(bonus=100)
    assert await qr_calls(http) == []


async def test_invite_when_wechat_refuses_still_gives_the_code(live: tuple[WeChat, httpx.AsyncClient]) -> None:
    wechat, http = live
    await sign_up(wechat, ALICE)
    code = (await member(wechat, ALICE)).referral_code
    scripted = await http.post(f"{FAKE}/_fake/script", json={"path": QR_PATH, "errcodes": [48001]})
    assert scripted.status_code == 200
    reply = await wechat.say(ALICE, "邀请")
    assert reply == texts.INVITE.format(code=code, qr=texts.INVITE_QR_FAILED, referral=50, limit=20)
    assert (await member(wechat, ALICE)).share_qr_url is None  # nothing kept: the next 邀请 asks again


# --- a typed referral code during sign-up -------------------------------------------------------------

async def to_consent(wechat: WeChat, openid: str, phone: str) -> None:
    assert await wechat.say(openid, "注册") == texts.SIGNUP_ASK_PHONE
    assert await wechat.say(openid, phone) == texts.SIGNUP_ASK_BIRTHDAY.format(points=200)
    assert await wechat.say(openid, "跳过") == consent_prompt()


async def test_typed_referral_code_is_recorded_and_rewarded(wechat: WeChat) -> None:
    await sign_up(wechat, BOB, phone="13900139000")
    bob = await member(wechat, BOB)
    await to_consent(wechat, ALICE, "13800138000")
    typed = f"邀请码 {bob.referral_code.lower()}"  # type: ignore[union-attr]
    assert await wechat.say(ALICE, typed) == texts.SIGNUP_REFERRAL_OK.format(code=bob.referral_code)
    assert (await member(wechat, ALICE)).referrer_id == bob.id
    assert (await wechat.say(ALICE, "同意")).startswith("注册成功")
    alice = await member(wechat, ALICE)
    assert alice.joined_at is not None
    assert alice.referrer_id == bob.id
    reward = await entry_by_key(wechat, f"referral:{alice.id}")
    assert reward is not None
    assert (reward.member_id, reward.kind, reward.delta) == (bob.id, "referral", 50)
    assert await assert_books_balance(wechat, bob.id) == 150  # type: ignore[arg-type]


async def test_unknown_code_is_refused_and_sign_up_goes_on(wechat: WeChat) -> None:
    await to_consent(wechat, ALICE, "13800138000")
    assert await wechat.say(ALICE, "ZZZZZZ") == texts.SIGNUP_REFERRAL_UNKNOWN.format(code="ZZZZZZ")
    assert (await wechat.say(ALICE, "同意")).startswith("注册成功")
    alice = await member(wechat, ALICE)
    assert alice.joined_at is not None
    assert alice.referrer_id is None
    assert [e.kind for e in await entries(wechat, alice.id)] == ["signup"]  # type: ignore[arg-type]


async def test_own_code_is_refused_and_sign_up_goes_on(wechat: WeChat, clock: FrozenClock) -> None:
    """The same person (one unionid) a member at the Mini Program door, signing up at the Official Account."""
    services = wechat.services
    async with services.db.unit_of_work() as session:
        done = await members.sign_up(
            session, services.ledger, services.pii, openid="oMP_ALICE_000000000000001", source="mp",
            phone="13700137000", birthday=None, now=clock.now(),
        )
        await session.execute(update(Member).where(Member.id == done.member_id).values(unionid="uALICE"))
    fields = wechat.side.text(ALICE, "注册")
    assert (await wechat.send(fields) or {}).get("Content") == texts.SIGNUP_ASK_PHONE
    await wechat.say(ALICE, "13800138000")
    await wechat.say(ALICE, "跳过")
    own = wechat.side.text(ALICE, done.referral_code)
    own["UnionId"] = "uALICE"
    assert (await wechat.send(own) or {}).get("Content") == texts.SIGNUP_REFERRAL_OWN
    assert (await wechat.say(ALICE, "同意")).startswith("注册成功")
    alice = await member(wechat, ALICE)
    assert alice.referrer_id is None
    assert [e.kind for e in await entries(wechat, done.member_id)] == ["signup"]  # no reward to oneself


async def test_referrer_over_the_monthly_limit_is_refused_and_sign_up_goes_on(
    wechat: WeChat, clock: FrozenClock,
) -> None:
    services = wechat.services
    await sign_up(wechat, BOB, phone="13900139000")
    bob = await member(wechat, BOB)
    code = bob.referral_code
    assert code
    for index in range(20):  # 20 rewarded referrals this month, 8 a day under the daily cap
        at = clock.now() + timedelta(days=index // 8, minutes=index + 1)
        openid = f"oSHARE_REFEREE_{index:04d}"
        async with services.db.unit_of_work() as session:
            await members.record_referrer(session, openid, "oa", code, at, services.tz)
        async with services.db.unit_of_work() as session:
            done = await members.sign_up(
                session, services.ledger, services.pii, openid=openid, source="oa",
                phone=f"1580000{index:04d}", birthday=None, now=at,
            )
        assert done.referrer_rewarded
    clock.advance(days=3)
    await to_consent(wechat, ALICE, "13800138000")
    assert await wechat.say(ALICE, code) == texts.SIGNUP_REFERRAL_FULL.format(code=code)
    assert (await member(wechat, ALICE)).referrer_id is None
    assert (await wechat.say(ALICE, "同意")).startswith("注册成功")
    alice = await member(wechat, ALICE)
    assert alice.joined_at is not None
    assert alice.referrer_id is None
    assert await entry_by_key(wechat, f"referral:{alice.id}") is None
    assert await assert_books_balance(wechat, bob.id) == 100 + 20 * 50  # type: ignore[arg-type]


async def test_ref_scan_prefills_the_referrer_so_no_code_is_asked(wechat: WeChat) -> None:
    await sign_up(wechat, BOB, phone="13900139000")
    await sign_up(wechat, CAROL, phone="13700137000")
    bob, carol = await member(wechat, BOB), await member(wechat, CAROL)
    await wechat.event(BOB, "SCAN", f"ref_{bob.referral_code}")  # his own poster: not a scan for the funnel
    await wechat.event(ALICE, "subscribe", f"qrscene_ref_{bob.referral_code}")
    assert (await member(wechat, ALICE)).referrer_id == bob.id
    assert await scans(wechat) == [(ALICE, None, bob.id, True)]
    await to_consent(wechat, ALICE, "13800138000")
    assert await wechat.say(ALICE, carol.referral_code or "") == texts.SIGNUP_REFERRAL_KNOWN
    assert (await wechat.say(ALICE, "同意")).startswith("注册成功")
    alice = await member(wechat, ALICE)
    assert alice.referrer_id == bob.id  # the scan came first and stays
    assert await assert_books_balance(wechat, bob.id) == 150  # type: ignore[arg-type]
    assert await assert_books_balance(wechat, carol.id) == 100  # type: ignore[arg-type]


# --- channel QR codes ---------------------------------------------------------------------------------

async def add_channel(wechat: WeChat, name: str, clock: FrozenClock) -> None:
    async with wechat.services.db.unit_of_work() as session:
        await sharing.add_channel(session, name, f"{name} 海报", None, "admin", clock.now())


async def scans(wechat: WeChat) -> list[tuple[str, str | None, int | None, bool]]:
    async with wechat.services.db.sessions() as session:
        rows = await session.scalars(select(ShareScan).order_by(ShareScan.id))  # type: ignore[arg-type]
        return [(r.openid, r.channel, r.referrer_id, r.follow) for r in rows]


async def test_a_channel_scan_records_the_first_channel(wechat: WeChat, clock: FrozenClock) -> None:
    await add_channel(wechat, "mall", clock)
    await add_channel(wechat, "store-pd01", clock)
    first = await wechat.event(ALICE, "subscribe", "qrscene_chan_mall", Ticket="gQH47joAAAAA")
    assert (first or {}).get("Content") == texts.WELCOME
    assert (await member(wechat, ALICE)).channel == "mall"
    clock.advance(seconds=5)
    later = await wechat.event(ALICE, "SCAN", "chan_store-pd01")
    assert (later or {}).get("Content") == texts.JOIN_FIRST.format(bonus=100)
    assert (await member(wechat, ALICE)).channel == "mall"  # the first channel wins
    await sign_up(wechat, ALICE)
    alice = await member(wechat, ALICE)
    assert (alice.channel, alice.joined_at is not None) == ("mall", True)
    clock.advance(seconds=5)
    member_scan = await wechat.event(ALICE, "SCAN", "chan_mall")
    assert (member_scan or {}).get("Content") == texts.already_member
    # a member who came with no channel gets the one they first scan
    await sign_up(wechat, BOB, phone="13900139000")
    assert (await member(wechat, BOB)).channel is None
    await wechat.event(BOB, "SCAN", "chan_store-pd01")
    assert (await member(wechat, BOB)).channel == "store-pd01"
    assert await scans(wechat) == [
        (ALICE, "mall", None, True), (ALICE, "store-pd01", None, False), (ALICE, "mall", None, False),
        (BOB, "store-pd01", None, False),
    ]


async def test_an_unknown_channel_records_nothing_and_still_welcomes(wechat: WeChat) -> None:
    reply = await wechat.event(ALICE, "subscribe", "qrscene_chan_nosuch")
    assert (reply or {}).get("Content") == texts.WELCOME
    assert (await member(wechat, ALICE)).channel is None
    assert await scans(wechat) == []


# --- campaign invites ---------------------------------------------------------------------------------

async def attributions(wechat: WeChat, campaign_id: int) -> dict[int, int | None]:
    async with wechat.services.db.sessions() as session:
        rows = await session.scalars(select(CampaignMember).where(CampaignMember.campaign_id == campaign_id))
        return {r.member_id: r.referrer_id for r in rows}


async def test_a_campaign_invite_attributes_the_joins_to_the_sharer(
    live: tuple[WeChat, httpx.AsyncClient], clock: FrozenClock,
) -> None:
    wechat, http = live
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="join_bonus", title="分享有礼", points=10, cap=10, end="3天")).campaign
    await sign_up(wechat, ALICE)
    await sign_up(wechat, BOB, phone="13900139000")
    alice, bob = await member(wechat, ALICE), await member(wechat, BOB)
    before = len(await qr_calls(http))

    reply = await wechat.say(ALICE, f"邀请 {c.code.lower()}")
    calls = await qr_calls(http)
    assert len(calls) == before + 1
    scene = f"camp_{c.code}_{alice.referral_code}"
    assert calls[-1]["body"] == {  # temporary, until the campaign ends (3 days)
        "expire_seconds": 3 * 86400, "action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": scene}},
    }
    link = WeChatQr.SHOW + quote(str(calls[-1]["response"]["ticket"]), safe="")  # type: ignore[index]
    assert reply == texts.CAMPAIGN_INVITE.format(title="分享有礼", qr=link, code=c.code)

    # a member scans it: joined, attributed to ALICE
    joined = await wechat.event(BOB, "SCAN", scene)
    assert str((joined or {}).get("Content", "")).startswith("已加入活动「分享有礼」！已有 1/10 人参加")
    # a visitor follows through it: signed up, then joined, attributed; ALICE is also their referrer
    first = str((await wechat.event(CAROL, "subscribe", f"qrscene_{scene}") or {}).get("Content", ""))
    assert first.startswith(texts.WELCOME)
    assert first.endswith(texts.SIGNUP_ASK_PHONE)
    assert await wechat.say(CAROL, "13700137000") == texts.SIGNUP_ASK_BIRTHDAY.format(points=200)
    assert await wechat.say(CAROL, "跳过") == consent_prompt()
    assert await wechat.say(CAROL, alice.referral_code or "") == texts.SIGNUP_REFERRAL_KNOWN
    done = await wechat.say(CAROL, "同意")
    assert "已加入活动「分享有礼」！已有 2/10 人参加" in done
    carol = await member(wechat, CAROL)
    assert carol.referrer_id == alice.id
    # the sharer scanning their own invite joins unattributed
    clock.advance(seconds=5)
    await wechat.event(ALICE, "SCAN", scene)
    assert await attributions(wechat, c.id) == {  # type: ignore[arg-type]
        bob.id: alice.id, carol.id: alice.id, alice.id: None,
    }
    assert await scans(wechat) == [(BOB, None, alice.id, False), (CAROL, None, alice.id, True)]  # not her own
    assert await assert_books_balance(wechat, alice.id) == 100 + 50 + 10  # type: ignore[arg-type]


async def test_a_campaign_invite_in_demo_mode_and_for_a_bad_code(wechat: WeChat) -> None:
    await make_staff(wechat)
    c = (await create_campaign(wechat, kind="join_bonus", title="演示分享", points=10, cap=10)).campaign
    await sign_up(wechat, ALICE)
    alice = await member(wechat, ALICE)
    scene = f"camp_{c.code}_{alice.referral_code}"
    reply = await wechat.say(ALICE, f"邀请{c.code}")
    assert reply == texts.CAMPAIGN_INVITE.format(
        title="演示分享", qr=texts.CAMPAIGN_INVITE_DEMO.format(scene=scene), code=c.code,
    )
    async with wechat.services.db.sessions() as session:
        calls = (await session.scalars(select(OutboundCall))).all()
    assert [json.loads(r.payload)["action_info"]["scene"]["scene_str"] for r in calls] == [f"camp_{c.code}"]
    assert await wechat.say(ALICE, "邀请 NOPE9") == texts.campaign_unknown.format(code="NOPE9")
    assert await wechat.say(CAROL, f"邀请 {c.code}") == texts.JOIN_FIRST.format(bonus=100)
