"""Composition of the chat: which routers and flows, in which order. Most specific first, the menu last."""

from __future__ import annotations

from flows import campaign_create, delete_account, redeem, signup
from flows.engine import Conversation, Flow
from flows.store import FlowStore
from handlers import campaigns, events, fallback, members, points, rewards
from handlers.core.router import Router
from storage.kv import KV


def build_router() -> Router:
    router = Router("root")
    router.include(campaigns.router)
    router.include(events.router)
    router.include(points.router)
    router.include(members.router)
    router.include(rewards.router)
    router.include(fallback.router)
    router.include(events.tail)
    router.include(fallback.catch_all)
    return router


def all_flows() -> list[Flow]:
    return [signup.flow, redeem.flow, campaign_create.flow, delete_account.flow]


def build_conversation(kv: KV, *, deadline: float) -> Conversation:
    return Conversation(
        build_router(),
        all_flows(),
        FlowStore(kv),
        lock_ttl=deadline + 10,
        lock_wait=deadline,
    )
