"""Regression: Ledger.take_back accepted a negative amount, which credited points (an entry with a
positive delta) and then failed deep inside on a lot CHECK constraint or a RuntimeError. It now
refuses like earn and spend do, before touching anything."""

from __future__ import annotations

import pytest

from storage.db import Database
from storage.ledger import Ledger
from tests.support.factories import add_member, entry_by_key, local
from tests.support.invariants import consistent_points


async def test_negative_take_back_is_refused_up_front(db: Database, ledger: Ledger) -> None:
    now = local(2026, 11, 22, 10)
    member_id = await add_member(db, now)
    async with db.unit_of_work() as session:
        await ledger.earn(session, member_id, 100, key="order:1", kind="purchase", now=now)
    with pytest.raises(ValueError, match="positive"):
        async with db.unit_of_work() as session:
            await ledger.take_back(session, member_id, -10, key="refund:neg", kind="refund", now=now)
    assert await entry_by_key(db, "refund:neg") is None
    assert (await consistent_points(db, member_id)).balance == 100
