"""The tables (SQLModel), split by side: core (members, points, rewards, pushes, campaigns) and ops
(operators, audit), marketing (segments, broadcasts, experiments), service (tickets, surveys) and reports
(interaction days, KPI snapshots). Importing this package
registers every table on SQLModel.metadata."""

from __future__ import annotations

from storage.models.core import (
    Anomaly,
    Campaign,
    CampaignMember,
    Checkin,
    JobRun,
    LateDelivery,
    LedgerEntry,
    LotMovement,
    Member,
    OrderItem,
    OutboundCall,
    Outbox,
    OutboxAttempt,
    PointsLot,
    PurchaseOrder,
    Redemption,
    RedemptionQuote,
    Reward,
    RewardCode,
    ShareScan,
    Staff,
    SubscribeCredit,
    UTCDateTime,
    WinbackOffer,
    utc_column,
)
from storage.models.marketing import (
    Broadcast,
    Experiment,
    ExperimentAssignment,
    MemberList,
    MemberListEntry,
    MemberSegment,
    RfmMove,
    WinbackStep,
)
from storage.models.ops import AuditEntry, Channel, Operator, Store
from storage.models.reports import InteractionDay, KpiSnapshot
from storage.models.service import Survey, SurveyAsk, Ticket, TicketMessage

__all__ = [
    "Anomaly", "AuditEntry", "Broadcast", "Experiment", "ExperimentAssignment", "MemberList", "MemberListEntry",
    "MemberSegment", "RfmMove", "Campaign", "CampaignMember", "Channel", "Checkin", "InteractionDay", "JobRun",
    "KpiSnapshot", "LateDelivery", "LedgerEntry", "LotMovement", "Member", "Operator", "OrderItem", "OutboundCall",
    "Outbox", "OutboxAttempt", "PointsLot", "PurchaseOrder", "Redemption", "RedemptionQuote", "Reward",
    "RewardCode", "ShareScan", "Staff", "Store", "SubscribeCredit", "Survey", "SurveyAsk", "Ticket",
    "TicketMessage", "UTCDateTime", "WinbackOffer", "WinbackStep", "utc_column",
]
