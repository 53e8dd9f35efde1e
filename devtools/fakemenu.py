"""The fake WeChat API's custom menus and user tags: menu/create|get|addconditional|delconditional, tags/*."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devtools.fakewechat import FakeWeChat, Incoming

Answer = dict[str, Any]
TYPES = {"click", "view", "miniprogram", "scancode_push", "scancode_waitmsg", "pic_sysphoto",
         "pic_photo_or_album", "pic_weixin", "location_select", "media_id", "article_id", "article_view_limited"}
# (top-level code, sub-button code) for each limit, as WeChat answers them
ERRMSG: dict[int, str] = {
    40016: "invalid button size", 40017: "invalid button type", 40018: "invalid button name size",
    40019: "invalid button key size", 40020: "invalid button url size", 40023: "invalid sub button size",
    40024: "invalid sub button type", 40025: "invalid sub button name size", 40026: "invalid sub button key size",
    40027: "invalid sub button url size", 44002: "empty post data", 45157: "invalid tag name",
    45059: "tag count exceeded", 45159: "invalid tag id", 46003: "menu no exist", 65301: "no such menuid",
    65303: "there is no selfmenu, please create selfmenu first", 65304: "match rule empty",
}


def fail(code: int) -> Answer:
    return {"errcode": code, "errmsg": ERRMSG.get(code, "fake error")}


def done(**extra: Any) -> Answer:
    return {"errcode": 0, "errmsg": "ok", **extra}


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
        return fail(problem)
    fake.menus.menu = call.body["button"]
    return done()


def menu_get(fake: FakeWeChat, call: Incoming) -> Answer:
    state = fake.menus
    if state.menu is None:
        return fail(46003)
    answer: Answer = {"menu": {"button": state.menu, "menuid": 1}}
    if state.conditional:
        answer["conditionalmenu"] = [{**m, "menuid": i} for i, m in state.conditional.items()]
    return answer


def add_conditional(fake: FakeWeChat, call: Incoming) -> Answer:
    problem = menu_problem(call.body)
    if problem:
        return fail(problem)
    rule = call.body.get("matchrule")
    if not isinstance(rule, dict) or not any(rule.values()):
        return fail(65304)
    if fake.menus.menu is None:
        return fail(65303)
    if "tag_id" in rule and int(rule["tag_id"]) not in fake.menus.tags:
        return fail(45159)
    menuid = str(next(fake.menus.ids))
    fake.menus.conditional[menuid] = {"button": call.body["button"], "matchrule": rule}
    return {"menuid": menuid}


def del_conditional(fake: FakeWeChat, call: Incoming) -> Answer:
    menuid = str((call.body or {}).get("menuid", ""))
    if fake.menus.conditional.pop(menuid, None) is None:
        return fail(65301)
    return done()


def tags_create(fake: FakeWeChat, call: Incoming) -> Answer:
    name = ((call.body or {}).get("tag") or {}).get("name")
    if not isinstance(name, str) or not name or _size(name) > 30 or name in fake.menus.tags.values():
        return fail(45157)
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
        return fail(45159)
    if not isinstance(openids, list) or not openids:
        return {"errcode": 40003, "errmsg": "invalid openid"}
    members = fake.menus.tagged.setdefault(tag_id, set())
    (members.update if add else members.difference_update)(openids)
    return done()


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
