"""POST /api/store/coupons/{code}/use: a store's till verifies (核销) a coupon with the store's own
credential, `Authorization: Bearer <store code>:<secret>`. The use goes through Rewards.use, which
records the store on the redemption, and is audited `coupon.use` as `store:<code>`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from bot.api.deps import ServicesDep, client_of
from bot.api.errors import ApiError
from handlers.core.context import Services
from storage import audit, coupons, stores
from storage.errors import ConflictError, NotFoundError
from storage.members import masked_phone
from storage.models import Store
from storage.rewards import CodeUsedError

router = APIRouter(prefix="/api/store", tags=["store"])
store_bearer = HTTPBearer(scheme_name="StoreCredential", auto_error=False,
                          description="`<store code>:<secret>`, the secret shown once when the store was made")


async def require_store(
    found: ServicesDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(store_bearer)],
) -> Store:
    """The store whose credential this is: 401 unknown or missing, 403 another store's or a closed store's."""
    credential = stores.parse_bearer(credentials.credentials) if credentials is not None else None
    if credential is None:
        raise ApiError(401, "unauthorized", "`Authorization: Bearer <store code>:<secret>` is required")
    async with found.db.sessions() as session:
        try:
            store = await stores.authenticate(session, credential)
        except stores.StoreCredentialError:
            raise ApiError(403, "forbidden", f"this credential is not store {credential.code}'s") from None
    if store is None:
        raise ApiError(401, "unauthorized", "unknown or revoked store credential")
    return store


StoreDep = Annotated[Store, Depends(require_store)]


class StoreCouponUse(BaseModel):
    code: str
    status: str
    used_at: datetime | None
    store: str
    reward: str
    owner: str  # the member's phone, masked


async def _refusal(services: Services, code: str, exc: ConflictError) -> JSONResponse:
    """409 {"error", "message", "state", "used_at", "store"}: when and where a used coupon was used, or
    the state of a cancelled or expired one."""
    async with services.db.sessions() as session:
        found = await coupons.find(session, code)
    if found is None:
        return JSONResponse({"error": "conflict", "message": str(exc)}, status_code=409)
    row, now = found.redemption, services.clock.now()
    state = coupons.state(row, now)
    body: dict[str, str | None] = {"error": "conflict", "state": state, "used_at": None, "store": None}
    if isinstance(exc, CodeUsedError) or state == "used":
        when = row.used_at.isoformat() if row.used_at else None
        body |= {"error": "already_used", "used_at": when, "store": row.store,
                 "message": f"coupon {row.code} was already used at {when} in store {row.store or '-'}"}
    else:
        body["message"] = f"coupon {row.code} is {state}"
    return JSONResponse(body, status_code=409)


@router.post("/coupons/{code}/use", response_model=StoreCouponUse)
async def use_coupon(
    code: Annotated[str, Path(min_length=1, max_length=64)], request: Request, services: ServicesDep,
    store: StoreDep,
) -> StoreCouponUse | JSONResponse:
    now = services.clock.now()
    by = f"store:{store.code}"
    try:
        async with services.db.unit_of_work() as session:
            used = await services.rewards.use(session, code, now, store=store.code, by=by)
            await audit.record(session, audit.Actor(by, "store", store.code), "coupon.use", f"redemption:{used.id}",
                               now=now, before={"status": "issued"},
                               after={"code": used.code, "status": used.status, "store": store.code},
                               client=client_of(request))
    except NotFoundError:
        raise ApiError(404, "not_found", f"coupon {code} does not exist") from None
    except ConflictError as exc:
        return await _refusal(services, code, exc)
    async with services.db.sessions() as session:
        found = await coupons.find(session, used.code)
    owner = found.owner if found else None
    return StoreCouponUse(code=used.code, status=used.status, used_at=used.used_at, store=store.code,
                          reward=found.reward.name if found else "", owner=masked_phone(services.pii, owner) or "")
