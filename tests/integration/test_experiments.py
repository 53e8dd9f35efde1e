"""Experiments: what an operator may start (every refusal names its field, nothing stored), the birthday
greeting under test (the holdout credited and sent nothing, every other member exactly one greeting with its
arm's words and hour, as the fake WeChat receives them), and the report's statistics against hand computation."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from scheduler.jobs import birthday
from storage import audit, cswindow, experimentreport, experiments
from storage.db import Database
from storage.errors import InvalidFieldError
from storage.models import Checkin, Experiment, ExperimentAssignment, InteractionDay, LedgerEntry, Outbox, PurchaseOrder
from tests.support.factories import TZ, add_member
from tests.support.push_support import bulk_members, openid_for, push_world

NOW = datetime(2026, 5, 20, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
OP = audit.Actor("陈运营", "operator")
TWO_ARMS = [{"name": "control", "weight": 50}, {"name": "warm", "weight": 50,
                                                  "params": {"text": "{brand}祝您生日快乐，{points}积分已到账"}}]


async def _create(db: Database, **overrides: Any) -> tuple[Experiment, bool]:
    values: dict[str, Any] = {"name": "生日文案", "target": "birthday", "arms": TWO_ARMS, "holdout": 10,
                              "request_id": "exp-1"} | overrides
    async with db.unit_of_work() as session:
        return await experiments.create(session, actor=OP, now=NOW, **values)


BAD = [
    ({"name": " "}, "name"),
    ({"target": "lottery"}, "target"),
    ({"holdout": 60}, "holdout"),
    ({"arms": [{"name": "solo", "weight": 100}]}, "arms"),
    ({"arms": [{"name": "a", "weight": 50}, {"name": "b", "weight": 40}]}, "arms"),
    ({"arms": [{"name": "a", "weight": 50}, {"name": "a", "weight": 50}]}, "arms[1].name"),
    ({"arms": [{"name": "holdout", "weight": 50}, {"name": "b", "weight": 50}]}, "arms[0].name"),
    ({"arms": [{"name": "a", "weight": 0}, {"name": "b", "weight": 100}]}, "arms[0].weight"),
    ({"arms": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50, "params": {"points": 5}}]}, "arms[1].params"),
    ({"arms": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50, "params": {"hour": 22}}]},
     "arms[1].params.hour"),
    ({"arms": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50, "params": {"text": "送{gift}"}}]},
     "arms[1].params.text"),
    ({"target": "winback", "arms": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50,
                                                                  "params": {"points": 5000}}]},
     "arms[1].params.points"),
    ({"request_id": ""}, "request_id"),
]


@pytest.mark.parametrize(("change", "field"), BAD, ids=[f for _, f in BAD])
async def test_a_bad_experiment_is_refused_naming_the_field_and_nothing_is_stored(
    db: Database, change: dict[str, Any], field: str,
) -> None:
    with pytest.raises(InvalidFieldError) as refused:
        await _create(db, **change)
    assert refused.value.field == field
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Experiment)) == 0


async def test_a_repeated_request_answers_the_first_and_a_kind_has_one_running_experiment(db: Database) -> None:
    first, repeated = await _create(db)
    again, repeated_again = await _create(db, name="别的名字")
    assert (repeated, repeated_again, again.id) == (False, True, first.id)
    with pytest.raises(InvalidFieldError) as refused:
        await _create(db, request_id="exp-2")
    assert refused.value.field == "target"
    async with db.unit_of_work() as session:
        stopped = await experiments.stop(session, int(first.id or 0), actor=OP, now=NOW)
    assert stopped.status == "stopped"
    second, _ = await _create(db, request_id="exp-3")  # the kind is free again
    assert second.id != first.id


async def test_the_birthday_under_test_credits_everyone_and_greets_only_outside_the_holdout(
    urls: tuple[str, str],
) -> None:
    async with push_world(urls, at=NOW) as world:
        ids = await bulk_members(world.db, [
            {"openid": openid_for(n), "birthday_month": 5, "birthday_day": 20, "joined_at": NOW - timedelta(days=99),
             "last_interaction_at": NOW} for n in range(400)
        ])
        experiment, _ = await _create(world.db, holdout=20, arms=[
            {"name": "control", "weight": 50},
            {"name": "warm", "weight": 50, "params": {"text": "{brand}祝您生日快乐，{points}积分已到账", "hour": 10}},
        ])
        assert await birthday(world.ctx, NOW) == 400
        assert await birthday(world.ctx, NOW) == 0  # a re-run adds nothing, in any arm
        async with world.db.sessions() as session:
            arms = dict((await session.execute(
                select(ExperimentAssignment.member_id, ExperimentAssignment.arm)
                .where(ExperimentAssignment.experiment_id == experiment.id)
            )).all())
            rows = {r.member_id: r for r in (await session.scalars(select(Outbox))).all()}
            credited = await session.scalar(select(func.count()).select_from(LedgerEntry)
                                            .where(LedgerEntry.kind == "birthday"))
        assert credited == 400  # the promise is not under test
        assert sorted(arms) == sorted(ids)
        shares = Counter(arms.values())
        assert 50 <= shares["holdout"] <= 110  # 20 % of 400
        assert min(shares["control"], shares["warm"]) > 100
        assert {m for m, arm in arms.items() if arm != "holdout"} == set(rows)
        for member_id, row in rows.items():
            assert (row.experiment_id, row.variant) == (experiment.id, arms[member_id])
        # Every member's window is open: the control greets at 09:00, the warm arm waits for 10:00 local.
        for member_id in ids:
            await cswindow.opened_by_message(world.kv, "oa", openid_for(ids.index(member_id)))
        await world.drain()
        texts_at_nine = [c["body"]["touser"] for c in await world.delivered()]
        assert len(texts_at_nine) == shares["control"]
        world.clock.advance(hours=1)
        await world.drain()
        delivered = await world.delivered()
        assert len(delivered) == shares["control"] + shares["warm"]
        by_openid = {c["body"]["touser"]: c["body"]["text"]["content"] for c in delivered}
        warm = [by_openid[openid_for(ids.index(m))] for m, arm in arms.items() if arm == "warm"]
        assert all(text == "会员俱乐部祝您生日快乐，200积分已到账" for text in warm)
        assert all(openid_for(ids.index(m)) not in by_openid for m, arm in arms.items() if arm == "holdout")


def test_wilson_and_the_needed_sample_match_hand_computation() -> None:
    # 30 of 100: p = 0.3, z² = 3.841459; centre = (0.3 + 0.019207) / 1.038415 = 0.307393,
    # half = 1.959964 / 1.038415 * sqrt(0.0021 + 0.000096) = 0.088450.
    low, high = experimentreport.wilson(30, 100) or (0.0, 0.0)
    assert (round(low, 4), round(high, 4)) == (0.2189, 0.3958)
    assert experimentreport.wilson(0, 0) is None
    low, high = experimentreport.wilson(0, 10) or (1.0, 1.0)
    assert (round(low, 4), round(high, 4)) == (0.0, 0.2775)
    # 30 % against 35 %: (1.959964 * sqrt(2 * .325 * .675) + .841621 * sqrt(.21 + .2275))² / .05² = 1376.3.
    assert experimentreport.sample_needed(0.30) == 1377
    # Near 1 the 5 points are read downwards (98 % against 93 %), which mirrors 2 % against 7 %.
    assert experimentreport.sample_needed(0.98) == experimentreport.sample_needed(0.02) < 1377


async def test_the_report_counts_what_each_arm_did_after_its_assignment(db: Database) -> None:
    experiment, _ = await _create(db, holdout=10)
    t0 = NOW
    day = t0.astimezone(TZ).date()
    plan = {  # member -> (arm, interacted, checked in, ordered, opted out)
        "c1": ("control", True, True, False, False), "c2": ("control", False, False, False, False),
        "c3": ("control", True, False, True, False), "c4": ("control", False, False, False, True),
        "w1": ("warm", True, True, True, False), "w2": ("warm", True, False, False, False),
        "h1": ("holdout", False, False, True, False),
    }
    for name, (arm, interacted, checked_in, ordered, opted_out) in plan.items():
        member_id = await add_member(db, t0 - timedelta(days=300), openid=f"oEXP{name}", opt_out=opted_out)
        async with db.unit_of_work() as session:
            session.add(ExperimentAssignment(experiment_id=int(experiment.id or 0), member_id=member_id, arm=arm,
                                             assigned_at=t0))
            if interacted:
                session.add(InteractionDay(member_id=member_id, day=day + timedelta(days=1)))
            if checked_in:
                session.add(Checkin(member_id=member_id, day=day + timedelta(days=2), streak=1,
                                    created_at=t0 + timedelta(days=2)))
            if ordered:
                session.add(PurchaseOrder(order_id=f"EXP-{name}", member_id=member_id, amount_fen=5000, points=50,
                                          created_at=t0 + timedelta(days=6, hours=23)))
            # An order after the 7 days counts for nobody.
            session.add(PurchaseOrder(order_id=f"LATE-{name}", member_id=member_id, amount_fen=5000, points=50,
                                      created_at=t0 + timedelta(days=7, hours=1)))
            if arm != "holdout":
                session.add(Outbox(dedupe_key=f"birthday:{member_id}:2026", member_id=member_id, openid="o",
                                   kind="birthday", category="marketing", payload="{}", status="sent",
                                   next_attempt_at=t0, created_at=t0, sent_at=t0, experiment_id=experiment.id,
                                   variant=arm))
    async with db.sessions() as session:
        arms = {a.name: a for a in await experimentreport.report(session, experiment, TZ)}
    assert list(arms) == ["control", "warm", "holdout"]
    control, warm, holdout = arms["control"], arms["warm"], arms["holdout"]
    assert (control.assigned, warm.assigned, holdout.assigned) == (4, 2, 1)
    counts = {name: {o: r.count for o, r in a.rates.items()} for name, a in arms.items()}
    assert counts["control"] == {"delivered": 4, "interacted": 2, "checked_in": 1, "redeemed": 0, "ordered": 1,
                                 "opted_out": 1}
    assert counts["warm"] == {"delivered": 2, "interacted": 2, "checked_in": 1, "redeemed": 0, "ordered": 1,
                              "opted_out": 0}
    assert counts["holdout"] == {"delivered": 0, "interacted": 0, "checked_in": 0, "redeemed": 0, "ordered": 1,
                                 "opted_out": 0}
    interacted = warm.rates["interacted"]
    low, high = experimentreport.wilson(2, 2) or (0.0, 0.0)
    assert (interacted.rate, interacted.low, interacted.high) == (1.0, low, high)
    assert interacted.diff == pytest.approx(0.5)
    assert control.rates["interacted"].diff is None
    needed = experimentreport.sample_needed(0.5)
    assert (control.needed, warm.needed) == (needed - 4, needed - 2)
