"""The scheduled grants (issue 17 item 1): the birthday coupon by tier from [birthday_coupons] on a simulated
year (frozen clock, the job on the birthday, a re-run adds nothing, the next year again), and the tier
upgrade gift from [tier_gifts] (once per member and tier, whichever path upgrades)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.wechat import pushtexts
from handlers import texts
from scheduler.jobs import birthday
from storage.clock import local_date
from storage.ledger import Ledger
from storage.models import Outbox, Redemption
from storage.rules import Rules, RulesError, rules_from_dict
from storage.tiers import review_tiers
from tests.support.factories import add_member, local
from tests.support.invariants import assert_points_consistent
from tests.support.push_support import PushWorld, push_world
from tests.support.redeem_support import add_reward, reward_row

START = local(2026, 1, 1, 9, 0)


@pytest.fixture
async def world(urls: tuple[str, str]) -> AsyncIterator[PushWorld]:
    async with push_world(urls, at=START) as w:
        yield w


async def coupons_of(world: PushWorld, member_id: int) -> list[Redemption]:
    async with world.db.sessions() as session:
        return list((await session.scalars(
            select(Redemption).where(Redemption.member_id == member_id).order_by(Redemption.id)
        )).all())


async def pushes(world: PushWorld, member_id: int, kind: str) -> list[Outbox]:
    async with world.db.sessions() as session:
        return list((await session.scalars(
            select(Outbox).where(Outbox.member_id == member_id).where(Outbox.kind == kind).order_by(Outbox.id)
        )).all())


def with_rules(world: PushWorld, **changes: object) -> None:
    world.ledger.rules = replace(world.ledger.rules, **changes)  # type: ignore[arg-type]


async def test_a_birthday_coupon_by_tier_on_a_simulated_year(world: PushWorld) -> None:
    gold_cake = await add_reward(world.db, START, name="金卡生日蛋糕", cost=900, validity_days=14)
    silver_cup = await add_reward(world.db, START, name="银卡生日饮品", cost=300)
    with_rules(world, birthday_coupons=(("金卡", gold_cake), ("银卡", silver_cup)))
    gold = await add_member(world.db, START, tier="金卡", birthday=(3, 15))
    silver = await add_member(world.db, START, tier="银卡", birthday=(3, 15))
    plain = await add_member(world.db, START, tier="普通", birthday=(3, 15))
    other_day = await add_member(world.db, START, tier="金卡", birthday=(3, 16))

    day, ran = START, {}
    while day < local(2028, 1, 1, 9, 0):  # every day of 2026 and 2027 at the job's hour, twice
        world.clock.set(day)
        first = await birthday(world.ctx, day)
        again = await birthday(world.ctx, day)
        assert again == 0, day
        if first:
            ran[local_date(day, world.ledger.tz)] = first
        day += timedelta(days=1)

    assert ran == {date(2026, 3, 15): 3, date(2026, 3, 16): 1, date(2027, 3, 15): 3, date(2027, 3, 16): 1}
    gold_coupons = await coupons_of(world, gold)
    assert [(c.reward_id, c.granted, c.cost, c.request_key) for c in gold_coupons] == [
        (gold_cake, "birthday", 0, f"grant:birthday:{gold}:2026"),
        (gold_cake, "birthday", 0, f"grant:birthday:{gold}:2027"),
    ]
    # The reward's validity from the birthday: 14 days after 15 March, to that day's midnight.
    assert gold_coupons[0].created_at == local(2026, 3, 15, 9, 0)
    assert gold_coupons[0].expires_at == local(2026, 3, 30)
    assert [c.reward_id for c in await coupons_of(world, silver)] == [silver_cup, silver_cup]
    assert await coupons_of(world, plain) == []  # 普通 has no birthday coupon: the points only
    assert [c.request_key for c in await coupons_of(world, other_day)] == [
        f"grant:birthday:{other_day}:2026", f"grant:birthday:{other_day}:2027"]
    assert (await reward_row(world.db, gold_cake)).issued_count == 4
    # The points beside the coupon, once a year each; the books balance (the coupon cost nothing).
    balances = await assert_points_consistent(world.db, [gold, silver, plain, other_day])
    assert balances == {gold: 400, silver: 400, plain: 400, other_day: 400}
    # One greeting a year naming both.
    greetings = await pushes(world, gold, "birthday")
    assert [g.dedupe_key for g in greetings] == [f"birthday:{gold}:2026", f"birthday:{gold}:2027"]
    told = pushtexts.text_for("birthday", json.loads(greetings[0].payload))
    assert told == texts.PUSH_BIRTHDAY_COUPON.format(brand=texts.BRAND, points=200, balance=200,
                                                     reward="金卡生日蛋糕", code=gold_coupons[0].code,
                                                     date="2026-03-29")
    plain_told = pushtexts.text_for("birthday", json.loads((await pushes(world, plain, "birthday"))[0].payload))
    assert plain_told == texts.PUSH_BIRTHDAY.format(brand=texts.BRAND, points=200, balance=200)


async def test_a_sold_out_birthday_coupon_leaves_the_points(world: PushWorld) -> None:
    none_left = await add_reward(world.db, START, name="售罄生日券", stock=0)
    with_rules(world, birthday_coupons=(("金卡", none_left),))
    member = await add_member(world.db, START, tier="金卡", birthday=(1, 1))
    assert await birthday(world.ctx, START) == 1
    assert await coupons_of(world, member) == []
    assert (await assert_points_consistent(world.db, [member]))[member] == 200
    (greeting,) = await pushes(world, member, "birthday")
    assert "variant" not in json.loads(greeting.payload)


async def test_a_tier_gift_once_per_member_and_tier(world: PushWorld) -> None:
    silver_gift = await add_reward(world.db, START, name="银卡升级礼", cost=500)
    gold_gift = await add_reward(world.db, START, name="金卡升级礼", cost=800)
    with_rules(world, tier_gifts=(("银卡", silver_gift), ("金卡", gold_gift)))
    member = await add_member(world.db, START)
    ledger = world.ctx.rewards.ledger  # the job context's Rewards gives the gifts of this ledger's upgrades

    async def earn(points: int, key: str, at: datetime) -> str | None:
        async with world.db.unit_of_work() as session:
            moved = await ledger.earn(session, member, points, key=key, kind="purchase", now=at)
        return moved.upgraded_to

    assert await earn(999, "o1", START) is None
    assert await coupons_of(world, member) == []
    assert await earn(1, "o2", START) == "银卡"
    assert await earn(1, "o2", START) is None  # the same order again: nothing
    assert await earn(4_000, "o3", START) == "金卡"
    coupons = await coupons_of(world, member)
    assert [(c.reward_id, c.granted, c.request_key) for c in coupons] == [
        (silver_gift, "tier", f"grant:tier:{member}:银卡"), (gold_gift, "tier", f"grant:tier:{member}:金卡")]
    told = await pushes(world, member, "tier_gift")
    assert [(p.category, p.dedupe_key) for p in told] == [
        ("transactional", f"grant:tier:{member}:银卡"), ("transactional", f"grant:tier:{member}:金卡")]
    assert pushtexts.text_for("tier_gift", json.loads(told[0].payload)) == texts.PUSH_TIER_GIFT.format(
        brand=texts.BRAND, tier="银卡", reward="银卡升级礼", code=coupons[0].code, date="2026-01-31")
    assert (await assert_points_consistent(world.db, [member]))[member] == 5_000

    # Down a level in the monthly review a year later, then up again: the 金卡 gift is not given twice.
    later = local(2027, 2, 1, 3, 0)
    world.clock.set(later)
    await review_tiers(world.db, ledger, later)
    assert await earn(5_000, "o4", later) == "金卡"
    assert len(await coupons_of(world, member)) == 2


async def test_a_ledger_of_its_own_gives_the_tier_gift_too(world: PushWorld) -> None:
    """Any ledger's upgrade gives the gift (it was a hook the last Rewards built set on its ledger: a ledger
    used without one, as the demo's history seeding does, gave none)."""
    gift = await add_reward(world.db, START, name="银卡升级礼", cost=500)
    rules = replace(world.ledger.rules, tier_gifts=(("银卡", gift),))
    alone = Ledger(rules, world.ledger.tz)
    member = await add_member(world.db, START)
    async with world.db.unit_of_work() as session:
        moved = await alone.earn(session, member, 1_000, key="o-alone", kind="purchase", now=START)
    assert moved.upgraded_to == "银卡"
    assert [(c.reward_id, c.request_key) for c in await coupons_of(world, member)] == [
        (gift, f"grant:tier:{member}:银卡")]


