"""The Mini Program's member API: login by code (code2session), then a bearer session token of our
own. Every call goes through the same storage services as the chat, so both doors agree."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from bot.api.deps import ServicesDep, SessionBearer, WeChatDep
from bot.api.errors import ERROR_SCHEMA, ApiError
from bot.api.validation import INT4_MAX, Id, Text
from bot.wechat.client import WeChatAPI, WeChatError
from handlers import texts
from handlers.core.context import Services
from handlers.core.dates import parse_birthday
from storage import members
from storage.balances import balance_summary
from storage.checkins import check_in
from storage.errors import DomainError, NotFoundError
from storage.models import Member
from storage.rows import row_id

SESSION_TTL = 7 * 24 * 3600
RATE_PER_MINUTE = 60
ERRORS: dict[int | str, dict[str, Any]] = {
    401: ERROR_SCHEMA, 403: ERROR_SCHEMA, 404: ERROR_SCHEMA, 409: ERROR_SCHEMA, 422: ERROR_SCHEMA,
    429: ERROR_SCHEMA,
}
router = APIRouter(prefix="/api/mp", tags=["mini program"], responses=ERRORS)


class Session(BaseModel):
    mp_openid: str
    unionid: str | None = None
    session_key: str  # encrypted with PII_KEY; never leaves the server


def _key(token: str) -> str:
    return "wxbot:mpsess:" + hashlib.sha256(token.encode()).hexdigest()


def session_token(credentials: SessionBearer) -> str:
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "unauthorized", "missing `Authorization: Bearer <session token>`; log in first")
    return credentials.credentials


TokenDep = Annotated[str, Depends(session_token)]


async def current_session(services: ServicesDep, token: TokenDep) -> Session:
    raw = await services.kv.get(_key(token))
    if raw is None:
        raise ApiError(401, "session_expired", "the session token is unknown or expired; log in again")
    session = Session.model_validate_json(raw)
    minute = int(services.clock.now().timestamp() // 60)
    if await services.kv.incr(f"wxbot:mprate:{session.mp_openid}:{minute}", ex=120) > RATE_PER_MINUTE:
        raise ApiError(429, "rate_limited", f"more than {RATE_PER_MINUTE} requests a minute; slow down")
    return session


SessionDep = Annotated[Session, Depends(current_session)]


async def _member(services: Services, session: Session, *, joined: bool = True) -> Member:
    async with services.db.sessions() as db:
        member = await members.by_openid(db, session.mp_openid, "mp")
    if member is None or (joined and member.joined_at is None):
        raise ApiError(403, "not_member", texts.JOIN_FIRST.format(bonus=services.rules.signup_bonus))
    return member


def _refusal(exc: DomainError) -> ApiError:
    status = 404 if isinstance(exc, NotFoundError) else 409
    return ApiError(status, exc.text_key, texts.domain_text(exc))


# --- login --------------------------------------------------------------------------------------------
class LoginIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "081Kq4Ga1lY0aJ0dNaHa1bMq4Ga1"}]})
    code: Annotated[Text, Field(min_length=1, max_length=128)]


class LoginOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"token": "q1w2...", "expires_in": 604800,
                                                               "is_member": True}]})
    token: str
    expires_in: int
    is_member: bool


@router.post("/login", response_model=LoginOut)
async def login(body: LoginIn, services: ServicesDep, api: WeChatDep) -> LoginOut:
    """Exchange a `wx.login()` code for our own session token (7 days). The Mini Program openid is
    linked to the Official Account member with the same unionid, whichever door came first."""
    try:
        answer = await api.code2session(body.code)
    except WeChatError as exc:
        if exc.errcode in (40029, 40163, 45011, 40226):
            raise ApiError(
                401, "invalid_code", f"WeChat refused the login code ({exc.errcode}); call wx.login again"
            ) from None
        raise ApiError(503, "wechat_unavailable", f"WeChat did not answer the login ({exc.errcode}); retry") from None
    openid, unionid = str(answer["openid"]), answer.get("unionid")
    now = services.clock.now()
    async with services.db.unit_of_work() as db:
        member: Member | None
        if unionid:
            member = await members.link_unionid(db, openid=openid, source="mp", unionid=str(unionid), now=now,
                                                 tz=services.tz)
        else:
            await members.touch(db, openid, now, "mp", services.tz)
            member = await members.by_openid(db, openid, "mp")
    token = secrets.token_urlsafe(32)
    stored = Session(mp_openid=openid, unionid=unionid, session_key=services.pii.encrypt(str(answer["session_key"])))
    await services.kv.set(_key(token), stored.model_dump_json(), ex=SESSION_TTL)
    return LoginOut(token=token, expires_in=SESSION_TTL, is_member=bool(member and member.joined_at))


@router.delete("/session")
async def logout(services: ServicesDep, session: SessionDep, token: TokenDep) -> dict[str, bool]:
    """Revoke this session token."""
    await services.kv.delete(_key(token))
    return {"revoked": True}


# --- the member ---------------------------------------------------------------------------------------
class MeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "member_id": 42, "is_member": True, "balance": 1250, "tier": "银卡", "next_tier": "金卡",
        "points_to_next_tier": 3750, "expiring_points": 300, "expiring_on": "2027-11-30",
        "referral_code": "K7PQ2M", "marketing_opt_out": False,
    }]})
    member_id: int
    is_member: bool
    balance: int
    tier: str
    next_tier: str | None
    points_to_next_tier: int | None
    expiring_points: int
    expiring_on: str | None
    referral_code: str | None
    marketing_opt_out: bool


async def _me(services: Services, member: Member) -> MeOut:
    async with services.db.unit_of_work() as db:
        summary = await balance_summary(db, services.ledger, member, services.clock.now())
    return MeOut(
        member_id=member.id, is_member=member.joined_at is not None, balance=summary.balance, tier=summary.tier,
        next_tier=summary.next_tier, points_to_next_tier=summary.points_to_next_tier,
        expiring_points=summary.expiring_points,
        expiring_on=summary.expiring_on.isoformat() if summary.expiring_on else None,
        referral_code=member.referral_code, marketing_opt_out=member.marketing_opt_out,
    )


@router.get("/me", response_model=MeOut)
async def me(services: ServicesDep, session: SessionDep) -> MeOut:
    """Balance, tier, progress to the next tier, and points expiring within 30 days."""
    return await _me(services, await _member(services, session))


class Movement(BaseModel):
    id: int
    delta: int
    kind: str
    label: str
    reason: str
    at: datetime


class HistoryOut(BaseModel):
    items: list[Movement]
    next_cursor: int | None = Field(description="pass as ?cursor= for older movements; null at the end")


@router.get("/history", response_model=HistoryOut)
async def history(
    services: ServicesDep, session: SessionDep, cursor: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> HistoryOut:
    """Points movements, newest first, `limit` at a time."""
    member = await _member(services, session)
    async with services.db.sessions() as db:
        rows = await services.ledger.history(db, row_id(member), limit + 1, before=cursor)
    more = len(rows) > limit
    rows = rows[:limit]
    return HistoryOut(
        items=[Movement(id=r.id, delta=r.delta, kind=r.kind, label=texts.KIND_LABELS.get(r.kind, r.kind),
                        reason=texts.ledger_reason(r.reason), at=r.created_at) for r in rows],
        next_cursor=rows[-1].id if more and rows else None,
    )


class CheckinOut(BaseModel):
    points: int
    streak_bonus: int
    winback_bonus: int
    streak: int
    balance: int
    upgraded_to: str | None
    multiplier: str | None = None  # the [[multipliers]] rule (a member day) that multiplied `points`: its name


@router.post("/checkin", response_model=CheckinOut)
async def checkin(services: ServicesDep, session: SessionDep) -> CheckinOut:
    """Today's check-in, shared with the chat: the second one of the day (from either door) is a 409."""
    member = await _member(services, session)
    async with services.db.unit_of_work() as db:
        result = await check_in(db, services.ledger, row_id(member), services.clock.now())
    if result.already:
        raise ApiError(409, "already_checked_in",
                       texts.CHECKIN_ALREADY.format(streak=result.streak, balance=result.balance))
    return CheckinOut(points=result.points, streak_bonus=result.bonus, winback_bonus=result.winback,
                      streak=result.streak, balance=result.balance, upgraded_to=result.upgraded_to,
                      multiplier=result.boost.name if result.boost else None)


