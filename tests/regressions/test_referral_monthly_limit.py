"""Regressions in sign-up with a referrer (storage/members.sign_up and _reward_referrer).

1. Deadlock (PostgreSQL): a referee's sign-up updates its own row twice in one transaction, so the
   second update re-checks the referrer_id foreign key and takes FOR KEY SHARE on the referrer; two
   referees of one referrer signing up together then both asked the ledger for FOR UPDATE on the
   referrer and deadlocked (one sign-up failed with the apology). The referrer is now locked first.
2. Race: the referrer's rewarded referrals were counted before the referrer's row was locked, so
   referees signing up at the same moment could all see 19 and all be paid. The count now runs
   under the referrer's row lock.
3. A referral that the 500-a-day cap turned into 0 points was counted as one of the 20 rewarded
   referrals of the month. Only referrals that paid something count now."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select

from storage import members
from storage.members import Signup
from storage.models import LedgerEntry
from tests.support.factories import TZ
from tests.support.fakes import WeChat

START = datetime(2026, 12, 1, 10, 0, tzinfo=TZ)


async def referrer(wechat: WeChat, at: datetime) -> tuple[int, str]:
    services = wechat.services
    async with services.db.unit_of_work() as session:
        done = await members.sign_up(
            session, services.ledger, services.pii, openid="oREFERRER", source="oa",
            phone="13900139000", birthday=None, now=at,
        )
    return done.member_id, done.referral_code


async def referee(wechat: WeChat, index: int, code: str, at: datetime) -> Signup:
    services = wechat.services
    openid = f"oREFEREE{index:06d}"
    async with services.db.unit_of_work() as session:
        await members.record_referrer(session, openid, "oa", code, at)
    async with services.db.unit_of_work() as session:
        return await members.sign_up(
            session, services.ledger, services.pii, openid=openid, source="oa",
            phone=f"1580000{index:04d}", birthday=None, now=at,
        )


async def referral_entries(wechat: WeChat, member_id: int) -> list[LedgerEntry]:
    async with wechat.services.db.sessions() as session:
        rows = await session.scalars(
            select(LedgerEntry).where(LedgerEntry.member_id == member_id).where(LedgerEntry.kind == "referral")
        )
        return list(rows)


async def test_concurrent_referees_never_exceed_the_monthly_limit(wechat: WeChat) -> None:
    referrer_id, code = await referrer(wechat, START)
    for index in range(19):
        day = START + timedelta(days=1 + index // 8, minutes=index)
        assert (await referee(wechat, index, code, day)).referrer_rewarded
    at = START + timedelta(days=10)
    # Hold the referrer's row while six referees sign up, so all of them reach the reward at once.
    async with wechat.services.db.unit_of_work() as session:
        await wechat.services.ledger.lock(session, referrer_id)
        racing = asyncio.gather(*(referee(wechat, 100 + i, code, at) for i in range(6)))
        await asyncio.sleep(0.5)
    results = await racing
    assert sum(r.referrer_rewarded for r in results) == 1
    rewards = await referral_entries(wechat, referrer_id)
    assert len(rewards) == 20


async def test_a_referral_capped_to_zero_does_not_use_up_the_month(wechat: WeChat) -> None:
    referrer_id, code = await referrer(wechat, START)  # +100 on 1 December
    # Eight referees the same day fill the daily cap (100 + 8 x 50 = 500); two more pay nothing.
    for index in range(10):
        await referee(wechat, index, code, START + timedelta(minutes=index + 1))
    paid = [e for e in await referral_entries(wechat, referrer_id) if e.delta > 0]
    assert len(paid) == 8
    # Twelve more on later days bring the month to 20 rewarded referrals, all paid.
    for index in range(10, 22):
        day = START + timedelta(days=1 + (index - 10) // 8, minutes=index)
        assert (await referee(wechat, index, code, day)).referrer_rewarded, index
    rewards = await referral_entries(wechat, referrer_id)
    assert len([e for e in rewards if e.delta > 0]) == 20
    # The 21st rewarded one is refused.
    over = await referee(wechat, 99, code, START + timedelta(days=5))
    assert not over.referrer_rewarded
