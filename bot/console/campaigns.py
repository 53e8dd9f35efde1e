"""The campaigns screens: every campaign with its figures, one campaign with its joins per day, and
ending one early, which settles it now through Campaigns.settle (the scheduler's path at ends_at) under
the campaign's row lock, so an early end and the scheduler never both settle it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlmodel import col

from bot.api.validation import PathId
from bot.console import texts
from bot.console.auth import ConsoleError, ConsoleSession, needs, needs_checked
from bot.console.dates import parse_day
from bot.console.forms import local_time, read_field
from bot.console.pages import render
from storage import audit, campaignreport, drawprize
from storage.enums import CampaignStatus
from storage.models import Campaign

router = APIRouter(prefix="/admin/campaigns")
Reader = Annotated[ConsoleSession, Depends(needs("campaigns.read"))]
Posting = Annotated[ConsoleSession, Depends(needs_checked("campaigns.write"))]
Day = Annotated[str, Query(max_length=20)]
LISTED = 200


@router.get("", response_class=HTMLResponse)
async def list_campaigns(request: Request, console: Reader) -> HTMLResponse:
    async with console.services.db.sessions() as session:
        rows = (await session.scalars(select(Campaign).order_by(col(Campaign.id).desc()).limit(LISTED))).all()
    return render(request, "campaigns.html", console, active="campaigns", campaigns=rows,
                  local=local_time(console.services.tz))


def yuan(fen: float | None) -> str:
    """Fen as the report shows money (campaignreport.yuan); — when it cannot be known."""
    return texts.NONE if fen is None else campaignreport.yuan(fen)


def ratio(value: float | None) -> str:
    return texts.NONE if value is None else f"{value:.2f}"


@router.get("/compare", response_class=HTMLResponse)
async def compare(request: Request, console: Reader, since: Day = "", until: Day = "") -> HTMLResponse:
    """Campaigns side by side: participants, cost, incremental sales and ROI, for every campaign or for
    those whose days meet the chosen dates."""
    services = console.services
    errors: dict[str, str] = {}
    first, last = read_field(parse_day, since, "since", errors), read_field(parse_day, until, "until", errors)
    if first and last and first > last:
        errors["until"] = texts.CAMPAIGN_BAD_RANGE
    found: list[campaignreport.CampaignReport] = []
    if not errors:
        async with services.db.sessions() as session:
            found = await campaignreport.side_by_side(session, services.campaigns, first=first, last=last,
                                                      limit=LISTED)
    return render(request, "campaign_compare.html", console, status=422 if errors else 200, active="campaigns",
                  reports=found, form={"since": since, "until": until}, errors=errors, yuan=yuan, ratio=ratio,
                  limit=LISTED, point_value_fen=services.campaigns.ledger.rules.point_value_fen)


@router.get("/{campaign_id}/report", response_class=HTMLResponse)
async def report_page(request: Request, campaign_id: PathId, console: Reader) -> HTMLResponse:
    """One campaign's report: joins per day (chart and table), cost, the participants' and the comparison
    group's sales before, during and after, incremental sales and ROI (see storage/campaignreport.py)."""
    services = console.services
    async with services.db.sessions() as session:
        found = await campaignreport.report(session, services.campaigns, await _campaign(session, campaign_id))
        prize = await services.campaigns.prize(session, found.campaign)
    chart = {"days": [d.isoformat() for d, _ in found.joins_per_day], "joins": [n for _, n in found.joins_per_day]}
    return render(request, "campaign_report.html", console, active="campaigns", r=found, campaign=found.campaign,
                  chart=chart, yuan=yuan, ratio=ratio, point_value_fen=services.campaigns.ledger.rules.point_value_fen,
                  prize=prize, coupons=drawprize.outcomes(found.campaign).coupons)


@router.get("/{campaign_id}", response_class=HTMLResponse)
async def campaign_page(request: Request, campaign_id: PathId, console: Reader, done: str = "") -> HTMLResponse:
    async with console.services.db.sessions() as session:
        campaign = await _campaign(session, campaign_id)
        per_day = await console.services.campaigns.joins_per_day(session, campaign)
        prize = await console.services.campaigns.prize(session, campaign)
    flash = {"ended": texts.CAMPAIGN_ENDED.format(total=campaign.paid_out),
             "was_ended": texts.CAMPAIGN_WAS_ENDED}.get(done)
    top = max((count for _, count in per_day), default=0)
    return render(request, "campaign.html", console, active="campaigns", campaign=campaign, per_day=per_day,
                  top=top, flash=flash, local=local_time(console.services.tz), prize=prize)


@router.post("/{campaign_id}/end", response_class=HTMLResponse)
async def end_early(campaign_id: PathId, console: Posting) -> RedirectResponse:
    """Settle now, once: the row is locked and its status read under the lock (as finalize_due does), so
    a second click, a replayed form or the scheduler at ends_at finds it settled and pays nothing more."""
    now = console.services.clock.now()
    async with console.services.db.unit_of_work() as session:
        found = await _campaign(session, campaign_id)
        campaign = await console.services.campaigns.by_code(session, found.code, lock=True)
        if campaign.status != CampaignStatus.OPEN:
            return RedirectResponse(f"/admin/campaigns/{campaign_id}?done=was_ended", 303)
        before = {"status": campaign.status, "paid_out": campaign.paid_out, "ends_at": campaign.ends_at}
        paid = await console.services.campaigns.settle(session, campaign, now)
        await audit.record(session, console.actor, "campaign.end", f"campaign:{campaign_id}", now=now,
                           before=before, after={"status": campaign.status, "paid_out": campaign.paid_out,
                                                 "settled_at": campaign.settled_at, "paid_now": paid},
                           client=console.client)
    return RedirectResponse(f"/admin/campaigns/{campaign_id}?done=ended", 303)


async def _campaign(session: Any, campaign_id: int) -> Campaign:
    found = await session.get(Campaign, campaign_id)
    if found is None:
        raise ConsoleError(404, texts.NOT_FOUND)
    return found

