"""What `wxbot demo` adds to an empty database: a small catalogue, a demo manager, an admin operator and
(in the background) a year of demo activity for the dashboard."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from datetime import datetime

from bot import demo_history
from bot.settings import VAR_DIR, Settings, persisted
from storage import operators, staff
from storage.db import Database
from storage.ledger import Ledger
from storage.models import Reward
from storage.rewards import Rewards
from storage.rows import row_id
from storage.rules import load_rules

DEMO_CATALOGUE = (
    {"name": "5元无门槛券", "description": "全场通用，结账直接抵扣 5 元", "cost": 50, "kind": "coupon",
     "validity_days": 30},
    {"name": "20元满减券", "description": "满 100 元减 20 元", "cost": 180, "kind": "coupon",
     "per_member_limit": 2, "validity_days": 30},
    {"name": "门店咖啡一杯", "description": "凭提货码到任一门店领取", "cost": 300, "kind": "gift",
     "stock": 100, "validity_days": 14},
    {"name": "合作品牌电影券", "description": "合作影院通兑券码", "cost": 800, "kind": "code_pool",
     "stock": 3, "validity_days": 60},
    {"name": "金卡专享礼盒", "description": "金卡及以上会员专享", "cost": 2000, "kind": "gift",
     "stock": 10, "min_tier": "金卡", "validity_days": 30},
)
DEMO_POOL_CODES = ("MOVIE-DEMO-0001", "MOVIE-DEMO-0002", "MOVIE-DEMO-0003")
DEMO_MANAGER = "oDEMOmanager00000000000001"
DEMO_OPERATOR = "admin"


def demo_password() -> str:
    """The demo admin's console password: made once under var/, printed beside the console's URL."""
    return persisted(VAR_DIR / "console_password", lambda: secrets.token_urlsafe(12))


async def seed_history(settings: Settings, now: datetime) -> bool:
    """A year of demo activity and its KPI snapshots (bot/demo_history.py), once per database."""
    db = Database(settings.database_url)
    try:
        return await demo_history.seed_history(db, Ledger(load_rules(settings.rules_file), settings.tz), now)
    finally:
        await db.dispose()


def seed_history_in_background(settings: Settings, now: datetime) -> threading.Thread:
    """Start seed_history on a thread of its own: the demo serves at once, the dashboard fills in within
    a minute or two (a year of activity through the real services, then 365 snapshots)."""
    def run() -> None:
        try:
            if asyncio.run(seed_history(settings, now)):
                print("demo history: a year of demo activity and its dashboard snapshots are ready", flush=True)
        except Exception:
            logging.getLogger("wxbot.demo").exception("seeding the demo history failed")

    thread = threading.Thread(target=run, name="demo-history", daemon=True)
    thread.start()
    return thread


async def seed(settings: Settings, now: datetime) -> bool:
    """Seed the demo catalogue once; returns False when rewards already exist."""
    db = Database(settings.database_url)
    rewards = Rewards(Ledger(load_rules(settings.rules_file), settings.tz))
    try:
        async with db.unit_of_work() as session:
            await staff.add(session, DEMO_MANAGER, "manager", "demo", now)
            if await operators.by_name(session, DEMO_OPERATOR) is None:
                await operators.add(session, DEMO_OPERATOR, "admin", demo_password(), now)
            if await rewards.all(session):
                return False
            for item in DEMO_CATALOGUE:
                reward = Reward(**item, created_at=now)  # type: ignore[arg-type]  # each item's values fit its keys
                session.add(reward)
                await session.flush()
                if reward.kind == "code_pool":
                    await rewards.import_codes(session, row_id(reward), DEMO_POOL_CODES)
        return True
    finally:
        await db.dispose()
