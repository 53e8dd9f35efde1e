"""The admin API's anomaly queue (bearer ADMIN_TOKEN, actor `token`): list with filters, acknowledge and
resolve with a note. The same storage/anomalies.py services as the console's pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from bot.api.deps import AdminDep, client_of, require_admin
from bot.api.errors import ApiError
from bot.api.validation import INT4_MAX, Moment, PathId, Text
from storage import anomalies, audit
from storage.anomalies import AnomalyFilter, AnomalyStateError, AnomalyUnknownError, NoteInvalidError
from storage.models import Anomaly

router = APIRouter(prefix="/api/admin/anomalies", tags=["admin"], dependencies=[Depends(require_admin)])
Note = Annotated[Text, Field(min_length=anomalies.NOTE_MIN, max_length=anomalies.NOTE_MAX)]


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note


def _out(anomaly: Anomaly) -> dict[str, Any]:
    return {
        "id": anomaly.id, "kind": anomaly.kind, "member_id": anomaly.member_id, "detail": anomaly.detail,
        "state": anomaly.state, "note": anomaly.note, "handled_by": anomaly.handled_by,
        "created_at": anomaly.created_at, "acknowledged_at": anomaly.acknowledged_at,
        "resolved_at": anomaly.resolved_at,
    }


@router.get("")
async def list_anomalies(
    services: AdminDep, kind: Annotated[str | None, Query(max_length=32)] = None,
    state: Literal["open", "acknowledged", "resolved"] | None = None,
    since: Moment | None = None, until: Moment | None = None,
    before: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Newest first; page on with `before` = the last id (returned as `next_before` while more remain)."""
    where = AnomalyFilter(kind=kind or None, state=state, since=since, until=until)
    async with services.db.sessions() as session:
        rows = await anomalies.page(session, where, limit=limit + 1, before_id=before)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [_out(a) for a in rows], "next_before": rows[-1].id if more and rows else None}


async def _move(request: Request, services: AdminDep, anomaly_id: int, to: str, note: str) -> dict[str, Any]:
    now: datetime = services.clock.now()
    try:
        async with services.db.unit_of_work() as session:
            moved = await anomalies.transition(session, audit.TOKEN, anomaly_id, to, note=note, now=now,
                                               client=client_of(request))
    except AnomalyUnknownError:
        raise ApiError(404, "not_found", f"no anomaly {anomaly_id}") from None
    except NoteInvalidError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    except AnomalyStateError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return _out(moved)


@router.post("/{anomaly_id}/acknowledge")
async def acknowledge(anomaly_id: PathId, body: NoteIn, request: Request, services: AdminDep) -> dict[str, Any]:
    return await _move(request, services, anomaly_id, anomalies.ACKNOWLEDGED, body.note)


@router.post("/{anomaly_id}/resolve")
async def resolve(anomaly_id: PathId, body: NoteIn, request: Request, services: AdminDep) -> dict[str, Any]:
    return await _move(request, services, anomaly_id, anomalies.RESOLVED, body.note)
