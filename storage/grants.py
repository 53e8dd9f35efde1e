"""An operator's (or the admin token's) gift of a coupon to one member: the bounds, Rewards.grant with key
`grant:operator:<member>:<request_id>`, the member's transactional message and the audit row
`coupon.grant`, in the caller's transaction. Who may grant is the edge's check (the right of a points
adjustment, members.write); nothing here decides a role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.adjustments import REASON_MAX, REASON_MIN, REQUEST_ID_MAX
from storage.audit import Actor
from storage.errors import DomainError
from storage.models import Redemption, Reward
from storage.rewards import Rewards
from storage.rows import row_id


class InvalidGrantError(DomainError):
    """A grant that cannot be given as asked: `field` and `problem` say why."""

    text_key = "error_invalid"

    def __init__(self, field: str = "", problem: str = "", **details: int) -> None:
        super().__init__(f"{field}: {problem}", **details)
        self.field = field
        self.problem = problem


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
    """The reason as it will be kept (stripped); InvalidGrantError on bad input."""
    text = reason.strip()
    if not REASON_MIN <= len(text) <= REASON_MAX or "\x00" in text:
        raise InvalidGrantError("reason", "length", low=REASON_MIN, high=REASON_MAX)
    if not request_id or len(request_id) > REQUEST_ID_MAX or "\x00" in request_id or ":" in request_id:
        raise InvalidGrantError("request_id", "format", high=REQUEST_ID_MAX)
    return text


async def give(
    session: AsyncSession, rewards: Rewards, member_id: int, reward_id: int, reason: str, request_id: str, *,
    actor: Actor, now: datetime, client: str | None = None,
) -> Granted:
    """Grant once per request id (a repeat answers the first coupon, no second message or audit row).
    Raises NotFoundError (member or reward), NotMemberError, and the stock/limit/ended refusals."""
    text = check(reason, request_id)
    issued = await rewards.grant(session, member_id, reward_id, period=request_id, now=now, reason="operator")
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
