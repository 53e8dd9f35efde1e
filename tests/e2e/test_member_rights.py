"""Member rights in the chat, end to end through signed XML: marketing opt-out and opt-in, what we hold
(`我的数据`, phone masked), and deletion with confirmation (issue 3 item 9)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from flows.store import FlowStore
from handlers import texts
from storage import members
from storage.models import Member
from tests.support.fakes import WeChat
from tests.support.member_support import (
    PHONE,
    assert_books_balance,
    entries,
    entry_by_key,
    joined,
    member_by_id,
    member_by_openid,
    sign_up,
)

ALICE = "oRIGHTS_ALICE_000000000001"
VISITOR = "oRIGHTS_VISITOR_0000000002"
MASKED = "138****8000"


async def opted_out(wechat: WeChat, openid: str) -> bool:
    member = await member_by_openid(wechat, openid)
    assert member is not None
    return member.marketing_opt_out


def mydata(member: Member, *, birthday: str, balance: int, entries: int, marketing: str) -> str:
    return texts.MYDATA.format(
        phone=MASKED, birthday=birthday, joined="2026-11-22", consent="2026-01", tier="普通",
        balance=balance, entries=entries, marketing=marketing, code=member.referral_code,
    )


# --- opt-out ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("stop", "start"), [("退订", "订阅"), ("TD", "start"), ("td", "START"), (" ｓｔｏｐ ", " 订阅 ")]
)
async def test_opt_out_and_back_in(wechat: WeChat, stop: str, start: str) -> None:
    await sign_up(wechat, ALICE)
    assert not await opted_out(wechat, ALICE)
    assert await wechat.say(ALICE, stop) == texts.OPTED_OUT
    assert await opted_out(wechat, ALICE)
    assert texts.MARKETING_OFF in await wechat.say(ALICE, "我的数据")
    assert await wechat.say(ALICE, stop) == texts.OPTED_OUT  # saying it twice is harmless
    assert await opted_out(wechat, ALICE)
    assert await wechat.say(ALICE, start) == texts.OPTED_IN
    assert not await opted_out(wechat, ALICE)
    assert texts.MARKETING_ON in await wechat.say(ALICE, "mydata")
    member = await joined(wechat, ALICE)
    assert (member.status, member.balance) == (members.ACTIVE, 100)


async def test_visitor_can_opt_out_too(wechat: WeChat) -> None:
    assert await wechat.say(VISITOR, "stop") == texts.OPTED_OUT
    assert await opted_out(wechat, VISITOR)
    assert await wechat.say(VISITOR, "订阅") == texts.OPTED_IN
    assert not await opted_out(wechat, VISITOR)


# --- my data --------------------------------------------------------------------------------------

@pytest.mark.parametrize("word", ["我的数据", "mydata", "MyData", " my   data ", "ＭＹＤＡＴＡ"])
async def test_my_data_masks_the_phone(wechat: WeChat, word: str) -> None:
    await sign_up(wechat, ALICE, birthday="1990-05-20")
    member = await joined(wechat, ALICE)
    reply = await wechat.say(ALICE, word)
    assert reply == mydata(member, birthday="1990-05-20", balance=100, entries=1, marketing=texts.MARKETING_ON)
    assert MASKED in reply
    assert PHONE not in reply
    assert "0013" not in reply


@pytest.mark.parametrize(("typed", "shown"), [("05-20", "05-20"), ("跳过", texts.NOT_SET)])
async def test_my_data_birthday_without_year_or_skipped(wechat: WeChat, typed: str, shown: str) -> None:
    await sign_up(wechat, ALICE, birthday=typed)
    await wechat.say(ALICE, "签到")
    member = await joined(wechat, ALICE)
    reply = await wechat.say(ALICE, "我的数据")
    assert reply == mydata(member, birthday=shown, balance=105, entries=2, marketing=texts.MARKETING_ON)
    assert PHONE not in reply


async def test_my_data_in_safe_mode_masks_the_phone_too(wechat: WeChat) -> None:
    await sign_up(wechat, ALICE, encrypted=True)
    response = await wechat.post(wechat.side.text(ALICE, "我的数据"), encrypted=True)
    opened = wechat.side.open_reply(response.content)
    assert opened is not None
    assert MASKED in opened["Content"]
    assert PHONE not in opened["Content"]
    assert PHONE.encode() not in response.content


async def test_visitor_my_data(wechat: WeChat) -> None:
    assert await wechat.say(VISITOR, "我的数据") == texts.MYDATA_VISITOR


# --- deletion -------------------------------------------------------------------------------------

async def test_delete_asks_first_and_anything_else_reprompts(wechat: WeChat) -> None:
    await sign_up(wechat, ALICE)
    await wechat.say(ALICE, "签到")
    before = await joined(wechat, ALICE)
    confirm = texts.DELETE_CONFIRM.format(balance=105)
    assert await wechat.say(ALICE, "注销") == confirm
    for answer in ("确认", "是", "yes", "注销", "删除", "确认 注销吧", "签到", "我的数据"):
        assert await wechat.say(ALICE, answer) == texts.DELETE_NEED_CONFIRM, answer
    state = await FlowStore(wechat.services.kv).load("oa", ALICE)
    assert state is not None
    assert (state.flow, state.step) == ("delete_account", "confirm")
    ttl = await wechat.services.kv.ttl(FlowStore.key("oa", ALICE))
    assert ttl is not None
    assert 290 <= ttl <= 300  # five minutes of silence end it
    after = await joined(wechat, ALICE)
    assert (after.id, after.status, after.phone_enc, after.balance) == (
        before.id, members.ACTIVE, before.phone_enc, 105,
    )


@pytest.mark.parametrize("word", ["取消", "cancel", "CANCEL"])
async def test_cancel_keeps_everything(wechat: WeChat, word: str) -> None:
    await sign_up(wechat, ALICE)
    before = await joined(wechat, ALICE)
    assert await wechat.say(ALICE, "delete") == texts.DELETE_CONFIRM.format(balance=100)
    assert await wechat.say(ALICE, word) == texts.CANCELLED
    after = await joined(wechat, ALICE)
    assert (after.id, after.status, after.phone_hash, after.birthday_month, after.referral_code) == (
        before.id, members.ACTIVE, before.phone_hash, 5, before.referral_code,
    )
    assert await wechat.say(ALICE, "签到") == texts.CHECKIN_DONE.format(points=5, bonus="", streak=1, balance=105)
    assert await wechat.say(ALICE, "确认注销") == texts.HELP_MEMBER  # out of the flow, the words do nothing


@pytest.mark.parametrize(
    ("start", "confirm"), [("注销", "确认注销"), ("DELETE", " 确认注销 "), ("注销会员", "confirm")]
)
async def test_confirmed_deletion_forgets_the_person_and_keeps_the_ledger(
    wechat: WeChat, start: str, confirm: str
) -> None:
    await sign_up(wechat, ALICE)
    await wechat.say(ALICE, "签到")
    member = await joined(wechat, ALICE)
    async with wechat.services.db.unit_of_work() as session:  # as if the Mini Program had linked it
        await session.execute(update(Member).where(Member.id == member.id).values(unionid="uRIGHTS_ALICE"))
    ledger_before = [(e.id, e.delta, e.kind) for e in await entries(wechat, member.id)]  # type: ignore[arg-type]

    assert await wechat.say(ALICE, start) == texts.DELETE_CONFIRM.format(balance=105)
    assert await wechat.say(ALICE, confirm) == texts.DELETED

    gone = await member_by_id(wechat, member.id)  # type: ignore[arg-type]
    assert gone.status == members.DELETED
    assert (gone.phone_enc, gone.phone_hash) == (None, None)
    assert (gone.birthday_month, gone.birthday_day, gone.birthday_year) == (None, None, None)
    assert gone.unionid is None
    assert gone.openid is None
    assert gone.referral_code is None
    assert gone.marketing_opt_out
    assert [(e.id, e.delta, e.kind) for e in await entries(wechat, member.id)] == ledger_before  # type: ignore[arg-type]
    assert await assert_books_balance(wechat, member.id) == 105  # type: ignore[arg-type]
    assert await FlowStore(wechat.services.kv).load("oa", ALICE) is None

    # The same WeChat user is now a stranger.
    assert await wechat.say(ALICE, "签到") == texts.JOIN_FIRST.format(bonus=100)
    assert await wechat.say(ALICE, "我的数据") == texts.MYDATA_VISITOR
    assert await wechat.say(ALICE, "注销") == texts.MYDATA_VISITOR
    visitor = await member_by_openid(wechat, ALICE)
    assert visitor is not None
    assert visitor.id != member.id
    assert visitor.joined_at is None


async def test_signing_up_again_after_deletion_starts_fresh(wechat: WeChat) -> None:
    await sign_up(wechat, ALICE)
    old = await joined(wechat, ALICE)
    await wechat.say(ALICE, "签到")
    await wechat.say(ALICE, "注销")
    assert await wechat.say(ALICE, "确认注销") == texts.DELETED

    done = await sign_up(wechat, ALICE, phone=PHONE, birthday="跳过")  # the same phone is free again
    assert "已赠送 100 积分，当前积分 100" in done
    new = await joined(wechat, ALICE)
    assert new.id != old.id
    assert new.referral_code != old.referral_code
    assert new.birthday_month is None
    assert new.phone_hash == old.phone_hash
    assert await entry_by_key(wechat, f"signup:{new.id}") is not None
    assert await assert_books_balance(wechat, new.id) == 100  # type: ignore[arg-type]
    assert await assert_books_balance(wechat, old.id) == 105  # type: ignore[arg-type]
    assert (await member_by_id(wechat, old.id)).status == members.DELETED  # type: ignore[arg-type]
    # Today's check-in of the old membership does not block the new one.
    assert await wechat.say(ALICE, "签到") == texts.CHECKIN_DONE.format(points=5, bonus="", streak=1, balance=105)
    assert MASKED in await wechat.say(ALICE, "我的数据")


async def test_deleted_members_code_refers_nobody(wechat: WeChat) -> None:
    await sign_up(wechat, ALICE)
    code = (await joined(wechat, ALICE)).referral_code
    await wechat.say(ALICE, "注销")
    await wechat.say(ALICE, "确认注销")
    await wechat.event(VISITOR, "SCAN", f"ref_{code}")
    visitor = await member_by_openid(wechat, VISITOR)
    assert visitor is not None
    assert visitor.referrer_id is None


async def test_a_deleted_members_phone_is_free_for_someone_else(wechat: WeChat) -> None:
    await sign_up(wechat, ALICE, phone=PHONE)
    await wechat.say(ALICE, "注销")
    assert await wechat.say(ALICE, "确认注销") == texts.DELETED
    await sign_up(wechat, VISITOR, phone=PHONE)
    newcomer = await joined(wechat, VISITOR)
    assert newcomer.phone_enc is not None
    assert wechat.services.pii.decrypt(newcomer.phone_enc) == PHONE
