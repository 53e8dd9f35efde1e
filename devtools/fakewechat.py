"""create_fake_wechat(): a stand-in for WeChat's outbound API, with a /_fake control API for tests."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import itertools
import json
import secrets
import string
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from devtools import fakemenu
from devtools.fakeanswers import Answer, error, ok

Clock = Callable[[], float]

TOKEN_TTL = 7200
STABLE_ROTATE_BEFORE = 300  # the platform rotates a stable token this long before it expires
CODE_TTL = 300  # js_code and phone codes live 5 minutes
CLIENT_MSG_TTL = 600  # a template's client_msg_id is sent once per openid in about 10 minutes
FIRST_MSGID = 3_100_000_000_000_000_001
QR_DEFAULT_EXPIRE = 60
QR_MAX_EXPIRE = 2_592_000
QR_LIMIT_MAX_SCENE_ID = 100_000
QR_ACTIONS = ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE")
MINIPROGRAM_STATES = ("developer", "trial", "formal")
SUBSCRIBE_VALUE_LIMITS = {
    "thing": 20, "number": 32, "letter": 32, "symbol": 5, "character_string": 32,
    "phrase": 5, "phone_number": 17, "car_number": 8,
}

def _digest(kind: str, code: str) -> bytes:
    return hashlib.sha256(f"fakewechat:{kind}:{code}".encode()).digest()


def derived_openid(code: str) -> str:
    """The openid a js_code registered without one resolves to (28 characters, like WeChat's)."""
    return "oFAKE" + _digest("openid", code).hex()[:23]


def derived_unionid(code: str) -> str:
    return "uFAKE" + _digest("unionid", code).hex()[:23]


def derived_session_key(code: str) -> str:
    return base64.b64encode(_digest("session_key", code)[:16]).decode()


@dataclass
class Token:
    value: str
    appid: str
    kind: Literal["stable", "token"]
    expires_at: float
    revoked: bool = False  # 40001 from now on
    expired: bool = False  # 42001 from now on


@dataclass
class LoginCode:
    openid: str
    unionid: str | None
    session_key: str
    expires_at: float
    used: bool = False


@dataclass
class PhoneCode:
    phone: str
    country_code: str
    expires_at: float
    used: bool = False


OneTimeCode = TypeVar("OneTimeCode", LoginCode, PhoneCode)


def _redeem(codes: dict[str, OneTimeCode], code: str, now: float) -> OneTimeCode | None:
    """The code's entry, spent by this call; None when unknown, already used or expired."""
    entry = codes.get(code)
    if entry is None or entry.used or now >= entry.expires_at:
        return None
    entry.used = True
    return entry


@dataclass(frozen=True)
class Incoming:
    """One WeChat API call as a handler sees it; `appid` is the access_token's app, if it takes one."""

    query: dict[str, str]
    body: Any
    appid: str | None


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Callable[[FakeWeChat, Incoming], Answer]
    needs_token: bool = True


@dataclass
class FakeWeChat:
    """Everything one fake holds: tokens, codes, recorded calls, scripted answers and delays."""

    clock: Clock
    tokens: dict[str, Token] = field(default_factory=dict)
    current: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, appid) -> token
    calls: list[Answer] = field(default_factory=list)
    scripts: dict[str, deque[int]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    codes: dict[str, LoginCode] = field(default_factory=dict)
    phone_codes: dict[str, PhoneCode] = field(default_factory=dict)
    users: dict[str, str | None] = field(default_factory=dict)  # OA openid -> unionid (None: no unionid)
    client_msgs: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)  # -> (msgid, sent at)
    serial: itertools.count[int] = field(default_factory=itertools.count)
    msgids: itertools.count[int] = field(default_factory=lambda: itertools.count(FIRST_MSGID))
    menus: fakemenu.MenuState = field(default_factory=fakemenu.MenuState)

    def reset(self) -> None:
        self.menus.reset()
        for mapping in (self.tokens, self.current, self.scripts, self.delays, self.codes, self.phone_codes,
                        self.users, self.client_msgs):
            mapping.clear()
        self.calls.clear()
        self.serial = itertools.count()
        self.msgids = itertools.count(FIRST_MSGID)

    # --- tokens ----------------------------------------------------------------------------------

    def issue(self, appid: str, kind: Literal["stable", "token"]) -> Token:
        value = f"FAKE_{kind}_{next(self.serial)}_{secrets.token_urlsafe(96)}"
        token = Token(value, appid, kind, self.clock() + TOKEN_TTL)
        self.tokens[value] = token
        self.current[(kind, appid)] = value
        return token

    def remaining(self, token: Token) -> int:
        return max(0, int(token.expires_at - self.clock()))

    def token_error(self, value: str | None) -> int:
        if not value:
            return 41001
        token = self.tokens.get(value)
        if token is None or token.revoked:
            return 40001
        if token.expired or self.clock() >= token.expires_at:
            return 42001
        return 0

    def stable_token(self, appid: str, *, force: bool) -> Token:
        current = self.tokens.get(self.current.get(("stable", appid), ""))
        if current is not None and force:
            current.revoked = True
        elif (
            current is not None
            and self.token_error(current.value) == 0
            and self.remaining(current) > STABLE_ROTATE_BEFORE
        ):
            return current
        return self.issue(appid, "stable")

    def plain_token(self, appid: str) -> Token:
        previous = self.tokens.get(self.current.get(("token", appid), ""))
        if previous is not None:
            previous.revoked = True
        return self.issue(appid, "token")

    def expire_tokens(self, errcode: int) -> int:
        for token in self.tokens.values():
            token.revoked = token.revoked or errcode == 40001
            token.expired = True
        return len(self.tokens)

    # --- one-time codes -------------------------------------------------------------------------

    def redeem_login(self, code: str) -> LoginCode | None:
        return _redeem(self.codes, code, self.clock())

    def redeem_phone(self, code: str) -> PhoneCode | None:
        return _redeem(self.phone_codes, code, self.clock())

    # --- serving --------------------------------------------------------------------------------

    async def serve(self, endpoint: Endpoint, request: Request) -> JSONResponse:
        arrived = self.clock()
        query = dict(request.query_params)
        body, body_ok = await _read_json(request) if endpoint.method == "POST" else (None, True)
        delay = self.delays.get(endpoint.path, 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        answer, appid = self.answer(endpoint, query, body, body_ok)
        duplicate = bool(answer.pop("_duplicate", False))
        self.record(endpoint, query, body, arrived, appid, answer, duplicate=duplicate)
        return JSONResponse(answer)

    def answer(
        self, endpoint: Endpoint, query: dict[str, str], body: Any, body_ok: bool
    ) -> tuple[Answer, str | None]:
        appid = None
        token = query.get("access_token")
        if endpoint.needs_token:
            problem = self.token_error(token)
            if problem:
                return error(problem), None
            appid = self.tokens[str(token)].appid
        scripted = self.next_scripted(endpoint.path)
        if scripted:
            self.scripted_side_effect(scripted, token if endpoint.needs_token else None)
            return error(scripted), appid
        if not body_ok:
            return error(47001), appid
        return endpoint.handler(self, Incoming(query, body, appid)), appid

    def next_scripted(self, path: str) -> int:
        queue = self.scripts.get(path)
        return queue.popleft() if queue else 0

    def scripted_side_effect(self, errcode: int, token: str | None) -> None:
        """A scripted 40001/42001 kills the token it was sent with, so the caller has to refresh."""
        if token is None or token not in self.tokens:
            return
        if errcode == 40001:
            self.tokens[token].revoked = True
        elif errcode == 42001:
            self.tokens[token].expired = True

    def record(
        self, endpoint: Endpoint, query: dict[str, str], body: Any, arrived: float,
        appid: str | None, answer: Answer, *, duplicate: bool = False,
    ) -> None:
        self.calls.append({
            "seq": len(self.calls) + 1,
            "method": endpoint.method,
            "path": endpoint.path,
            "query": {key: value for key, value in query.items() if key != "access_token"},
            "body": body,
            "time": arrived,
            "appid": appid,
            "errcode": int(answer.get("errcode", 0)),
            "response": answer,
            "duplicate": duplicate,  # answered, but not delivered again (client_msg_id seen)
        })


async def _read_json(request: Request) -> tuple[Any, bool]:
    """(the parsed body, True), (None, True) when empty, or (the raw text, False) when not JSON."""
    raw = await request.body()
    if not raw.strip():
        return None, True
    try:
        return json.loads(raw), True
    except ValueError:
        return raw.decode("utf-8", errors="replace"), False


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _body_problem(body: Any) -> int:
    if body is None:
        return 44002
    return 0 if isinstance(body, dict) else 47001


def _json_object(handler: Callable[[FakeWeChat, Incoming], Answer]) -> Callable[[FakeWeChat, Incoming], Answer]:
    """Refuses a missing (44002) or non-object (47001) body before the handler, as every JSON endpoint does."""

    @functools.wraps(handler)
    def checked(fake: FakeWeChat, call: Incoming) -> Answer:
        problem = _body_problem(call.body)
        return error(problem) if problem else handler(fake, call)

    return checked


def _credentials_problem(params: dict[str, Any], grant_type: str) -> int:
    if params.get("grant_type") != grant_type:
        return 40002
    if not _text(params.get("appid")):
        return 40013
    if not _text(params.get("secret")):
        return 40125
    return 0


def _data_problem(data: Any, limits: dict[str, int] | None = None) -> str | None:
    """The first `data` field WeChat would reject (47003 names it), or None."""
    if not isinstance(data, dict) or not data:
        return "data"
    for key, item in data.items():
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            return f"data.{key}.value"
        limit = (limits or {}).get(str(key).rstrip(string.digits))
        if limit is not None and len(str(value)) > limit:
            return f"data.{key}.value"
    return None


# --- WeChat endpoints -----------------------------------------------------------------------------


@_json_object
def stable_token(fake: FakeWeChat, call: Incoming) -> Answer:
    problem = _credentials_problem(call.body, "client_credential")
    if problem:
        return error(problem)
    token = fake.stable_token(call.body["appid"], force=call.body.get("force_refresh") is True)
    return {"access_token": token.value, "expires_in": fake.remaining(token)}


def get_token(fake: FakeWeChat, call: Incoming) -> Answer:
    problem = _credentials_problem(call.query, "client_credential")
    if problem:
        return error(problem)
    token = fake.plain_token(call.query["appid"])
    return {"access_token": token.value, "expires_in": fake.remaining(token)}


@_json_object
def custom_send(fake: FakeWeChat, call: Incoming) -> Answer:
    body = call.body
    if not _text(body.get("touser")):
        return error(40003)
    msgtype = body.get("msgtype")
    if not _text(msgtype):
        return error(40008)
    if not isinstance(body.get(msgtype), dict):
        return error(47001, f"{msgtype} missing")
    return ok()


def _template_problem(body: Any) -> Answer | None:
    """What template and subscribe sends both refuse (past @_json_object): no recipient, no template."""
    if not _text(body.get("touser")):
        return error(40003)
    if not _text(body.get("template_id")):
        return error(40037)
    return None


@_json_object
def template_send(fake: FakeWeChat, call: Incoming) -> Answer:
    body = call.body
    refused = _template_problem(body)
    if refused is not None:
        return refused
    bad_field = _data_problem(body.get("data"))
    if bad_field:
        return error(47003, f"{bad_field} invalid")
    return _template_once(fake, body)


def _template_once(fake: FakeWeChat, body: dict[str, Any]) -> Answer:
    """Same openid and client_msg_id within CLIENT_MSG_TTL: sent once. The repeat is answered as the
    first was (what WeChat answers is undocumented) and recorded as a duplicate, not a delivery."""
    key = body.get("client_msg_id")
    if not isinstance(key, str) or not _text(key):
        return ok(msgid=next(fake.msgids))
    seen = fake.client_msgs.get((body["touser"], key))
    if seen is not None and fake.clock() - seen[1] < CLIENT_MSG_TTL:
        return ok(msgid=seen[0], _duplicate=True)
    msgid = next(fake.msgids)
    fake.client_msgs[(body["touser"], key)] = (msgid, fake.clock())
    return ok(msgid=msgid)


@_json_object
def subscribe_send(fake: FakeWeChat, call: Incoming) -> Answer:
    body = call.body
    refused = _template_problem(body)
    if refused is not None:
        return refused
    if body.get("miniprogram_state", "formal") not in MINIPROGRAM_STATES:
        return error(47003, "miniprogram_state invalid")
    bad_field = _data_problem(body.get("data"), SUBSCRIBE_VALUE_LIMITS)
    if bad_field:
        return error(47003, f"{bad_field} invalid")
    return ok(msgid=next(fake.msgids))


def _scene_problem(action: str, scene: Any) -> str | None:
    if not isinstance(scene, dict):
        return "action_info.scene missing"
    if action.endswith("STR_SCENE"):
        value = scene.get("scene_str")
        return None if isinstance(value, str) and 1 <= len(value) <= 64 else "scene_str must be 1-64 chars"
    value = scene.get("scene_id")
    if not isinstance(value, int) or isinstance(value, bool):
        return "scene_id must be an integer"
    if action == "QR_LIMIT_SCENE":
        return None if 1 <= value <= QR_LIMIT_MAX_SCENE_ID else "scene_id must be 1-100000"
    return None if value != 0 and abs(value) < 2**32 else "scene_id must be a non-zero 32-bit integer"


def _expire_problem(body: dict[str, Any]) -> str | None:
    value = body.get("expire_seconds", QR_DEFAULT_EXPIRE)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= QR_MAX_EXPIRE:
        return "expire_seconds must be 1-2592000"
    return None


@_json_object
def qrcode_create(fake: FakeWeChat, call: Incoming) -> Answer:
    body = call.body
    action = body.get("action_name")
    if action not in QR_ACTIONS:
        return error(40097, "action_name invalid")
    info = body.get("action_info")
    temporary = not action.startswith("QR_LIMIT")
    detail = _scene_problem(action, info.get("scene") if isinstance(info, dict) else None)
    detail = detail or (_expire_problem(body) if temporary else None)
    if detail:
        return error(40097, detail)
    serial = next(fake.serial)
    ticket = base64.b64encode(f"fakeqr:{serial}:{secrets.token_hex(8)}".encode()).decode()
    answer: Answer = {"ticket": ticket, "url": f"http://weixin.qq.com/q/fake{serial:08d}"}
    if temporary:
        answer["expire_seconds"] = body.get("expire_seconds", QR_DEFAULT_EXPIRE)
    return answer


def jscode2session(fake: FakeWeChat, call: Incoming) -> Answer:
    problem = _credentials_problem(call.query, "authorization_code")
    if problem:
        return error(problem)
    entry = fake.redeem_login(call.query.get("js_code", ""))
    if entry is None:
        return error(40029)
    answer: Answer = {"openid": entry.openid, "session_key": entry.session_key}
    if entry.unionid is not None:
        answer["unionid"] = entry.unionid
    return answer


@_json_object
def phone_number(fake: FakeWeChat, call: Incoming) -> Answer:
    body = call.body
    entry = fake.redeem_phone(str(body.get("code", "")))
    if entry is None:
        return error(40029)
    full = entry.phone if entry.country_code == "86" else f"+{entry.country_code} {entry.phone}"
    return ok(phone_info={
        "phoneNumber": full,
        "purePhoneNumber": entry.phone,
        "countryCode": entry.country_code,
        "watermark": {"timestamp": int(fake.clock()), "appid": call.appid},
    })


def user_info(fake: FakeWeChat, call: Incoming) -> Answer:
    """OA user info: registered followers (POST /_fake/users) answer with their unionid, if any."""
    openid = call.query.get("openid", "")
    if not openid:
        return error(40003)
    if openid not in fake.users:
        return {"subscribe": 0, "openid": openid}
    answer: Answer = {"subscribe": 1, "openid": openid, "subscribe_time": int(fake.clock())}
    if fake.users[openid] is not None:
        answer["unionid"] = fake.users[openid]
    return answer


ENDPOINTS = (
    Endpoint("POST", "/cgi-bin/stable_token", stable_token, needs_token=False),
    Endpoint("GET", "/cgi-bin/token", get_token, needs_token=False),
    Endpoint("POST", "/cgi-bin/message/custom/send", custom_send),
    Endpoint("POST", "/cgi-bin/message/template/send", template_send),
    Endpoint("POST", "/cgi-bin/message/subscribe/send", subscribe_send),
    Endpoint("POST", "/cgi-bin/qrcode/create", qrcode_create),
    Endpoint("GET", "/sns/jscode2session", jscode2session, needs_token=False),
    Endpoint("POST", "/wxa/business/getuserphonenumber", phone_number),
    Endpoint("GET", "/cgi-bin/user/info", user_info),
    *(Endpoint(method, path, handler) for method, path, handler in fakemenu.ROUTES),
)
WECHAT_PATHS = frozenset(endpoint.path for endpoint in ENDPOINTS)


# --- control API ----------------------------------------------------------------------------------


class ScriptIn(BaseModel):
    path: str
    errcodes: list[int]


class SlowIn(BaseModel):
    path: str
    seconds: float = Field(ge=0)


class ExpireIn(BaseModel):
    errcode: Literal[40001, 42001] = 42001


class CodeIn(BaseModel):
    code: str = Field(min_length=1)
    openid: str | None = None
    unionid: str | None = None  # omitted: derived from the code; null: no unionid
    session_key: str | None = None


class UserIn(BaseModel):
    openid: str = Field(min_length=1)
    unionid: str | None = None


class PhoneCodeIn(BaseModel):
    code: str = Field(min_length=1)
    phone: str = Field(min_length=1)
    country_code: str = "86"


def _known_path(path: str) -> str:
    if path not in WECHAT_PATHS:
        raise HTTPException(400, f"not a faked WeChat path: {path}; known: {sorted(WECHAT_PATHS)}")
    return path


def _login_code(fake: FakeWeChat, spec: CodeIn) -> LoginCode:
    unionid = spec.unionid if "unionid" in spec.model_fields_set else derived_unionid(spec.code)
    return LoginCode(
        openid=spec.openid or derived_openid(spec.code),
        unionid=unionid,
        session_key=spec.session_key or derived_session_key(spec.code),
        expires_at=fake.clock() + CODE_TTL,
    )


def _add_control_routes(app: FastAPI, fake: FakeWeChat) -> None:
    @app.get("/_fake/calls")
    async def calls(path: str | None = None) -> list[Answer]:
        return [call for call in fake.calls if path is None or call["path"] == path]

    @app.post("/_fake/reset")
    async def reset() -> Answer:
        fake.reset()
        return {"ok": True}

    @app.post("/_fake/script")
    async def script(spec: ScriptIn) -> Answer:
        queue = fake.scripts.setdefault(_known_path(spec.path), deque())
        queue.extend(spec.errcodes)
        return {"ok": True, "path": spec.path, "pending": list(queue)}

    @app.post("/_fake/slow")
    async def slow(spec: SlowIn) -> Answer:
        fake.delays[_known_path(spec.path)] = spec.seconds
        return {"ok": True, "path": spec.path, "seconds": spec.seconds}

    @app.post("/_fake/expire_tokens")
    async def expire_tokens(spec: ExpireIn | None = None) -> Answer:
        errcode = (spec or ExpireIn()).errcode
        return {"ok": True, "errcode": errcode, "tokens": fake.expire_tokens(errcode)}

    @app.post("/_fake/codes")
    async def add_code(spec: CodeIn) -> Answer:
        entry = fake.codes[spec.code] = _login_code(fake, spec)
        return {
            "code": spec.code, "openid": entry.openid, "unionid": entry.unionid,
            "session_key": entry.session_key, "expires_at": entry.expires_at,
        }

    @app.post("/_fake/users")
    async def add_user(spec: UserIn) -> Answer:
        fake.users[spec.openid] = spec.unionid
        return {"openid": spec.openid, "unionid": spec.unionid}

    @app.post("/_fake/phone_codes")
    async def add_phone_code(spec: PhoneCodeIn) -> Answer:
        entry = PhoneCode(spec.phone, spec.country_code, fake.clock() + CODE_TTL)
        fake.phone_codes[spec.code] = entry
        return {"code": spec.code, "phone": entry.phone, "country_code": entry.country_code,
                "expires_at": entry.expires_at}


def _wechat_route(fake: FakeWeChat, endpoint: Endpoint) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def route(request: Request) -> JSONResponse:
        return await fake.serve(endpoint, request)

    route.__name__ = endpoint.handler.__name__
    return route


def create_fake_wechat(*, clock: Clock = time.time) -> FastAPI:
    app = FastAPI(
        title="fake WeChat API", docs_url="/_fake/docs", redoc_url=None,
        swagger_ui_oauth2_redirect_url="/_fake/docs/oauth2-redirect",
        openapi_url="/_fake/openapi.json",
    )
    fake = FakeWeChat(clock)
    app.state.fake = fake
    for endpoint in ENDPOINTS:
        app.add_api_route(endpoint.path, _wechat_route(fake, endpoint), methods=[endpoint.method])
    _add_control_routes(app, fake)
    return app


def fake_of(app: FastAPI) -> FakeWeChat:
    """The state behind an app made by create_fake_wechat, for in-process tests."""
    fake: FakeWeChat = app.state.fake
    return fake
