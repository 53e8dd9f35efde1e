"""The sharing screen's channel QR codes: an operator creates `chan_<name>` (a permanent QR; in demo mode the
call is recorded and a placeholder shown), audited as `channel.create`; bad input is the form again with the
field's error and nothing written; analysts read; clerks do not see the screen."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.console import texts
from storage import sharing
from storage.clock import FrozenClock
from storage.models import Channel, OutboundCall
from tests.support.console_support import ConsoleWorld, audit_entries, console_world, row_of


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
    assert 'href="/admin/sharing"' not in home.text
