"""What a valid reward and a valid code-pool file are: the one set of rules the admin API and the
console both validate with (the console feeds its form through the same models); and the one import of
a code-pool file, for the admin API, the console and `wxbot codes import`."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.api.validation import Count, Moment, Text
from storage import audit
from storage.models import Reward
from storage.rewards import Rewards

Stock = Annotated[StrictInt, Field(ge=0, le=10_000_000)]
Limit = Annotated[Count, Field(gt=0)]
Name = Annotated[Text, Field(min_length=1, max_length=40)]
Description = Annotated[Text, Field(max_length=200)]
Cost = Annotated[StrictInt, Field(gt=0, le=10_000_000)]
Days = Annotated[StrictInt, Field(gt=0, le=3650)]
KINDS = ("coupon", "code_pool", "gift")
CODE_MAX = 64
REQUIRED = ("name", "description", "cost", "validity_days", "active")  # no "unset" for these columns


def _tier_known(value: str | None, info: ValidationInfo) -> str | None:
    """Checked against the programme's tiers, which come as the validation context; without one (the
    request body's shape check), left to the second validation that has it."""
    if info.context is None:
        return value
    tiers: Sequence[str] = info.context.get("tiers", ())
    if value and value not in tiers:
        raise PydanticCustomError("tier_unknown", "min_tier must be one of {tiers}", {"tiers": list(tiers)})
    return value or None


def _ends_after_starts(starts: datetime | None, ends: datetime | None) -> None:
    if starts is not None and ends is not None and ends <= starts:
        raise PydanticCustomError("ends_before_starts", "ends_at must be after starts_at")


