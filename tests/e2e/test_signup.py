"""The sign-up flow end to end through signed XML: entries, every bad answer, cancel, expiry, safe
mode, existing members and referrals by QR scene (PRODUCT.md "Sign-up flow", issue 3 item 4)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from flows.store import FlowStore
from handlers import texts
from storage import members
from storage.clock import FrozenClock
from storage.codes import UNAMBIGUOUS
from storage.members import Signup
from tests.support.campaign_support import flow_state
from tests.support.factories import TZ
from tests.support.fakes import WeChat
from tests.support.member_support import (
    PHONE,
    assert_books_balance,
    consent_prompt,
    entries,
    entry_by_key,
    joined,
    member_by_id,
    member_by_openid,
    sign_up,
)

ALICE = "oSIGNUP_ALICE_0000000000001"
BOB = "oSIGNUP_BOB_00000000000002"
ASK_BIRTHDAY = texts.SIGNUP_ASK_BIRTHDAY.format(points=200)


async def assert_not_member(wechat: WeChat, openid: str) -> None:
    member = await member_by_openid(wechat, openid)
    if member is None:
        return
    assert member.joined_at is None
    assert member.phone_enc is None
    assert member.phone_hash is None
    assert member.balance == 0
    assert await entries(wechat, member.id) == []  # type: ignore[arg-type]


async def at_step(wechat: WeChat, openid: str, step: str) -> dict[str, object]:
    state = await flow_state(wechat, openid)
    assert state is not None
    assert (state.flow, state.step) == ("signup", step)
    return state.data


# --- entries ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "entry", ["注册", "加入会员", "join", "JOIN", "Join", "ＪＯＩＮ", "ｊＯｉＮ", " 注册 ", "\t加入会员  ", "  join "]
)
async def test_each_keyword_variant_signs_up_with_bonus(wechat: WeChat, entry: str) -> None:
    assert await wechat.say(ALICE, entry) == texts.SIGNUP_ASK_PHONE
    assert await wechat.say(ALICE, PHONE) == ASK_BIRTHDAY
    assert await wechat.say(ALICE, "1990-05-20") == consent_prompt()
    done = await wechat.say(ALICE, "同意")

    member = await joined(wechat, ALICE)
    assert done == texts.SIGNUP_DONE.format(
        brand=texts.BRAND, bonus=100, balance=100, code=member.referral_code, referral=50
    )
    assert member.status == members.ACTIVE
    assert member.consent_version == "2026-01"
    assert member.consent_at is not None
    assert member.phone_enc is not None
    assert PHONE not in member.phone_enc
    assert wechat.services.pii.decrypt(member.phone_enc) == PHONE
    assert member.referral_code is not None
    assert set(member.referral_code) <= set(UNAMBIGUOUS)
    bonus = await entry_by_key(wechat, f"signup:{member.id}")
    assert bonus is not None
    assert (bonus.kind, bonus.delta) == ("signup", 100)
    assert await assert_books_balance(wechat, member.id) == 100  # type: ignore[arg-type]
    assert await flow_state(wechat, ALICE) is None


async def test_menu_click_signup_starts_the_flow(wechat: WeChat) -> None:
    reply = await wechat.event(ALICE, "CLICK", "SIGNUP")
    assert reply is not None
    assert reply["Content"] == texts.SIGNUP_ASK_PHONE
    await at_step(wechat, ALICE, "phone")
    assert await wechat.say(ALICE, PHONE) == ASK_BIRTHDAY
    assert await wechat.say(ALICE, "跳过") == consent_prompt()
    assert (await wechat.say(ALICE, "同意")).startswith("注册成功")
    assert (await joined(wechat, ALICE)).balance == 100


@pytest.mark.parametrize("entry", ["注册", "加入会员", "JOIN"])
async def test_existing_member_is_told_so(wechat: WeChat, entry: str) -> None:
    await sign_up(wechat, ALICE)
    before = await joined(wechat, ALICE)
    assert await wechat.say(ALICE, entry) == texts.already_member
    click = await wechat.event(ALICE, "CLICK", "SIGNUP")
    assert click is not None
    assert click["Content"] == texts.already_member
    assert await flow_state(wechat, ALICE) is None
    after = await joined(wechat, ALICE)
    assert (after.id, after.balance, after.joined_at) == (before.id, 100, before.joined_at)
    assert len(await entries(wechat, after.id)) == 1  # type: ignore[arg-type]


# --- the phone step ---------------------------------------------------------------------------

BAD_PHONES = [
    "12345", "1380013800", "138001380001", "12800138000", "10800138000", "23800138000",
    "abcdefghijk", "138 0013 800O", "+1 13800138000", "手机13800138000", "13800138000x",
    "签到", "1990-05-20",
]


async def test_every_bad_phone_reprompts_and_changes_nothing(wechat: WeChat) -> None:
    assert await wechat.say(ALICE, "注册") == texts.SIGNUP_ASK_PHONE
    for bad in BAD_PHONES:
        assert await wechat.say(ALICE, bad) == texts.SIGNUP_BAD_PHONE, bad
        assert "phone" not in await at_step(wechat, ALICE, "phone")
    await assert_not_member(wechat, ALICE)
    assert await wechat.say(ALICE, PHONE) == ASK_BIRTHDAY
    await at_step(wechat, ALICE, "birthday")


@pytest.mark.parametrize(
    "typed", ["138 0013 8000", "138-0013-8000", "+86 138 0013 8000", "0086 13800138000", "１３８００１３８０００"]
)
async def test_phone_forms_are_normalised_and_stored_encrypted(wechat: WeChat, typed: str) -> None:
    assert await wechat.say(ALICE, "注册") == texts.SIGNUP_ASK_PHONE
    assert await wechat.say(ALICE, typed) == ASK_BIRTHDAY
    data = await at_step(wechat, ALICE, "birthday")
    # The flow state sits in the KV for ten minutes: the phone is encrypted there too.
    raw = await wechat.services.kv.get(FlowStore.key("oa", ALICE))
    assert raw is not None
    assert PHONE not in raw
    assert wechat.services.pii.decrypt(str(data["phone"])) == PHONE
    assert await wechat.say(ALICE, "跳过") == consent_prompt()
    assert (await wechat.say(ALICE, "同意")).startswith("注册成功")
    member = await joined(wechat, ALICE)
    assert member.phone_enc is not None
    assert wechat.services.pii.decrypt(member.phone_enc) == PHONE


async def test_phone_bound_to_another_member_is_refused(wechat: WeChat) -> None:
    await sign_up(wechat, BOB, phone=PHONE)
    assert await wechat.say(ALICE, "注册") == texts.SIGNUP_ASK_PHONE
    for form in (PHONE, "138-0013-8000", "+86 13800138000"):
        assert await wechat.say(ALICE, form) == texts.SIGNUP_PHONE_TAKEN
        assert "phone" not in await at_step(wechat, ALICE, "phone")
    await assert_not_member(wechat, ALICE)
    assert await wechat.say(ALICE, "13900139000") == ASK_BIRTHDAY
    assert await wechat.say(ALICE, "跳过") == consent_prompt()
    assert (await wechat.say(ALICE, "同意")).startswith("注册成功")
    alice, bob = await joined(wechat, ALICE), await joined(wechat, BOB)
    assert alice.id != bob.id
    assert alice.phone_hash != bob.phone_hash


async def test_phone_taken_while_the_flow_was_open_sends_back_to_the_phone_step(wechat: WeChat) -> None:
    assert await wechat.say(ALICE, "注册") == texts.SIGNUP_ASK_PHONE
    assert await wechat.say(ALICE, PHONE) == ASK_BIRTHDAY
    assert await wechat.say(ALICE, "跳过") == consent_prompt()
    await sign_up(wechat, BOB, phone=PHONE)  # Bob is quicker with the same number
    assert await wechat.say(ALICE, "同意") == texts.SIGNUP_PHONE_TAKEN
    await at_step(wechat, ALICE, "phone")
    await assert_not_member(wechat, ALICE)
    assert await wechat.say(ALICE, "13900139000") == ASK_BIRTHDAY  # another phone: on with the sign-up
    assert (await joined(wechat, BOB)).balance == 100


# --- the birthday step ------------------------------------------------------------------------

BAD_BIRTHDAYS = [
    "2023-02-29",  # not a leap year
    "2026-11-23",  # tomorrow (the clock says 2026-11-22 local)
    "2031-01-01", "1899-12-31", "13-01", "02-30", "04-31", "00-10", "5月32日", "0520", "1990-05-20-01",
    "昨天", "明年", "1990/13/01", "生日5月20日",
]


async def test_every_bad_birthday_reprompts_and_changes_nothing(wechat: WeChat) -> None:
    assert await wechat.say(ALICE, "注册") == texts.SIGNUP_ASK_PHONE
    assert await wechat.say(ALICE, PHONE) == ASK_BIRTHDAY
    for bad in BAD_BIRTHDAYS:
        assert await wechat.say(ALICE, bad) == texts.SIGNUP_BAD_BIRTHDAY, bad
        assert "birthday" not in await at_step(wechat, ALICE, "birthday")
    await assert_not_member(wechat, ALICE)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("1990-05-20", (5, 20, 1990)),
        ("05-20", (5, 20, None)),
        ("5-20", (5, 20, None)),
        ("5月20日", (5, 20, None)),
        ("1990年5月20日", (5, 20, 1990)),
        ("12/31", (12, 31, None)),
        ("02-29", (2, 29, None)),
        ("2月29日", (2, 29, None)),
        ("2000-02-29", (2, 29, 2000)),
        ("2026-11-22", (11, 22, 2026)),  # today is not the future
        ("１９９０－０５－２０", (5, 20, 1990)),
        ("跳过", (None, None, None)),
        ("SKIP", (None, None, None)),
    ],
)
async def test_birthday_forms(wechat: WeChat, typed: str, stored: tuple[int | None, ...]) -> None:
    assert await wechat.say(ALICE, "注册") == texts.SIGNUP_ASK_PHONE
    assert await wechat.say(ALICE, PHONE) == ASK_BIRTHDAY
    assert await wechat.say(ALICE, typed) == consent_prompt()
    await at_step(wechat, ALICE, "consent")
    assert (await wechat.say(ALICE, "同意")).startswith("注册成功")
    member = await joined(wechat, ALICE)
    assert (member.birthday_month, member.birthday_day, member.birthday_year) == stored


# --- the consent step -------------------------------------------------------------------------

async def test_anything_but_agree_at_consent_reprompts(wechat: WeChat) -> None:
    assert await wechat.say(ALICE, "注册") == texts.SIGNUP_ASK_PHONE
    assert await wechat.say(ALICE, PHONE) == ASK_BIRTHDAY
    assert await wechat.say(ALICE, "5月20日") == consent_prompt()
    for answer in ("好的", "ok", "不同意", "同意吗", "no", "签到", "13800138000", "1990-05-20"):
        assert await wechat.say(ALICE, answer) == texts.SIGNUP_NEED_CONSENT, answer
        await at_step(wechat, ALICE, "consent")
    await assert_not_member(wechat, ALICE)
    assert (await wechat.say(ALICE, " 同意 ")).startswith("注册成功")
    assert (await joined(wechat, ALICE)).balance == 100


# --- leaving the flow -------------------------------------------------------------------------

STEPS_BEFORE = {"phone": [], "birthday": [PHONE], "consent": [PHONE, "跳过"]}


@pytest.mark.parametrize("step", ["phone", "birthday", "consent"])
@pytest.mark.parametrize("word", ["取消", "cancel", " CANCEL ", "ｃａｎｃｅｌ"])
async def test_cancel_at_each_step_leaves_nothing(wechat: WeChat, step: str, word: str) -> None:
    assert await wechat.say(ALICE, "注册") == texts.SIGNUP_ASK_PHONE
    for answer in STEPS_BEFORE[step]:
        await wechat.say(ALICE, answer)
    await at_step(wechat, ALICE, step)
    assert await wechat.say(ALICE, word) == texts.CANCELLED
    assert await flow_state(wechat, ALICE) is None
    await assert_not_member(wechat, ALICE)
    # Out of the flow: the next answer is an ordinary message, and there is nothing left to cancel.
    assert await wechat.say(ALICE, "同意") == texts.HELP_VISITOR
    assert await wechat.say(ALICE, "取消") == texts.NOTHING_TO_CANCEL + "\n" + texts.HELP_VISITOR
    assert await wechat.say(ALICE, "签到") == texts.JOIN_FIRST.format(bonus=100)


async def test_flow_expires_after_ten_minutes_of_silence(wechat: WeChat, clock: FrozenClock) -> None:
    """The flow's state lives only in the KV under wxbot:flow:{oa:<openid>} with a sliding 600 s TTL;
    nothing in it reads the FrozenClock. memory:// is fakeredis, which expires keys by real time,
    so the test (1) reads the TTL after each answer (≈600 s, and reset by every answer) and
    (2) lets the key really lapse by shortening its TTL to 50 ms and sleeping, while the FrozenClock
    is moved past the ten minutes so the webhook sees a later message."""
    kv = wechat.services.kv
    key = f"wxbot:flow:{{oa:{ALICE}}}"
    assert await wechat.say(ALICE, "注册") == texts.SIGNUP_ASK_PHONE
    ttl = await kv.ttl(key)
    assert ttl is not None
    assert 590 <= ttl <= 600

    await kv.expire(key, 100)  # as if 500 s of silence had passed
    assert await wechat.say(ALICE, "123") == texts.SIGNUP_BAD_PHONE  # a re-prompt slides it too
    ttl = await kv.ttl(key)
    assert ttl is not None
    assert 590 <= ttl <= 600
    await kv.expire(key, 100)
    assert await wechat.say(ALICE, PHONE) == ASK_BIRTHDAY
    ttl = await kv.ttl(key)
    assert ttl is not None
    assert 590 <= ttl <= 600

    clock.advance(minutes=10, seconds=1)
    await kv.expire(key, 0.05)
    await asyncio.sleep(0.2)
    assert await kv.get(key) is None
    # The birthday now is just an unknown message: the help menu, and no member.
    assert await wechat.say(ALICE, "1990-05-20") == texts.HELP_VISITOR
    assert await wechat.say(ALICE, "同意") == texts.HELP_VISITOR
    await assert_not_member(wechat, ALICE)
    # Starting again begins at the phone.
    assert await wechat.say(ALICE, "注册") == texts.SIGNUP_ASK_PHONE
    assert "phone" not in await at_step(wechat, ALICE, "phone")


# --- safe mode ------------------------------------------------------------------------------

async def test_sign_up_in_safe_mode(wechat: WeChat) -> None:
    response = await wechat.post(wechat.side.text(ALICE, "注册"), encrypted=True)
    assert response.status_code == 200
    assert b"<Encrypt>" in response.content
    assert texts.SIGNUP_ASK_PHONE.encode() not in response.content
    opened = wechat.side.open_reply(response.content)
    assert opened is not None
    assert opened["Content"] == texts.SIGNUP_ASK_PHONE
    assert await wechat.say(ALICE, PHONE, encrypted=True) == ASK_BIRTHDAY
    assert await wechat.say(ALICE, "2月29日", encrypted=True) == consent_prompt()
    done = await wechat.say(ALICE, "同意", encrypted=True)
    member = await joined(wechat, ALICE)
    assert f"您的邀请码：{member.referral_code}" in done
    assert (member.birthday_month, member.birthday_day, member.birthday_year) == (2, 29, None)
    assert member.balance == 100
    assert "当前积分 105" in await wechat.say(ALICE, "签到", encrypted=True)


# --- referral -------------------------------------------------------------------------------

async def referrer_code(wechat: WeChat, openid: str = BOB, phone: str = "13900139000") -> tuple[int, str]:
    await sign_up(wechat, openid, phone=phone)
    member = await joined(wechat, openid)
    assert member.referral_code is not None
    return member.id, member.referral_code  # type: ignore[return-value]


async def rescan_and_refollow(wechat: WeChat, clock: FrozenClock, code: str, *, seconds: int) -> None:
    """ALICE, a member, scans ref_{code} (told she is one), unfollows and re-follows by it (welcomed back)."""
    scan = await wechat.event(ALICE, "SCAN", f"ref_{code}")
    assert scan is not None
    assert scan["Content"] == texts.already_member
    clock.advance(seconds=seconds)
    await wechat.event(ALICE, "unsubscribe")
    clock.advance(seconds=seconds)
    refollow = await wechat.event(ALICE, "subscribe", f"qrscene_ref_{code}")
    assert refollow is not None
    assert refollow["Content"] == texts.WELCOME_BACK


async def test_referral_by_subscribe_scene_pays_the_referrer_once(wechat: WeChat, clock: FrozenClock) -> None:
    referrer_id, code = await referrer_code(wechat)
    fields = wechat.side.event(ALICE, "subscribe", f"qrscene_ref_{code}", Ticket="gQH47joAAAAAAAAAASxodHRw")
    first = await wechat.send(fields)
    assert first is not None
    assert first["Content"] == texts.WELCOME + "\n" + texts.REFERRAL_NOTED
    visitor = await member_by_openid(wechat, ALICE)
    assert visitor is not None
    assert visitor.referrer_id == referrer_id
    assert visitor.joined_at is None
    again = await wechat.send(fields)  # WeChat's retry of the same event: same reply, no second effect
    assert again == first

    await sign_up(wechat, ALICE)
    referee = await joined(wechat, ALICE)
    reward = await entry_by_key(wechat, f"referral:{referee.id}")
    assert reward is not None
    assert (reward.member_id, reward.kind, reward.delta) == (referrer_id, "referral", 50)
    assert await assert_books_balance(wechat, referrer_id) == 150
    assert await assert_books_balance(wechat, referee.id) == 100  # type: ignore[arg-type]

    # Scanning again (the same code, another code, a re-follow) pays nobody again.
    clock.advance(seconds=5)
    await rescan_and_refollow(wechat, clock, code, seconds=5)
    assert await assert_books_balance(wechat, referrer_id) == 150
    assert [e.kind for e in await entries(wechat, referrer_id)] == ["signup", "referral"]


async def test_referral_by_scan_scene_lowercase_code(wechat: WeChat) -> None:
    referrer_id, code = await referrer_code(wechat)
    reply = await wechat.event(ALICE, "SCAN", f"ref_{code.lower()}", Ticket="gQH47joAAAAAAAAAASxodHRw")
    assert reply is not None
    assert reply["Content"] == texts.REFERRAL_NOTED
    await sign_up(wechat, ALICE)
    assert (await member_by_id(wechat, referrer_id)).balance == 150


async def test_first_referrer_wins_and_unknown_codes_are_ignored(wechat: WeChat, clock: FrozenClock) -> None:
    first_id, first_code = await referrer_code(wechat, BOB, "13900139000")
    second_id, second_code = await referrer_code(wechat, "oSIGNUP_CAROL_000000000003", "13700137000")
    reply = await wechat.event(ALICE, "SCAN", "ref_ZZZZZZ")
    assert reply is not None
    assert reply["Content"] == texts.JOIN_FIRST.format(bonus=100)  # nobody invited: no promise of a reward
    visitor = await member_by_openid(wechat, ALICE)
    assert visitor is not None
    assert visitor.referrer_id is None
    clock.advance(seconds=1)
    await wechat.event(ALICE, "SCAN", f"ref_{first_code}")
    clock.advance(seconds=1)
    await wechat.event(ALICE, "SCAN", f"ref_{second_code}")
    await sign_up(wechat, ALICE)
    assert (await member_by_id(wechat, first_id)).balance == 150
    assert (await member_by_id(wechat, second_id)).balance == 100


async def test_self_referral_is_ignored(wechat: WeChat, clock: FrozenClock) -> None:
    member_id, code = await referrer_code(wechat, ALICE, PHONE)
    await rescan_and_refollow(wechat, clock, code, seconds=1)
    member = await member_by_id(wechat, member_id)
    assert member.referrer_id is None
    assert member.status == members.ACTIVE
    assert [e.kind for e in await entries(wechat, member_id)] == ["signup"]


async def direct_referee(wechat: WeChat, index: int, code: str, at: datetime) -> Signup:
    """A referee signed up straight through storage (fast); the chat path is covered above."""
    services = wechat.services
    openid = f"oREFEREE{index:019d}"
    async with services.db.unit_of_work() as session:
        assert await members.record_referrer(session, openid, "oa", code, at)
    async with services.db.unit_of_work() as session:
        return await members.sign_up(
            session, services.ledger, services.pii, openid=openid, source="oa",
            phone=f"1590000{index:04d}", birthday=None, now=at,
        )


async def test_monthly_limit_of_twenty_rewarded_referrals(wechat: WeChat, clock: FrozenClock) -> None:
    referrer_id, code = await referrer_code(wechat)  # 2026-11-22: +100
    # Referee 1 through the chat, the same day.
    await wechat.event(ALICE, "subscribe", f"qrscene_ref_{code}")
    await sign_up(wechat, ALICE)
    assert (await member_by_id(wechat, referrer_id)).balance == 150
    # Referees 2..20 straight through storage, spread so the 500-a-day cap never bites.
    day = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)
    for index in range(2, 21):
        at = day + timedelta(days=(index - 2) // 8, minutes=index)
        done = await direct_referee(wechat, index, code, at)
        assert done.referrer_rewarded, index
    assert await assert_books_balance(wechat, referrer_id) == 100 + 20 * 50

    late_november = datetime(2026, 11, 30, 23, 59, tzinfo=TZ)
    twenty_first = await direct_referee(wechat, 21, code, late_november)
    assert not twenty_first.referrer_rewarded
    assert await entry_by_key(wechat, f"referral:{twenty_first.member_id}") is None
    assert (await member_by_id(wechat, twenty_first.member_id)).balance == 100  # the referee still gets hers
    assert await assert_books_balance(wechat, referrer_id) == 1100

    # A new month in Shanghai (still 30 November in UTC): the count starts again.
    december = datetime(2026, 12, 1, 0, 30, tzinfo=TZ)
    next_month = await direct_referee(wechat, 22, code, december)
    assert next_month.referrer_rewarded
    assert await assert_books_balance(wechat, referrer_id) == 1150
    rewards = [e for e in await entries(wechat, referrer_id) if e.kind == "referral"]
    assert len(rewards) == 21
    assert all(e.delta == 50 for e in rewards)


async def test_a_retried_agree_gets_the_same_welcome_and_signs_up_once(wechat: WeChat) -> None:
    assert await wechat.say(ALICE, "注册") == texts.SIGNUP_ASK_PHONE
    assert await wechat.say(ALICE, PHONE) == ASK_BIRTHDAY
    assert await wechat.say(ALICE, "跳过") == consent_prompt()
    agree = wechat.side.text(ALICE, "同意", msg_id=24_000_000_000_000_001)
    first = await wechat.send(agree)
    retry = await wechat.send(agree)  # WeChat did not get the first answer in time and asks again
    assert first is not None
    assert str(first["Content"]).startswith("注册成功")
    assert retry == first
    member = await joined(wechat, ALICE)
    assert [e.kind for e in await entries(wechat, member.id)] == ["signup"]  # type: ignore[arg-type]
    assert await assert_books_balance(wechat, member.id) == 100  # type: ignore[arg-type]
