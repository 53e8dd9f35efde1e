"""The 群发 screen: build a broadcast (audience, content, kind, send time, deadline, an optional experiment),
preview its numbers (storage/broadcasts.preview: nothing stored), confirm to send it (create, audited), follow
its rows by state, cancel it; and upload an openid list an audience can name. Every refusal comes back on the
form beside its field, nothing stored. Thin over storage/broadcasts.py and storage/audiences.py, as the JSON
API is."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlmodel import col

from bot.api.deps import SettingsDep
from bot.api.validation import INT4_MAX, PathId
from bot.console import texts
from bot.console.auth import ConsoleError, ConsoleSession, needs, needs_checked
from bot.console.forms import local_time
from bot.console.pages import render
from bot.wechat import pushtexts
from storage import audiences, broadcasts, experiments
from storage.audiences import SEGMENTS, Audience
from storage.errors import InvalidFieldError
from storage.models import Broadcast, Campaign, Experiment, MemberList

router = APIRouter(prefix="/admin/broadcasts")
Reader = Annotated[ConsoleSession, Depends(needs("broadcasts.read"))]
Writer = Annotated[ConsoleSession, Depends(needs_checked("broadcasts.write"))]
LOCAL_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M")
FIELD_OF = {"list": "list_id", "article": "title"}  # a storage field's last part -> the form's field


def _local(raw: str, field: str, tz: ZoneInfo) -> datetime | None:
    """A local `YYYY-MM-DDTHH:MM` (a datetime-local input) as an instant; None when blank."""
    raw = raw.strip()
    if not raw:
        return None
    for pattern in LOCAL_FORMATS:
        try:
            return datetime.strptime(raw, pattern).replace(tzinfo=tz)
        except ValueError:
            continue
    raise InvalidFieldError(field, "not a date and time")


def _whole(raw: str, field: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) < 10):
        raise InvalidFieldError(field, "not a whole number")
    return int(raw)


def form_key(field: str) -> str:
    """The form field a storage refusal names (`audience.tiers` -> tiers, `content.article.url` -> url)."""
    last = field.rsplit(".", 1)[-1] if field not in ("audience", "content") else field
    key = FIELD_OF.get(last, last)
    return key if key in texts.BROADCAST_ERRORS else "audience"


async def read_form(request: Request) -> tuple[dict[str, str], list[str], list[str]]:
    """The form's single fields, and the tiers and segments ticked."""
    form = await request.form()
    values = {key: str(value)[:2000] for key, value in form.items() if key not in ("csrf", "tiers", "segments")}
    return values, [str(v) for v in form.getlist("tiers")], [str(v) for v in form.getlist("segments")]


async def audience_of(console: ConsoleSession, values: dict[str, str], tiers: list[str],
                      segments: list[str]) -> Audience:
    """The audience the picker (templates/_audience.html) describes, checked; InvalidFieldError names the field."""
    campaign_id = None
    if code := values.get("campaign", "").strip():
        async with console.services.db.sessions() as session:
            campaign_id = await session.scalar(select(col(Campaign.id)).where(col(Campaign.code) == code.upper()))
        if campaign_id is None:
            raise InvalidFieldError("audience.campaign", "unknown campaign")
    audience = Audience(tuple(tiers), tuple(segments), campaign_id, _whole(values.get("list_id", ""), "list_id"),
                        _whole(values.get("active_days", ""), "audience.active_days"))
    return audiences.checked(audience, [t.name for t in console.services.rules.tiers])


