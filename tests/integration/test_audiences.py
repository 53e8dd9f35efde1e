"""Audiences resolve to exactly the members an operator named: every filter narrows, the base leaves out
whoever a marketing push may not reach, pages cover everyone once; and the experiment draw is stable."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from storage import audiences, audit, experiments
from storage.audiences import Audience
from storage.db import Database
from storage.errors import InvalidFieldError
from storage.models import Campaign, CampaignMember, Experiment, Member, MemberSegment
from storage.rules import Rules
from tests.support.factories import add_member

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)


async def _world(db: Database) -> dict[str, int]:
    ids = {
        "gold_high": await add_member(db, NOW, tier="金卡", openid="oAUDgoldhigh"),
        "gold_risk_quiet": await add_member(db, NOW, tier="金卡", openid="oAUDgoldrisk",
                                            last_interaction_at=NOW - timedelta(days=40)),
        "silver_high": await add_member(db, NOW, tier="银卡", openid="oAUDsilverhigh"),
        "plain_none": await add_member(db, NOW, openid="oAUDplain"),
        "opted_out": await add_member(db, NOW, tier="金卡", openid="oAUDoptout", opt_out=True),
        "unfollowed": await add_member(db, NOW, tier="金卡", openid="oAUDunfollow", status="unsubscribed"),
        "dormant": await add_member(db, NOW, tier="金卡", openid="oAUDdormant"),
    }
    classes = {"gold_high": "高价值", "gold_risk_quiet": "流失风险", "silver_high": "高价值", "plain_none": "未消费",
               "opted_out": "高价值", "unfollowed": "高价值", "dormant": "高价值"}
    async with db.unit_of_work() as session:
        for name, member_id in ids.items():
            member = await session.get(Member, member_id)
            assert member is not None
            session.add(MemberSegment(member_id=member_id, segment=classes[name], since=NOW.date()))
            member.churn_stage = "dormant" if name == "dormant" else None
        visitor = Member(openid="oAUDvisitor", created_at=NOW)  # wrote once, never joined
        session.add(visitor)
        campaign = Campaign(code="AUD1", kind="join_bonus", title="测试", points=10, cap=10, budget=100,
                            created_by="t", created_at=NOW, ends_at=NOW + timedelta(days=3))
        session.add(campaign)
        await session.flush()
        ids["campaign"] = int(campaign.id or 0)
        for name in ("gold_high", "plain_none", "opted_out"):
            session.add(CampaignMember(campaign_id=ids["campaign"], member_id=ids[name], joined_at=NOW))
    return ids


async def _resolve(db: Database, audience: Audience, size: int = 2) -> list[int]:
    async with db.sessions() as session:
        return [i async for page in audiences.pages(session, audience, NOW, size=size) for i in page]


async def test_each_filter_narrows_and_the_base_leaves_out_who_may_not_be_marketed_to(db: Database) -> None:
    ids = await _world(db)
    reachable = sorted(ids[n] for n in ("gold_high", "gold_risk_quiet", "silver_high", "plain_none"))
    assert await _resolve(db, Audience()) == reachable
    assert await _resolve(db, Audience(tiers=("金卡",))) == sorted([ids["gold_high"], ids["gold_risk_quiet"]])
    assert await _resolve(db, Audience(segments=("高价值",))) == sorted([ids["gold_high"], ids["silver_high"]])
    assert await _resolve(db, Audience(tiers=("金卡",), segments=("高价值",))) == [ids["gold_high"]]
    assert await _resolve(db, Audience(active_days=30, tiers=("金卡",))) == [ids["gold_high"]]
    assert await _resolve(db, Audience(campaign_id=ids["campaign"])) == sorted([ids["gold_high"], ids["plain_none"]])
    async with db.sessions() as session:
        assert await audiences.count(session, Audience(), NOW) == len(reachable)
        assert await audiences.count(session, Audience(segments=("潜力价值",)), NOW) == 0


async def test_an_uploaded_list_keeps_known_members_once_and_counts_the_unknown(db: Database) -> None:
    ids = await _world(db)
    async with db.unit_of_work() as session:
        listed = await audiences.upload(
            session, " 门店名单 ", ["oAUDgoldhigh", "oAUDgoldhigh", "oAUDoptout", "oNOBODY", " ", "oAUDplain"],
            actor=audit.Actor("op", "operator"), now=NOW,
        )
        list_id = int(listed.id or 0)
    assert (listed.name, listed.size, listed.unknown) == ("门店名单", 3, 1)
    # The opted-out member is on the list but not reachable.
    assert await _resolve(db, Audience(list_id=list_id)) == sorted([ids["gold_high"], ids["plain_none"]])
    async with db.unit_of_work() as session:
        with pytest.raises(InvalidFieldError) as refused:
            await audiences.upload(session, "空", ["oNOBODY"], actor=audit.Actor("op", "operator"), now=NOW)
    assert refused.value.field == "openids"


async def test_bad_filters_are_refused_naming_the_field(db: Database) -> None:
    tiers = [t.name for t in Rules().tiers]
    cases = [(Audience(tiers=("黑卡",)), "audience.tiers"), (Audience(segments=("土豪",)), "audience.segments"),
             (Audience(active_days=0), "audience.active_days")]
    for audience, field in cases:
        with pytest.raises(InvalidFieldError) as refused:
            audiences.checked(audience, tiers)
        assert refused.value.field == field
    async with db.sessions() as session:
        with pytest.raises(InvalidFieldError) as refused:
            await audiences.exists(session, Audience(campaign_id=999))
    assert refused.value.field == "audience.campaign"
    gold_week = Audience(tiers=("金卡",), active_days=7)
    assert Audience.from_json(gold_week.to_json()) == gold_week


def test_the_draw_is_stable_and_follows_the_weights_and_the_holdout() -> None:
    weights = [("control", 1), ("bigger", 1)]
    first = [experiments.draw(7, m, weights, 10) for m in range(20_000)]
    assert first == [experiments.draw(7, m, weights, 10) for m in range(20_000)]
    shares = Counter(first)
    assert abs(shares["holdout"] / 20_000 - 0.10) < 0.01
    assert abs(shares["control"] / 20_000 - 0.45) < 0.015
    assert abs(shares["bigger"] / 20_000 - 0.45) < 0.015
    assert "holdout" not in {experiments.draw(8, m, weights, 0) for m in range(1_000)}  # no holdout asked


async def test_an_assignment_is_stored_once_and_kept(db: Database) -> None:
    member_id = await add_member(db, NOW, openid="oAUDassign")
    async with db.unit_of_work() as session:
        experiment = Experiment(request_id="r1", name="生日文案", target="birthday", holdout=0, created_by="op",
                                created_at=NOW, arms='[{"name": "control", "weight": 1, "params": {}},'
                                ' {"name": "warm", "weight": 1, "params": {"text": "生日快乐"}}]')
        session.add(experiment)
        await session.flush()
        arm = await experiments.arm_for(session, "birthday", member_id, NOW)
        assert arm is not None
        assert await experiments.arm_for(session, "winback", member_id, NOW) is None
    async with db.unit_of_work() as session:
        experiment2 = await session.get(Experiment, arm.experiment_id)
        assert experiment2 is not None
        experiment2.arms = ('[{"name": "control", "weight": 0, "params": {}},'
                            ' {"name": "warm", "weight": 0, "params": {}}]')
        again = await experiments.assign(session, experiment2, member_id, NOW + timedelta(days=1))
    assert again.name == arm.name
    assert arm.params == ({"text": "生日快乐"} if arm.name == "warm" else {})
