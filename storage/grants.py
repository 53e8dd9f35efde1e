"""An operator's (or the admin token's) gift of a coupon to one member: the bounds, Rewards.grant with key
`grant:operator:<member>:<request_id>`, the member's transactional message and the audit row
`coupon.grant`, in the caller's transaction. Who may grant is the edge's check (the right of a points
adjustment, members.write); nothing here decides a role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.adjustments import InvalidAdjustmentError, checked_request
from storage.audit import Actor
from storage.models import Redemption, Reward
from storage.rewards import Rewards
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
