"""Composition of the chat: which routers and flows, in which order. Most specific first, the menu last."""

from __future__ import annotations

from flows import broadcast_campaign, campaign_create, delete_account, redeem, signup, survey, ticket, verify_coupon
from flows.engine import Conversation, Flow
from flows.store import FlowStore
from handlers import campaigns, events, fallback, members, overview, points, rewards, service, sharing
from handlers.core.router import Router
from storage.kv import KV


def build_router() -> Router:
    router = Router("root")
    router.include(service.router)
    router.include(campaigns.router)
    router.include(overview.router)
    router.include(events.router)
    router.include(points.router)
    router.include(members.router)
    router.include(sharing.router)
    router.include(rewards.router)
    router.include(fallback.router)
    router.include(events.tail)
    router.include(fallback.catch_all)
    return router


def all_flows() -> list[Flow]:
    return [signup.flow, redeem.flow, campaign_create.flow, delete_account.flow, ticket.flow, verify_coupon.flow,
            broadcast_campaign.flow, survey.flow]


def build_conversation(kv: KV, *, deadline: float, lease: float) -> Conversation:
    """`lease`: the lock's lifetime; the pipeline renews it while a message runs, so a dead worker's lock
    lapses within it."""
    return Conversation(
        build_router(),
        all_flows(),
        FlowStore(kv),
        lock_ttl=lease,
        lock_wait=deadline,
        prefaces=(service.owed,),
        afterwords=(service.ask_survey,),
    )
