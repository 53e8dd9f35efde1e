"""The push report (issue 15 item 5) over HTTP, on a world built by hand where every figure is worked out
here: per local month and kind, queued, sent per channel, undeliverable by cause, held by the monthly cap
(waiting or dropped), and conversion within 7 days of the send (a check-in just inside day 7 counts, an
order on day 8 does not). The console page (read from its table rows) and GET /api/admin/push-report say
the same; bad months are a 422 with the field's error / a precise message."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.console import texts
from storage import outbox
from storage.clock import FrozenClock
from storage.db import Database
from storage.models import Checkin, Outbox, PurchaseOrder
from tests.support.console_support import ConsoleWorld, console_world, row_of
from tests.support.factories import add_member, local
from tests.support.fakes import ADMIN

# The clock starts 2026-11-22 10:00 local (tests/conftest.py START): the default range is 2026-06..2026-11.


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def push(db: Database, key: str, member: int | None, kind: str, queued: datetime, status: str, *,
               at: datetime | None = None, channel: str | None = None, reason: str = "",
               source: str = "oa") -> None:
    """One outbox row queued at `queued`, then ended as the sender ends it (outbox.finish) at `at`."""
    async with db.unit_of_work() as session:
        assert await outbox.enqueue(session, dedupe_key=key, openid=f"o{key}", kind=kind, payload={"params": {}},
                                    now=queued, member_id=member, category=outbox.MARKETING, source=source)
        row = await session.scalar(select(Outbox).where(Outbox.dedupe_key == key))
        assert row is not None
        if status != outbox.PENDING or reason:
            await outbox.finish(session, row, status, at or queued, reason=reason, channel=channel,
                                retry_at=(at or queued) + timedelta(days=3))


async def build(world: ConsoleWorld) -> None:
    db = world.db
    a, b, c = [await add_member(db, local(2026, 9, 1)) for _ in range(3)]
    # October (local): A's birthday queued 23:30 on the 31st, sent by template at 23:40; A checks in one
    # minute before 7 days are up: converted.
    sent_a = local(2026, 10, 31, 23, 40)
    await push(db, "birthday:a", a, "birthday", local(2026, 10, 31, 23, 30), outbox.SENT, at=sent_a,
               channel="template")
    # November (local) although still 31 October in UTC: B's birthday queued 00:30 on 1 November, sent as a
    # customer-service message; B's order an hour past the 7 days does not count.
    sent_b = local(2026, 11, 1, 0, 31)
    await push(db, "birthday:b", b, "birthday", local(2026, 11, 1, 0, 30), outbox.SENT, at=sent_b, channel="cs")
    # November win-backs: C's had no channel; A's went by template and A ordered two days later.
    await push(db, "winback:c", c, "winback", local(2026, 11, 5, 10), outbox.UNDELIVERABLE,
               reason=outbox.UNDELIVERABLE_CAUSES["no_channel"] + " (no message in 48 h); no template")
    sent_w = local(2026, 11, 12, 10, 5)
    await push(db, "winback:a", a, "winback", local(2026, 11, 12, 10), outbox.SENT, at=sent_w, channel="template")
    # November expiry reminders: A's waits for the monthly cap, B's was dropped for it, C's template was refused.
    await push(db, "expiry:a", a, "expiry", local(2026, 11, 10, 10), outbox.PENDING, reason=outbox.CAP_HELD)
    await push(db, "expiry:b", b, "expiry", local(2026, 11, 11, 10), outbox.DROPPED,
               reason=f"{outbox.CAP_HELD} of 4 reached")
    await push(db, "expiry:c", c, "expiry", local(2026, 11, 15, 10), outbox.UNDELIVERABLE,
               reason=outbox.UNDELIVERABLE_CAUSES["template_delivery"] + ": failed:user block")
    # A robot post to the operations group is no push to a member: not in the report.
    await push(db, "anomaly:1", None, "anomaly", local(2026, 11, 3, 10), outbox.SENT, at=local(2026, 11, 3, 10),
               channel="robot", source="wecom")
    # A December push is outside the asked months.
    await push(db, "birthday:c", c, "birthday", local(2026, 12, 1, 9), outbox.PENDING)
    async with db.unit_of_work() as session:
        late = sent_a + timedelta(days=7) - timedelta(minutes=1)
        session.add(Checkin(member_id=a, day=late.date(), streak=1, created_at=late))
        session.add(PurchaseOrder(order_id="O-B-8", member_id=b, amount_fen=5000, points=50,
                                  created_at=sent_b + timedelta(days=7, hours=1)))
        session.add(PurchaseOrder(order_id="O-A-2", member_id=a, amount_fen=8000, points=80,
                                  created_at=sent_w + timedelta(days=2)))


def zero(**sent: int) -> dict[str, int]:
    return {"cs": 0, "template": 0, "subscribe": 0, **sent}


EXPECTED = {
    ("2026-10", "birthday"): {"queued": 1, "sent": zero(template=1), "sent_total": 1, "undeliverable": 0,
                              "undeliverable_reasons": {}, "held_by_cap": 0, "converted_7d": 1, "conversion_7d": 1.0},
    ("2026-11", "birthday"): {"queued": 1, "sent": zero(cs=1), "sent_total": 1, "undeliverable": 0,
                              "undeliverable_reasons": {}, "held_by_cap": 0, "converted_7d": 0, "conversion_7d": 0.0},
    ("2026-11", "expiry"): {"queued": 3, "sent": zero(), "sent_total": 0, "undeliverable": 1,
                            "undeliverable_reasons": {"template_delivery": 1}, "held_by_cap": 2, "converted_7d": 0,
                            "conversion_7d": None},
    ("2026-11", "winback"): {"queued": 2, "sent": zero(template=1), "sent_total": 1, "undeliverable": 1,
                             "undeliverable_reasons": {"no_channel": 1}, "held_by_cap": 0, "converted_7d": 1,
                             "conversion_7d": 1.0},
}


async def test_the_api_returns_the_figures_of_the_world(world: ConsoleWorld) -> None:
    await build(world)
    api = world.wechat.client
    assert (await api.get("/api/admin/push-report")).status_code == 401
    body = (await api.get("/api/admin/push-report", headers=ADMIN)).json()
    assert (body["from"], body["to"]) == ("2026-06", "2026-11")
    got = {(r["month"], r["kind"]): {k: v for k, v in r.items() if k not in ("month", "kind", "label")}
           for r in body["rows"]}
    assert got == EXPECTED
    assert [(r["month"], r["kind"], r["label"]) for r in body["rows"]] == [
        ("2026-10", "birthday", "生日祝福"), ("2026-11", "birthday", "生日祝福"),
        ("2026-11", "expiry", "积分到期提醒"), ("2026-11", "winback", "回归召回"),
    ]
    assert body["channels"] == {"cs": "客服消息", "template": "模板消息", "subscribe": "订阅消息"}
    assert body["reasons"]["no_channel"] == texts.PUSH_CAUSE_NAMES["no_channel"]
    october = (await api.get("/api/admin/push-report?from=2026-10&to=2026-10", headers=ADMIN)).json()
    assert [(r["month"], r["kind"]) for r in october["rows"]] == [("2026-10", "birthday")]
    december = (await api.get("/api/admin/push-report?from=2026-12-01&to=2026-12", headers=ADMIN)).json()
    assert [(r["kind"], r["queued"], r["sent_total"]) for r in december["rows"]] == [("birthday", 1, 0)]


async def test_bad_months_are_a_precise_422(world: ConsoleWorld) -> None:
    api = world.wechat.client
    for query, message in [
        ("from=2026-13", "`from` must be a month as YYYY-MM, got '2026-13'"),
        ("to=november", "`to` must be a month as YYYY-MM, got 'november'"),
        ("from=2026-11&to=2026-10", "`from` (2026-11) is after `to` (2026-10)"),
        ("from=2024-01&to=2026-11", "at most 24 months per request, asked 35"),
    ]:
        refused = await api.get(f"/api/admin/push-report?{query}", headers=ADMIN)
        assert refused.status_code == 422, query
        assert refused.json()["message"] == message
    schema = (await api.get("/openapi.json")).json()
    operation = schema["paths"]["/api/admin/push-report"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["example"]["rows"][0]["kind"] == "birthday"


def cells(row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]


async def test_the_console_page_shows_the_same_rows(world: ConsoleWorld) -> None:
    await build(world)
    operator = await world.as_role("analyst")
    listing = await operator.get("/admin/pushes")
    assert 'href="/admin/pushes/report"' in listing.text
    page = await operator.get("/admin/pushes/report")
    assert page.status_code == 200
    html = page.text
    # month, kind, queued, cs, template, subscribe, sent, undeliverable, reasons, cap, converted, rate
    assert cells(row_of(html, "data-report", "2026-10:birthday")) == [
        "2026-10", "生日祝福", "1", "0", "1", "0", "1", "0", "", "0", "1", "100.0%"]
    assert cells(row_of(html, "data-report", "2026-11:birthday")) == [
        "2026-11", "生日祝福", "1", "1", "0", "0", "1", "0", "", "0", "0", "0.0%"]
    assert cells(row_of(html, "data-report", "2026-11:expiry")) == [
        "2026-11", "积分到期提醒", "3", "0", "0", "0", "0", "1", texts.PUSH_CAUSE_NAMES["template_delivery"] + " 1",
        "2", "0", "—"]
    assert cells(row_of(html, "data-report", "2026-11:winback")) == [
        "2026-11", "回归召回", "2", "0", "1", "0", "1", "1", texts.PUSH_CAUSE_NAMES["no_channel"] + " 1",
        "0", "1", "100.0%"]
    assert 'data-report="2026-11:anomaly"' not in html
    assert 'src="/admin/static/pushreport.js"' in html
    assert (await operator.get("/admin/static/pushreport.js")).status_code == 200


async def test_the_console_page_refuses_bad_months_with_the_field_error(world: ConsoleWorld) -> None:
    operator = await world.as_role("operator")
    bad = await operator.get("/admin/pushes/report?from=2026-1x")
    assert bad.status_code == 422
    assert f'id="from-error">{texts.PUSH_REPORT_BAD_MONTH}<' in bad.text
    order = await operator.get("/admin/pushes/report?from=2026-11&to=2026-10")
    assert order.status_code == 422
    assert f'id="from-error">{texts.PUSH_REPORT_ORDER}<' in order.text
    empty = await operator.get("/admin/pushes/report")
    assert empty.status_code == 200
    assert texts.PUSH_REPORT_EMPTY in empty.text
    clerk = await world.as_role("clerk")
    assert (await clerk.get("/admin/pushes/report")).status_code == 403
