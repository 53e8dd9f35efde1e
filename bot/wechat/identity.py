"""One member behind two doors: learns an Official Account follower's unionid (user/info) on first
contact, in the background, and links it to a Mini Program member with the same unionid."""

from __future__ import annotations

import asyncio
import logging
from zoneinfo import ZoneInfo

from bot.wechat.client import NETWORK_ERROR, WeChatAPI, WeChatError
from storage import members
from storage.clock import Clock
from storage.db import Database
from storage.enums import Source

log = logging.getLogger("wxbot.identity")
TRANSIENT = frozenset({-1, NETWORK_ERROR})  # WeChat busy, or no answer: worth another try


class IdentityLinker:
    # First contact is the only time user/info is asked, so a busy answer is retried a little later.
    retry_after: tuple[float, ...] = (1.0, 5.0)

    def __init__(self, api: WeChatAPI, db: Database, clock: Clock, tz: ZoneInfo) -> None:
        self.api, self.db, self.clock, self.tz = api, db, clock, tz

    @property
    def live(self) -> bool:
        return self.api.apps["oa"].live

    async def first_contact(self, openid: str) -> None:
        """Never raises: a follower without a known unionid is simply not linked yet."""
        waits = (0.0, *self.retry_after)
        for attempt, wait in enumerate(waits, 1):
            await asyncio.sleep(wait)
            try:
                info = await self.api.user_info(openid)
                break
            except WeChatError as exc:
                if exc.errcode in TRANSIENT and attempt < len(waits):
                    continue
                log.warning("user/info failed with %s; the follower stays unlinked for now", exc.errcode)
                return
        unionid = info.get("unionid")
        if unionid:
            async with self.db.unit_of_work() as session:
                await members.link_unionid(
                    session, openid=openid, source=Source.OA, unionid=str(unionid), now=self.clock.now(), tz=self.tz,
                )
