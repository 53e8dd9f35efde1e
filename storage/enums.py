"""The closed sets of values stored as strings (message source, member and campaign status): spelled once, so
a typo is an AttributeError, not a silent mismatch. The stored values are the strings they always were."""

from __future__ import annotations

from enum import StrEnum


class Source(StrEnum):
    """Which door a message, an openid or a push belongs to."""

    OA = "oa"  # the Official Account
    MP = "mp"  # the Mini Program


class MemberStatus(StrEnum):
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"  # unfollowed the Official Account
    DELETED = "deleted"  # the member deleted their data; the row keeps the ledger's history


class CampaignStatus(StrEnum):
    OPEN = "open"
    SETTLED = "settled"
