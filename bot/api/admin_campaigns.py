"""The campaign report API (bearer ADMIN_TOKEN): one campaign's figures as the console's report page shows
them (storage/campaignreport.py): money in yuan, ROI null when the cost is 0."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict

from bot.api.deps import AdminDep
from bot.api.errors import ApiError
from storage import campaignreport
from storage.campaigns import CampaignUnknownError

router = APIRouter(prefix="/api/admin", tags=["admin"])


class SalesOut(BaseModel):
    orders: int
    sales_yuan: float


class JoinsOut(BaseModel):
    day: str
    joins: int


class CampaignReportOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "code": "K7Q2M", "title": "周末拼团送积分", "kind": "group_buy", "status": "settled",
        "first_day": "2026-11-02", "last_day": "2026-11-04", "after_last_day": "2026-11-18",
        "before_first_day": "2026-10-05", "participants": 3, "tiers": ["普通", "银卡"],
        "joins_per_day": [{"day": "2026-11-02", "joins": 2}, {"day": "2026-11-03", "joins": 1}],
        "points_paid": 300, "cost_yuan": 6.0,
        "before": {"orders": 1, "sales_yuan": 80.0}, "during": {"orders": 2, "sales_yuan": 250.0},
        "after": {"orders": 1, "sales_yuan": 60.0}, "comparison_members": 2,
        "comparison_before": {"orders": 1, "sales_yuan": 50.0}, "comparison": {"orders": 1, "sales_yuan": 90.0},
        "sales_per_participant_yuan": 103.33, "sales_per_comparison_member_yuan": 45.0,
        "incremental_sales_yuan": 175.0, "roi": 29.17,
    }]})

    code: str
    title: str
    kind: str
    status: str
    first_day: str
    last_day: str
    after_last_day: str
    before_first_day: str
    participants: int
    tiers: list[str]
    joins_per_day: list[JoinsOut]
    points_paid: int
    cost_yuan: float
    before: SalesOut
    during: SalesOut
    after: SalesOut
    comparison_members: int
    comparison_before: SalesOut
    comparison: SalesOut
    sales_per_participant_yuan: float | None
    sales_per_comparison_member_yuan: float | None
    incremental_sales_yuan: float | None
    roi: float | None


def _yuan(fen: float | None) -> float | None:
    return None if fen is None else round(fen) / 100


def _sales(s: campaignreport.Sales) -> SalesOut:
    return SalesOut(orders=s.orders, sales_yuan=s.fen / 100)


@router.get("/campaigns/{code}/report", response_model=CampaignReportOut, responses={401: {}, 404: {}},
            summary="One campaign's report: cost, sales, incremental sales and ROI")
async def campaign_report(
    services: AdminDep, code: Annotated[str, Path(min_length=1, max_length=8, description="the campaign code")],
) -> CampaignReportOut:
    """Participants, joins per local day, points paid and their cost, the participants' and the comparison
    group's paid orders before / during / after, incremental sales and ROI (definitions:
    storage/campaignreport.py)."""
    async with services.db.sessions() as session:
        try:
            campaign = await services.campaigns.by_code(session, code)
        except CampaignUnknownError:
            raise ApiError(404, "not_found", f"no campaign with code {code.strip().upper()[:8]!r}") from None
        r = await campaignreport.report(session, services.campaigns, campaign)
    return CampaignReportOut(
        code=campaign.code, title=campaign.title, kind=campaign.kind, status=campaign.status,
        first_day=r.first_day.isoformat(), last_day=r.last_day.isoformat(),
        after_last_day=r.after_last_day.isoformat(), before_first_day=r.before_first_day.isoformat(),
        participants=r.participants, tiers=list(r.tiers),
        joins_per_day=[JoinsOut(day=d.isoformat(), joins=n) for d, n in r.joins_per_day],
        points_paid=r.points_paid, cost_yuan=r.cost_fen / 100, before=_sales(r.before), during=_sales(r.during),
        after=_sales(r.after), comparison_members=r.comparison_members,
        comparison_before=_sales(r.comparison_before), comparison=_sales(r.comparison),
        sales_per_participant_yuan=_yuan(r.per_participant_fen),
        sales_per_comparison_member_yuan=_yuan(r.per_comparison_fen),
        incremental_sales_yuan=_yuan(r.incremental_fen), roi=r.roi,
    )
