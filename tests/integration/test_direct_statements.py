"""The hot path's statements (storage.direct.fetch) go straight to the driver connection (asyncpg's, or
aiosqlite's) under the session's transaction, so they must keep every promise the session keeps: they commit
and roll back with it, they see and are seen by the ORM's work in the same transaction, and the rows they
return become the session's own objects."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from storage import members
from storage.checkins import check_in
from storage.db import Database
from storage.ledger import Ledger
from storage.models import Checkin, LedgerEntry, Member
from tests.support.factories import add_member, local
from tests.support.invariants import consistent_points

NOW = local(2026, 5, 4, 9)


async def _count(db: Database, model: type, **where: object) -> int:
    async with db.sessions() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int(await session.scalar(query) or 0)


async def test_a_failed_transaction_takes_back_the_direct_writes(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, NOW)
    credited: list[int] = []

    async def check_in_then_fail() -> None:
        async with db.unit_of_work() as session:
            result = await check_in(session, ledger, member_id, NOW)
            credited.append(result.balance)
            raise RuntimeError("after the check-in")

    with pytest.raises(RuntimeError, match="after the check-in"):
        await check_in_then_fail()
    assert credited == [5]  # it was credited inside the transaction, then taken back with it
    assert await _count(db, Checkin, member_id=member_id) == 0
    assert await _count(db, LedgerEntry, member_id=member_id) == 0
    assert (await consistent_points(db, member_id)).balance == 0

    async with db.unit_of_work() as session:  # and the same check-in, committed, stays
        await check_in(session, ledger, member_id, NOW)
    assert await _count(db, Checkin, member_id=member_id) == 1
    assert (await consistent_points(db, member_id)).balance == 5


async def test_direct_statements_and_the_orm_see_each_other_in_one_transaction(db: Database, ledger: Ledger) -> None:
    member_id = await add_member(db, NOW)
    async with db.unit_of_work() as session:
        member = await session.get(Member, member_id)
        assert member is not None
        member.marketing_opt_out = True  # pending in the session: flushed before the next direct statement
        touched, created = await members.touch_member(session, member.openid, NOW + timedelta(minutes=5))  # type: ignore[arg-type]
        assert touched is member
        assert not created
        assert member.marketing_opt_out is True
        assert member.last_interaction_at == NOW + timedelta(minutes=5)
        await check_in(session, ledger, member_id, NOW)
        entries = await session.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.member_id == member_id
        ))
        assert entries == 1  # the ORM reads what the direct insert wrote
        assert member.balance == 5
        assert member.checkin_streak == 1
    async with db.sessions() as session:
        stored = await session.get(Member, member_id)
        assert stored is not None
        assert (stored.marketing_opt_out, stored.balance, stored.checkin_streak) == (True, 5, 1)


async def test_a_row_created_by_the_touch_is_a_session_object_that_saves_changes(db: Database) -> None:
    async with db.unit_of_work() as session:
        member, created = await members.touch_member(session, "oDIRECTtouchNEWvisitorAAAAAA", NOW)
        assert created
        assert member is not None
        assert member.id is not None
        assert (member.tier, member.status, member.balance) == ("普通", "active", 0)  # the columns' defaults
        assert member in session
        member.birthday_month, member.birthday_day = 2, 29
    async with db.sessions() as session:
        stored = await members.by_openid(session, "oDIRECTtouchNEWvisitorAAAAAA")
        assert stored is not None
        assert (stored.birthday_month, stored.birthday_day) == (2, 29)
        assert stored.created_at == NOW


async def test_the_check_in_bypasses_sqlalchemy_execution(db: Database, ledger: Ledger) -> None:
    """A guard of the direct path's speed, not of behaviour: none of a check-in's statements goes through
    SQLAlchemy's cursor (on SQLite only the BEGIN IMMEDIATE that takes the write lock does). A silent
    fall-back would show here first."""
    openid = "oDIRECTcheckinGUARDaaaaaaaaa"
    member_id = await add_member(db, NOW, openid=openid)
    async with db.unit_of_work() as session:  # yesterday's check-in: the row now knows its lots' expiry
        await check_in(session, ledger, member_id, NOW - timedelta(days=1))
    seen: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    async with db.unit_of_work() as session:
        member, _ = await members.touch_member(session, openid, NOW + timedelta(hours=1))
        assert member is not None
        ledger.hold(session, member)
        result = await check_in(session, ledger, member_id, NOW + timedelta(hours=1))
    assert result.points == 5
    assert result.streak == 2
    assert seen == (["BEGIN IMMEDIATE"] if db.is_sqlite else [])


async def test_a_savepoint_rolled_back_takes_back_the_direct_writes_made_in_it(db: Database) -> None:
    """A direct statement inside a savepoint runs inside it: its rollback takes the write back, and the
    transaction around it goes on and commits what it wrote before."""

    async def touch_inside_then_fail(session: object) -> None:
        async with session.begin_nested():  # type: ignore[attr-defined]
            await members.touch_member(session, "oDIRECTinsideSAVEPOINTaaaaaa", NOW)  # type: ignore[arg-type]
            raise RuntimeError("inside the savepoint")

    async with db.unit_of_work() as session:
        await members.touch_member(session, "oDIRECTbeforeSAVEPOINTaaaaaa", NOW)  # the driver, found and kept
        with pytest.raises(RuntimeError, match="inside the savepoint"):
            await touch_inside_then_fail(session)
        await members.touch_member(session, "oDIRECTafterSAVEPOINTaaaaaaa", NOW)
    async with db.sessions() as session:
        assert await members.by_openid(session, "oDIRECTbeforeSAVEPOINTaaaaaa") is not None
        assert await members.by_openid(session, "oDIRECTinsideSAVEPOINTaaaaaa") is None
        assert await members.by_openid(session, "oDIRECTafterSAVEPOINTaaaaaaa") is not None


async def test_the_senders_lookup_outside_a_unit_of_work_is_one_statement_without_begin_and_commit(
    db: Database,
) -> None:
    """Database.reads (the chat's lookups of the sender when nothing is to be written): on PostgreSQL the
    direct statement runs in autocommit, so BEGIN and COMMIT cost no round trips; it finds what a unit of
    work committed, and a unit of work still begins its transaction as before."""
    member_id = await add_member(db, NOW, openid="oREADSautocommit000000000001")
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with db.reads() as session:
            found = await members.by_openid(session, "oREADSautocommit000000000001", "oa")
            driver = (await (await session.connection()).get_raw_connection()).driver_connection
            if db.dialect == "postgresql":
                assert not driver.is_in_transaction()
        assert found is not None
        assert found.id == member_id
        async with db.unit_of_work() as session:
            await members.by_openid(session, "oREADSautocommit000000000001", "oa")
            driver = (await (await session.connection()).get_raw_connection()).driver_connection
            if db.dialect == "postgresql":
                assert driver.is_in_transaction()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    # both lookups went to the driver directly (SQLite's sessions open with BEGIN IMMEDIATE, storage/db.py)
    assert [s for s in statements if s != "BEGIN IMMEDIATE"] == []
