"""The ticket queue in the console: the list (live ones oldest first; filters by state, category, kind,
mine, late), one ticket's whole thread and audit trail, answer / resolve / assign (audited, the member
reached through the chat), bad input as the form again with nothing written, roles, CSRF, escaping,
the SLA flag, the figures page and the member page's tickets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.console import texts
from handlers import texts as chat_texts
from scheduler.jobs import JobContext, ticket_sla
from storage import cswindow
from storage.clock import FrozenClock
from storage.models import AuditEntry
from tests.e2e.test_redeem_chat import join
from tests.support.campaign_support import member_id
from tests.support.console_support import ConsoleWorld, audit_entries, console_world, row_of
from tests.support.ticket_support import open_ticket, outbox_rows, thread, ticket, tickets_of

HOSTILE = '<script>alert("x")</script>'
ALICE = "oALICE000000000000000console"
BOB = "oBOB0000000000000000console"


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def audits(world: ConsoleWorld, code: str) -> list[AuditEntry]:
    return await audit_entries(world.db, target=f"ticket:{code}")


async def test_the_queue_lists_live_tickets_oldest_first_with_filters(world: ConsoleWorld) -> None:
    chat = world.wechat
    await join(chat, ALICE)
    await join(chat, BOB, phone="13800138001")
    first = await open_ticket(chat, ALICE, category="1")
    chat.services.clock.advance(minutes=5)  # type: ignore[attr-defined]
    second = await open_ticket(chat, BOB, category="4")
    await chat.say(ALICE, "人工")
    analyst = await world.as_role("analyst")
    page = await analyst.get("/admin/tickets")
    assert page.status_code == 200
    assert page.text.index(f'data-ticket="{first}"') < page.text.index(f'data-ticket="{second}"')
    alice = await member_id(world.db, ALICE)
    handoff = next(k.code for k in await tickets_of(chat, alice) if k.kind == "hand-off")
    assert texts.TICKET_KINDS["hand-off"] in row_of(page.text, "data-ticket", handoff)
    only = (await analyst.get("/admin/tickets?category=配送")).text
    assert second in only
    assert first not in only
    handoffs = (await analyst.get("/admin/tickets?kind=hand-off")).text
    assert first not in handoffs
    assert f'data-ticket="{handoff}"' in handoffs
    assert texts.TICKET_NONE in (await analyst.get("/admin/tickets?state=resolved")).text
    assert texts.TICKET_NONE in (await analyst.get("/admin/tickets?late=1")).text
    assert texts.TICKET_NONE in (await analyst.get("/admin/tickets?mine=1")).text
    assert (await analyst.get("/admin/tickets?state=bogus&category=<x>")).status_code == 200  # ignored, not a 500


async def test_an_operator_answers_resolves_and_assigns_audited(world: ConsoleWorld) -> None:
    chat = world.wechat
    await join(chat, ALICE)
    code = await open_ticket(chat, ALICE, text=f"描述 {HOSTILE}")
    row = await ticket(chat, code)
    me = await world.as_role("operator")
    page = await me.get(f"/admin/tickets/{row.id}")
    assert page.status_code == 200
    assert HOSTILE not in page.text
    assert "&lt;script&gt;" in page.text  # the member's words, escaped

    answered = await me.post(f"/admin/tickets/{row.id}/answer", {"text": f"您好 {HOSTILE}"})
    assert answered.status_code == 303
    [queued] = await outbox_rows(chat, kind="ticket_answer")  # Alice wrote just now: inside the window
    assert queued.openid == ALICE
    assert (await ticket(chat, code)).state == "answered"
    shown = (await me.get(f"/admin/tickets/{row.id}?done=answer")).text
    assert texts.TICKET_DONE["answer"] in shown
    assert shown.count("&lt;script&gt;") == 2

    assert (await me.post(f"/admin/tickets/{row.id}/assign", {"to": "operator"})).status_code == 303
    assert (await ticket(chat, code)).assigned_to == "operator"
    assert code in (await me.get("/admin/tickets?mine=1")).text

    await cswindow.close(chat.services.kv, "oa", ALICE)
    assert (await me.post(f"/admin/tickets/{row.id}/resolve", {"note": "已退款"})).status_code == 303
    assert (await ticket(chat, code)).state == "resolved"
    told = await chat.say(ALICE, "积分")
    assert told.startswith(chat_texts.TICKET_RESOLVED.format(code=code, body="已退款"))
    assert await chat.say(ALICE, "4") == chat_texts.TICKET_THANKS
    trail = await audits(world, code)
    assert [(a.actor, a.action) for a in trail] == [
        ("operator", "ticket.answer"), ("operator", "ticket.assign"), ("operator", "ticket.resolve")]
    assert all(a.client for a in trail)
    assert HOSTILE not in "".join(a.after or "" for a in trail)  # the audit holds states, not texts
    assert 'id="answer-form"' not in (await me.get(f"/admin/tickets/{row.id}")).text


async def test_bad_input_is_the_form_again_and_nothing_is_written(world: ConsoleWorld) -> None:
    chat = world.wechat
    await join(chat, ALICE)
    code = await open_ticket(chat, ALICE)
    row = await ticket(chat, code)
    me = await world.as_role("admin")
    empty = await me.post(f"/admin/tickets/{row.id}/answer", {"text": "   "})
    assert empty.status_code == 422
    assert texts.TICKET_TEXT_INVALID in empty.text
    too_long = await me.post(f"/admin/tickets/{row.id}/answer", {"text": "长" * 4001})
    assert too_long.status_code == 422
    wrong = await me.post(f"/admin/tickets/{row.id}/assign", {"to": "analyst"})  # may not answer tickets
    assert wrong.status_code == 422
    assert texts.TICKET_ASSIGNEE_INVALID in wrong.text
    assert len(await thread(chat, code)) == 1
    assert (await ticket(chat, code)).assigned_to is None
    assert await audits(world, code) == []
    await me.post(f"/admin/tickets/{row.id}/resolve", {"note": ""})
    again = await me.post(f"/admin/tickets/{row.id}/answer", {"text": "还有吗"})
    assert again.status_code == 409
    assert texts.TICKET_WAS_RESOLVED in again.text
    assert (await me.get("/admin/tickets/999999")).status_code == 404
    assert (await me.post("/admin/tickets/999999/answer", {"text": "x"})).status_code == 404


async def test_roles_and_csrf(world: ConsoleWorld) -> None:
    chat = world.wechat
    await join(chat, ALICE)
    code = await open_ticket(chat, ALICE)
    row = await ticket(chat, code)
    analyst = await world.as_role("analyst")
    page = await analyst.get(f"/admin/tickets/{row.id}")
    assert page.status_code == 200
    assert 'id="answer-form"' not in page.text
    for action, field in (("answer", "text"), ("resolve", "note"), ("assign", "to")):
        refused = await analyst.post(f"/admin/tickets/{row.id}/{action}", {field: "operator"})
        assert refused.status_code == 403
        assert "管理员、运营" in refused.text
    clerk = await world.as_role("clerk")
    for path in ("/admin/tickets", f"/admin/tickets/{row.id}", "/admin/tickets/figures"):
        assert (await clerk.get(path)).status_code == 403
    me = await world.as_role("admin")
    for csrf in ("", "stale-token"):
        refused = await me.post(f"/admin/tickets/{row.id}/answer", {"text": "你好"}, csrf=csrf)
        assert refused.status_code == 403
        assert texts.CSRF_FAILED in refused.text
    assert (await ticket(chat, code)).state == "open"
    assert await audits(world, code) == []


async def test_the_sla_flag_the_figures_and_the_member_page(world: ConsoleWorld) -> None:
    chat = world.wechat
    alice = await join(chat, ALICE)
    code = await open_ticket(chat, ALICE, category="2")
    row = await ticket(chat, code)
    clock = chat.services.clock
    clock.advance(hours=3)  # type: ignore[attr-defined]
    await ticket_sla(JobContext(chat.services.db, chat.services.ledger), clock.now())
    me = await world.as_role("analyst")
    assert texts.TICKET_BREACHES["answer"] in (await me.get(f"/admin/tickets/{row.id}")).text
    assert code in (await me.get("/admin/tickets?late=1")).text
    figures = (await me.get("/admin/tickets/figures")).text
    assert '<dd id="fig-total">1</dd>' in figures
    assert '<dd id="fig-escalated">1</dd>' in figures
    assert '<dd id="fig-sla-answer">0%</dd>' in figures
    assert 'data-category="服务"' in figures
    assert (await me.get("/admin/tickets/figures?since=not-a-date")).status_code == 400
    member = (await me.get(f"/admin/members/{alice}")).text
    assert f'<a href="/admin/tickets/{row.id}">{code}</a>' in member
