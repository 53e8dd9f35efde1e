"""A lucky draw's coupon prize: what a reward must be to be one, and giving it to one winner.

A coupon prize is granted through Rewards.grant with reason `draw` and period the campaign's code, so each
winner's key is `grant:draw:<member>:<campaign code>` and a second settlement grants nothing more. The stock
is not reserved when the campaign is made (redemptions may take it before the draw): a grant refused at the
draw is the caller's to make good (the campaign's fallback points, or the winner told and an anomaly)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from storage import anomalies, outbox
from storage.enums import Source
from storage.errors import DomainError, NotFoundError
from storage.grants import remaining
from storage.models import Campaign, Member, Reward
from storage.rewards import Issued, Rewards, is_live

GRANT_REASON = "draw"
UNPAID_ANOMALY = "draw_prize_unpaid"


class PrizeError(DomainError):
    """A reward a draw cannot promise as its prize."""


class PrizeUnknownError(PrizeError, NotFoundError):
    text_key = "draw_prize_unknown"


class PrizeEndedError(PrizeError):
    text_key = "draw_prize_ended"


class PrizeShortError(PrizeError):
    """Fewer coupons left than the draw has winners (details: name, left, winners)."""

    text_key = "draw_prize_short"


class PrizeEndsEarlyError(PrizeError):
    """The reward stops before the draw would grant it (details: name, ends: the reward's end)."""

    text_key = "draw_prize_ends_early"


async def check(
    session: AsyncSession, reward_id: int, now: datetime, *, winners: int | None = None,
    draw_at: datetime | None = None, tz: ZoneInfo | None = None,
) -> Reward:
    """The reward a draw may promise: it exists, is live now, has at least `winners` left (a stock or a total
    limit; unlimited passes) and is still live at `draw_at` (its end told in `tz`). Reads only; raises the
    Prize* refusals."""
    reward = await session.get(Reward, reward_id)
    if reward is None:
        raise PrizeUnknownError("unknown reward", reward_id=reward_id)
    if not is_live(reward, now):
        raise PrizeEndedError("reward not live", name=reward.name)
    left = remaining(reward)
    if left is not None and left < max(winners or 1, 1):
        raise PrizeShortError("too few left", name=reward.name, left=left, winners=winners or 1)
    if draw_at is not None and reward.ends_at is not None and reward.ends_at <= draw_at:
        ends = reward.ends_at.astimezone(tz) if tz is not None else reward.ends_at
        raise PrizeEndsEarlyError("reward ends before the draw", name=reward.name, ends=f"{ends:%Y-%m-%d %H:%M}")
    return reward


@dataclass(frozen=True)
class Outcomes:
    """How a settled coupon draw's winners were paid (from its draw record)."""

    coupons: int = 0
    points: int = 0  # given the fallback points instead
    unpaid: int = 0  # neither: told, and an anomaly raised


def outcomes(campaign: Campaign) -> Outcomes:
    prizes = json.loads(campaign.draw_record).get("prizes", {}) if campaign.draw_record else {}
    said = list(prizes.values())
    return Outcomes(said.count("coupon"), said.count("points"), sum(1 for p in said if p.startswith("unpaid")))


@dataclass(frozen=True)
class Granted:
    issued: Issued | None  # None: refused
    refusal: str | None = None  # the refusal's class name, when refused


async def give(session: AsyncSession, rewards: Rewards, campaign: Campaign, member_id: int, now: datetime) -> Granted:
    """Grant the campaign's coupon to one winner in a savepoint (a refusal writes nothing) and, the first
    time, tell the winner (transactional `draw_coupon`, dedupe = the grant key)."""
    assert campaign.reward_id is not None
    try:
        async with session.begin_nested():
            issued = await rewards.grant(session, member_id, campaign.reward_id, period=campaign.code, now=now,
                                         reason=GRANT_REASON)
    except DomainError as exc:
        return Granted(None, type(exc).__name__)
    if not issued.repeated:
        member = await rewards.ledger.lock(session, member_id)
        await rewards.tell(session, member, issued, now, kind="draw_coupon", title=campaign.title)
    return Granted(issued)


async def unpaid(
    session: AsyncSession, campaign: Campaign, member_id: int, prize: str, refusal: str, now: datetime,
) -> None:
    """A winner whose coupon was refused and who has no fallback: told (transactional `draw_unpaid`) and raised
    as an anomaly for operators to make good (a grant from the console), each once per campaign and winner."""
    key = f"draw-unpaid:{campaign.id}:{member_id}"
    await anomalies.record(
        session, member_id=member_id, kind=UNPAID_ANOMALY, now=now, dedupe_key=key,
        detail=f"campaign {campaign.code}: prize {prize!r} (reward {campaign.reward_id}) not granted: {refusal}",
    )
    member = await session.get(Member, member_id)
    if member is None:
        return
    openid, source = (member.openid, Source.OA) if member.openid else (member.mp_openid, Source.MP)
    if not openid:
        return
    await outbox.enqueue(session, dedupe_key=key, openid=openid, source=source, member_id=member_id,
                         kind="draw_unpaid", now=now, payload={"params": {"title": campaign.title, "reward": prize}})