async def _draft(console: ConsoleSession, values: dict[str, str], tiers: list[str],
                 segments: list[str]) -> tuple[broadcasts.Draft, int | None]:
    """The checked draft and the chosen experiment from the form; InvalidFieldError names the bad field."""
    services = console.services
    audience = await audience_of(console, values, tiers, segments)
    if values.get("content_type") == "article":
        article = {key: values.get(key, "") for key in ("title", "description", "picurl", "url")}
        content = broadcasts.checked_content(None, article)
    else:
        content = broadcasts.checked_content(values.get("text", ""), None)
    draft = broadcasts.checked(
        name=values.get("name", ""), kind=values.get("kind", ""), audience=audience, content=content,
        send_at=_local(values.get("send_at", ""), "send_at", services.tz),
        deadline=_local(values.get("deadline", ""), "deadline", services.tz), request_id=values.get("request_id", ""),
        tiers=[t.name for t in services.rules.tiers], now=services.clock.now(),
    )
    return draft, _whole(values.get("experiment_id", ""), "experiment_id")


def picker(console: ConsoleSession, lists: list[MemberList]) -> dict[str, Any]:
    """What templates/_audience.html needs besides the form's values."""
    return {"tier_names": [t.name for t in console.services.rules.tiers], "segment_names": SEGMENTS, "lists": lists}


@router.get("", response_class=HTMLResponse)
async def list_broadcasts(
    request: Request, console: Reader, done: Annotated[str, Query(max_length=16)] = "",
    listed: Annotated[int | None, Query(alias="list", ge=1, le=INT4_MAX)] = None,
) -> HTMLResponse:
    flash = texts.BROADCAST_DONE.get(done)
    if listed is not None:
        async with console.services.db.sessions() as session:
            found = await session.get(MemberList, listed)
        if found is not None:
            flash = texts.LIST_DONE.format(name=found.name, size=found.size, unknown=found.unknown)
    return await _page(request, console, flash=flash,
                       values={"kind": "campaign", "content_type": "text", "list_id": str(listed or "")})


@router.post("", response_model=None)
async def build(request: Request, console: Writer, settings: SettingsDep) -> Response:
    """`action=preview` shows the numbers and the confirm button; `action=send` creates the broadcast."""
    values, tiers, segments = await read_form(request)
    services = console.services
    try:
        draft, experiment_id = await _draft(console, values, tiers, segments)
        if values.get("action") != "send":
            async with services.db.sessions() as session:
                seen = await broadcasts.preview(
                    session, draft, services.clock.now(), rules=services.rules, tz=services.tz,
                    templates=settings.wechat_template_ids,
                    subscribe_templates=settings.miniprogram_subscribe_template_ids,
                )
                await broadcasts.nonempty(session, draft, services.clock.now())
                await broadcasts.running_experiment(session, experiment_id)
            sample = pushtexts.text_for(draft.kind, seen.payload)
            return await _page(request, console, values=values, tiers=tiers, segments=segments, preview=seen,
                               sample=sample)
        async with services.db.unit_of_work() as session:
            made, _ = await broadcasts.create(session, draft, actor=console.actor, now=services.clock.now(),
                                              client=console.client, experiment_id=experiment_id)
            made_id = made.id
    except InvalidFieldError as exc:
        key = form_key(exc.field)
        return await _page(request, console, values=values, tiers=tiers, segments=segments,
                           errors={key: texts.BROADCAST_ERRORS[key]}, status=422)
    return RedirectResponse(f"/admin/broadcasts/{made_id}?done=created", status_code=303)


@router.post("/lists", response_model=None)
async def upload_list(request: Request, console: Writer) -> Response:
    form = await request.form()
    name, raw = str(form.get("list_name", ""))[:100], str(form.get("openids", ""))
    try:
        async with console.services.db.unit_of_work() as session:
            listed = await audiences.upload(session, name, raw.split(), actor=console.actor,
                                            now=console.services.clock.now(), client=console.client)
            list_id = listed.id
    except InvalidFieldError as exc:
        key = "list_name" if exc.field == "name" else "openids"
        return await _page(request, console, values={"kind": "campaign", "content_type": "text", "list_name": name},
                           list_errors={key: texts.LIST_ERRORS["name" if key == "list_name" else "openids"]},
                           status=422)
    return RedirectResponse(f"/admin/broadcasts?list={list_id}", status_code=303)