# --- rewards ------------------------------------------------------------------------------------------
class RewardOut(BaseModel):
    id: int
    name: str
    description: str
    cost: int
    kind: str
    in_stock: bool
    affordable: bool


@router.get("/rewards", response_model=list[RewardOut])
async def rewards(services: ServicesDep, session: SessionDep) -> list[RewardOut]:
    """The rewards this member may take, affordable first."""
    member = await _member(services, session)
    async with services.db.sessions() as db:
        items = await services.rewards.catalogue(db, member, services.clock.now())
    return [RewardOut(id=r.id, name=r.name, description=r.description, cost=r.cost, kind=r.kind,
                      in_stock=r.stock != 0, affordable=r.cost <= member.balance) for r in items]


class RedeemIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reward_id": 3, "request_id": "9b1c0e4a-redeem-1"}]})
    reward_id: Id
    request_id: Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")]


class RedeemOut(BaseModel):
    redemption_id: int
    reward: str
    code: str
    expires_at: datetime
    balance: int
    repeated: bool


@router.post("/redeem", response_model=RedeemOut)
async def redeem(body: RedeemIn, services: ServicesDep, session: SessionDep) -> RedeemOut:
    """Redeem once per request_id: repeating the same request_id returns the first redemption."""
    member = await _member(services, session)
    try:
        async with services.db.unit_of_work() as db:
            issued = await services.rewards.redeem(
                db, row_id(member), body.reward_id, request_key=f"mp:{member.id}:{body.request_id}",
                now=services.clock.now(),
            )
    except DomainError as exc:
        raise _refusal(exc) from None
    r = issued.redemption
    return RedeemOut(redemption_id=r.id, reward=issued.reward.name, code=r.code, expires_at=r.expires_at,
                     balance=issued.balance, repeated=issued.repeated)


