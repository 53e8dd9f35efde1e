"""Flow state in the KV under `wxbot:flow:<source>:<openid>`, with a sliding TTL; never in process memory."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from storage.kv import KV, member_tag


@dataclass
class FlowState:
    flow: str
    step: str
    instance: str
    data: dict[str, Any] = field(default_factory=dict)


class FlowStore:
    def __init__(self, kv: KV) -> None:
        self.kv = kv

    @staticmethod
    def key(source: str, openid: str) -> str:
        return f"wxbot:flow:{member_tag(source, openid)}"

    async def load(self, source: str, openid: str) -> FlowState | None:
        return await self.parse(source, openid, await self.kv.get(self.key(source, openid)))

    async def parse(self, source: str, openid: str, raw: str | None) -> FlowState | None:
        """The state stored as `raw` (read by load or by a script); an unreadable one is cleared."""
        if raw is None:
            return None
        try:
            return FlowState(**json.loads(raw))
        except (ValueError, TypeError):
            await self.clear(source, openid)
            return None

    async def save(self, source: str, openid: str, state: FlowState, ttl: float) -> None:
        payload = json.dumps(asdict(state), ensure_ascii=False, default=str)
        await self.kv.set(self.key(source, openid), payload, ex=ttl)

    async def clear(self, source: str, openid: str) -> None:
        await self.kv.delete(self.key(source, openid))
