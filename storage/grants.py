"""An operator's (or the admin token's) gift of a coupon to one member: the bounds, Rewards.grant with key
`grant:operator:<member>:<request_id>`, the member's transactional message and the audit row
`coupon.grant`, in the caller's transaction. Who may grant is the edge's check (the right of a points
adjustment, members.write); nothing here decides a role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit, outbox
from storage.adjustments import REASON_MAX, REASON_MIN, REQUEST_ID_MAX
from storage.audit import Actor
from storage.clock import local_date
from storage.enums import Source
from storage.errors import DomainError
from storage.models import Member, Redemption, Reward
from storage.rewards import Issued, Rewards
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
        await tell(session, rewards, member, issued, now, note=text)
        await audit.record(session, actor, "coupon.grant", f"member:{member_id}", now=now, client=client,
                           after={"reward_id": issued.reward.id, "reward": issued.reward.name,
                                  "redemption_id": issued.redemption.id, "reason": text,
                                  "request_id": request_id})
    return _granted(issued.redemption, issued.reward, repeated=issued.repeated)


async def tell(
    session: AsyncSession, rewards: Rewards, member: Member, issued: Issued, now: datetime, *, note: str = "",
) -> None:
    """The member hears of a gift on the door they use (transactional `coupon_granted`, dedupe = the grant
    key): the reward, its code, its last day and why."""
    openid, source = (member.openid, Source.OA) if member.openid else (member.mp_openid, Source.MP)
    if not openid:
        return
    last_day = local_date(issued.redemption.expires_at - timedelta(seconds=1), rewards.ledger.tz)
    await outbox.enqueue(
        session, dedupe_key=issued.redemption.request_key, openid=openid, source=source, member_id=member.id,
        kind="coupon_granted", now=now,
        payload={"params": {"reward": issued.reward.name, "code": issued.redemption.code,
                            "date": last_day.isoformat(), "reason": note or issued.reward.name}},
    )


def _granted(redemption: Redemption, reward: Reward, *, repeated: bool) -> Granted:
    return Granted(row_id(redemption), redemption.member_id, row_id(reward), reward.name, redemption.code,
                   redemption.expires_at, repeated)
