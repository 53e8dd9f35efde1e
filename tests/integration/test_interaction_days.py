"""Interaction days (issue 15): every inbound message records its member's local day in interaction_day,
once per member and day, with the touch (storage/members.py); a new local day is recorded even when the
last touch was seconds before midnight, inside TOUCH_GRANULARITY and the KV's touch key."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from storage.clock import FrozenClock
from storage.models import InteractionDay, Member
from tests.support.factories import local
from tests.support.fakes import WeChat

ALICE = "oALICEinteractionDAYSaaaaaa"
BOB = "oBOBinteractionDAYSbbbbbbbbb"


async def _days(wechat: WeChat) -> list[tuple[str, date]]:
    async with wechat.services.db.sessions() as session:
        rows = (await session.execute(
            select(Member.openid, InteractionDay.day).join(Member, Member.id == InteractionDay.member_id)
            .order_by(Member.openid, InteractionDay.day)
        )).all()
    return [(openid, day) for openid, day in rows]


async def test_one_row_per_member_per_local_day_across_midnight(wechat: WeChat, clock: FrozenClock) -> None:
    clock.set(local(2026, 11, 22, 23, 59, 20))
    await wechat.say(ALICE, "帮助")
    clock.set(local(2026, 11, 22, 23, 59, 50))  # the same minute: nothing new (and nothing written)
    await wechat.say(ALICE, "帮助")
    await wechat.say(BOB, "帮助")
    assert await _days(wechat) == [(ALICE, date(2026, 11, 22)), (BOB, date(2026, 11, 22))]
    clock.set(local(2026, 11, 23, 0, 0, 5))  # 15 s later, but a new local day (16:00 UTC)
    await wechat.say(ALICE, "帮助")
    clock.set(local(2026, 11, 23, 0, 30))
    await wechat.say(ALICE, "帮助")  # the day already recorded
    clock.set(local(2026, 11, 23, 23, 0))
    await wechat.say(ALICE, "签到")
    assert await _days(wechat) == [
        (ALICE, date(2026, 11, 22)), (ALICE, date(2026, 11, 23)), (BOB, date(2026, 11, 22)),
    ]
    async with wechat.services.db.sessions() as session:
        last = await session.scalar(select(Member.last_interaction_at).where(Member.openid == ALICE))
    assert last == local(2026, 11, 23, 0, 0, 5)  # written 45 s after the last write: the new day's
