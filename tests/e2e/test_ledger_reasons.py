"""The Mini Program's history shows each movement's reason in words while the ledger row keeps a code."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import LedgerEntry
from tests.support.mp_support import MiniProgram

MP_USER = "oMPreason00000000000000001"
PHONE = "13700002222"


async def test_history_renders_coded_reasons_and_shows_free_text_as_it_is(mp: MiniProgram) -> None:
    token = await mp.member_for(MP_USER, None, phone=PHONE)
    assert (await mp.post(token, "/checkin")).status_code == 200
    member_id = (await mp.get(token, "/me")).json()["member_id"]
    async with mp.services.db.unit_of_work() as session:  # an operator's adjustment, its reason typed by hand
        await mp.services.ledger.earn(session, member_id, 30, key="adjust:reason-1", kind="adjust",
                                      now=mp.clock.now(), reason="门店活动补偿")
    async with mp.services.db.sessions() as session:
        rows = (await session.scalars(select(LedgerEntry).where(LedgerEntry.member_id == member_id))).all()
    stored = {row.kind: row.reason for row in rows}
    assert stored == {"signup": "#signup", "checkin": "#checkin", "adjust": "门店活动补偿"}
    items = (await mp.get(token, "/history")).json()["items"]
    assert [(i["kind"], i["reason"]) for i in items] == [
        ("adjust", "门店活动补偿"), ("checkin", "每日签到"), ("signup", "注册会员奖励"),
    ]
