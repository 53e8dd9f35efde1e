"""The fake WeChat API's custom menus and user tags: menu/create|get|addconditional|delconditional, tags/*."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devtools.fakeanswers import Answer, error, ok

if TYPE_CHECKING:
    from devtools.fakewechat import FakeWeChat, Incoming

TYPES = {"click", "view", "miniprogram", "scancode_push", "scancode_waitmsg", "pic_sysphoto",
         "pic_photo_or_album", "pic_weixin", "location_select", "media_id", "article_id", "article_view_limited"}


@dataclass
class MenuState:
    """The account's menus and tags as the fake holds them."""

    menu: list[Answer] | None = None
    conditional: dict[str, Answer] = field(default_factory=dict)  # menuid -> {"button", "matchrule"}
    tags: dict[int, str] = field(default_factory=dict)
    tagged: dict[int, set[str]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))

    def reset(self) -> None:
        self.menu = None
        for mapping in (self.conditional, self.tags, self.tagged):
            mapping.clear()
        self.ids = itertools.count(100)


def _size(value: Any) -> int:
    return len(str(value).encode("utf-8"))


def _button_problem(button: Any, top: bool) -> int:
    codes = (40017, 40018, 40019, 40020) if top else (40024, 40025, 40026, 40027)
    if not isinstance(button, dict):
        return codes[0]
    if _size(button.get("name", "")) > (16 if top else 60) or not button.get("name"):
        return codes[1]
    if top and "sub_button" in button:
        subs = button["sub_button"]
        if not isinstance(subs, list) or len(subs) > 5:
            return 40023
        return next((p for p in (_button_problem(s, False) for s in subs) if p), 0)
    if button.get("type") not in TYPES:
        return codes[0]
    if _size(button.get("key", "")) > 128:
        return codes[2]
    return codes[3] if _size(button.get("url", "")) > 1024 else 0


def menu_problem(body: Any) -> int:
    if not isinstance(body, dict):
        return 44002
    buttons = body.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return 40016
    return next((p for p in (_button_problem(b, True) for b in buttons) if p), 0)


def menu_create(fake: FakeWeChat, call: Incoming) -> Answer:
    problem = menu_problem(call.body)
    if problem:
        return error(problem)
    fake.menus.menu = call.body["button"]
    return ok()


def menu_get(fake: FakeWeChat, call: Incoming) -> Answer:
    state = fake.menus
    if state.menu is None:
        return error(46003)
    answer: Answer = {"menu": {"button": state.menu, "menuid": 1}}
    if state.conditional:
        answer["conditionalmenu"] = [{**m, "menuid": i} for i, m in state.conditional.items()]
    return answer


def add_conditional(fake: FakeWeChat, call: Incoming) -> Answer:
    problem = menu_problem(call.body)
    if problem:
        return error(problem)
    rule = call.body.get("matchrule")
    if not isinstance(rule, dict) or not any(rule.values()):
        return error(65304)
    if fake.menus.menu is None:
        return error(65303)
    if "tag_id" in rule and int(rule["tag_id"]) not in fake.menus.tags:
        return error(45159)
    menuid = str(next(fake.menus.ids))
    fake.menus.conditional[menuid] = {"button": call.body["button"], "matchrule": rule}
    return {"menuid": menuid}


def del_conditional(fake: FakeWeChat, call: Incoming) -> Answer:
    menuid = str((call.body or {}).get("menuid", ""))
    if fake.menus.conditional.pop(menuid, None) is None:
        return error(65301)
    return ok()


def tags_create(fake: FakeWeChat, call: Incoming) -> Answer:
    name = ((call.body or {}).get("tag") or {}).get("name")
    if not isinstance(name, str) or not name or _size(name) > 30 or name in fake.menus.tags.values():
        return error(45157)
    tag_id = next(fake.menus.ids)
    fake.menus.tags[tag_id] = name
    return {"tag": {"id": tag_id, "name": name}}


def tags_get(fake: FakeWeChat, call: Incoming) -> Answer:
    state = fake.menus
    return {"tags": [{"id": i, "name": n, "count": len(state.tagged.get(i, ()))} for i, n in state.tags.items()]}


def _tagging(fake: FakeWeChat, call: Incoming, add: bool) -> Answer:
    body = call.body or {}
    tag_id, openids = body.get("tagid"), body.get("openid_list")
    if not isinstance(tag_id, int) or tag_id not in fake.menus.tags:
        return error(45159)
    if not isinstance(openids, list) or not openids:
        return {"errcode": 40003, "errmsg": "invalid openid"}
    members = fake.menus.tagged.setdefault(tag_id, set())
    (members.update if add else members.difference_update)(openids)
    return ok()


def batch_tagging(fake: FakeWeChat, call: Incoming) -> Answer:
    return _tagging(fake, call, add=True)


def batch_untagging(fake: FakeWeChat, call: Incoming) -> Answer:
    return _tagging(fake, call, add=False)


ROUTES = (
    ("POST", "/cgi-bin/menu/create", menu_create),
    ("GET", "/cgi-bin/menu/get", menu_get),
    ("POST", "/cgi-bin/menu/addconditional", add_conditional),
    ("POST", "/cgi-bin/menu/delconditional", del_conditional),
    ("POST", "/cgi-bin/tags/create", tags_create),
    ("GET", "/cgi-bin/tags/get", tags_get),
    ("POST", "/cgi-bin/tags/members/batchtagging", batch_tagging),
    ("POST", "/cgi-bin/tags/members/batchuntagging", batch_untagging),
)
