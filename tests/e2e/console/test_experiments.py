"""The experiments screen: an operator starts an experiment through the form (audited, once for a doubled
submit), reads its report, stops it; a bad field comes back on the form with its message and nothing saved;
analysts read without the form; clerks do not see it. The report page shows each arm's figures from a
hand-built set of assignments and what those members did."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.console import texts
from storage import experiments
from storage.clock import FrozenClock
from storage.models import Checkin, Experiment, ExperimentAssignment
from tests.support.campaign_support import add_members
from tests.support.console_support import ConsoleWorld, audit_entries, console_world, request_id_of, row_of

FORM = {"name": "生日文案", "target": "birthday", "holdout": "10", "arm_name_0": "control", "arm_weight_0": "50",
        "arm_name_1": "warm", "arm_weight_1": "50", "arm_text_1": "{brand}祝您生日快乐", "arm_hour_1": "10"}


@pytest.fixture
async def world(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[ConsoleWorld]:
    async with console_world(urls, clock) as found:
        yield found


async def stored(world: ConsoleWorld) -> list[Experiment]:
    async with world.db.sessions() as session:
        return list((await session.scalars(select(Experiment).order_by(Experiment.id))).all())  # type: ignore[arg-type]


async def test_an_operator_starts_reads_and_stops_an_experiment(world: ConsoleWorld) -> None:
    operator = await world.as_role("operator")
    page = await operator.get("/admin/experiments")
    assert texts.EXPERIMENTS_EMPTY in page.text
    form = FORM | {"request_id": request_id_of(page.text)}
    assert (await operator.post("/admin/experiments", form)).status_code == 303
    assert (await operator.post("/admin/experiments", form)).status_code == 303  # a doubled submit
    [experiment] = await stored(world)
    assert (experiment.name, experiment.target, experiment.holdout, experiment.status) == ("生日文案", "birthday", 10,
                                                                                         "running")
    assert experiments.arms_of(experiment)[1] == {"name": "warm", "weight": 50,
                                                  "params": {"text": "{brand}祝您生日快乐", "hour": 10}}
    listed = await operator.get("/admin/experiments?done=created")
    assert texts.EXPERIMENT_DONE["created"] in listed.text
    row = row_of(listed.text, "data-experiment", experiment.id)
    assert "control 50%，warm 50%" in row
    assert texts.EXPERIMENT_STATUS["running"] in row

    # Two members in the control (one checked in two days later), one in the warm arm, one held out.
    now = world.wechat.services.clock.now()
    people = await add_members(world.db, now, 4, start=700)
    async with world.db.unit_of_work() as session:
        for member, arm in zip(people, ("control", "control", "warm", "holdout"), strict=True):
            session.add(ExperimentAssignment(experiment_id=experiment.id or 0, member_id=member.id or 0, arm=arm,
                                             assigned_at=now))
        session.add(Checkin(member_id=people[0].id or 0, day=now.date() + timedelta(days=2), streak=1,
                            created_at=now + timedelta(days=2)))
    report = await operator.get(f"/admin/experiments/{experiment.id}")
    assert report.status_code == 200
    control, warm, holdout = (row_of(report.text, "data-arm", a) for a in ("control", "warm", "holdout"))
    assert 'data-fig="assigned">2<' in control
    assert 'data-fig="checked_in">50.0%<br><small class="muted">9.5%–90.5%</small>' in control
    assert 'data-fig="checked_in">0.0%' in warm
    assert '<small data-diff="checked_in">-50.0</small>' in warm
    assert texts.EXPERIMENT_HOLDOUT in holdout

    assert (await operator.post(f"/admin/experiments/{experiment.id}/stop")).status_code == 303
    [experiment] = await stored(world)
    assert experiment.status == "stopped"
    assert [(e.action, e.target) for e in await audit_entries(world.db, prefix="experiment.")] == [
        ("experiment.create", f"experiment:{experiment.id}"), ("experiment.stop", f"experiment:{experiment.id}"),
    ]


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"arm_weight_1": "40"}, "arms", texts.EXPERIMENT_ERRORS["arms"]),
    ({"arm_hour_1": "23"}, "arm_hour_1", texts.EXPERIMENT_ERRORS["arm_hour"]),
    ({"arm_text_1": "送{gift}"}, "arm_text_1", texts.EXPERIMENT_ERRORS["arm_text"]),
    ({"arm_name_1": "control"}, "arm_name_1", texts.EXPERIMENT_ERRORS["arm_name"]),
    ({"target": "winback"}, "arm_name_1", texts.EXPERIMENT_ERRORS["arm_params"]),
    ({"holdout": "六十"}, "holdout", texts.EXPERIMENT_ERRORS["holdout"]),
    ({"name": ""}, "name", texts.EXPERIMENT_ERRORS["name"]),
])
async def test_a_bad_field_comes_back_on_the_form_and_nothing_is_saved(
    world: ConsoleWorld, change: dict[str, str], field: str, message: str,
) -> None:
    operator = await world.as_role("operator")
    page = await operator.get("/admin/experiments")
    bad = await operator.post("/admin/experiments", FORM | change | {"request_id": request_id_of(page.text)})
    assert bad.status_code == 422
    assert texts.FORM_INVALID in bad.text
    assert f'<span class="field-error" data-error="{field}">{message}</span>' in bad.text
    assert 'value="生日文案"' in bad.text or change.get("name") == ""  # the typed values are kept
    assert await stored(world) == []


async def test_analysts_read_and_clerks_do_not_see_it(world: ConsoleWorld) -> None:
    analyst = await world.as_role("analyst")
    page = await analyst.get("/admin/experiments")
    assert page.status_code == 200
    assert 'id="new-experiment"' not in page.text
    assert (await analyst.post("/admin/experiments", FORM | {"request_id": "x"})).status_code == 403
    clerk = await world.as_role("clerk")
    assert (await clerk.get("/admin/experiments")).status_code == 403
    assert await stored(world) == []
