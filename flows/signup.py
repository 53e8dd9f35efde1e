"""Sign-up: phone, birthday (optional), privacy consent; the member and the bonus are created at the end.

```mermaid
stateDiagram-v2
    [*] --> phone: 注册 / 加入会员 / join / menu SIGNUP
    [*] --> [*]: already a member
    phone --> phone: not a mainland mobile, or bound to another member
    phone --> birthday: valid phone
    birthday --> birthday: unreadable date
    birthday --> consent: date or 跳过
    consent --> consent: a typed referral code (recorded, or refused: own, unknown, over the limit)
    consent --> consent: anything else but 同意
    consent --> [*]: 同意 (member + bonus + referral, one transaction)
    phone --> [*]: 取消 / 10 minutes of silence
    birthday --> [*]: 取消 / 10 minutes of silence
    consent --> [*]: 取消 / 10 minutes of silence
```"""

from __future__ import annotations

import re

from flows.engine import Abort, Answer, Done, Flow, Next, Stay, StepResult
from flows.store import FlowState
from handlers import texts
from handlers.campaigns import joined_text as campaign_joined_text
from handlers.core.context import ChatContext
from handlers.core.dates import parse_birthday
from handlers.core.filters import Click, Command
from handlers.core.message import Inbound
from handlers.core.reply import Reply, Text
from storage import members, sharing
from storage.errors import DomainError
from storage.members import AlreadyMemberError, PhoneTakenError

SKIP = {"跳过", "skip", "不填", "无"}
# A typed referral code at the consent step, optionally after 邀请码: six letters or digits.
_REFERRAL = re.compile(rf"^(?:邀请码\s*[:：]?\s*)?([A-Za-z0-9]{{{members.REFERRAL_CODE_LENGTH}}})$")
AGREE = {"同意", "agree", "yes", "是", "确认", "同意并注册"}


async def begin(ctx: ChatContext, state: FlowState) -> Answer:
    if await ctx.joined_member() is not None:
        return Abort([Text(texts.already_member)])
    return Next("phone", [Text(texts.SIGNUP_ASK_PHONE)])


async def phone(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    number = members.normalise_phone(msg.text)
    if number is None:
        return Stay([Text(texts.SIGNUP_BAD_PHONE)])
    async with ctx.db.sessions() as session:
        free = await members.phone_available(session, ctx.services.pii, number, msg.openid)
    if not free:
        return Stay([Text(texts.SIGNUP_PHONE_TAKEN)])
    ask = texts.SIGNUP_ASK_BIRTHDAY.format(points=ctx.rules.birthday_points)
    # The flow state lives in the KV for at most the flow's TTL; the phone is encrypted even there.
    return Next("birthday", [Text(ask)], {"phone": ctx.services.pii.encrypt(number)})


async def birthday(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    consent = Text(texts.SIGNUP_ASK_CONSENT.format(version=ctx.rules.privacy_notice_version))
    if msg.command in SKIP:
        return Next("consent", [consent], {"birthday": None})
    parsed = parse_birthday(msg.text, ctx.clock.now().astimezone(ctx.tz).date())
    if parsed is None:
        return Stay([Text(texts.SIGNUP_BAD_BIRTHDAY)])
    return Next("consent", [consent], {"birthday": list(parsed)})


async def consent(msg: Inbound, ctx: ChatContext, state: FlowState) -> StepResult:
    if msg.command not in AGREE:
        typed = _REFERRAL.fullmatch(msg.text.strip())
        if typed:
            return Stay([Text(await _referral(msg, ctx, typed.group(1).upper()))])
        return Stay([Text(texts.SIGNUP_NEED_CONSENT)])
    raw_birthday = state.data.get("birthday")
    born = (raw_birthday[0], raw_birthday[1], raw_birthday[2]) if raw_birthday else None
    try:
        async with ctx.db.unit_of_work() as session:
            done = await members.sign_up(
                session, ctx.ledger, ctx.services.pii, openid=msg.openid, source=msg.source,
                phone=ctx.services.pii.decrypt(state.data["phone"]), birthday=born, now=ctx.clock.now(),
            )
    except AlreadyMemberError:
        return Done([Text(texts.already_member)])
    except PhoneTakenError:
        return Next("phone", [Text(texts.SIGNUP_PHONE_TAKEN)])
    ctx.forget_member()
    ctx.log.info("signed up member=%d referrer_rewarded=%s", done.member_id, done.referrer_rewarded)
    rules = ctx.rules
    welcome = texts.SIGNUP_DONE.format(
        brand=texts.BRAND, bonus=done.bonus.delta, balance=done.bonus.balance,
        code=done.referral_code, referral=rules.referral_bonus,
    )
    replies: list[Reply] = [Text(welcome)]
    if code := state.data.get("then_join"):
        replies.append(Text(await _join_after_signup(ctx, code, state.data.get("then_join_referrer"))))
    return Done(replies)


async def _referral(msg: Inbound, ctx: ChatContext, code: str) -> str:
    """A typed referral code: recorded as the referrer, or refused with the reason; the sign-up goes on."""
    visitor = await ctx.member()
    if visitor is not None and visitor.referrer_id is not None:  # a friend's QR scan came first
        return texts.SIGNUP_REFERRAL_KNOWN
    now = ctx.clock.now()
    async with ctx.db.unit_of_work() as session:
        check = await sharing.check_code(
            session, code, msg.openid, msg.unionid, now, ctx.tz, ctx.rules.referral_monthly_limit,
        )
        if check.refusal is None:
            await members.record_referrer(session, msg.openid, msg.source, code, now, ctx.tz)
    ctx.forget_member()
    if check.refusal == sharing.OWN:
        return texts.SIGNUP_REFERRAL_OWN
    if check.refusal == sharing.UNKNOWN:
        return texts.SIGNUP_REFERRAL_UNKNOWN.format(code=code)
    if check.refusal == sharing.OVER_LIMIT:
        return texts.SIGNUP_REFERRAL_FULL.format(code=code)
    ctx.log.info("sign-up names a referrer by code")
    return texts.SIGNUP_REFERRAL_OK.format(code=code)


async def _join_after_signup(ctx: ChatContext, code: str, referrer_id: int | None = None) -> str:
    """The campaign that brought a visitor here is joined without asking again (attributed to the sharer
    of a personal invite)."""
    member = await ctx.joined_member()
    if member is None:
        return texts.error_generic
    try:
        async with ctx.db.unit_of_work() as session:
            joined = await ctx.campaigns.join(session, code, member, ctx.clock.now(), referrer_id=referrer_id)
    except DomainError as exc:
        return texts.domain_text(exc)
    return campaign_joined_text(ctx, joined)


flow = Flow(
    name="signup",
    begin=begin,
    steps={"phone": phone, "birthday": birthday, "consent": consent},
    entry=(Command("注册", "加入会员", "join", "signup", "会员注册"),),
    extra_entries=((Click("SIGNUP"),),),
    ttl=600,
)
