"""The account's custom menu as operator data: the [menu] rules section, WeChat's limits, the JSON sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# WeChat's limits, checked before any call. wechat-protocol.md says nothing about menus; the numbers are
# from the official docs (developers.weixin.qq.com, 自定义菜单 / 创建接口): at most 3 top-level buttons and
# 5 sub-buttons each; a top-level name at most 16 bytes, a sub-button name at most 60 bytes; a key at most
# 128 bytes; a URL at most 1024 bytes.
MAX_TOP = 3
MAX_SUB = 5
MAX_TOP_NAME = 16
MAX_SUB_NAME = 60
MAX_KEY = 128
MAX_URL = 1024
TYPES = ("click", "view", "miniprogram")
FIELDS = {"click": ("key",), "view": ("url",), "miniprogram": ("appid", "pagepath", "url")}
BUTTON_KEYS = {"name", "type", "key", "url", "appid", "pagepath", "sub_button"}
STAFF_KEYS = ("STAFF_NEW_CAMPAIGN", "STAFF_CAMPAIGNS", "STAFF_OVERVIEW")


class MenuError(ValueError):
    """A [menu] section WeChat would refuse; the message names the rule and the button."""


@dataclass(frozen=True)
class Button:
    name: str
    type: str = ""
    key: str = ""
    url: str = ""
    appid: str = ""
    pagepath: str = ""
    sub_button: tuple[Button, ...] = ()

    def as_json(self) -> dict[str, Any]:
        if self.sub_button:
            return {"name": self.name, "sub_button": [b.as_json() for b in self.sub_button]}
        answer: dict[str, Any] = {"type": self.type, "name": self.name}
        answer.update({name: getattr(self, name) for name in FIELDS[self.type]})
        return answer


@dataclass(frozen=True)
class Menu:
    buttons: tuple[Button, ...]

    def as_json(self) -> dict[str, Any]:
        return {"button": [b.as_json() for b in self.buttons]}


def _click(name: str, key: str) -> Button:
    return Button(name, "click", key=key)


DEFAULT_MENU = Menu((
    Button("会员", sub_button=(_click("注册", "SIGNUP"), _click("签到", "CHECKIN"), _click("积分", "BALANCE"))),
    Button("积分商城", sub_button=(_click("兑换", "REDEEM"), _click("我的券", "COUPONS"))),
    Button("活动", sub_button=(_click("活动", "CAMPAIGNS"), _click("帮助", "HELP"))),
))
STAFF_COLUMN = Button("员工", sub_button=(
    _click("发起活动", "STAFF_NEW_CAMPAIGN"), _click("活动数据", "STAFF_CAMPAIGNS"),
    _click("数据概览", "STAFF_OVERVIEW"), _click("活动", "CAMPAIGNS"), _click("帮助", "HELP"),
))


def staff_menu_for(menu: Menu) -> Menu:
    """The staff's menu when the rules give none: the members' first two columns and the staff column."""
    return Menu((*menu.buttons[: MAX_TOP - 1], STAFF_COLUMN))


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _where(section: str, path: str, button: Button | None = None) -> str:
    return f"{section}{path}" + (f" ({button.name!r})" if button is not None and button.name else "")


def check_menu(menu: Menu, section: str = "menu.button") -> None:
    """Every limit WeChat checks, in its order; raises MenuError naming the rule and the button."""
    if not 1 <= len(menu.buttons) <= MAX_TOP:
        raise MenuError(f"{section}: at most {MAX_TOP} top-level buttons (and at least 1), got {len(menu.buttons)}")
    for i, top in enumerate(menu.buttons):
        path = f"[{i}]"
        _check_name(top, _where(section, path, top), MAX_TOP_NAME)
        if not top.sub_button:
            _check_action(top, _where(section, path, top))
            continue
        if top.type:
            raise MenuError(f"{_where(section, path, top)}: a button with sub_button has no type of its own")
        if len(top.sub_button) > MAX_SUB:
            raise MenuError(f"{_where(section, path, top)}: at most {MAX_SUB} sub-buttons, got {len(top.sub_button)}")
        for j, sub in enumerate(top.sub_button):
            where = _where(section, f"{path}.sub_button[{j}]", sub)
            _check_name(sub, where, MAX_SUB_NAME)
            _check_action(sub, where)


def _check_name(button: Button, where: str, limit: int) -> None:
    if not button.name:
        raise MenuError(f"{where}: name must not be empty")
    if _size(button.name) > limit:
        raise MenuError(f"{where}: name must be at most {limit} bytes UTF-8, got {_size(button.name)}")


def _check_action(button: Button, where: str) -> None:
    if button.type not in TYPES:
        raise MenuError(f"{where}: type must be one of {', '.join(TYPES)}, got {button.type!r}")
    for needed in FIELDS[button.type]:
        if not getattr(button, needed):
            raise MenuError(f"{where}: a {button.type} button needs {needed}")
    if _size(button.key) > MAX_KEY:
        raise MenuError(f"{where}: key must be at most {MAX_KEY} bytes, got {_size(button.key)}")
    if button.url and not button.url.startswith("https://"):
        raise MenuError(f"{where}: url must be https://, got {button.url!r}")
    if _size(button.url) > MAX_URL:
        raise MenuError(f"{where}: url must be at most {MAX_URL} bytes, got {_size(button.url)}")


def menus_from_dict(data: Any) -> tuple[Menu, Menu]:
    """The [menu] section: `button` (the members' menu) and `staff_button` (the staff's), both optional."""
    if not isinstance(data, dict):
        raise MenuError("menu must be a table")
    unknown = set(data) - {"button", "staff_button"}
    if unknown:
        raise MenuError(f"menu: unknown key {sorted(unknown)[0]!r} (known: button, staff_button)")
    menu = _menu(data["button"], "menu.button") if "button" in data else DEFAULT_MENU
    staff = _menu(data["staff_button"], "menu.staff_button") if "staff_button" in data else staff_menu_for(menu)
    check_menu(staff, "menu.staff_button")
    return menu, staff


def _menu(value: Any, section: str) -> Menu:
    if not isinstance(value, list):
        raise MenuError(f"{section} must be an array of tables ([[{section}]])")
    menu = Menu(tuple(_button(item, f"{section}[{i}]") for i, item in enumerate(value)))
    check_menu(menu, section)
    return menu


def _button(item: Any, where: str) -> Button:
    if not isinstance(item, dict):
        raise MenuError(f"{where} must be a table")
    unknown = set(item) - BUTTON_KEYS
    if unknown:
        raise MenuError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    for name, value in item.items():
        if name != "sub_button" and not isinstance(value, str):
            raise MenuError(f"{where}.{name} must be a string")
    subs = item.get("sub_button", [])
    if not isinstance(subs, list):
        raise MenuError(f"{where}.sub_button must be an array of tables")
    if "name" not in item:
        raise MenuError(f"{where}: name must not be empty")
    fields = {k: v for k, v in item.items() if k != "sub_button"}
    return Button(**fields, sub_button=tuple(_button(s, f"{where}.sub_button[{j}]") for j, s in enumerate(subs)))


def staff_menu_json(menu: Menu, tag_id: int) -> dict[str, Any]:
    return {**menu.as_json(), "matchrule": {"tag_id": str(tag_id)}}
