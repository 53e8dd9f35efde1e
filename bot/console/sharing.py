"""The sharing screen: operators' channel QR codes (`chan_<name>`, permanent; made by WeChat in production, a
placeholder in demo mode; `channel.create` audited) and the sharing funnel per sharer and per channel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse

from bot.console import texts
from bot.console.auth import ConsoleSession, needs, needs_checked
from bot.console.forms import local_time
from bot.console.pages import render
from storage import audit, sharing
from storage.errors import ConflictError

router = APIRouter(prefix="/admin/sharing")
Reader = Annotated[ConsoleSession, Depends(needs("sharing.read"))]
Posting = Annotated[ConsoleSession, Depends(needs_checked("sharing.write"))]
Field = Annotated[str, Form(max_length=200)]


@router.get("", response_class=HTMLResponse)
async def sharing_page(request: Request, console: Reader) -> HTMLResponse:
    return await _page(request, console)


def _check(name: str, label: str) -> dict[str, str]:
    errors = {}
    if not sharing.CHANNEL_NAME.match(name):
        errors["name"] = texts.CHANNEL_NAME_INVALID
    if not label or len(label) > 60:
        errors["label"] = texts.CHANNEL_LABEL_REQUIRED
    return errors


@router.post("/channels", response_class=HTMLResponse)
async def add_channel(request: Request, console: Posting, name: Field = "", label: Field = "") -> HTMLResponse:
    values = {"name": name.strip().lower(), "label": label.strip()}
    errors = _check(**values)
    if errors:
        return await _page(request, console, values=values, errors=errors, status=422)
    services = console.services
    async with services.db.sessions() as session:
        taken = await sharing.channel_by_name(session, values["name"]) is not None
    if taken:
        return await _page(request, console, values=values, errors={"name": texts.CHANNEL_NAME_TAKEN}, status=409)
    qr_url: str | None = None
    if services.qr is not None:  # permanent: a poster on a shop wall outlives any 30 days
        link, demo = await services.qr.make(sharing.channel_scene(values["name"]))
        qr_url = (link + texts.CHANNEL_QR_DEMO if demo else link) if link else None
    now = services.clock.now()
    try:
        async with services.db.unit_of_work() as session:
            channel = await sharing.add_channel(
                session, values["name"], values["label"], qr_url, console.actor.name, now,
            )
            await audit.record(session, console.actor, "channel.create", f"channel:{channel.name}", now=now,
                               after={"name": channel.name, "label": channel.label, "qr": qr_url is not None},
                               client=console.client)
    except ConflictError:  # created by someone else meanwhile
        return await _page(request, console, values=values, errors={"name": texts.CHANNEL_NAME_TAKEN}, status=409)
    return await _page(request, console, flash=texts.CHANNEL_CREATED.format(name=channel.name))


async def _page(
    request: Request, console: ConsoleSession, *, flash: str | None = None, values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None, status: int = 200,
) -> HTMLResponse:
    async with console.services.db.sessions() as session:
        channels = await sharing.all_channels(session)
        report = await sharing.sharing_report(session, console.services.clock.now())
    share = "—" if report.referral_share_30d is None else f"{report.referral_share_30d:.1%}"
    return render(request, "sharing.html", console, status=status, active="sharing", channels=channels,
                  flash=flash, values=values or {}, errors=errors or {}, scene=sharing.channel_scene,
                  local=local_time(console.services.tz), report=report, share=share)
