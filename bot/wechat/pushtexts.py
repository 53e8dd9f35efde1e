"""Turns an outbox row's facts into words: the customer-service text, and the data fields of
template and subscription messages (thing ≤ 20 chars, number, date), from handlers/texts.py."""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.console import texts as console_texts
from handlers import overview, texts
from storage.audit import mask_phones

TEXTS = {
    "birthday": texts.PUSH_BIRTHDAY,
    "expiry": texts.PUSH_EXPIRY,
    "winback": texts.PUSH_WINBACK,
    "winback_warn": texts.PUSH_WINBACK_WARN,
    "winback_coupon": texts.PUSH_WINBACK_COUPON,
    "campaign_reward": texts.PUSH_CAMPAIGN_REWARD,
    "draw_coupon": texts.PUSH_DRAW_COUPON,
    "draw_fallback": texts.PUSH_DRAW_FALLBACK,
    "draw_unpaid": texts.PUSH_DRAW_UNPAID,
    "points_adjusted": texts.PUSH_POINTS_ADJUSTED,
    "coupon_granted": texts.PUSH_COUPON_GRANTED,
    "birthday_coupon": texts.PUSH_BIRTHDAY_COUPON,
    "tier_gift": texts.PUSH_TIER_GIFT,
    "coupon_lapse": texts.PUSH_COUPON_LAPSE,
    "ticket_answer": texts.PUSH_TICKET_ANSWER,
    "ticket_resolved": texts.PUSH_TICKET_RESOLVED,
    "ticket_staff": texts.PUSH_TICKET_STAFF,
}
MAX_ROBOT_BYTES = 2048
TITLES = {"birthday": "生日积分已到账", "expiry": "积分即将到期", "winback": "回归礼等你领取",
          "winback_warn": "好久不见", "winback_coupon": "回归券已到账",
          "points_adjusted": "积分调整通知", "coupon_granted": "您收到一张优惠券", "birthday_coupon": "生日券已到账",
          "tier_gift": "升级礼已到账", "coupon_lapse": "优惠券即将到期", "draw_coupon": "抽奖奖品已发放",
          "draw_fallback": "抽奖奖励已到账", "draw_unpaid": "抽奖奖品待补发"}


def text_for(kind: str, payload: dict[str, Any]) -> str:
    if "text" in payload:
        return str(payload["text"])
    # An experiment arm's own words (checked when the experiment was made), else the kind's (or its variant's:
    # the birthday with a coupon).
    template = payload.get("template") or TEXTS.get(str(payload.get("variant") or kind))
    params = {"brand": texts.BRAND, **payload.get("params", {})}
    if template is None:  # pushes go to members
        return texts.HELP_MEMBER
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return texts.HELP_MEMBER


def data_for(kind: str, payload: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Template/subscription fields: thing1 (title), number2 (points), date3 (date) when known."""
    params = payload.get("params", {})
    title = payload.get("title") or TITLES.get(kind) or text_for(kind, payload)  # a broadcast's article: its title
    data = {"thing1": {"value": str(title)[:20]}}
    if "points" in params:
        data["number2"] = {"value": str(params["points"])}
    if "date" in params:
        data["date3"] = {"value": str(params["date"])}
    return data


def announcement(payload: dict[str, Any]) -> str:
    """A WeCom group-robot text for a campaign's start, progress or end (at most 2048 bytes)."""
    params = dict(payload.get("params", {}))
    stage = str(params.get("stage", "start"))
    coupon = params.get("kind") == "lucky_draw" and bool(params.get("reward"))
    params["pitch"] = texts.CAMPAIGN_PITCH.get("lucky_draw_coupon" if coupon else str(params.get("kind")), "").format(
        points=params.get("points", 0), goal=params.get("goal", 0), reward=params.get("reward")
    )
    if coupon and stage == "end":
        stage = "end_coupon"
    template = texts.ANNOUNCE.get(stage, texts.ANNOUNCE["progress"])
    text = template.format(**params)
    while len(text.encode()) > MAX_ROBOT_BYTES:
        text = text[:-10]
    return text


def robot_text(kind: str, payload: dict[str, Any]) -> str:
    """The group-robot text of an outbox row: an anomaly for the operations group, else a campaign's."""
    if kind == "ticket":
        return ticket_announcement(payload)
    if kind == "kpi_digest":
        return kpi_digest(payload)
    return anomaly_announcement(payload) if kind == "anomaly" else announcement(payload)


def ticket_announcement(payload: dict[str, Any]) -> str:
    """A ticket for the service staff's robot: new, reopened after a low rating, or past its SLA. The code,
    category and console path only: the member's words stay in the console."""
    params = payload.get("params", {})
    stage = str(params.get("stage", "new"))
    template = console_texts.TICKET_ANNOUNCE.get(stage, console_texts.TICKET_ANNOUNCE["new"])
    return template.format(code=params.get("code", ""), category=params.get("category", ""),
                           path=f"/admin/tickets/{params.get('id')}")


def anomaly_announcement(payload: dict[str, Any]) -> str:
    """A new anomaly for the operations group: kind, member, detail and the console page's path."""
    params = payload.get("params", {})
    kind = str(params.get("kind", ""))
    member = params.get("member_id")
    text = console_texts.ANOMALY_ANNOUNCE.format(
        label=console_texts.ANOMALY_KINDS.get(kind, kind),
        member=console_texts.ANOMALY_NO_MEMBER if member is None else f"#{member}",
        detail=mask_phones(str(params.get("detail", ""))), path=f"/admin/anomalies/{params.get('id')}",
    )
    while len(text.encode()) > MAX_ROBOT_BYTES:
        text = text[:-10]
    return text


def kpi_digest(payload: dict[str, Any]) -> str:
    """The weekly figures for the operations group: the chat's 数据概览 with the week's change."""
    params = payload.get("params", {})
    text = overview.digest_text(date.fromisoformat(str(params.get("day"))), dict(params.get("figures") or {}),
                                dict(params.get("previous") or {}))
    while len(text.encode()) > MAX_ROBOT_BYTES:
        text = text[:-10]
    return text
