"""The guided merge of a duplicate membership: a preview of what moves, then the merge in one transaction
(storage/merge.py). Admins only (`members.merge`); refusals come back as the form with the reason."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse

from bot.console import texts
from bot.console.auth import ConsoleSession, needs, needs_checked
from bot.console.pages import render
from storage import merge
from storage.anomalies import NoteInvalidError
from storage.merge import MergeRefusedError, Preview

router = APIRouter()
Merger = Annotated[ConsoleSession, Depends(needs("members.merge"))]
CheckedMerger = Annotated[ConsoleSession, Depends(needs_checked("members.merge"))]


def _id(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and 0 < len(raw) < 10 else None


def refusal_text(exc: MergeRefusedError) -> str:
    return {
        "same": texts.MERGE_SAME, "no_unionid": texts.MERGE_NO_UNIONID,
        "merged": texts.MERGE_ALREADY.format(id=exc.member_id),
        "unknown": texts.MERGE_UNKNOWN.format(id=exc.member_id),
    }[exc.reason]


def _page(request: Request, console: ConsoleSession, keep: str, drop: str, *, status: int = 200,
          **context: Any) -> HTMLResponse:
    return render(request, "merge.html", console, status=status, active="members", keep=keep, drop=drop,
                  **context)


async def _preview(console: ConsoleSession, keep: int, drop: int) -> Preview:
    services = console.services
    async with services.db.sessions() as session:
        return await merge.preview(session, services.ledger, keep, drop, services.clock.now())


@router.get("/admin/members/merge", response_class=HTMLResponse)
async def merge_page(
    request: Request, console: Merger, keep: str = "", drop: str = "", anomaly: str = "",
) -> HTMLResponse:
    if not keep and not drop:
        return _page(request, console, keep, drop)
    keep_id, drop_id = _id(keep), _id(drop)
    if keep_id is None or drop_id is None:
        return _page(request, console, keep, drop, status=422, error=texts.MERGE_ASK)
    try:
        plan = await _preview(console, keep_id, drop_id)
    except MergeRefusedError as exc:
        return _page(request, console, keep, drop, status=409 if exc.reason == "merged" else 422,
                     error=refusal_text(exc))
    return _page(request, console, keep, drop, plan=plan, anomaly=_id(anomaly))


@router.post("/admin/members/merge", response_class=HTMLResponse)
async def merge_members(
    request: Request, console: CheckedMerger, keep: Annotated[str, Form(max_length=12)] = "",
    drop: Annotated[str, Form(max_length=12)] = "", note: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    keep_id, drop_id = _id(keep), _id(drop)
    if keep_id is None or drop_id is None:
        return _page(request, console, keep, drop, status=422, error=texts.MERGE_ASK)
    services = console.services
    try:
        async with services.db.unit_of_work() as session:
            done = await merge.merge(session, services.ledger, console.actor, keep_id, drop_id, note=note,
                                     now=services.clock.now(), client=console.client)
    except MergeRefusedError as exc:
        return _page(request, console, keep, drop, status=409 if exc.reason == "merged" else 422,
                     error=refusal_text(exc))
    except NoteInvalidError:
        plan = await _preview(console, keep_id, drop_id)
        return _page(request, console, keep, drop, status=422, plan=plan, note_error=texts.ANOMALY_NOTE_INVALID,
                     typed=note)
    return _page(request, console, keep, drop, done=done,
                 flash=texts.MERGE_DONE.format(drop=drop_id, keep=keep_id, balance=done.balance))
