"""One member behind two doors: learns an Official Account follower's unionid (user/info) on first
contact, in the background, and links it to a Mini Program member with the same unionid."""

from __future__ import annotations

import logging

from bot.wechat_api import WeChatAPI, WeChatError
from storage import members
from storage.clock import Clock
from storage.db import Database

log = logging.getLogger("wxbot.identity")


class IdentityLinker:
    def __init__(self, api: WeChatAPI, db: Database, clock: Clock) -> None:
        self.api, self.db, self.clock = api, db, clock

    @property
    def live(self) -> bool:
        return self.api.apps["oa"].live

    async def first_contact(self, openid: str) -> None:
        """Never raises: a follower without a known unionid is simply not linked yet."""
        try:
            info = await self.api.user_info(openid)
        except WeChatError as exc:
            log.warning("user/info failed with %s; the follower stays unlinked for now", exc.errcode)
            return
        unionid = info.get("unionid")
        if unionid:
            async with self.db.unit_of_work() as session:
                await members.link_unionid(
                    session, openid=openid, source="oa", unionid=str(unionid), now=self.clock.now()
                )
