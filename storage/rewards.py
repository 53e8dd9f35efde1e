"""The rewards catalogue, redemption and store-side verification.

redeem() is one transaction: member lock, limits, conditional stock decrement, ledger debit
(`redeem:<request>`), one code (generated, or claimed from the pool with SKIP LOCKED on PostgreSQL).
A repeated request key returns the first redemption. The chat confirms a quote row (confirm()): its
id is the request key (`quote:<id>`, ledger `redeem:quote:<id>`), so a replayed `是` finds the first
redemption whatever happened to the flow state. cancel() voids the code, returns the stock and
gives the points back to their original lots (`cancel:<id>`).

grant() gives a reward without points (cost 0, no ledger entry): keyed `grant:{reason}:{member}:{period}`,
counted in the stock and the limits like a purchase, marked `granted` with the reason."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import anomalies, coupons, outbox, surveys
from storage.clock import local_date
from storage.codes import unused_code
from storage.db import dialect_insert
from storage.enums import MemberStatus, Source
from storage.errors import ConflictError, DomainError, NotFoundError
from storage.ledger import Ledger
from storage.models import Member, Redemption, RedemptionQuote, Reward, RewardCode
from storage.reasons import Reason
from storage.rows import affected, row_id

CODE_LENGTH = 10
log = logging.getLogger("wxbot.rewards")


class OutOfStockError(DomainError):
    text_key = "out_of_stock"


class LimitReachedError(DomainError):
    text_key = "limit_reached"


class TierTooLowError(DomainError):
    text_key = "tier_too_low"


class RewardEndedError(DomainError):
    text_key = "reward_ended"


class PriceChangedError(DomainError):
    """The cost is no longer the one the member was quoted; the chat quotes it afresh."""


class QuoteExpiredError(DomainError):
    text_key = "quote_expired"


class CodeUsedError(ConflictError):
    text_key = "code_used"


class NotMemberError(ConflictError):
    """A grant to someone who has not joined (or whose account is deleted): nothing is given."""


GRANT_REASONS = ("operator", "birthday", "tier", "winback", "draw")


def grant_key(reason: str, member_id: int, period: str) -> str:
    """`grant:{reason}:{member}:{period}`: one gift per reason, member and period (a year, a tier, a request)."""
    return f"grant:{reason}:{member_id}:{period}"


def quote_key(quote_id: int) -> str:
    """The redemption request key of a chat quote; the ledger entry is `redeem:quote:<id>`."""
    return f"quote:{quote_id}"


def is_live(reward: Reward, now: datetime) -> bool:
    return (
        reward.active
        and (reward.starts_at is None or reward.starts_at <= now)
        and (reward.ends_at is None or reward.ends_at > now)
    )


@dataclass(frozen=True)
class Issued:
    redemption: Redemption
    reward: Reward
    balance: int
    repeated: bool = False


class Rewards:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.rules = ledger.rules

    # --- catalogue ---------------------------------------------------------------------------
    async def catalogue(self, session: AsyncSession, member: Member, now: datetime) -> list[Reward]:
        """Live rewards this member's tier may take, affordable first, then by cost."""
        rows = (await session.scalars(
            select(Reward).where(col(Reward.active).is_(True))
            .where(or_(col(Reward.starts_at).is_(None), col(Reward.starts_at) <= now))
            .where(or_(col(Reward.ends_at).is_(None), col(Reward.ends_at) > now))
            .order_by(col(Reward.cost), col(Reward.id))
        )).all()
        rank = self.rules.tier_rank(member.tier)
        allowed = [r for r in rows if not r.min_tier or self.rules.tier_rank(r.min_tier) <= rank]
        return sorted(allowed, key=lambda r: (r.cost > member.balance, r.cost, r.id))

    async def all(self, session: AsyncSession) -> list[Reward]:
        return list((await session.scalars(select(Reward).order_by(col(Reward.id)))).all())

    async def get(self, session: AsyncSession, reward_id: int) -> Reward:
        reward = await session.get(Reward, reward_id)
        if reward is None:
            raise NotFoundError(f"reward {reward_id} does not exist")
        return reward

    async def import_codes(self, session: AsyncSession, reward_id: int, codes: Iterable[str]) -> int:
        """Add pool codes; duplicates (within the file, already in any pool, or already issued) are
        skipped, since a redemption's code is unique across rewards. Returns how many were added."""
        wanted = list(dict.fromkeys(c.strip()[:64] for c in codes if c.strip()))
        return len(wanted) - len(await self.add_codes(session, reward_id, wanted))

    async def add_codes(self, session: AsyncSession, reward_id: int, codes: Sequence[str]) -> set[str]:
        """Add these pool codes (each already checked: stripped, 1-64 characters, no NUL, once in the
        list). Returns the ones skipped because a pool or a redemption already holds them."""
        reward = await self.get(session, reward_id)
        if reward.kind != "code_pool":
            raise ConflictError(f"reward {reward_id} is a {reward.kind}, not a code_pool")
        skipped: set[str] = set()
        for start in range(0, len(codes), 500):
            chunk = list(codes[start:start + 500])
            taken = set((await session.scalars(
                select(col(RewardCode.code)).where(col(RewardCode.code).in_(chunk))
            )).all()) | set((await session.scalars(
                select(col(Redemption.code)).where(col(Redemption.code).in_(chunk))
            )).all())
            skipped |= taken
            for code in (c for c in chunk if c not in taken):
                stmt = (
                    dialect_insert(session)(RewardCode).values(reward_id=reward_id, code=code)
                    .on_conflict_do_nothing(index_elements=["reward_id", "code"])
                )
                if not affected(await session.execute(stmt)):
                    skipped.add(code)
        return skipped

    # --- quotes ------------------------------------------------------------------------------
    async def quote(
        self, session: AsyncSession, member_id: int, reward: Reward, *, request_key: str, now: datetime,
        valid: timedelta,
    ) -> tuple[RedemptionQuote, Redemption | None]:
        """The quote for `request_key` (the message that asked), created once: a replay of that message gets
        the first quote and, if it was confirmed, its redemption."""
        stmt = dialect_insert(session)(RedemptionQuote).values(
            member_id=member_id, reward_id=reward.id, request_key=request_key, cost=reward.cost,
            created_at=now, expires_at=now + valid,
        ).on_conflict_do_nothing(index_elements=["request_key"])
        await session.execute(stmt)
        quote = await session.scalar(select(RedemptionQuote).where(col(RedemptionQuote.request_key) == request_key))
        if quote is None or quote.member_id != member_id:
            raise NotFoundError(f"quote {request_key} belongs to another member")
        return quote, await self.redemption_of(session, row_id(quote))

    async def redemption_of(self, session: AsyncSession, quote_id: int) -> Redemption | None:
        return await session.scalar(select(Redemption).where(col(Redemption.request_key) == quote_key(quote_id)))

    async def latest_quote(self, session: AsyncSession, member_id: int, since: datetime) -> RedemptionQuote | None:
        return await session.scalar(
            select(RedemptionQuote).where(col(RedemptionQuote.member_id) == member_id)
            .where(col(RedemptionQuote.created_at) >= since)
            .order_by(col(RedemptionQuote.created_at).desc(), col(RedemptionQuote.id).desc()).limit(1)
        )

    async def confirm(self, session: AsyncSession, member_id: int, quote_id: int, now: datetime) -> Issued:
        """`是` to a quote: redeems once per quote (key `quote:<id>`); a repeat returns the first redemption
        (repeated=True) even after the quote expired. QuoteExpiredError past expires_at, nothing spent."""
        quote = await session.get(RedemptionQuote, quote_id)
        if quote is None or quote.member_id != member_id:
            raise NotFoundError(f"quote {quote_id} does not exist")
        await self.ledger.lock(session, member_id)  # the repeat check below must see a concurrent `是`
        previous = await self.redemption_of(session, quote_id)
        if previous is None and quote.expires_at < now:
            raise QuoteExpiredError("quote expired")
        return await self.redeem(
            session, member_id, quote.reward_id, request_key=quote_key(quote_id), now=now, quoted_cost=quote.cost,
        )

    # --- redemption --------------------------------------------------------------------------
    async def redeem(
        self, session: AsyncSession, member_id: int, reward_id: int, *, request_key: str, now: datetime,
        quoted_cost: int | None = None,
    ) -> Issued:
        """Debit, stock and one code in the caller's transaction; a repeated request_key returns the first
        redemption. With quoted_cost, PriceChangedError (nothing spent) if the cost changed since the quote."""
        member = await self.ledger.lock(session, member_id)
        previous = await session.scalar(select(Redemption).where(col(Redemption.request_key) == request_key))
        if previous is not None:
            reward = await self.get(session, previous.reward_id)
            return Issued(previous, reward, member.balance, repeated=True)
        reward = await self.get(session, reward_id)
        self._check_open(reward, member, now)
        if quoted_cost is not None and reward.cost != quoted_cost:
            raise PriceChangedError("price changed since the quote", name=reward.name, cost=reward.cost)
        await self._check_member_limit(session, reward, member_id)
        await self._take_stock(session, reward)
        spent = await self.ledger.spend(
            session, member_id, reward.cost, key=f"redeem:{request_key}", kind="redeem", now=now,
            reason=Reason.REDEEM.stored(reward=reward.name), ref=request_key,
        )
        redemption = Redemption(
            member_id=member_id, reward_id=row_id(reward), request_key=request_key, cost=reward.cost,
            code="", created_at=now, expires_at=self._coupon_expiry(reward, now),
        )
        session.add(redemption)
        await session.flush()
        redemption.code = await self._code_for(session, reward, row_id(redemption))
        await session.flush()
        await self._watch_spree(session, member_id, now)
        return Issued(redemption, reward, spent.balance)

    async def grant(
        self, session: AsyncSession, member_id: int, reward_id: int, *, period: str, now: datetime, reason: str,
    ) -> Issued:
        """Give `reward_id` to the member without points, once per `grant_key(reason, member, period)`: a
        repeat returns the first coupon (repeated=True). Counted in the stock, the total and per-member
        limits (OutOfStockError, LimitReachedError, RewardEndedError: nothing written); the tier a reward
        asks of buyers does not bind a gift. No ledger entry: the balance and the points invariant stay."""
        if reason not in GRANT_REASONS:
            raise ValueError(f"unknown grant reason {reason!r}")
        key = grant_key(reason, member_id, period)
        member = await self.ledger.lock(session, member_id)
        previous = await session.scalar(select(Redemption).where(col(Redemption.request_key) == key))
        if previous is not None:
            return Issued(previous, await self.get(session, previous.reward_id), member.balance, repeated=True)
        if member.joined_at is None or member.status == MemberStatus.DELETED:
            raise NotMemberError(f"member {member_id} is not a member")
        reward = await self.get(session, reward_id)
        if not is_live(reward, now):
            raise RewardEndedError("reward ended", name=reward.name)
        await self._check_member_limit(session, reward, member_id)
        await self._take_stock(session, reward)
        redemption = Redemption(
            member_id=member_id, reward_id=row_id(reward), request_key=key, cost=0, code="", created_at=now,
            expires_at=self._coupon_expiry(reward, now), granted=reason,
        )
        session.add(redemption)
        await session.flush()
        redemption.code = await self._code_for(session, reward, row_id(redemption))
        await session.flush()
        return Issued(redemption, reward, member.balance)

    async def tier_gift(self, session: AsyncSession, member_id: int, tier: str, now: datetime) -> Issued | None:
        """The rules' gift for reaching `tier` (`grant:tier:<member>:<tier>`, once per member and tier) and its
        transactional `tier_gift` message; called by the ledger in the upgrading transaction. A gift that
        cannot be given (sold out, ended, missing) is logged and skipped in a savepoint: the upgrade and the
        points that caused it stand."""
        reward_id = self.rules.tier_gift(tier)
        if reward_id is None:
            return None
        try:
            async with session.begin_nested():
                issued = await self.grant(session, member_id, reward_id, period=tier, now=now, reason="tier")
        except DomainError as exc:
            log.warning("tier gift %s for member %s not given: %s", reward_id, member_id, type(exc).__name__)
            return None
        if not issued.repeated:
            member = await self.ledger.lock(session, member_id)
            await self.tell(session, member, issued, now, kind="tier_gift", tier=tier)
        return issued

    async def tell(
        self, session: AsyncSession, member: Member, issued: Issued, now: datetime, *, kind: str = "coupon_granted",
        **params: str,
    ) -> None:
        """A gift told on the door the member uses (transactional, dedupe = the grant key): the reward, its
        code and last day, and `params` (the reason, the tier)."""
        openid, source = (member.openid, Source.OA) if member.openid else (member.mp_openid, Source.MP)
        if not openid:
            return
        await outbox.enqueue(
            session, dedupe_key=issued.redemption.request_key, openid=openid, source=source, member_id=member.id,
            kind=kind, now=now, payload={"params": {**self.gift_params(issued), **params}},
        )

    def gift_params(self, issued: Issued) -> dict[str, str]:
        last_day = local_date(issued.redemption.expires_at - timedelta(seconds=1), self.ledger.tz)
        return {"reward": issued.reward.name, "code": issued.redemption.code, "date": last_day.isoformat()}

    def _coupon_expiry(self, reward: Reward, now: datetime) -> datetime:
        """The end of the local day `validity_days` after today: the member is shown that day as the
        last one (有效期至), so the store must accept the code until its midnight."""
        last_day = local_date(now, self.ledger.tz) + timedelta(days=reward.validity_days)
        return self.rules.day_start(last_day + timedelta(days=1), self.ledger.tz).astimezone(UTC)

    async def check_redeemable(self, session: AsyncSession, reward: Reward, member: Member, now: datetime) -> None:
        """Before quoting: the refusals `是` would meet (ended, tier, per-member limit, sold out), raised
        now so the member can pick another reward. Reads only; `redeem` checks again under the lock."""
        self._check_open(reward, member, now)
        await self._check_member_limit(session, reward, row_id(member))
        sold_out = reward.stock == 0 or (reward.total_limit is not None and reward.issued_count >= reward.total_limit)
        if sold_out:
            raise OutOfStockError("out of stock", name=reward.name)

    def _check_open(self, reward: Reward, member: Member, now: datetime) -> None:
        if not is_live(reward, now):
            raise RewardEndedError("reward ended", name=reward.name)
        if reward.min_tier and self.rules.tier_rank(reward.min_tier) > self.rules.tier_rank(member.tier):
            raise TierTooLowError("tier too low", name=reward.name, tier=reward.min_tier)

    async def _check_member_limit(self, session: AsyncSession, reward: Reward, member_id: int) -> None:
        if reward.per_member_limit is None:
            return
        taken = await session.scalar(
            select(func.count()).select_from(Redemption).where(col(Redemption.member_id) == member_id)
            .where(col(Redemption.reward_id) == reward.id).where(col(Redemption.status) != "cancelled")
        )
        if int(taken or 0) >= reward.per_member_limit:
            raise LimitReachedError("limit reached", name=reward.name, limit=reward.per_member_limit)

    async def _take_stock(self, session: AsyncSession, reward: Reward) -> None:
        """The race guard: a conditional decrement, so concurrent redeemers never oversell."""
        result = await session.execute(
            update(Reward).where(col(Reward.id) == reward.id)
            .where(or_(col(Reward.stock).is_(None), col(Reward.stock) > 0))
            .where(or_(col(Reward.total_limit).is_(None), col(Reward.issued_count) < Reward.total_limit))
            .values(
                stock=col(Reward.stock) - 1,  # NULL (unlimited) stays NULL
                issued_count=Reward.issued_count + 1,
            )
        )
        if not affected(result):
            raise OutOfStockError("out of stock", name=reward.name)

    async def _code_for(self, session: AsyncSession, reward: Reward, redemption_id: int) -> str:
        if reward.kind != "code_pool":
            return await unused_code(session, Redemption.code, CODE_LENGTH)
        pick = (
            select(col(RewardCode.id)).where(col(RewardCode.reward_id) == reward.id)
            .where(col(RewardCode.status) == "available").order_by(col(RewardCode.id)).limit(1)
        )
        if session.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        while True:
            code_id = await session.scalar(pick)
            if code_id is None:
                raise OutOfStockError("code pool empty", name=reward.name)
            claimed = await session.execute(
                update(RewardCode).where(col(RewardCode.id) == code_id).where(col(RewardCode.status) == "available")
                .values(status="issued", redemption_id=redemption_id).returning(col(RewardCode.code))
            )
            code = claimed.scalar_one_or_none()
            if code is not None:
                return str(code)

    async def _watch_spree(self, session: AsyncSession, member_id: int, now: datetime) -> None:
        day = local_date(now, self.ledger.tz)
        start = self.rules.day_start(day, self.ledger.tz)
        count = int(await session.scalar(
            select(func.count()).select_from(Redemption).where(col(Redemption.member_id) == member_id)
            .where(col(Redemption.created_at) >= start)
        ) or 0)
        if count > self.rules.daily_redeem_alert:
            await anomalies.record(
                session, member_id=member_id, kind="redeem_spree", now=now,
                detail=f"{count} redemptions on {day}", dedupe_key=f"spree:{member_id}:{day}",
            )

    # --- after the redemption ----------------------------------------------------------------
    async def coupons(
        self, session: AsyncSession, member_id: int, now: datetime
    ) -> Sequence[tuple[Redemption, Reward]]:
        rows = await session.execute(
            select(Redemption, Reward).join(Reward, col(Redemption.reward_id) == Reward.id)
            .where(col(Redemption.member_id) == member_id).where(col(Redemption.status) == "issued")
            .where(col(Redemption.expires_at) > now).order_by(col(Redemption.expires_at), col(Redemption.id))
        )
        return [(r, w) for r, w in rows.all()]

    async def use(
        self, session: AsyncSession, code: str, now: datetime, *, store: str | None = None, by: str | None = None,
    ) -> Redemption:
        """Store verification (核销): once, recording the store and who verified it. CodeUsedError carries
        when and where; NotFoundError for unknown codes."""
        found = None
        for candidate in coupons.spellings(code):
            found = await session.scalar(
                select(Redemption).where(col(Redemption.code) == candidate).with_for_update()
            )
            if found is not None:
                break
        if found is None:
            raise NotFoundError(f"coupon {code} does not exist")
        if found.status == "used":
            when = f"{found.used_at:%Y-%m-%d %H:%M:%S}Z"
            raise CodeUsedError(f"coupon {found.code} was already used at {when}", used_at=found.used_at,
                                store=found.store)
        if found.status == "cancelled":
            raise ConflictError(f"coupon {found.code} was cancelled")
        if found.expires_at <= now:
            raise ConflictError(f"coupon {found.code} expired at {found.expires_at:%Y-%m-%d %H:%M:%S}Z")
        found.status, found.used_at, found.store, found.used_by = "used", now, store, by
        if store:  # used at the till or the counter of a store: the member may be asked how it went
            await surveys.trigger(session, "coupon", [found.member_id], f"coupon:{found.id}", now,
                                  reward_id=found.reward_id)
        return found

    async def cancel(
        self, session: AsyncSession, redemption_id: int, now: datetime
    ) -> tuple[Redemption, int]:
        """Void the code, return the stock, give the points back to their lots. Returns points restored.
        Cancelling twice is a conflict; a used coupon cannot be cancelled."""
        found = await session.scalar(
            select(Redemption).where(col(Redemption.id) == redemption_id).with_for_update()
        )
        if found is None:
            raise NotFoundError(f"redemption {redemption_id} does not exist")
        if found.status != "issued":
            raise ConflictError(f"redemption {redemption_id} is {found.status}")
        found.status, found.cancelled_at = "cancelled", now
        await session.execute(
            update(Reward).where(col(Reward.id) == found.reward_id).values(
                stock=col(Reward.stock) + 1,
                issued_count=Reward.issued_count - 1,
            )
        )
        await session.execute(
            update(RewardCode).where(col(RewardCode.redemption_id) == found.id).values(status="void")
        )
        if found.granted:  # a gift cost no points: there is nothing to give back
            return found, 0
        moved = await self.ledger.restore(
            session, f"redeem:{found.request_key}", key=f"cancel:{found.id}", now=now,
            reason=Reason.REDEEM_CANCELLED.stored(),
        )
        return found, moved.delta
