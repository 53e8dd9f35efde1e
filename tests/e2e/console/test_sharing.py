"""The sharing screen's channel QR codes: an operator creates `chan_<name>` (a permanent QR; in demo mode the
call is recorded and a placeholder shown), audited as `channel.create`; bad input is the form again with the
field's error and nothing written; analysts read; clerks do not see the screen."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from bot.app import create_app
from bot.console import texts
from bot.wechat.client import WeChatQr
from devtools.fakewechat import create_fake_wechat
from storage import sharing
from storage.clock import FrozenClock
from storage.models import CampaignMember, Channel, Member, OutboundCall, PurchaseOrder, ShareScan
from storage.sharing import FunnelRow, TopSharer
from tests.support.campaign_support import new_campaign
from tests.support.console_support import ConsoleWorld, Operator, add_operator, audit_entries, console_world, row_of
from tests.support.fakes import make_settings, serving


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def channels(world: ConsoleWorld) -> list[Channel]:
    async with world.db.sessions() as session:
        return list(await sharing.all_channels(session))


async def qr_calls(world: ConsoleWorld) -> list[dict[str, object]]:
    async with world.db.sessions() as session:
        rows = await session.scalars(select(OutboundCall).where(OutboundCall.api == "oa:/cgi-bin/qrcode/create"))
        return [json.loads(r.payload) for r in rows]


async def test_an_operator_creates_a_channel_qr_audited(world: ConsoleWorld) -> None:
    operator = await world.as_role("operator")
    page = await operator.post("/admin/sharing/channels", {"name": " Store-PD01 ", "label": "浦东店门口海报"})
    assert page.status_code == 200, page.text
    assert texts.CHANNEL_CREATED.format(name="store-pd01") in page.text
    [row] = await channels(world)
    assert (row.name, row.label, row.created_by) == ("store-pd01", "浦东店门口海报", "operator")
    assert row.qr_url is not None
    assert row.qr_url.startswith("demo://qr/demo-")
    assert row.qr_url.endswith(texts.CHANNEL_QR_DEMO)
    assert await qr_calls(world) == [
        {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "chan_store-pd01"}}},
    ]
    shown = row_of(page.text, "data-channel", "store-pd01")
    assert "chan_store-pd01" in shown
    assert "浦东店门口海报" in shown
    [entry] = await audit_entries(world.db, action="channel.create")
    assert (entry.actor, entry.target) == ("operator", "channel:store-pd01")
    assert json.loads(entry.after or "{}") == {"name": "store-pd01", "label": "浦东店门口海报", "qr": True}

    analyst = await world.as_role("analyst")
    listed = await analyst.get("/admin/sharing")
    assert listed.status_code == 200
    assert 'href="/admin/sharing"' in listed.text  # in the menu
    assert "chan_store-pd01" in row_of(listed.text, "data-channel", "store-pd01")
    assert 'id="add-channel"' not in listed.text  # reads only
    refused = await analyst.post("/admin/sharing/channels", {"name": "other", "label": "x"})
    assert refused.status_code == 403
    assert len(await channels(world)) == 1


async def test_with_a_live_secret_wechat_makes_a_permanent_qr(urls: tuple[str, str], clock: FrozenClock) -> None:
    fake = "http://fake.wechat"
    settings = make_settings(*urls, wechat_appsecret="x", wechat_api_base=fake)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_fake_wechat())) as http:
        app = create_app(settings, clock=clock, http=http)
        async with serving(app, clock) as wechat:
            await add_operator(wechat.services.db, "admin", "admin", clock.now())
            # Not demo mode: the console's cookies are Secure, so the browser speaks https.
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://wxbot.test") as tls:
                world = ConsoleWorld(wechat, lambda: Operator(tls))
                admin = await world.as_role("admin")
                page = await admin.post("/admin/sharing/channels", {"name": "poster", "label": "地铁海报"})
                assert page.status_code == 200, page.text
                calls = (await http.get(f"{fake}/_fake/calls", params={"path": "/cgi-bin/qrcode/create"})).json()
                assert len(calls) == 1
                assert calls[0]["body"] == {
                    "action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "chan_poster"}},
                }
                link = WeChatQr.SHOW + quote(calls[0]["response"]["ticket"], safe="")
                [row] = await channels(world)
                assert row.qr_url == link
                assert link in row_of(page.text, "data-channel", "poster")
                assert await qr_calls(world) == []  # sent, not recorded


@pytest.mark.parametrize(("name", "label", "field", "error"), [
    ("", "海报", "name", texts.CHANNEL_NAME_INVALID),
    ("门店一", "海报", "name", texts.CHANNEL_NAME_INVALID),
    ("has space", "海报", "name", texts.CHANNEL_NAME_INVALID),
    ("a" * 33, "海报", "name", texts.CHANNEL_NAME_INVALID),
    ("-lead", "海报", "name", texts.CHANNEL_NAME_INVALID),
    ("poster1", "", "label", texts.CHANNEL_LABEL_REQUIRED),
    ("poster1", "长" * 61, "label", texts.CHANNEL_LABEL_REQUIRED),
])
async def test_bad_channel_input_is_the_form_again_with_nothing_written(
    world: ConsoleWorld, name: str, label: str, field: str, error: str,
) -> None:
    admin = await world.as_role("admin")
    page = await admin.post("/admin/sharing/channels", {"name": name, "label": label})
    assert page.status_code == 422
    assert texts.FORM_INVALID in page.text
    assert f'<span class="field-error" data-error="{field}">{error}</span>' in page.text
    assert await channels(world) == []
    assert await qr_calls(world) == []
    assert await audit_entries(world.db, action="channel.create") == []


async def test_a_taken_name_is_refused_on_the_field(world: ConsoleWorld) -> None:
    admin = await world.as_role("admin")
    assert (await admin.post("/admin/sharing/channels", {"name": "mall", "label": "商场"})).status_code == 200
    again = await admin.post("/admin/sharing/channels", {"name": "MALL", "label": "另一个"})
    assert again.status_code == 409
    assert f'<span class="field-error" data-error="name">{texts.CHANNEL_NAME_TAKEN}</span>' in again.text
    assert [(c.name, c.label) for c in await channels(world)] == [("mall", "商场")]
    assert len(await qr_calls(world)) == 1  # no second QR code made for a refused name
    assert len(await audit_entries(world.db, action="channel.create")) == 1


async def test_a_clerk_does_not_see_the_screen(world: ConsoleWorld) -> None:
    clerk = await world.as_role("clerk")
    assert (await clerk.get("/admin/sharing")).status_code == 403
    home = await clerk.get("/admin")
    assert home.status_code == 200
    assert 'href="/admin/verify"' in home.text  # the clerk's menu, without the sharing screen
    assert 'href="/admin/sharing"' not in home.text


# --- the sharing funnel on a hand-built world -------------------------------------------------------------

async def build_world(world: ConsoleWorld, clock: FrozenClock) -> tuple[str, str]:
    """Two sharers, their referees, two channels, two campaigns. The numbers are worked out in the test."""
    now = clock.now()
    day = timedelta(days=1)
    people = {  # name: (referrer, channel, joined days ago or None for a visitor)
        "S1": (None, None, 60), "S2": (None, "mall", 60),
        "R1": ("S1", "mall", 5), "R2": ("S1", None, 10), "R3": ("S2", None, 40),
        "V1": ("S1", "poster", None), "N1": (None, "poster", 3),
    }
    ids: dict[str, int] = {}
    async with world.db.unit_of_work() as session:
        for name, (_, channel, ago) in people.items():
            joined = None if ago is None else now - ago * day
            row = Member(openid=f"o{name}", referral_code=f"CODE{name}" if ago is not None else None,
                         channel=channel, joined_at=joined, created_at=now - 70 * day)
            session.add(row)
            await session.flush()
            assert row.id is not None
            ids[name] = row.id
        for name, (referrer, _, _) in people.items():
            if referrer:
                row = await session.get(Member, ids[name])
                assert row is not None
                row.referrer_id = ids[referrer]
        for n, (who, fen, refunded) in enumerate((("R1", 10000, 0), ("R2", 8000, 8000), ("R3", 500, 0),
                                                 ("N1", 3000, 1000))):
            session.add(PurchaseOrder(order_id=f"share-{n}", member_id=ids[who], amount_fen=fen, points=0,
                                      refunded_fen=refunded, created_at=now - day))
        scans = (  # (who scanned, sharer, channel, a follow)
            ("oR1", "S1", None, True), ("oR1", "S1", None, False), ("oR2", "S1", None, False),
            ("oV1", "S1", None, True), ("oSTRANGER", "S1", None, False), ("oR3", "S2", None, True),
            ("oR1", None, "mall", True), ("oS2", None, "mall", False),
            ("oV1", None, "poster", True), ("oN1", None, "poster", True), ("oN1", None, "poster", False),
        )
        for who, sharer, channel, follow in scans:
            session.add(ShareScan(openid=who, referrer_id=ids[sharer] if sharer else None, channel=channel,
                                  follow=follow, created_at=now - day))
    campaigns = world.wechat.services.campaigns
    a = await new_campaign(world.db, campaigns, now - 20 * day, kind="join_bonus", ends_at=now + day, title="甲")
    b = await new_campaign(world.db, campaigns, now - 20 * day, kind="join_bonus", ends_at=now + day, title="乙")
    joins = ((a.id, "R1", "S1"), (a.id, "R2", "S1"), (a.id, "N1", "S2"), (a.id, "S2", None), (b.id, "R3", "S2"))
    async with world.db.unit_of_work() as session:
        for campaign_id, who, sharer in joins:
            session.add(CampaignMember(campaign_id=campaign_id, member_id=ids[who], joined_at=now - day,
                                       referrer_id=ids[sharer] if sharer else None))
    return a.code, b.code


async def test_the_sharing_funnel_of_a_hand_built_world(world: ConsoleWorld, clock: FrozenClock) -> None:
    a, b = await build_world(world, clock)
    async with world.db.sessions() as session:
        found = await sharing.sharing_report(session, clock.now())
    # S1: scanned by R1 (twice, once a follow), R2, V1 (a follow) and a stranger: 4 people, 2 follows; brought
    # R1 and R2 as members (V1 is a visitor): 2 sign-ups, of which R1 paid (R2's order is refunded whole).
    # S2: R3 scanned and followed; R3 signed up and paid.
    assert found.sharers == [FunnelRow("CODES1", 4, 2, 2, 1), FunnelRow("CODES2", 1, 1, 1, 1)]
    # mall: R1 (a follow) and S2 scanned; S2 and R1 are members by it, R1 paid. poster: V1 and N1 (twice)
    # scanned, both following; only N1 is a member, and paid (3000 - 1000 refunded is still paid).
    assert found.channels == [FunnelRow("mall", 2, 1, 2, 1), FunnelRow("poster", 2, 2, 1, 1)]
    # 甲: S1 brought R1 and R2, S2 brought N1 (S2's own join came by no invite); 乙: S2 brought R3.
    expected_top = sorted([TopSharer(a, "甲", "CODES1", 2), TopSharer(a, "甲", "CODES2", 1),
                           TopSharer(b, "乙", "CODES2", 1)], key=lambda t: (t.campaign_code, -t.joins))
    assert found.top_sharers == expected_top
    # Sign-ups in the 30 days to now: R1 (5 days ago), R2 (10), N1 (3); R3 and the sharers are older.
    # Referred among them: R1 and R2 -> 2/3.
    assert (found.signups_30d, found.referred_30d, found.referral_share_30d) == (3, 2, 0.6667)

    analyst = await world.as_role("analyst")
    page = await analyst.get("/admin/sharing")
    assert page.status_code == 200
    assert texts.REFERRAL_SHARE.format(signups=3, referred=2, share="66.7%") in page.text
    assert row_of(page.text, "data-key", "CODES1").endswith("<td>4</td><td>2</td><td>2</td><td>1</td></tr>")
    assert row_of(page.text, "data-key", "poster").endswith("<td>2</td><td>2</td><td>1</td><td>1</td></tr>")
    assert row_of(page.text, "data-top", f"{a}-CODES1").endswith("<td>2</td></tr>")
