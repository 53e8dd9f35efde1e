"""The tables (SQLModel), by area. Columns and constraints only: behaviour lives in the storage services.
Every table is importable from here (`from storage.models import Member`), and importing this package
registers them all on SQLModel.metadata (Alembic and the schema test rely on it)."""

from __future__ import annotations

from storage.models.campaigns import Campaign, CampaignMember
from storage.models.columns import UTCDateTime
from storage.models.ledger import Anomaly, LedgerEntry, LotMovement, PointsLot, PurchaseOrder
from storage.models.members import Checkin, Member, Staff, SubscribeCredit, WinbackOffer
from storage.models.pushes import JobRun, LateDelivery, OutboundCall, Outbox, OutboxAttempt
from storage.models.rewards import Redemption, RedemptionQuote, Reward, RewardCode

__all__ = [
    "Anomaly",
    "Campaign",
    "CampaignMember",
    "Checkin",
    "JobRun",
    "LateDelivery",
    "LedgerEntry",
    "LotMovement",
    "Member",
    "OutboundCall",
    "Outbox",
    "OutboxAttempt",
    "PointsLot",
    "PurchaseOrder",
    "Redemption",
    "RedemptionQuote",
    "Reward",
    "RewardCode",
    "Staff",
    "SubscribeCredit",
    "UTCDateTime",
    "WinbackOffer",
]
