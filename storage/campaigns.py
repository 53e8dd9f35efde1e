"""Community group campaigns: creation, joining, payouts and settlement.

Every join and settlement locks the campaign row first, so caps, the group-buy threshold and the
budget are decided one at a time; every payout is a ledger entry `campaign:<id>:<member>`, so no
participant is paid twice whatever runs twice. Announcements and payout messages are outbox rows.
A lucky draw may name a coupon prize (reward_id): its winners get the coupon (storage/drawprize.py), its
points are then only the fallback for a winner whose coupon is refused, and its budget counts only those."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import drawprize, outbox, surveys
from storage.clock import local_date
from storage.codes import unused_code
from storage.db import Database, dialect_insert
from storage.enums import CampaignStatus
from storage.errors import DomainError, NotFoundError
from storage.ledger import Ledger
from storage.models import Campaign, CampaignMember, Checkin, Member, Reward
from storage.reasons import Reason
from storage.rewards import Rewards
from storage.rows import affected, row_id

CODE_LENGTH = 5
KINDS = ("join_bonus", "group_buy", "checkin_challenge", "lucky_draw")
_RANDOM = secrets.SystemRandom()


class CampaignUnknownError(NotFoundError):
    text_key = "campaign_unknown"


class CampaignFullError(DomainError):
    text_key = "campaign_full"


class CampaignEndedError(DomainError):
    text_key = "campaign_ended"


class AlreadyJoinedError(DomainError):
    text_key = "campaign_already_joined"


@dataclass(frozen=True)
class Joined:
    campaign: Campaign
    count: int
    paid_now: int  # points credited to this member by the join itself
    threshold_reached: bool
    prize: str | None = None  # a coupon draw's reward name


def budget_for(kind: str, points: int, goal: int, cap: int) -> int:
    """The most a campaign can pay in points: every participant, or only the W winners of a draw (of a coupon
    draw, `points` is the fallback: the coupons themselves are not points and are not in the budget)."""
    return points * (min(goal, cap) if kind == "lucky_draw" else cap)


class Campaigns:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.rewards = Rewards(ledger)

    async def create(
        self, session: AsyncSession, *, kind: str, title: str, points: int, goal: int, cap: int,
        ends_at: datetime, created_by: str, now: datetime, robot_key: str | None = None,
        reward_id: int | None = None,
    ) -> Campaign:
        """A new open campaign and its start announcement. `reward_id` (lucky draws only) makes the prize that
        coupon, checked by drawprize.check for the W winners and the draw's time (the Prize* refusals: nothing
        is written); `points` is then the fallback and may be 0."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        if reward_id is not None:
            if kind != "lucky_draw":
                raise ValueError("only a lucky draw can have a coupon prize")
            await drawprize.check(session, reward_id, now, winners=goal, draw_at=ends_at, tz=self.ledger.tz)
        code = await unused_code(session, Campaign.code, CODE_LENGTH)
        campaign = Campaign(
            code=code, kind=kind, title=title, points=points, goal=goal, cap=cap,
            budget=budget_for(kind, points, goal, cap), created_by=created_by, created_at=now,
            ends_at=ends_at, robot_key=robot_key or None, reward_id=reward_id,
        )
        session.add(campaign)
        await session.flush()
        await self._announce(session, campaign, "start", now)
        return campaign

    async def set_qr(self, session: AsyncSession, campaign_id: int, url: str) -> None:
        await session.execute(update(Campaign).where(col(Campaign.id) == campaign_id).values(qr_url=url[:300] or None))

    async def by_code(self, session: AsyncSession, code: str, *, lock: bool = False) -> Campaign:
        stmt = select(Campaign).where(col(Campaign.code) == code.strip().upper())
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        found = await session.scalar(stmt)
        if found is None:
            raise CampaignUnknownError("unknown campaign", code=code.strip().upper())
        return found

    async def prize(self, session: AsyncSession, campaign: Campaign) -> str | None:
        """The name of a coupon draw's reward; None for a points prize."""
        if campaign.reward_id is None:
            return None
        reward = await session.get(Reward, campaign.reward_id)
        return reward.name if reward is not None else None

    async def open_campaigns(self, session: AsyncSession, now: datetime) -> Sequence[Campaign]:
        return (await session.scalars(
            select(Campaign).where(col(Campaign.status) == CampaignStatus.OPEN).where(col(Campaign.ends_at) > now)
            .where(col(Campaign.participants) < col(Campaign.cap))  # a full one cannot be joined
            .order_by(col(Campaign.ends_at))
        )).all()

    # --- joining ---------------------------------------------------------------------------------
    @staticmethod
    def check_joinable(campaign: Campaign, now: datetime, *, member_in: bool = False) -> None:
        """Refuse what a join would: ended, already in (before the cap: a participant of a full campaign
        is in it), or full. Unknown codes are refused by by_code."""
        if campaign.status != CampaignStatus.OPEN or campaign.ends_at <= now:
            raise CampaignEndedError("ended", title=campaign.title)
        if member_in:
            raise AlreadyJoinedError("already joined", title=campaign.title)
        if campaign.participants >= campaign.cap:
            raise CampaignFullError("full", title=campaign.title, cap=campaign.cap)

    async def join(
        self, session: AsyncSession, code: str, member: Member, now: datetime, *, referrer_id: int | None = None,
    ) -> Joined:
        """Join once; refused when full, ended or unknown. Join bonus pays at once; a group-buy pays
        every participant when the N-th joins (and each later joiner at once). `referrer_id`: the member
        whose personal invite (`camp_<CODE>_<ref>`) brought the join (never the joiner)."""
        if referrer_id == member.id:
            referrer_id = None
        campaign = await self.by_code(session, code, lock=True)
        already = await session.scalar(
            select(col(CampaignMember.id)).where(col(CampaignMember.campaign_id) == campaign.id)
            .where(col(CampaignMember.member_id) == member.id)
        )
        self.check_joinable(campaign, now, member_in=already is not None)
        inserted = await session.scalar(
            dialect_insert(session)(CampaignMember)
            .values(campaign_id=campaign.id, member_id=member.id, joined_at=now, referrer_id=referrer_id)
            .on_conflict_do_nothing(index_elements=["campaign_id", "member_id"])
            .returning(CampaignMember.id)
        )
        if inserted is None:
            raise AlreadyJoinedError("already joined", title=campaign.title)
        campaign.participants += 1
        paid_now = 0
        reached = False
        if campaign.kind == "join_bonus":
            paid_now = await self._pay(session, campaign, row_id(member), now)
        elif campaign.kind == "group_buy" and campaign.participants >= campaign.goal:
            reached = campaign.participants == campaign.goal
            paid_now = await self._pay_everyone(session, campaign, now, except_member=None, about=member.id)
        await self._announce_progress(session, campaign, now)
        return Joined(campaign, campaign.participants, paid_now, reached, await self.prize(session, campaign))

    async def _pay_everyone(
        self, session: AsyncSession, campaign: Campaign, now: datetime, *, except_member: int | None,
        about: int | None,
    ) -> int:
        """Pay every unpaid participant (group-buy threshold, challenge, draw); returns what `about` got."""
        unpaid = (await session.scalars(
            select(col(CampaignMember.member_id)).where(col(CampaignMember.campaign_id) == campaign.id)
            .where(col(CampaignMember.paid) == 0).order_by(col(CampaignMember.id))
        )).all()
        mine = 0
        for member_id in unpaid:
            if member_id == except_member:
                continue
            got = await self._pay(session, campaign, member_id, now)
            if member_id == about:
                mine = got
            elif got:
                await self._tell(session, campaign, member_id, got, now)
        return mine

    async def _pay(self, session: AsyncSession, campaign: Campaign, member_id: int, now: datetime) -> int:
        """One participant's payout, never beyond the budget; `campaign:<id>:<member>` makes it single."""
        if campaign.paid_out + campaign.points > campaign.budget:
            return 0
        claimed = await session.execute(
            update(CampaignMember).where(col(CampaignMember.campaign_id) == campaign.id)
            .where(col(CampaignMember.member_id) == member_id).where(col(CampaignMember.paid) == 0).values(paid=1)
        )
        if not affected(claimed):
            return 0
        moved = await self.ledger.earn(
            session, member_id, campaign.points, key=f"campaign:{campaign.id}:{member_id}", kind="campaign",
            now=now, reason=Reason.CAMPAIGN.stored(title=campaign.title), ref=campaign.code,
        )
        campaign.paid_out += moved.delta
        return moved.delta

    async def _tell(
        self, session: AsyncSession, campaign: Campaign, member_id: int, points: int, now: datetime,
        *, kind: str = "campaign_reward", **params: str,
    ) -> None:
        member = await session.get(Member, member_id)
        if member is None or not member.openid:
            return
        await outbox.enqueue(
            session, dedupe_key=f"campaign-paid:{campaign.id}:{member_id}", openid=member.openid,
            member_id=member_id, kind=kind, now=now,
            payload={"params": {"title": campaign.title, "points": points, "kind": campaign.kind, **params}},
        )

    # --- ending ------------------------------------------------------------------------------------
    async def settle(self, session: AsyncSession, campaign: Campaign, now: datetime) -> int:
        """End a campaign and pay what its kind owes; a settled campaign is left alone. Returns paid."""
        if campaign.status != CampaignStatus.OPEN:
            return 0
        before = campaign.paid_out
        if campaign.kind == "checkin_challenge":
            for member_id in await self._challenge_winners(session, campaign, now):
                got = await self._pay(session, campaign, member_id, now)
                if got:
                    await self._tell(session, campaign, member_id, got, now)
        elif campaign.kind == "lucky_draw":
            await self._draw(session, campaign, now)
        campaign.status = CampaignStatus.SETTLED
        campaign.settled_at = now
        await self._announce(session, campaign, "end", now)
        await surveys.trigger_campaign(session, int(campaign.id or 0), now)
        return campaign.paid_out - before

    async def _challenge_winners(self, session: AsyncSession, campaign: Campaign, now: datetime) -> list[int]:
        start = local_date(campaign.created_at, self.ledger.tz)
        end = local_date(min(campaign.ends_at, now) - timedelta(microseconds=1), self.ledger.tz)
        rows = await session.execute(
            select(col(CampaignMember.member_id)).join(Checkin, col(Checkin.member_id) == CampaignMember.member_id)
            .where(col(CampaignMember.campaign_id) == campaign.id)
            .where(col(Checkin.day) >= start).where(col(Checkin.day) <= end)
            .where(col(Checkin.created_at) < campaign.ends_at)  # not a late check-in on the last day
            .group_by(col(CampaignMember.member_id)).having(func.count(col(Checkin.id)) >= campaign.goal)
            .order_by(col(CampaignMember.member_id))
        )
        return [r[0] for r in rows]

    async def _draw(self, session: AsyncSession, campaign: Campaign, now: datetime) -> None:
        pool = list((await session.scalars(
            select(col(CampaignMember.member_id)).where(col(CampaignMember.campaign_id) == campaign.id)
            .order_by(col(CampaignMember.member_id))
        )).all())
        winners = sorted(_RANDOM.sample(pool, min(campaign.goal, len(pool))))
        record: dict[str, object] = {
            "drawn_at": now.isoformat(), "source": "secrets.SystemRandom", "pool": pool, "winners": winners,
        }
        if campaign.reward_id is not None:
            record["reward_id"] = campaign.reward_id
            record["prizes"] = {str(m): await self._give_coupon(session, campaign, m, now) for m in winners}
        else:
            for member_id in winners:
                got = await self._pay(session, campaign, member_id, now)
                if got:
                    await self._tell(session, campaign, member_id, got, now)
        campaign.draw_record = json.dumps(record)

    async def _give_coupon(self, session: AsyncSession, campaign: Campaign, member_id: int, now: datetime) -> str:
        """One winner of a coupon draw: the coupon (`grant:draw:<member>:<code>`); if refused, the fallback
        points (`campaign:<id>:<member>`) when the campaign has them; else the winner is told and an anomaly
        raised. Returns what the draw record keeps: `coupon`, `points` or `unpaid:<refusal>`."""
        granted = await drawprize.give(session, self.rewards, campaign, member_id, now)
        if granted.issued is not None:
            await session.execute(
                update(CampaignMember).where(col(CampaignMember.campaign_id) == campaign.id)
                .where(col(CampaignMember.member_id) == member_id).values(paid=1)
            )
            return "coupon"
        prize = await self.prize(session, campaign) or ""
        got = await self._pay(session, campaign, member_id, now) if campaign.points > 0 else 0
        if got:
            await self._tell(session, campaign, member_id, got, now, kind="draw_fallback", reward=prize)
            return "points"
        await drawprize.unpaid(session, campaign, member_id, prize, str(granted.refusal), now)
        return f"unpaid:{granted.refusal}"

    async def finalize_due(self, db: Database, now: datetime) -> int:
        """Settle every open campaign whose end has come, each in its own transaction. Safe to run
        twice or from two processes at once (row lock + status check + keyed payouts)."""
        async with db.sessions() as session:
            due = (await session.scalars(
                select(col(Campaign.id)).where(col(Campaign.status) == CampaignStatus.OPEN)
                .where(col(Campaign.ends_at) <= now)
            )).all()
        settled = 0
        for campaign_id in due:
            async with db.unit_of_work() as session:
                campaign = await session.scalar(
                    select(Campaign).where(col(Campaign.id) == campaign_id).with_for_update()
                    .execution_options(populate_existing=True)
                )
                if campaign is not None and campaign.status == CampaignStatus.OPEN:
                    await self.settle(session, campaign, now)
                    settled += 1
        return settled

    # --- figures and announcements ---------------------------------------------------------------
    async def joins_per_day(self, session: AsyncSession, campaign: Campaign) -> list[tuple[date, int]]:
        joined = (await session.scalars(
            select(col(CampaignMember.joined_at)).where(col(CampaignMember.campaign_id) == campaign.id)
        )).all()
        counts: dict[date, int] = {}
        for at in joined:
            day = local_date(at, self.ledger.tz)
            counts[day] = counts.get(day, 0) + 1
        return sorted(counts.items())

    async def _announce_progress(self, session: AsyncSession, campaign: Campaign, now: datetime) -> None:
        basis = campaign.goal if campaign.kind == "group_buy" else campaign.cap
        if basis <= 0:
            return
        for quarter in (25, 50, 75, 100):
            if campaign.participants * 100 >= basis * quarter and (campaign.participants - 1) * 100 < basis * quarter:
                await self._announce(session, campaign, str(quarter), now)

    async def _announce(self, session: AsyncSession, campaign: Campaign, stage: str, now: datetime) -> None:
        if not campaign.robot_key:
            return
        await outbox.enqueue(
            session, dedupe_key=f"announce:{campaign.id}:{stage}", openid="", source="wecom",
            kind="announce", now=now,
            payload={"robot_key": campaign.robot_key, "params": {
                "stage": stage, "title": campaign.title, "code": campaign.code, "kind": campaign.kind,
                "count": campaign.participants, "cap": campaign.cap, "goal": campaign.goal,
                "points": campaign.points, "paid_out": campaign.paid_out,
                "reward": await self.prize(session, campaign),
                "coupons": drawprize.outcomes(campaign).coupons,
            }},
        )
