"""A member's first days, end to end through signed XML: sign-up, check-in, balance, history, rights."""

from __future__ import annotations

from sqlalchemy import func, select

from handlers import texts
from storage.models import LedgerEntry
from tests.support.fakes import WeChat
from tests.support.member_support import member_by_openid, sign_up

ALICE = "oALICE000000000000000000001"


async def ledger_sum(wechat: WeChat, member_id: int) -> int:
    async with wechat.services.db.sessions() as session:
        return int(await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.delta), 0)).where(LedgerEntry.member_id == member_id)
        ) or 0)


async def test_sign_up_then_check_in_balance_and_history(wechat: WeChat) -> None:
    done = await sign_up(wechat, ALICE)
    assert "注册成功" in done
    assert "已赠送 100 积分" in done
    member = await member_by_openid(wechat, ALICE)
    assert member is not None
    assert member.joined_at is not None
    assert member.balance == 100
    assert member.phone_enc
    assert "13800138000" not in member.phone_enc
    assert (member.birthday_month, member.birthday_day, member.birthday_year) == (5, 20, 1990)

    checkin = await wechat.say(ALICE, "签到")
    assert "签到成功！+5 积分" in checkin
    assert "当前积分 105" in checkin
    assert "今天已经签过到啦" in await wechat.say(ALICE, "签到")

    balance = await wechat.say(ALICE, "积分")
    assert "您的积分：105" in balance
    assert "普通" in balance
    history = await wechat.say(ALICE, "明细")
    assert "签到 +5" in history
    assert "注册奖励 +100" in history
    assert await ledger_sum(wechat, member.id) == 105  # type: ignore[arg-type]


async def test_bad_answers_reprompt_and_cancel_leaves_nothing(wechat: WeChat) -> None:
    await wechat.say(ALICE, "注册")
    assert await wechat.say(ALICE, "12345") == texts.SIGNUP_BAD_PHONE
    assert "生日" in await wechat.say(ALICE, "138 0013 8000")
    assert await wechat.say(ALICE, "昨天") == texts.SIGNUP_BAD_BIRTHDAY
    assert "隐私说明" in await wechat.say(ALICE, "跳过")
    assert await wechat.say(ALICE, "好的") == texts.SIGNUP_NEED_CONSENT
    assert await wechat.say(ALICE, "取消") == texts.CANCELLED
    member = await member_by_openid(wechat, ALICE)
    assert member is not None
    assert member.joined_at is None
    assert member.balance == 0
    assert "还不是会员" in await wechat.say(ALICE, "签到")
