"""The audit log screen: entries newest first, filtered by actor, action, target and local date range,
paged by keyset, each entry's before/after shown as a key/value diff. Read only: the table is
append-only and nothing here writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from bot.api.validation import INT4_MAX
from bot.console.auth import ConsoleSession, needs
from bot.console.dates import end_of, formatter, parse_day, start_of
from bot.console.forms import read_field
from bot.console.pages import render
from storage import audit
from storage.models import AuditEntry

router = APIRouter()
PAGE = 50
Reader = Annotated[ConsoleSession, Depends(needs("audit.read"))]
Text = Annotated[str, Query(max_length=120)]


@dataclass(frozen=True)
class Change:
    field: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _shown(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _decoded(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def diff(entry: AuditEntry) -> list[Change]:
    """before/after as rows of (field, before, after); a value that is not an object is one row."""
    before, after = _decoded(entry.before), _decoded(entry.after)
    if before is None and after is None:
        return []
    if isinstance(before, dict | None) and isinstance(after, dict | None):
        was, now = before or {}, after or {}
        return [Change(key, _shown(was.get(key)), _shown(now.get(key))) for key in sorted({*was, *now})]
    return [Change("", _shown(before), _shown(after))]



@router.get("/admin/audit", response_class=HTMLResponse)
async def audit_log(
    request: Request, console: Reader, actor: Text = "", action: Text = "", target: Text = "",
    since: Text = "", until: Text = "", before_id: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
) -> HTMLResponse:
    tz = console.services.tz
    errors: dict[str, str] = {}
    first, last = read_field(parse_day, since, "since", errors), read_field(parse_day, until, "until", errors)
    form = {"actor": actor.strip(), "action": action.strip(), "target": target.strip(), "since": since,
            "until": until}
    async with console.services.db.sessions() as session:
        rows: list[AuditEntry] = []
        if not errors:
            where = audit.AuditFilter(actor=form["actor"] or None, action=form["action"] or None,
                                      target=form["target"] or None, since=start_of(first, tz) if first else None,
                                      until=end_of(last, tz) if last else None)
            rows = list(await audit.entries(session, where, limit=PAGE + 1, before_id=before_id))
    older = rows[PAGE - 1].id if len(rows) > PAGE else None
    return render(request, "audit.html", console, status=422 if errors else 200, active="audit",
                  rows=[(row, diff(row)) for row in rows[:PAGE]], form=form, errors=errors,
                  older=older, paged=before_id is not None, when=formatter(tz))
