"""The tables (SQLModel), split by side: core (members, points, rewards, pushes, campaigns) and ops
(operators, audit). Importing this package registers every table on SQLModel.metadata."""

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
    Staff,
    SubscribeCredit,
    UTCDateTime,
    WinbackOffer,
    utc_column,
)
from storage.models.ops import AuditEntry, Operator, Store

__all__ = [
    "Anomaly", "AuditEntry", "Campaign", "CampaignMember", "Checkin", "JobRun", "LateDelivery", "LedgerEntry",
    "LotMovement", "Member", "Operator", "OrderItem", "OutboundCall", "Outbox", "OutboxAttempt", "PointsLot",
    "PurchaseOrder",
    "Redemption", "RedemptionQuote", "Reward", "RewardCode", "Staff", "Store", "SubscribeCredit", "UTCDateTime",
    "WinbackOffer", "utc_column",
]