async def test_a_sold_out_tier_gift_leaves_the_upgrade(world: PushWorld) -> None:
    none_left = await add_reward(world.db, START, name="售罄升级礼", stock=0)
    with_rules(world, tier_gifts=(("银卡", none_left),))
    member = await add_member(world.db, START)
    async with world.db.unit_of_work() as session:
        moved = await world.ctx.rewards.ledger.earn(session, member, 1_000, key="o1", kind="purchase", now=START)
    assert moved.upgraded_to == "银卡"
    assert await coupons_of(world, member) == []
    assert (await assert_points_consistent(world.db, [member]))[member] == 1_000


@pytest.mark.parametrize(("data", "message"), [
    ({"birthday_coupons": {"金卡": 0}}, "birthday_coupons.金卡 must be a reward id"),
    ({"birthday_coupons": {"金卡": "3"}}, "birthday_coupons.金卡 must be a reward id"),
    ({"tier_gifts": {"黑卡": 3}}, "tier_gifts names tiers that do not exist: 黑卡"),
    ({"tier_gifts": [3]}, "tier_gifts must be a table"),
])
def test_the_rules_refuse_bad_gift_tables(data: dict[str, object], message: str) -> None:
    with pytest.raises(RulesError, match=message):
        rules_from_dict(data)


def test_the_rules_read_gift_tables() -> None:
    rules = rules_from_dict({"birthday_coupons": {"金卡": 3}, "tier_gifts": {"银卡": 4, "钻石": 5}})
    assert (rules.birthday_coupon("金卡"), rules.birthday_coupon("银卡")) == (3, None)
    assert (rules.tier_gift("银卡"), rules.tier_gift("钻石"), rules.tier_gift("金卡")) == (4, 5, None)
    assert Rules().birthday_coupons == ()
