"""The account's menus on WeChat: push the default and the staff menu, read them back, tag staff."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.wechat.client import WeChatAPI, WeChatError
from storage.menu import Menu, staff_menu_json

log = logging.getLogger("wxbot.menu")
Report = Callable[[str, dict[str, Any]], None]
STAFF_TAG = "wxbot-staff"
TAG_KEY = "wxbot:staff_tag_id"
TAG_EXISTS = 45157  # WeChat's "invalid tag name": also its answer when the name is taken

# What WeChat's refusals of menu and tag calls mean, for operators.
MEANINGS: dict[int, str] = {
    40016: "invalid number of top-level buttons (1 to 3)",
    40017: "invalid button type",
    40018: "invalid button name length (top level: at most 16 bytes)",
    40019: "invalid button key length (at most 128 bytes)",
    40020: "invalid button URL length (at most 1024 bytes)",
    40023: "invalid number of sub-buttons (at most 5)",
    40024: "invalid sub-button type",
    40025: "invalid sub-button name length (at most 60 bytes)",
    40026: "invalid sub-button key length (at most 128 bytes)",
    40027: "invalid sub-button URL length (at most 1024 bytes)",
    40054: "sub-button URL domain not allowed",
    40055: "button URL domain not allowed",
    45157: "invalid or already used tag name",
    45159: "invalid tag id",
    46003: "the account has no menu yet",
    48001: "API not authorised for this account (menus need a verified account)",
    65303: "no default menu: create it before a personalised one",
    65304: "the personalised menu's match rule is empty",
}


def meaning(exc: WeChatError) -> str:
    return f"WeChat refused it: {exc.errcode} {MEANINGS.get(exc.errcode, exc.errmsg or 'unknown error')}"


class StaffTag:
    """The `wxbot-staff` user tag: its id created once and kept in the KV; staff tagged and untagged."""

    def __init__(self, api: WeChatAPI) -> None:
        self.api = api

    async def tag_id(self) -> int:
        known = await self.api.kv.get(TAG_KEY)
        if known:
            return int(known)
        try:
            made = await self.api.call("oa", "/cgi-bin/tags/create", {"tag": {"name": STAFF_TAG}})
            tag_id = int(made["tag"]["id"])
        except WeChatError as exc:
            if exc.errcode != TAG_EXISTS:
                raise
            tag_id = await self._existing()
        await self.api.kv.set(TAG_KEY, str(tag_id))
        return tag_id

    async def _existing(self) -> int:
        listed = await self.api.call("oa", "/cgi-bin/tags/get", {}, query={})
        for tag in listed.get("tags", []):
            if tag.get("name") == STAFF_TAG:
                return int(tag["id"])
        raise WeChatError(TAG_EXISTS, f"tag {STAFF_TAG} can be neither created nor found")

    async def set(self, openid: str, *, staff: bool) -> bool:
        """Best effort: a failure is logged, never raised (a staff change must not fail with WeChat)."""
        path = "/cgi-bin/tags/members/" + ("batchtagging" if staff else "batchuntagging")
        try:
            await self.api.call("oa", path, {"openid_list": [openid], "tagid": await self.tag_id()})
        except WeChatError as exc:
            log.warning("staff tag not %s for a staff member: WeChat %s", "set" if staff else "removed",
                        exc.errcode)
            return False
        return True


async def push_menus(api: WeChatAPI, menu: Menu, staff_menu: Menu, report: Report) -> None:
    """menu/create, then the staff menu (replacing the previous one of our tag); `report` sees each body
    before it is sent."""
    await _send(api, "/cgi-bin/menu/create", menu.as_json(), report)
    tag_id = await StaffTag(api).tag_id()
    for menuid in await _staff_menu_ids(api, tag_id):
        await _send(api, "/cgi-bin/menu/delconditional", {"menuid": menuid}, report)
    await _send(api, "/cgi-bin/menu/addconditional", staff_menu_json(staff_menu, tag_id), report)


async def _send(api: WeChatAPI, path: str, body: dict[str, Any], report: Report) -> None:
    report(path, body)
    await api.call("oa", path, body)


async def _staff_menu_ids(api: WeChatAPI, tag_id: int) -> list[str]:
    current = await show_menus(api)
    return [str(m["menuid"]) for m in current.get("conditionalmenu", [])
            if str((m.get("matchrule") or {}).get("tag_id", "")) == str(tag_id)]


async def show_menus(api: WeChatAPI) -> dict[str, Any]:
    return await api.call("oa", "/cgi-bin/menu/get", {}, query={})