class CouponOut(BaseModel):
    code: str
    reward: str
    expires_at: datetime


@router.get("/coupons", response_model=list[CouponOut])
async def coupons(services: ServicesDep, session: SessionDep) -> list[CouponOut]:
    member = await _member(services, session)
    async with services.db.sessions() as db:
        held = await services.rewards.coupons(db, row_id(member), services.clock.now())
    return [CouponOut(code=r.code, reward=w.name, expires_at=r.expires_at) for r, w in held]


# --- campaigns ----------------------------------------------------------------------------------------
class CampaignOut(BaseModel):
    code: str
    title: str
    kind: str
    points: int
    goal: int
    participants: int
    cap: int
    ends_at: datetime


@router.get("/campaigns", response_model=list[CampaignOut])
async def campaigns(services: ServicesDep, session: SessionDep) -> list[CampaignOut]:
    async with services.db.sessions() as db:
        found = await services.campaigns.open_campaigns(db, services.clock.now())
    return [CampaignOut(code=c.code, title=c.title, kind=c.kind, points=c.points, goal=c.goal,
                        participants=c.participants, cap=c.cap, ends_at=c.ends_at) for c in found]


class JoinOut(BaseModel):
    code: str
    participants: int
    cap: int
    points_now: int


@router.post("/campaigns/{code}/join", response_model=JoinOut)
async def join(code: Annotated[Text, Path(max_length=8)], services: ServicesDep, session: SessionDep) -> JoinOut:
    member = await _member(services, session)
    try:
        async with services.db.unit_of_work() as db:
            joined = await services.campaigns.join(db, code, member, services.clock.now())
    except DomainError as exc:
        raise _refusal(exc) from None
    return JoinOut(code=joined.campaign.code, participants=joined.count, cap=joined.campaign.cap,
                   points_now=joined.paid_now)


# --- sign-up ------------------------------------------------------------------------------------------
class SignupIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"phone_code": "e31968a7f94cc5ee25fafc2aef2773f0bb8c3937b22520eb8ee345274d00c144", "birthday": "1990-05-20",
         "consent": True},
        {"phone": "13800138000", "consent": True},
    ]})
    phone_code: Annotated[Text, Field(min_length=1, max_length=128)] | None = None
    phone: Annotated[Text, Field(min_length=11, max_length=20)] | None = None
    birthday: Annotated[Text, Field(max_length=16)] | None = None
    consent: StrictBool


@router.post("/signup", response_model=MeOut)
async def signup(body: SignupIn, services: ServicesDep, session: SessionDep, api: WeChatDep) -> MeOut:
    """Become a member: the phone from WeChat's phone-number button (phone_code) or typed, an
    optional birthday (YYYY-MM-DD, MM-DD or M月D日), and consent to the privacy notice."""
    if not body.consent:
        raise ApiError(422, "consent_required", "consent must be true: the privacy notice has to be accepted")
    if (body.phone_code is None) == (body.phone is None):
        raise ApiError(422, "invalid", "give exactly one of phone_code and phone")
    phone = await _phone(api, body)
    born = None
    if body.birthday:
        born = parse_birthday(body.birthday, services.clock.now().astimezone(services.tz).date())
        if born is None:
            raise ApiError(422, "invalid_birthday", "birthday must be YYYY-MM-DD, MM-DD or M月D日, in the past")
    try:
        async with services.db.unit_of_work() as db:
            await members.sign_up(db, services.ledger, services.pii, openid=session.mp_openid, source="mp",
                                  phone=phone, birthday=born, now=services.clock.now())
            if session.unionid:
                await members.link_unionid(db, openid=session.mp_openid, source="mp", unionid=session.unionid,
                                           now=services.clock.now(), tz=services.tz)
    except DomainError as exc:
        raise _refusal(exc) from None
    return await _me(services, await _member(services, session))


async def _phone(api: WeChatAPI, body: SignupIn) -> str:
    raw = body.phone
    if body.phone_code is not None:
        try:
            raw = await api.phone_number(body.phone_code)
        except WeChatError as exc:
            raise ApiError(422, "invalid_phone_code", f"WeChat refused the phone code ({exc.errcode})") from None
    phone = members.normalise_phone(raw or "")
    if phone is None:
        raise ApiError(422, "invalid_phone", "phone must be a mainland mobile number (1[3-9] and 9 digits)")
    return phone


