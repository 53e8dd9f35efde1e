"""/simulator: the page and its JSON endpoints (send as a member, poll pushes, pick people, time travel).
create_app includes the router only when the simulator is enabled (demo mode or SIMULATOR=1): else 404."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field, model_validator

from bot.demo import DEMO_MANAGER
from bot.simulator import people, texts, wire
from bot.simulator.wechatside import WeChatSide
from scheduler.jobs import JOBS
from storage import staff
from storage.menu import Menu

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/simulator", include_in_schema=False)
OPENID = r"^[A-Za-z0-9_-]{6,64}$"
TRAVEL_JOBS = (*JOBS, "sender")


class Say(BaseModel):
    """One thing the member does: a message, a menu press, a follow, a scan, an image, a location."""

    openid: str = Field(pattern=OPENID)
    kind: Literal["text", "click", "subscribe", "unsubscribe", "scan", "image", "location"]
    content: str = Field(default="", max_length=600)
    key: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_\-]*$")
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _complete(self) -> Say:
        if self.kind == "text" and not self.content.strip():
            raise ValueError("a text message needs content")
        if self.kind in ("click", "scan") and not self.key:
            raise ValueError(f"a {self.kind} needs key (the menu key or the QR scene)")
        if self.kind == "location" and (self.latitude is None or self.longitude is None):
            raise ValueError("a location needs latitude and longitude")
        return self


class Travel(BaseModel):
    job: Literal[TRAVEL_JOBS]  # type: ignore[valid-type]  # the names are known at import
    at: datetime

    @model_validator(mode="after")
    def _aware(self) -> Travel:
        if self.at.tzinfo is None:
            raise ValueError("at needs a time zone offset, e.g. 2026-11-22T09:00:00+08:00")
        return self


def fields_for(side: WeChatSide, say: Say) -> dict[str, Any]:
    if say.kind == "text":
        return side.text(say.openid, say.content)
    if say.kind == "click":
        return side.event(say.openid, "CLICK", say.key)
    if say.kind == "subscribe":
        return side.event(say.openid, "subscribe", f"qrscene_{say.key}" if say.key else None)
    if say.kind == "scan":
        return side.event(say.openid, "SCAN", say.key)
    if say.kind == "image":
        return side.image(say.openid, "/simulator/static/photo.svg")
    if say.kind == "location":
        return side.location(say.openid, say.latitude or 0.0, say.longitude or 0.0, texts.LOCATION_LABEL)
    return side.event(say.openid, "unsubscribe")


def click_keys(menu: Menu) -> set[str]:
    buttons = [b for top in menu.buttons for b in (top.sub_button or (top,))]
    return {b.key for b in buttons if b.type == "click"}


@router.get("", response_class=HTMLResponse)
async def page(request: Request) -> HTMLResponse:
    settings = request.app.state.settings
    local = request.app.state.clock.now().astimezone(settings.tz)
    offset = local.strftime("%z")
    config = {"channels": texts.CHANNELS, "offset": f"{offset[:3]}:{offset[3:]}", "manager": DEMO_MANAGER,
              "labels": {"noReply": texts.NO_REPLY, "qr": texts.QR_CODE, "error": texts.ERROR,
                         "newMember": texts.NEW_MEMBER, "manager": texts.MANAGER}}
    context = {"t": texts, "jobs": TRAVEL_JOBS, "demo": settings.demo, "safe_mode": settings.safe_mode,
               "now_local": local.strftime("%Y-%m-%dT%H:%M"), "config": config}
    return templates.TemplateResponse(request, "simulator.html", context)


@router.get("/api/menu")
async def menu(request: Request, openid: str = Query(pattern=OPENID)) -> dict[str, Any]:
    """The menu this member sees: the staff menu for staff (their WeChat tag), else the default one."""
    services = request.app.state.services
    async with services.db.sessions() as session:
        role = await staff.role_of(session, openid)
    chosen = services.rules.staff_menu if role else services.rules.menu
    return {"staff": role is not None, **chosen.as_json()}


@router.post("/api/say")
async def say(request: Request, body: Say) -> dict[str, Any]:
    if body.kind == "click":
        rules = request.app.state.services.rules
        if body.key not in click_keys(rules.menu) | click_keys(rules.staff_menu):
            raise HTTPException(422, f"unknown menu key {body.key!r}")
    side = wire.wechat_side(request.app.state.settings, request.app.state.clock)
    try:
        bubble = await wire.deliver(request.app, fields_for(side, body))
    except wire.WebhookRefused as exc:
        raise HTTPException(502, f"the webhook answered {exc.status}: {exc.detail}") from None
    return {"reply": bubble, "safe_mode": request.app.state.settings.safe_mode}


@router.get("/api/pushes")
async def pushes(request: Request, openid: str = Query(pattern=OPENID), after: int = Query(0, ge=0)) -> dict[str, Any]:
    found = await people.pushes_for(request.app.state.services.db, openid, after)
    return {"pushes": found.items, "last": found.last}


@router.get("/api/people")
async def who(request: Request) -> dict[str, Any]:
    return {"people": await people.people(request.app.state.services.db)}


@router.post("/api/travel")
async def travel(request: Request, body: Travel) -> dict[str, Any]:
    settings = request.app.state.settings
    if not settings.demo:
        raise HTTPException(403, "time travel runs jobs as of another time: demo mode only")
    handled, sent = await people.travel(settings, body.job, body.at)
    return {"job": body.job, "at": body.at.isoformat(), "handled": handled, "sent": sent,
            "message": texts.TRAVEL_DONE.format(job=body.job, at=body.at.isoformat(), handled=handled, sent=sent)}


def install(app: FastAPI) -> None:
    """Mount the simulator (the caller decides whether it is enabled)."""
    app.include_router(router)
    app.mount("/simulator/static", StaticFiles(directory=HERE / "static"), name="simulator-static")
