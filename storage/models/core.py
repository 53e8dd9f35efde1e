"""The member side's tables (SQLModel): members, points, rewards, pushes, campaigns, staff. Columns and
constraints only: behaviour lives in the storage services."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, DateTime, Index, Text, UniqueConstraint, false, text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from storage.enums import CampaignStatus, MemberStatus, Source
from storage.rows import table_of


class UTCDateTime(TypeDecorator):
    """Aware UTC in, aware UTC out, on every backend. SQLite keeps no offset, so it stores naive
    UTC (which also keeps its text comparisons in order); PostgreSQL stores timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(nullable: bool = True, index: bool = False) -> Column:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Member(SQLModel, table=True):
    """Everyone who has written to the account; a member once `joined_at` is set."""

    __tablename__ = "member"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="ck_member_balance_nonnegative"),
        UniqueConstraint("openid", name="uq_member_openid"),
        UniqueConstraint("mp_openid", name="uq_member_mp_openid"),
        UniqueConstraint("referral_code", name="uq_member_referral_code"),
        UniqueConstraint("phone_hash", name="uq_member_phone_hash"),
        Index("ix_member_unionid", "unionid"),
        Index("ix_member_birthday", "birthday_month", "birthday_day", "id"),  # the job pages by id
    )

    id: int | None = Field(default=None, primary_key=True)
    openid: str | None = Field(default=None, max_length=64)
    mp_openid: str | None = Field(default=None, max_length=64)
    unionid: str | None = Field(default=None, max_length=64)
    phone_enc: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    phone_hash: str | None = Field(default=None, max_length=64)
    birthday_month: int | None = None
    birthday_day: int | None = None
    birthday_year: int | None = None
    consent_at: datetime | None = Field(default=None, sa_column=utc_column())
    consent_version: str | None = Field(default=None, max_length=16)
    referral_code: str | None = Field(default=None, max_length=16)
    referrer_id: int | None = Field(default=None, foreign_key="member.id")
    # The channel QR (`chan_<name>`) that first brought this person (first channel wins).
    channel: str | None = Field(default=None, max_length=32)
    # The member's own `ref_<code>` poster: a temporary WeChat QR, kept until it lapses, then made again.
    share_qr_url: str | None = Field(default=None, max_length=255)
    share_qr_expires_at: datetime | None = Field(default=None, sa_column=utc_column())
    tier: str = Field(default="普通", max_length=16)
    tier_reviewed_month: str | None = Field(default=None, max_length=7)
    # An operator's tier hold: the monthly review leaves the tier alone through this local day.
    tier_hold_until: date | None = None
    status: str = Field(default=MemberStatus.ACTIVE.value, max_length=16)
    marketing_opt_out: bool = False
    balance: int = 0
    # Kept by the ledger in the same write as the balance, so that a check-in reads no other table.
    # earned_total: every qualifying point ever earned, an upper bound that spares the tier query.
    # cap_day/cap_earned: capped (non-purchase) points earned on that local day (NULL: sum the entries).
    # expiry_check_at: no live lot lapses before it (NULL: not known, look at the lots).
    # checkin_day/checkin_streak: the last check-in and its streak (the checkin table keeps them all).
    # winback_until: the end of an open win-back offer.
    earned_total: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    cap_day: date | None = None
    cap_earned: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    expiry_check_at: datetime | None = Field(default=None, sa_column=utc_column())
    checkin_day: date | None = None
    checkin_streak: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    winback_until: datetime | None = Field(default=None, sa_column=utc_column())
    # A satisfaction survey may be asked at the member's next message until then (storage/surveys.py): the
    # chat reads it with the row it loads anyway, so no message asks the database or the KV again for it.
    survey_due_until: datetime | None = Field(default=None, sa_column=utc_column())
    joined_at: datetime | None = Field(default=None, sa_column=utc_column())
    last_interaction_at: datetime | None = Field(default=None, sa_column=utc_column(index=True))
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    # A duplicate membership merged into another (storage/merge.py): status deleted, this names the keeper.
    merged_into: int | None = None
    deleted_at: datetime | None = Field(default=None, sa_column=utc_column())  # when the member left (reports)
    # The daily RFM layering's class lives in member_segment (storage/models/marketing.py), not here: a night's
    # layering then rewrites narrow rows instead of a new version of this wide, many-indexed row per member.
    # Churn risk from the member's own purchase rhythm and the staged win-back it leads to
    # (storage/winback.py): warn -> recall1 -> recall2 -> dormant; a message from the member ends it.
    churn_risk: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    churn_stage: str | None = Field(default=None, max_length=12, index=True)
    churn_stage_at: datetime | None = Field(default=None, sa_column=utc_column())


