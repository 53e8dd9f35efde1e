"""Issue 12: two TEMPLATESENDJOBFINISH reports for one member in the same second are two deliveries.

WeChat tells them apart by `MsgID` only (wechat-protocol.md §2.3); a key without it took the second
report for a retry of the first, so a failed delivery stayed recorded as sent."""

from __future__ import annotations

from storage import outbox
from tests.support.factories import add_member, local
from tests.support.fakes import WeChat
from tests.support.push_support import push_world

NOW = local(2026, 5, 20, 10, 0)
OPENID = "oREPORT000000000000000000001"


async def test_same_second_reports_for_one_member_are_both_recorded(urls: tuple[str, str], wechat: WeChat) -> None:
    async with push_world(urls, at=NOW, wechat_template_ids={"birthday": "TPL_birthday_0001"}) as world:
        member = await add_member(world.db, NOW, openid=OPENID)
        for key in ("birthday:fine", "birthday:blocked"):
            await world.queue(key, member_id=member, openid=OPENID, kind="birthday", category=outbox.MARKETING,
                              payload={"params": {"points": 200, "balance": 300}})
        await world.drain()
        fine, blocked = await world.row("birthday:fine"), await world.row("birthday:blocked")
        assert fine.wechat_msgid
        assert blocked.wechat_msgid
        assert fine.wechat_msgid != blocked.wechat_msgid

        # Same sender, same CreateTime (the clock is frozen): only MsgID differs.
        assert await wechat.event(OPENID, "TEMPLATESENDJOBFINISH", MsgID=fine.wechat_msgid, Status="success") is None
        assert await wechat.event(OPENID, "TEMPLATESENDJOBFINISH", MsgID=blocked.wechat_msgid,
                                  Status="failed:user block") is None

        assert (await world.row("birthday:fine")).status == "sent"
        row = await world.row("birthday:blocked")
        assert row.status == "undeliverable"
        assert "user block" in (row.last_error or "")


async def test_a_retried_report_is_still_one_delivery(wechat: WeChat) -> None:
    """The same report twice (WeChat's retry) is deduplicated: the handler runs once."""
    report = wechat.side.event(OPENID, "TEMPLATESENDJOBFINISH", MsgID="3100000000000000042", Status="success")
    first, retry = await wechat.post(report), await wechat.post(report)
    assert (first.status_code, first.text) == (200, "success")
    assert (retry.status_code, retry.text) == (200, "success")
    key = f"wxbot:dedupe:{{oa:{OPENID}}}:oa:evt:" + ":".join(
        (OPENID, str(report["CreateTime"]), "TEMPLATESENDJOBFINISH", "", "3100000000000000042"))
    assert await wechat.services.kv.get(key) is not None
