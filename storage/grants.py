"""An operator's (or the admin token's) gift of a coupon to one member: the bounds, Rewards.grant with key
`grant:operator:<member>:<request_id>`, the member's transactional message and the audit row
`coupon.grant`, in the caller's transaction. Who may grant is the edge's check (the right of a points
adjustment, members.write); nothing here decides a role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage import audiences, audit
from storage.adjustments import InvalidAdjustmentError, checked_request
from storage.audiences import Audience
from storage.audit import Actor
from storage.errors import InvalidFieldError, NotFoundError
from storage.models import Redemption, Reward
from storage.rewards import LimitReachedError, OutOfStockError, Rewards, is_live
from storage.rows import row_id

InvalidGrantError = InvalidAdjustmentError  # the same bounds, the same refusal (field, problem)


@dataclass(frozen=True)
class Granted:
    redemption_id: int
    member_id: int
    reward_id: int
    reward: str
    code: str
    expires_at: datetime
    repeated: bool = False


def check(reason: str, request_id: str) -> str:
    """The reason as it will be kept (stripped); InvalidGrantError on bad input (a request id is a key's
    part, so no ':')."""
    return checked_request(reason, request_id, forbidden="\x00:")


async def give(
    session: AsyncSession, rewards: Rewards, member_id: int, reward_id: int, reason: str, request_id: str, *,
    actor: Actor, now: datetime, client: str | None = None,
) -> Granted:
    """Grant once per request id (a repeat answers the first coupon, no second message or audit row; the
    same id for another reward is refused as `taken`, as an adjustment's is).
    Raises NotFoundError (member or reward), NotMemberError, and the stock/limit/ended refusals."""
    text = check(reason, request_id)
    issued = await rewards.grant(session, member_id, reward_id, period=request_id, now=now, reason="operator")
    if issued.repeated and issued.reward.id != reward_id:  # the id was used for another reward: not a repeat
        raise InvalidGrantError("request_id", "taken")
    if not issued.repeated:
        member = await rewards.ledger.lock(session, member_id)
        await rewards.tell(session, member, issued, now, reason=text)
        await audit.record(session, actor, "coupon.grant", f"member:{member_id}", now=now, client=client,
                           after={"reward_id": issued.reward.id, "reward": issued.reward.name,
                                  "redemption_id": issued.redemption.id, "reason": text,
                                  "request_id": request_id})
    return _granted(issued.redemption, issued.reward, repeated=issued.repeated)


def _granted(redemption: Redemption, reward: Reward, *, repeated: bool) -> Granted:
    return Granted(row_id(redemption), redemption.member_id, row_id(reward), reward.name, redemption.code,
                   redemption.expires_at, repeated)


MAX_AUDIENCE = 2000  # one request, one transaction: a larger audience is refused, naming the limit


@dataclass(frozen=True)
class AudiencePreview:
    """What the operator sees before granting: the audience's size and the reward's remaining stock
    (None = unlimited: neither a stock nor a total limit)."""

    size: int
    remaining: int | None


@dataclass(frozen=True)
class AudienceGranted:
    size: int  # the audience when granted
    granted: int  # new coupons given by this call
    repeated: int  # members who already had this request's coupon (a re-submitted form)
    over_limit: int  # members skipped: over the reward's per-member limit
    stopped: bool  # the stock ran out before the audience did


def remaining(reward: Reward) -> int | None:
    left = [n for n in (reward.stock, None if reward.total_limit is None else reward.total_limit - reward.issued_count)
            if n is not None]
    return max(0, min(left)) if left else None


async def preview(session: AsyncSession, rewards: Rewards, audience: Audience, reward_id: int, *,
                  now: datetime) -> AudiencePreview:
    """The audience's size and the reward's remaining stock; InvalidFieldError naming the field for an
    unknown or ended reward, an unknown campaign or list."""
    reward = await _grantable(session, rewards, reward_id, now)
    await audiences.exists(session, audience)
    return AudiencePreview(await audiences.count(session, audience, now), remaining(reward))


async def give_audience(
    session: AsyncSession, rewards: Rewards, audience: Audience, reward_id: int, reason: str, request_id: str, *,
    actor: Actor, now: datetime, client: str | None = None,
) -> AudienceGranted:
    """Grant the reward to every member of the audience (key `grant:operator:<member>:<request_id>`, so a
    re-submitted request grants nothing twice), each told by a transactional message, and one audit row
    `coupon.grant_audience` with the count and the request id (none when nothing new was granted). The stock
    is never oversold: the grant stops when it runs out and says how many were granted. Refused before
    anything is written (InvalidFieldError naming the field): bad reason/request id, unknown or ended
    reward, no stock left, an empty audience or one above MAX_AUDIENCE."""
    text = check(reason, request_id)
    seen = await preview(session, rewards, audience, reward_id, now=now)
    if seen.size == 0:
        raise InvalidFieldError("audience", "empty")
    if seen.size > MAX_AUDIENCE:
        raise InvalidFieldError("audience", "too_large", size=seen.size, limit=MAX_AUDIENCE)
    granted = repeated = over_limit = 0
    stopped = False
    async for ids in audiences.pages(session, audience, now):
        for member_id in ids:
            try:
                async with session.begin_nested():
                    issued = await rewards.grant(session, member_id, reward_id, period=request_id, now=now,
                                                 reason="operator")
            except OutOfStockError:
                stopped = True
                break
            except LimitReachedError:
                over_limit += 1
                continue
            if issued.repeated:
                repeated += 1
                continue
            granted += 1
            await rewards.tell(session, await rewards.ledger.lock(session, member_id), issued, now, reason=text)
        if stopped:
            break
    if granted == 0 and repeated == 0 and stopped:
        raise InvalidFieldError("reward_id", "out_of_stock")
    if granted:
        reward = await rewards.get(session, reward_id)
        await audit.record(session, actor, "coupon.grant_audience", f"reward:{reward_id}", now=now, client=client,
                           after={"reward_id": reward_id, "reward": reward.name, "audience": audience.to_json(),
                                  "size": seen.size, "granted": granted, "repeated": repeated,
                                  "over_limit": over_limit, "stopped": stopped, "reason": text,
                                  "request_id": request_id})
    return AudienceGranted(seen.size, granted, repeated, over_limit, stopped)


async def _grantable(session: AsyncSession, rewards: Rewards, reward_id: int, now: datetime) -> Reward:
    try:
        reward = await rewards.get(session, reward_id)
    except NotFoundError:
        raise InvalidFieldError("reward_id", "unknown") from None
    if not is_live(reward, now):
        raise InvalidFieldError("reward_id", "ended")
    if remaining(reward) == 0:
        raise InvalidFieldError("reward_id", "out_of_stock")
    return reward
