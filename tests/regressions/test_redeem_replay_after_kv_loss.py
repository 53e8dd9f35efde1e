"""Issue 12: a redemption's `是` was guarded only by state in the KV, so after Redis lost its data
WeChat's replay of the conversation (`兑换 1`, then `是`, same MsgIds) redeemed a second time.

The quote is a database row whose id is the redemption key: a replay gets the same code back, never a
second deduction, a second stock decrement or a second code."""

from __future__ import annotations

from sqlalchemy import select

from handlers import texts
from storage.models import LedgerEntry
from tests.e2e.test_redeem_chat import ALICE, EXPIRES, join, redemptions, reward
from tests.support.fakes import WeChat
from tests.support.invariants import assert_points_consistent
from tests.support.redeem_support import reward_row

ASK, YES = 7_400_000_000_000_001, 7_400_000_000_000_002


async def lose_kv_memory(wechat: WeChat) -> None:
    """What a Redis that lost its data no longer knows: the delivery keys and the flow state."""
    kv = wechat.services.kv
    for msg_id in (ASK, YES):  # the loss is real only if there was something to lose
        assert await kv.get(f"wxbot:dedupe:{{oa:{ALICE}}}:oa:msg:{msg_id}") is not None, msg_id
    for key in (f"wxbot:dedupe:{{oa:{ALICE}}}:oa:msg:{ASK}", f"wxbot:dedupe:{{oa:{ALICE}}}:oa:msg:{YES}",
                f"wxbot:flow:{{oa:{ALICE}}}"):
        await kv.delete(key)
    assert await kv.get(f"wxbot:dedupe:{{oa:{ALICE}}}:oa:msg:{YES}") is None


async def say(wechat: WeChat, text: str, msg_id: int) -> str:
    reply = await wechat.send(wechat.side.text(ALICE, text, msg_id=msg_id))
    assert reply is not None
    return str(reply["Content"])


async def assert_redeemed_once(wechat: WeChat, member: int, reward_id: int) -> str:
    (redemption,) = await redemptions(wechat, member)
    async with wechat.services.db.sessions() as session:
        spent = (await session.scalars(
            select(LedgerEntry.idempotency_key).where(LedgerEntry.member_id == member)
            .where(LedgerEntry.kind == "redeem")
        )).all()
    assert spent == [f"redeem:{redemption.request_key}"]
    assert (await assert_points_consistent(wechat.services.db, [member]))[member] == 50
    assert (await reward_row(wechat.services.db, reward_id)).stock == 4
    return redemption.code


async def test_replayed_conversation_after_kv_loss_redeems_once(wechat: WeChat) -> None:
    member = await join(wechat)
    reward_id = await reward(wechat, name="5元券", cost=50, stock=5)
    assert "需要 50 积分" in await say(wechat, "兑换 1", ASK)
    assert "兑换成功" in await say(wechat, "是", YES)
    code = await assert_redeemed_once(wechat, member, reward_id)

    await lose_kv_memory(wechat)
    replies = [await say(wechat, "兑换 1", ASK), await say(wechat, "是", YES)]

    assert await assert_redeemed_once(wechat, member, reward_id) == code
    already = texts.REDEEM_ALREADY_DONE.format(name="5元券", code=code, expires=EXPIRES)
    assert replies == [already, already]  # the same quote, found by the message that asked for it


async def test_replayed_yes_alone_after_kv_loss_gets_the_same_code(wechat: WeChat) -> None:
    member = await join(wechat)
    reward_id = await reward(wechat, name="5元券", cost=50, stock=5)
    await say(wechat, "兑换 1", ASK)
    await say(wechat, "是", YES)
    code = await assert_redeemed_once(wechat, member, reward_id)

    await lose_kv_memory(wechat)
    replay = await say(wechat, "是", YES)

    assert replay == texts.REDEEM_ALREADY_DONE.format(name="5元券", code=code, expires=EXPIRES)
    assert await assert_redeemed_once(wechat, member, reward_id) == code


async def test_a_yes_long_after_the_redemption_is_not_about_it(wechat: WeChat) -> None:
    """Past the flow's 10 minutes a bare `是` is an ordinary message again."""
    await join(wechat)
    await reward(wechat, name="5元券", cost=50, stock=5)
    await say(wechat, "兑换 1", ASK)
    await say(wechat, "是", YES)
    wechat.services.clock.advance(minutes=11)
    assert await wechat.say(ALICE, "是") == texts.HELP_MEMBER


async def test_a_new_quote_for_the_same_reward_is_a_new_redemption(wechat: WeChat) -> None:
    """Idempotency is per quote, not per reward: asking again (a new message) may redeem again."""
    member = await join(wechat)
    await reward(wechat, name="5元券", cost=50, stock=5)
    for _ in range(2):
        await wechat.say(ALICE, "兑换 1")
        assert "兑换成功" in await wechat.say(ALICE, "是")
    assert len(await redemptions(wechat, member)) == 2
    assert (await assert_points_consistent(wechat.services.db, [member]))[member] == 0