@router.get("/{broadcast_id}", response_class=HTMLResponse)
async def one(request: Request, console: Reader, broadcast_id: PathId,
              done: Annotated[str, Query(max_length=16)] = "") -> HTMLResponse:
    async with console.services.db.sessions() as session:
        found = await session.get(Broadcast, broadcast_id)
        if found is None:
            raise ConsoleError(404, texts.NOT_FOUND)
        rows = await broadcasts.progress(session, broadcast_id)
        described = await _described(session, Audience.from_json(found.audience))
        experiment = await session.get(Experiment, found.experiment_id) if found.experiment_id else None
    content = broadcasts.content_of(found)
    sample = pushtexts.text_for(found.kind, broadcasts.payload_of(content, found.id))
    return render(request, "broadcast.html", console, active="broadcasts", broadcast=found, rows=rows,
                  audience=described, content=content, sample=sample, experiment=experiment,
                  flash=texts.BROADCAST_DONE.get(done), local=local_time(console.services.tz),
                  cancellable=found.status != broadcasts.CANCELLED
                  and (found.status != broadcasts.SENT or rows.get("pending", 0) > 0))


@router.post("/{broadcast_id}/cancel", response_model=None)
async def cancel(console: Writer, broadcast_id: PathId) -> Response:
    try:
        async with console.services.db.unit_of_work() as session:
            await broadcasts.cancel(session, broadcast_id, actor=console.actor, now=console.services.clock.now(),
                                    client=console.client)
    except InvalidFieldError:
        raise ConsoleError(404, texts.NOT_FOUND) from None
    return RedirectResponse(f"/admin/broadcasts/{broadcast_id}?done=cancelled", status_code=303)


async def _described(session: Any, audience: Audience) -> list[tuple[str, str]]:
    """The audience as the operator reads it: (label, value) per filter given."""
    out: list[tuple[str, str]] = []
    if audience.tiers:
        out.append((texts.BROADCAST_FIELDS["tiers"], "、".join(audience.tiers)))
    if audience.segments:
        out.append((texts.BROADCAST_FIELDS["segments"], "、".join(audience.segments)))
    if audience.campaign_id is not None:
        campaign = await session.get(Campaign, audience.campaign_id)
        out.append((texts.BROADCAST_FIELDS["campaign"], campaign.code if campaign else str(audience.campaign_id)))
    if audience.list_id is not None:
        listed = await session.get(MemberList, audience.list_id)
        out.append((texts.BROADCAST_FIELDS["list_id"], listed.name if listed else str(audience.list_id)))
    if audience.active_days is not None:
        out.append((texts.BROADCAST_FIELDS["active_days"], str(audience.active_days)))
    return out or [(texts.BROADCAST_FIELDS["audience"], texts.BROADCAST_ANY)]


async def _page(
    request: Request, console: ConsoleSession, *, flash: str | None = None, values: dict[str, str] | None = None,
    tiers: list[str] | None = None, segments: list[str] | None = None, errors: dict[str, str] | None = None,
    list_errors: dict[str, str] | None = None, preview: broadcasts.Preview | None = None, sample: str = "",
    status: int = 200,
) -> HTMLResponse:
    services = console.services
    async with services.db.sessions() as session:
        found = await broadcasts.recent(session)
        lists = await audiences.lists(session)
        running = [e for e in await experiments.newest(session)
                   if e.target == "broadcast" and e.status == experiments.RUNNING]
    return render(request, "broadcasts.html", console, status=status, active="broadcasts", found=found,
                  flash=flash, values=values or {}, chosen_tiers=tiers or [], chosen_segments=segments or [],
                  errors=errors or {}, list_errors=list_errors or {}, preview=preview, sample=sample,
                  running=running, **picker(console, lists), kinds=texts.BROADCAST_KINDS, local=local_time(services.tz))