class RewardIn(BaseModel):
    """A whole reward: the API's create body, and the console's create and edit forms."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description = ""
    cost: Cost
    kind: Literal["coupon", "code_pool", "gift"] = "coupon"
    stock: Stock | None = None
    per_member_limit: Limit | None = None
    total_limit: Limit | None = None
    min_tier: Text | None = None
    validity_days: Days = 30
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    active: bool = True

    _tier = field_validator("min_tier")(_tier_known)

    @model_validator(mode="after")
    def _window(self) -> RewardIn:
        _ends_after_starts(self.starts_at, self.ends_at)
        return self


class RewardPatch(BaseModel):
    """Some fields of a reward (the API's PATCH); the kind of a reward never changes."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Description | None = None
    cost: Cost | None = None
    stock: Stock | None = None
    per_member_limit: Limit | None = None
    total_limit: Limit | None = None
    min_tier: Text | None = None
    validity_days: Days | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    active: bool | None = None

    _tier = field_validator("min_tier")(_tier_known)

    @model_validator(mode="after")
    def _window(self) -> RewardPatch:
        _ends_after_starts(self.starts_at, self.ends_at)
        return self

    def nulls(self) -> list[str]:
        """The fields set to null that cannot be (null clears only an optional field)."""
        return [key for key in REQUIRED if key in self.model_fields_set and getattr(self, key) is None]


INT_FIELDS = ("cost", "stock", "per_member_limit", "total_limit", "validity_days")
MOMENT_FIELDS = ("starts_at", "ends_at")


def form_values(form: dict[str, str], tz: ZoneInfo) -> dict[str, Any]:
    """A console form's strings as the model's input: blank is unset, digits are numbers, a local
    `datetime-local` value is an instant in the programme's zone. What cannot be read is passed on
    as typed, so the model names the field that is wrong."""
    values: dict[str, Any] = {}
    for key, raw in form.items():
        text = raw.strip()
        if key in INT_FIELDS or key in MOMENT_FIELDS or key == "min_tier":
            if not text:
                values[key] = None
                continue
        if key in INT_FIELDS:
            values[key] = int(text) if text.lstrip("-").isdigit() and len(text) < 12 else text
        elif key in MOMENT_FIELDS:
            values[key] = _local_moment(text, tz)
        elif key == "active":
            values[key] = text in ("1", "on", "true")
        else:
            values[key] = raw if key == "description" else text
    values.setdefault("active", False)  # an unticked checkbox is not sent at all
    return values


def _local_moment(text: str, tz: ZoneInfo) -> datetime | str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


# --- code-pool files ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RefusedRow:
    line: int
    code: str
    reason: str  # empty | too_long | nul | duplicate | taken


@dataclass
class CodeFile:
    """A code-pool CSV read row by row: the codes to add (with their lines) and the rows refused."""

    codes: list[tuple[int, str]] = field(default_factory=list)
    refused: list[RefusedRow] = field(default_factory=list)

    @property
    def received(self) -> int:
        return len(self.codes) + len(self.refused)


def read_code_file(text: str) -> CodeFile:
    """One code per row in the first column; a first row `code` is a header; wholly blank lines are
    skipped. A row is refused when its code is empty, longer than 64, holds a NUL, or repeats an
    earlier row of the file. Raises csv.Error on a malformed file."""
    found = CodeFile()
    first_line: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        line = reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        code = row[0].strip()
        if not found.received and code.lower() == "code":
            continue
        reason = _code_refusal(code, first_line)
        if reason:
            found.refused.append(RefusedRow(line, code.replace("\x00", "\\0")[:80], reason))
        else:
            first_line[code] = line
            found.codes.append((line, code))
    return found


def _code_refusal(code: str, seen: dict[str, int]) -> str | None:
    if not code:
        return "empty"
    if "\x00" in code:
        return "nul"
    if len(code) > CODE_MAX:
        return "too_long"
    if code in seen:
        return "duplicate"
    return None


def mark_taken(found: CodeFile, taken: set[str]) -> CodeFile:
    """The file once the pool has answered: codes it already holds are refused as `taken`."""
    kept = [(line, code) for line, code in found.codes if code not in taken]
    refused = found.refused + [RefusedRow(line, code, "taken") for line, code in found.codes if code in taken]
    return CodeFile(kept, sorted(refused, key=lambda r: r.line))


async def import_code_file(
    session: AsyncSession, rewards: Rewards, reward_id: int, found: CodeFile, actor: audit.Actor, now: datetime,
    client: str | None = None,
) -> CodeFile:
    """Add the file's valid codes to the reward's pool, in the caller's transaction, audited
    (`reward.codes_import` with the counts, never the codes: they are coupons). Returns the file as the
    pool answered it (codes it already held refused as `taken`). NotFoundError for an unknown reward,
    ConflictError for one that is not a code pool."""
    taken = await rewards.add_codes(session, reward_id, [code for _, code in found.codes])
    result = mark_taken(found, taken)
    await audit.record(session, actor, "reward.codes_import", f"reward:{reward_id}", now=now, client=client,
                       after={"received": result.received, "added": len(result.codes),
                              "refused": len(result.refused)})
    return result


# --- what an audit entry records of a reward ------------------------------------------------------------

FIELDS = tuple(RewardIn.model_fields)


def fields_of(reward: Any) -> dict[str, Any]:
    """A reward's editable fields as they are stored."""
    return {key: getattr(reward, key) for key in FIELDS}


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that changed, before and after."""
    changed = [key for key in after if after[key] != before.get(key)]
    return {k: before.get(k) for k in changed}, {k: after[k] for k in changed}


async def add_reward(
    session: AsyncSession, values: dict[str, Any], actor: audit.Actor, now: datetime, client: str | None = None,
) -> Reward:
    """A new reward from checked values, audited `reward.create` with every field, in the caller's
    transaction: the admin API's and the console's one way of making one."""
    reward = Reward(**values, created_at=now)
    session.add(reward)
    await session.flush()
    await audit.record(session, actor, "reward.create", f"reward:{reward.id}", now=now, after=fields_of(reward),
                       client=client)
    return reward


async def change_reward(
    session: AsyncSession, reward: Reward, values: dict[str, Any], action: str, actor: audit.Actor, now: datetime,
    client: str | None = None,
) -> bool:
    """Set these fields of a (loaded) reward and audit `action` with only the fields that changed, before
    and after; nothing is audited when nothing changed. Returns whether anything did."""
    before = fields_of(reward)
    for key, value in values.items():
        setattr(reward, key, value)
    old, new = diff(before, fields_of(reward))
    if not new:
        return False
    await audit.record(session, actor, action, f"reward:{reward.id}", now=now, before=old, after=new, client=client)
    return True