class Outbox(SQLModel, table=True):
    """One message to push, written in the transaction that decided it; dedupe_key makes it single."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_member_sent", "member_id", "category", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    openid: str = Field(max_length=64)
    source: str = Field(default=Source.OA.value, max_length=8)
    kind: str = Field(max_length=32)
    category: str = Field(default="transactional", max_length=16)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    priority: int = 0
    status: str = Field(default="pending", max_length=16)
    channel: str | None = Field(default=None, max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    wechat_msgid: str | None = Field(default=None, max_length=32, index=True)
    next_attempt_at: datetime = Field(sa_column=utc_column(nullable=False))
    deadline: datetime | None = Field(default=None, sa_column=utc_column())
    claimed_at: datetime | None = Field(default=None, sa_column=utc_column())
    # The claiming sender and how long its claim holds: renewed while it works the batch.
    claimed_by: str | None = Field(default=None, max_length=16)
    lease_until: datetime | None = Field(default=None, sa_column=utc_column())
    # A send started whose answer is not recorded yet: the channel and when (a dead sender's last act).
    in_flight: str | None = Field(default=None, max_length=16)
    in_flight_at: datetime | None = Field(default=None, sa_column=utc_column())
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=utc_column())
    # A broadcast's row (cancel and the report find them by it), and the experiment arm it renders.
    # (No foreign keys: SQLite cannot add one to the outbox without rebuilding it; see migration 0015.)
    broadcast_id: int | None = Field(default=None, index=True)
    experiment_id: int | None = Field(default=None, index=True)
    variant: str | None = Field(default=None, max_length=16)


class LateDelivery(SQLModel, table=True):
    """A message past its reply deadline, held durably until its replies are in the outbox: WeChat was
    told `success`, so a worker that dies leaves this row for a sweep to run again (storage/deliveries.py)."""

    __tablename__ = "late_delivery"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_late_delivery_dedupe_key"),
        Index("ix_late_delivery_due", "status", "lease_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200)
    inbound: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    lease_until: datetime = Field(sa_column=utc_column(nullable=False))
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    done_at: datetime | None = Field(default=None, sa_column=utc_column())


class LedgerEntry(SQLModel, table=True):
    """One movement of points. The idempotency key makes every operation apply once."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_ledger_entry_key"),
        Index("ix_ledger_entry_member_created", "member_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    delta: int
    kind: str = Field(max_length=16)
    idempotency_key: str = Field(max_length=160)
    reason: str = Field(default="", max_length=200)
    ref: str | None = Field(default=None, max_length=100)
    # Who moved the points by hand (an operator's name, `token`); NULL for the programme's own movements.
    actor: str | None = Field(default=None, max_length=64)
    balance_after: int
    created_at: datetime = Field(sa_column=utc_column(nullable=False))


class PointsLot(SQLModel, table=True):
    """Points earned together, expiring together. Spending consumes the earliest-expiring lots."""

    __tablename__ = "points_lot"
    __table_args__ = (
        CheckConstraint("remaining >= 0", name="ck_points_lot_remaining_nonnegative"),
        CheckConstraint("remaining <= amount", name="ck_points_lot_remaining_le_amount"),
        Index("ix_points_lot_member_live", "member_id", "expires_at"),
        Index("ix_points_lot_expiry", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    entry_id: int = Field(foreign_key="ledger_entry.id")
    amount: int
    remaining: int
    earned_at: datetime = Field(sa_column=utc_column(nullable=False))
    expires_at: datetime = Field(sa_column=utc_column(nullable=False))


class LotMovement(SQLModel, table=True):
    """Which lots an entry took points from (negative) or gave them back to (positive)."""

    __tablename__ = "lot_movement"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="ledger_entry.id", index=True)
    lot_id: int = Field(foreign_key="points_lot.id", index=True)
    amount: int


class Checkin(SQLModel, table=True):
    __tablename__ = "checkin"
    __table_args__ = (UniqueConstraint("member_id", "day", name="uq_checkin_member_day"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    day: date
    streak: int
    created_at: datetime = Field(sa_column=utc_column(nullable=False))


class PurchaseOrder(SQLModel, table=True):
    """An order reported by the POS; refunds are keyed by their own ids in the ledger."""

    __tablename__ = "purchase_order"
    __table_args__ = (UniqueConstraint("order_id", name="uq_purchase_order_order_id"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(max_length=64)
    member_id: int = Field(foreign_key="member.id", index=True)
    amount_fen: int
    points: int
    refunded_fen: int = 0
    refunded_points: int = 0
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    store: str | None = Field(default=None, max_length=32, index=True)  # for the reports, as the POS sent it
    channel: str | None = Field(default=None, max_length=32)


class OrderItem(SQLModel, table=True):
    """One line of a paid order as the POS sent it (optional), for the reports."""

    __tablename__ = "order_item"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="purchase_order.id", index=True)
    sku: str = Field(max_length=64)
    category: str = Field(default="", max_length=40)
    qty: int
    amount_fen: int


class Anomaly(SQLModel, table=True):
    """Something operators should look at: a cap hit, a refund shortfall, a redemption spree. An operator
    moves it open -> acknowledged -> resolved (with a note)."""

    __tablename__ = "anomaly"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_anomaly_dedupe_key"),
        CheckConstraint("state IN ('open', 'acknowledged', 'resolved')", name="ck_anomaly_state"),
        Index("ix_anomaly_state_created", "state", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    kind: str = Field(max_length=32)
    detail: str = Field(sa_column=Column(Text, nullable=False))
    dedupe_key: str = Field(max_length=160)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    state: str = Field(default="open", max_length=16, sa_column_kwargs={"server_default": "open"})
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    handled_by: str | None = Field(default=None, max_length=64)
    acknowledged_at: datetime | None = Field(default=None, sa_column=utc_column())
    resolved_at: datetime | None = Field(default=None, sa_column=utc_column())
    # When the operations robot's announcement was queued (or skipped, no robot set); NULL: not yet.
    announced_at: datetime | None = Field(default=None, sa_column=utc_column())


class Reward(SQLModel, table=True):
    """Something members buy with points. Stock NULL means unlimited."""

    __tablename__ = "reward"
    __table_args__ = (
        CheckConstraint("stock IS NULL OR stock >= 0", name="ck_reward_stock_nonnegative"),
        CheckConstraint("cost > 0", name="ck_reward_cost_positive"),
        CheckConstraint("kind IN ('coupon', 'code_pool', 'gift')", name="ck_reward_kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=40)
    description: str = Field(default="", max_length=200)
    cost: int
    kind: str = Field(default="coupon", max_length=16)
    stock: int | None = None
    per_member_limit: int | None = None
    total_limit: int | None = None
    issued_count: int = 0
    min_tier: str | None = Field(default=None, max_length=16)
    validity_days: int = 30
    starts_at: datetime | None = Field(default=None, sa_column=utc_column())
    ends_at: datetime | None = Field(default=None, sa_column=utc_column())
    active: bool = True
    created_at: datetime = Field(sa_column=utc_column(nullable=False))


class RewardCode(SQLModel, table=True):
    """A code imported from the retailer's POS; issued to exactly one redemption."""

    __tablename__ = "reward_code"
    __table_args__ = (
        UniqueConstraint("reward_id", "code", name="uq_reward_code"),
        Index("ix_reward_code_available", "reward_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    reward_id: int = Field(foreign_key="reward.id")
    code: str = Field(max_length=64)
    status: str = Field(default="available", max_length=16)
    redemption_id: int | None = Field(default=None, foreign_key="redemption.id")


class Redemption(SQLModel, table=True):
    """Points turned into a code, or a code given (`granted` says why, cost 0, key `grant:...`); request_key
    (chat flow instance, API request id, grant key) makes it single."""

    __tablename__ = "redemption"
    __table_args__ = (
        UniqueConstraint("request_key", name="uq_redemption_request_key"),
        UniqueConstraint("code", name="uq_redemption_code"),
        Index("ix_redemption_member", "member_id", "created_at"),
        Index("ix_redemption_store_used", "store", "used_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    reward_id: int = Field(foreign_key="reward.id")
    request_key: str = Field(max_length=160)
    cost: int
    code: str = Field(max_length=64)
    granted: str | None = Field(default=None, max_length=16)  # a gift's reason (birthday, tier, operator...)
    status: str = Field(default="issued", max_length=16)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    expires_at: datetime = Field(sa_column=utc_column(nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=utc_column())
    cancelled_at: datetime | None = Field(default=None, sa_column=utc_column())
    store: str | None = Field(default=None, max_length=32)  # the store that verified it (核销)
    used_by: str | None = Field(default=None, max_length=64)  # who verified it: operator, `store:<code>`, clerk


class RedemptionQuote(SQLModel, table=True):
    """A price shown in the chat, kept in the database so `是` stays single when the flow state is lost:
    its id is the redemption's key (`quote:<id>`). request_key is the message that asked for it, so a
    replay of that message after the KV lost its memory finds the same quote."""

    __tablename__ = "redemption_quote"
    __table_args__ = (
        UniqueConstraint("request_key", name="uq_redemption_quote_request_key"),
        Index("ix_redemption_quote_member", "member_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    reward_id: int = Field(foreign_key="reward.id")
    request_key: str = Field(max_length=160)
    cost: int
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    expires_at: datetime = Field(sa_column=utc_column(nullable=False))


class OutboxAttempt(SQLModel, table=True):
    """Every try at delivering an outbox row: which channel, what WeChat answered."""

    __tablename__ = "outbox_attempt"

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="outbox.id", index=True)
    channel: str = Field(max_length=16)
    errcode: int
    detail: str = Field(default="", max_length=200)
    at: datetime = Field(sa_column=utc_column(nullable=False))


class JobRun(SQLModel, table=True):
    """How far each scheduler job has run: every due time up to `done_through` is handled, so a new
    leader knows what fell due while nobody led."""

    __tablename__ = "job_run"

    name: str = Field(primary_key=True, max_length=32)
    done_through: datetime = Field(sa_column=utc_column(nullable=False))
    finished_at: datetime = Field(sa_column=utc_column(nullable=False))


class SubscribeCredit(SQLModel, table=True):
    """Mini Program one-time subscription credits we count ourselves (WeChat offers no API to read them)."""

    __tablename__ = "subscribe_credit"
    __table_args__ = (
        UniqueConstraint("openid", "template_id", name="uq_subscribe_credit"),
        CheckConstraint("credits >= 0", name="ck_subscribe_credit_nonnegative"),
    )

    id: int | None = Field(default=None, primary_key=True)
    openid: str = Field(max_length=64)
    template_id: str = Field(max_length=64)
    credits: int = 0
    rejected_at: datetime | None = Field(default=None, sa_column=utc_column())
    updated_at: datetime = Field(sa_column=utc_column(nullable=False))


class WinbackOffer(SQLModel, table=True):
    """A win-back push's promise: bonus points on the next check-in before valid_until."""

    __tablename__ = "winback_offer"
    __table_args__ = (Index("ix_winback_offer_member", "member_id", "offered_at"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    points: int
    offered_at: datetime = Field(sa_column=utc_column(nullable=False))
    valid_until: datetime = Field(sa_column=utc_column(nullable=False))
    redeemed_at: datetime | None = Field(default=None, sa_column=utc_column())


class OutboundCall(SQLModel, table=True):
    """In demo mode nothing leaves the machine: each WeChat API call is recorded here instead."""

    __tablename__ = "outbound_call"

    id: int | None = Field(default=None, primary_key=True)
    api: str = Field(max_length=80)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))


class Staff(SQLModel, table=True):
    """Community managers and admins (campaigns from the chat), service staff (tickets from the chat), and
    clerks bound to a store, who verify coupons in the chat (`核销 CODE`)."""

    __tablename__ = "staff"
    __table_args__ = (
        UniqueConstraint("openid", name="uq_staff_openid"),
        CheckConstraint("role IN ('manager', 'admin', 'service', 'clerk')", name="ck_staff_role"),
        CheckConstraint("role != 'clerk' OR store IS NOT NULL", name="ck_staff_clerk_store"),
    )

    id: int | None = Field(default=None, primary_key=True)
    openid: str = Field(max_length=64)
    role: str = Field(max_length=16)
    store: str | None = Field(default=None, max_length=32)
    added_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))


class Campaign(SQLModel, table=True):
    """A group activity a manager started in the chat; budget is the most it can ever pay out."""

    __tablename__ = "campaign"
    __table_args__ = (
        UniqueConstraint("code", name="uq_campaign_code"),
        CheckConstraint(
            "kind IN ('join_bonus', 'group_buy', 'checkin_challenge', 'lucky_draw')", name="ck_campaign_kind"
        ),
        CheckConstraint("paid_out <= budget", name="ck_campaign_within_budget"),
        Index("ix_campaign_due", "status", "ends_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=8)
    kind: str = Field(max_length=20)
    title: str = Field(max_length=40)
    points: int
    goal: int = 0  # group-buy N, challenge K days, draw W winners
    cap: int
    budget: int
    paid_out: int = 0
    participants: int = 0
    status: str = Field(default=CampaignStatus.OPEN.value, max_length=12)
    robot_key: str | None = Field(default=None, max_length=80)
    qr_url: str | None = Field(default=None, max_length=300)
    draw_record: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # A lucky draw's coupon prize (a reward granted to each winner); `points` is then the fallback a winner
    # gets when the coupon cannot be granted (0: none), and `budget` counts only those points.
    reward_id: int | None = Field(default=None, foreign_key="reward.id")
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    ends_at: datetime = Field(sa_column=utc_column(nullable=False))
    settled_at: datetime | None = Field(default=None, sa_column=utc_column())


class ShareScan(SQLModel, table=True):
    """One scan of a sharing QR (`ref_`, `chan_`, `camp_..._<ref>`), subscribe or SCAN: the funnel's first step.
    `referrer_id` is the sharing member, `channel` the channel's name; `follow` is a subscribe event."""

    __tablename__ = "share_scan"
    __table_args__ = (
        Index("ix_share_scan_referrer", "referrer_id"),
        Index("ix_share_scan_channel", "channel"),
    )

    id: int | None = Field(default=None, primary_key=True)
    openid: str = Field(max_length=64)
    referrer_id: int | None = Field(default=None, foreign_key="member.id")
    channel: str | None = Field(default=None, max_length=32)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    follow: bool = False
    created_at: datetime = Field(sa_column=utc_column(nullable=False))


class CampaignMember(SQLModel, table=True):
    __tablename__ = "campaign_member"
    __table_args__ = (UniqueConstraint("campaign_id", "member_id", name="uq_campaign_member"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    joined_at: datetime = Field(sa_column=utc_column(nullable=False))
    paid: int = 0
    # The member whose personal invite (`camp_<CODE>_<ref>`) brought this join, if any.
    referrer_id: int | None = Field(default=None, foreign_key="member.id", index=True)


# The announcer's queue: anomalies not yet announced, oldest first (a handful at most, whatever the table's size).
Index(
    "ix_anomaly_unannounced", table_of(Anomaly).c.id,
    postgresql_where=text("announced_at IS NULL"), sqlite_where=text("announced_at IS NULL"),
)

# The sender's claim: due pending rows, highest priority first. Without it every batch sorts the backlog.
Index(
    "ix_outbox_pending", table_of(Outbox).c.priority.desc(), table_of(Outbox).c.id,
    postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'"),
)
