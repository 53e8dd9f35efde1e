"""Broadcasts (issue 16, item 3): checked before anything is stored, expanded by the `broadcasts` job into one
marketing outbox row per audience member, sent by several senders under the push policy, and cancellable."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from scheduler.jobs import JOBS, SCHEDULE
from storage import audit, broadcasts, experiments, outbox
from storage.audiences import Audience
from storage.errors import InvalidFieldError
from storage.festivals import Festival
from storage.models import AuditEntry, Broadcast, ExperimentAssignment, Outbox, SubscribeCredit
from storage.rules import Rules, RulesError, rules_from_dict
from tests.support.factories import TZ, local
from tests.support.push_support import (
    TEMPLATE,
    TEMPLATES,
    PushWorld,
    bulk_members,
    capped_members,
    openid_for,
    push_world,
)

ACTOR = audit.Actor("ops", "operator")
TIERS = [t.name for t in Rules().tiers]


def draft(world: PushWorld, **over: Any) -> broadcasts.Draft:
    values: dict[str, Any] = {
        "name": "双十二", "kind": "campaign", "audience": Audience(), "content": {"text": "双十二全场八折"},
        "send_at": None, "deadline": None, "request_id": "req-1", "tiers": TIERS, "now": world.clock.now(),
    }
    values.update(over)
    return broadcasts.checked(**values)


async def create(world: PushWorld, d: broadcasts.Draft) -> Broadcast:
    async with world.db.unit_of_work() as session:
        made, _ = await broadcasts.create(session, d, actor=ACTOR, now=world.clock.now())
    return made


async def members(world: PushWorld, prefix: str, n: int, **extra: Any) -> list[int]:
    now = world.clock.now()
    return await bulk_members(world.db, [{
        "openid": openid_for(f"{prefix}{i}"), "joined_at": now - timedelta(days=60),
        "last_interaction_at": now - timedelta(days=3), **extra,
    } for i in range(n)])


async def sends_per_openid(world: PushWorld) -> Counter[str]:
    return Counter(str(c["body"]["touser"]) for c in await world.delivered() if c["path"] == TEMPLATE)


async def cap_them(world: PushWorld, ids: list[int]) -> None:
    await capped_members(world.db, ids, world.clock.now())


@pytest.mark.parametrize(("over", "field"), [
    ({"name": ""}, "name"),
    ({"name": "x" * 61}, "name"),
    ({"kind": "spam"}, "kind"),
    ({"audience": Audience(tiers=("不存在",))}, "audience.tiers"),
    ({"audience": Audience(segments=("土豪",))}, "audience.segments"),
    ({"audience": Audience(active_days=0)}, "audience.active_days"),
    ({"send_at": "past"}, "send_at"),
    ({"deadline": "before"}, "deadline"),
    ({"request_id": ""}, "request_id"),
])
async def test_a_bad_field_is_refused_by_name_and_nothing_is_stored(
    urls: tuple[str, str], over: dict[str, Any], field: str,
) -> None:
    async with push_world(urls, at=local(2026, 12, 2, 10)) as world:
        await members(world, "bad", 3)
        now = world.clock.now()
        if over.get("send_at") == "past":
            over["send_at"] = now - timedelta(hours=1)
        if over.get("deadline") == "before":
            over |= {"send_at": now + timedelta(hours=2), "deadline": now + timedelta(hours=1)}
        with pytest.raises(InvalidFieldError) as refused:
            await create(world, draft(world, **over))
        assert refused.value.field == field
        async with world.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Broadcast)) == 0
            assert await session.scalar(select(func.count()).select_from(Outbox)) == 0


@pytest.mark.parametrize(("text", "article", "field"), [
    ("", None, "content.text"),
    ("长" * 601, None, "content.text"),
    (None, {"description": "无标题"}, "content.article.title"),
    (None, {"title": "活动", "url": "javascript:alert(1)"}, "content.article.url"),
    (None, {"title": "活动", "picurl": "ftp://x/y.png"}, "content.article.picurl"),
    ("两者", {"title": "都有"}, "content"),
    (None, None, "content"),
])
def test_bad_content_is_refused_by_name(text: str | None, article: dict[str, Any] | None, field: str) -> None:
    with pytest.raises(InvalidFieldError) as refused:
        broadcasts.checked_content(text, article)
    assert refused.value.field == field


async def test_an_empty_audience_or_unknown_campaign_is_refused(urls: tuple[str, str]) -> None:
    async with push_world(urls, at=local(2026, 12, 2, 10)) as world:
        await members(world, "opt", 2, marketing_opt_out=True)  # outside every audience's base
        with pytest.raises(InvalidFieldError) as empty:
            await create(world, draft(world))
        assert empty.value.field == "audience"
        with pytest.raises(InvalidFieldError) as unknown:
            await create(world, draft(world, audience=Audience(campaign_id=999)))
        assert unknown.value.field == "audience.campaign"
        async with world.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Broadcast)) == 0


async def test_the_preview_counts_the_members_with_a_credit_for_the_kinds_subscription_template(
    urls: tuple[str, str],
) -> None:
    async with push_world(urls, at=local(2026, 12, 2, 10, 0)) as world:
        now = world.clock.now()
        await members(world, "s", 2)
        await bulk_members(world.db, [{"openid": None, "mp_openid": f"oMP-{n}", "joined_at": now - timedelta(days=60),
                                       "last_interaction_at": now - timedelta(days=3)} for n in range(3)])
        async with world.db.unit_of_work() as session:
            session.add_all([
                SubscribeCredit(openid="oMP-0", template_id="tmpl-a", credits=2, updated_at=now),
                SubscribeCredit(openid="oMP-1", template_id="tmpl-a", credits=0, updated_at=now),  # used up
                SubscribeCredit(openid="oMP-2", template_id="tmpl-b", credits=1, updated_at=now),  # another kind's
                SubscribeCredit(openid=openid_for("s0"), template_id="tmpl-a", credits=1, updated_at=now),
            ])
        async with world.db.sessions() as session:
            seen = await broadcasts.preview(session, draft(world), world.clock.now(), rules=world.rules, tz=TZ,
                                            subscribe_templates={"campaign": "tmpl-a"})
        assert (seen.audience, seen.subscription) == (5, 1)


async def test_a_large_audience_s_capped_count_is_estimated_on_every_kth_member_with_its_margin(
    urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(broadcasts, "PER_MEMBER_MAX", 10)  # 40 members: every 4th id is counted
    async with push_world(urls, at=local(2026, 12, 2, 10)) as world:
        ids = await members(world, "s", 40)
        sampled = [i for i in ids if i % 4 == 0]
        others = [i for i in ids if i % 4 != 0]
        assert len(sampled) == 10  # 40 consecutive ids
        await cap_them(world, sampled[:3] + others[:9])  # 12 of 40 at the cap, 3 of the 10 counted
        async with world.db.sessions() as session:
            seen = await broadcasts.preview(session, draft(world), world.clock.now(), rules=world.rules, tz=TZ)
        # 3/10 scaled to 40: 12; the Wilson 95 % interval of 3/10 is [0.1078, 0.6032], so the margin is
        # (0.6032 - 0.3) * 40 = 12.13 members, rounded up. The audience and the reachable figures stay exact.
        assert (seen.audience, seen.capped, seen.capped_sample, seen.capped_margin) == (40, 12, 10, 13)
        assert seen.reachable == 28
        # Another 4 at the cap outside the sample do not move the estimate; one inside it moves it by 4.
        await cap_them(world, others[9:13])
        await cap_them(world, sampled[3:4])
        async with world.db.sessions() as session:
            again = await broadcasts.preview(session, draft(world), world.clock.now(), rules=world.rules, tz=TZ)
        assert (again.capped, again.capped_sample) == (16, 10)


async def test_the_request_id_makes_create_idempotent_and_preview_counts(urls: tuple[str, str]) -> None:
    async with push_world(urls, at=local(2026, 12, 2, 22, 30)) as world:
        ids = await members(world, "p", 5)
        await cap_them(world, ids[:2])
        d = draft(world)
        async with world.db.sessions() as session:
            seen = await broadcasts.preview(session, d, world.clock.now(), rules=world.rules, tz=TZ,
                                            templates=set(TEMPLATES))
        assert (seen.audience, seen.template, seen.capped, seen.cs_window) == (5, 5, 2, 0)
        assert (seen.capped_sample, seen.capped_margin) == (None, 0)  # counted, not estimated
        assert seen.quiet_hours
        assert seen.starts_at == local(2026, 12, 3, 9)
        assert seen.payload["text"] == "双十二全场八折"
        first, again = await create(world, d), await create(world, d)
        assert first.id == again.id
        async with world.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Broadcast)) == 1
            actions = (await session.scalars(select(AuditEntry.action))).all()
        assert list(actions) == ["broadcast.create"]


def test_the_job_is_scheduled_every_minute() -> None:
    assert JOBS["broadcasts"]
    assert SCHEDULE["broadcasts"] == {"minute": "*"}


# The 10,000 members with two sender processes: tests/integration/test_broadcast_processes.py.


async def test_a_cancelled_broadcast_sends_nothing_more(urls: tuple[str, str]) -> None:
    async with push_world(urls, at=local(2026, 12, 2, 10, 0), wechat_template_ids=TEMPLATES) as world:
        await members(world, "k", 120)
        made = await create(world, draft(world))
        await broadcasts.expand(world.db, int(made.id or 0), world.clock.now(), rules=world.rules, tz=TZ, page=50)
        first = await world.sender.run_once()  # one batch of 20 goes out
        claimed = await outbox.claim(world.db, world.clock.now(), 10, by="other")  # a sender mid-batch
        async with world.db.unit_of_work() as session:
            _, dropped = await broadcasts.cancel(session, int(made.id or 0), actor=ACTOR, now=world.clock.now())
        assert dropped == 120 - first - len(claimed)
        for row in claimed:  # the claimed rows are not sent either
            await world.new_sender().deliver(row)
        senders = [world.new_sender(kv=world.new_kv()) for _ in range(2)]
        await asyncio.gather(*(world.drain(s) for s in senders))
        assert len(await world.delivered()) == first
        async with world.db.sessions() as session:
            states = dict((await session.execute(
                select(Outbox.status, func.count()).group_by(Outbox.status))).all())
            actions = list((await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all())
        assert states == {"sent": first, "dropped": 120 - first}
        assert actions == ["broadcast.create", "broadcast.cancel"]


async def test_expansion_stops_between_pages_when_cancelled_and_resumes_from_the_cursor(
    urls: tuple[str, str],
) -> None:
    async with push_world(urls, at=local(2026, 12, 2, 10, 0)) as world:
        await members(world, "r", 30)
        made = await create(world, draft(world))
        broadcast_id = int(made.id or 0)
        assert await broadcasts.expand(world.db, broadcast_id, world.clock.now(), rules=world.rules, tz=TZ,
                                       page=10) == 30
        async with world.db.unit_of_work() as session:
            stored = await session.get(Broadcast, broadcast_id)
            assert stored is not None
            stored.status, stored.cursor = "sending", 0  # as if it crashed: the run again adds nothing
        assert await broadcasts.expand(world.db, broadcast_id, world.clock.now(), rules=world.rules, tz=TZ,
                                       page=10) == 0
        second = await create(world, draft(world, request_id="req-2"))
        async with world.db.unit_of_work() as session:
            await broadcasts.cancel(session, int(second.id or 0), actor=ACTOR, now=world.clock.now())
        assert await broadcasts.expand(world.db, int(second.id or 0), world.clock.now(), rules=world.rules,
                                       tz=TZ) == 0
        async with world.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Outbox)) == 30


def test_a_festival_raises_the_cap_by_one_never_beyond_five() -> None:
    rules = rules_from_dict({"festivals": [{"name": "元旦", "date": "01-01"}, {"name": "春节", "date": "2027-02-06"}]})
    assert rules.festivals == (Festival("元旦", 1, 1), Festival("春节", 2, 6, 2027))
    assert rules.marketing_cap_at(local(2027, 1, 1, 12), TZ) == 5
    assert rules.marketing_cap_at(local(2027, 1, 2, 12), TZ) == 4
    assert rules.marketing_cap_at(local(2028, 2, 6, 12), TZ) == 4
    high = rules_from_dict({"marketing_cap": 5, "festivals": [{"name": "元旦", "date": "01-01"}]})
    assert high.marketing_cap_at(local(2027, 1, 1, 12), TZ) == 5
    for bad in ("13-01", "2027-02-30", "1-1", 20270101):
        with pytest.raises(RulesError, match=r"festivals\[0\]\.date"):
            rules_from_dict({"festivals": [{"name": "x", "date": bad}]})


async def test_a_broadcast_under_an_experiment_sends_each_arm_its_content_and_the_holdout_nothing(
    urls: tuple[str, str],
) -> None:
    async with push_world(urls, at=local(2026, 12, 2, 10, 0), wechat_template_ids=TEMPLATES) as world:
        ids = await members(world, "x", 200)
        async with world.db.unit_of_work() as session:
            experiment, _ = await experiments.create(
                session, name="标题实验", target="broadcast", holdout=20, request_id="exp-bc", actor=ACTOR,
                now=world.clock.now(), arms=[
                    {"name": "control", "weight": 50},
                    {"name": "short", "weight": 50, "params": {"text": "八折，今天截止"}},
                ],
            )
            made, _ = await broadcasts.create(session, draft(world), actor=ACTOR, now=world.clock.now(),
                                              experiment_id=experiment.id)
        queued = await JOBS["broadcasts"](world.ctx, world.clock.now())
        async with world.db.sessions() as session:
            arms = dict((await session.execute(
                select(ExperimentAssignment.member_id, ExperimentAssignment.arm)
            )).all())
            rows = {r.member_id: r for r in (await session.scalars(select(Outbox))).all()}
            stored = await session.get(Broadcast, made.id)
        held = {m for m, arm in arms.items() if arm == "holdout"}
        assert sorted(arms) == sorted(ids)
        assert set(rows) == set(ids) - held
        assert stored is not None
        assert (queued, stored.queued, stored.held_out) == (len(ids) - len(held), len(ids) - len(held), len(held))
        for member_id, row in rows.items():
            assert (row.broadcast_id, row.experiment_id, row.variant) == (made.id, experiment.id, arms[member_id])
            text = "八折，今天截止" if arms[member_id] == "short" else "双十二全场八折"
            assert f'"text": "{text}"' in row.payload


def test_an_arm_varies_the_text_or_the_article_fields() -> None:
    article = {"article": {"title": "双十二", "url": "https://shop.example/1212"}}
    assert broadcasts.arm_content(article, {"title": "今晚截止"}) == {
        "article": {"title": "今晚截止", "url": "https://shop.example/1212"}}
    assert broadcasts.arm_content(article, {"text": "八折"}) == {"text": "八折"}
    assert broadcasts.arm_content({"text": "八折"}, {}) == {"text": "八折"}
    assert broadcasts.arm_content({"text": "八折"}, {"url": "https://shop.example/x"}) == {"text": "八折"}  # no title
