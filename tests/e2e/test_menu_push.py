"""`wxbot menu push|show` and the staff tag (issue 21) against the fake WeChat API on a real port: a bad
[menu] refused locally with the rule named and nothing sent; a push read back; staff tagged and untagged
by the CLI and the admin API."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from bot.app import create_app
from bot.cli import main
from bot.migrate import upgrade
from devtools.fakewechat import FakeWeChat, create_fake_wechat, fake_of
from storage.clock import FrozenClock
from tests.support.fakes import ADMIN, make_settings, serving

ENV = ("RULES_FILE", "TIMEZONE", "ADMIN_TOKEN", "PII_KEY", "MINIPROGRAM_APPID", "MINIPROGRAM_SECRET")
MEMBER = "oMENUSTAFF0000000000000000001"
OK = '[[menu.button]]\nname = "会员"\ntype = "click"\nkey = "SIGNUP"\n'


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeWeChat]:
    """The fake WeChat API served by uvicorn on a free port; the CLI's settings point at it, live."""
    app = create_fake_wechat()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.02)
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'menu.db'}"
    asyncio.run(upgrade(url))
    for name, value in {"DATABASE_URL": url, "REDIS_URL": f"memory://menu-{port}", "WECHAT_APPID": "wxMENU",
                        "WECHAT_APPSECRET": "secret", "WECHAT_API_BASE": f"http://127.0.0.1:{port}"}.items():
        monkeypatch.setenv(name, value)
    yield fake_of(app)
    server.should_exit = True
    thread.join(5)


def rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(toml, encoding="utf-8")
    monkeypatch.setenv("RULES_FILE", str(path))


def sub(**fields: str) -> str:
    lines = "".join(f'{k} = "{v}"\n' for k, v in fields.items())
    return f'[[menu.button]]\nname = "会员"\n[[menu.button.sub_button]]\n{lines}'


SUB = '[[menu.button.sub_button]]\nname = "a"\ntype = "click"\nkey = "K"\n'
LONG = "签" * 21
BAD = {
    "top count": (OK * 4, "menu.button: at most 3 top-level buttons"),
    "sub count": ('[[menu.button]]\nname = "会员"\n' + SUB * 6, "menu.button[0] ('会员'): at most 5 sub-buttons"),
    "top name": (OK.replace("会员", "会员积分商城"), "menu.button[0] ('会员积分商城'): name must be at most 16 bytes"),
    "sub name": (sub(name=LONG, type="click", key="K"), f"sub_button[0] ('{LONG}'): name must be at most 60 bytes"),
    "key": (sub(name="a", type="click", key="K" * 129), "key must be at most 128 bytes"),
    "https": (sub(name="a", type="view", url="http://shop.example.com"), "sub_button[0] ('a'): url must be https://"),
    "url length": (sub(name="a", type="view", url="https://x.cn/" + "u" * 1012), "url must be at most 1024 bytes"),
    "type": (sub(name="a", type="scan"), "type must be one of click, view, miniprogram"),
    "miniprogram": (sub(name="a", type="miniprogram", appid="wx1", url="https://x.cn"),
                    "a miniprogram button needs pagepath"),
    "unknown key": ("[menu]\ncolour = 1\n", "menu: unknown key 'colour'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_menu_is_refused_locally_naming_the_rule_and_nothing_is_sent(
    fake: FakeWeChat, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    toml, rule = BAD[case]
    rules(tmp_path, monkeypatch, toml)
    assert main(["menu", "push"]) == 2
    err = capsys.readouterr().err
    assert "nothing sent" in err, err
    assert rule in err, err
    assert fake.calls == []


def test_push_creates_both_menus_and_show_reads_them_back(
    fake: FakeWeChat, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["menu", "push"]) == 0
    out = capsys.readouterr().out
    assert '"key": "COUPONS"' in out
    assert "/cgi-bin/menu/addconditional" in out
    assert "demo mode" not in out
    assert [b["name"] for b in fake.menus.menu or []] == ["会员", "积分商城", "活动"]
    assert list(fake.menus.tags.values()) == ["wxbot-staff"]
    tag_id = next(iter(fake.menus.tags))
    [staff_menu] = fake.menus.conditional.values()
    assert staff_menu["matchrule"] == {"tag_id": str(tag_id)}
    assert [b["key"] for b in staff_menu["button"][2]["sub_button"]][:2] == ["STAFF_NEW_CAMPAIGN", "STAFF_CAMPAIGNS"]

    assert main(["menu", "push"]) == 0  # again: the tag is reused, the old staff menu replaced
    assert len(fake.menus.tags) == 1
    assert len(fake.menus.conditional) == 1
    capsys.readouterr()
    assert main(["menu", "show"]) == 0
    assert '"name": "我的券"' in capsys.readouterr().out


def test_a_refusal_by_wechat_is_explained_and_exits_non_zero(
    fake: FakeWeChat, capsys: pytest.CaptureFixture[str]
) -> None:
    from collections import deque

    fake.scripts["/cgi-bin/menu/create"] = deque([40018])
    assert main(["menu", "push"]) == 1
    assert "WeChat refused it: 40018 invalid button name length" in capsys.readouterr().err
    assert fake.menus.menu is None


def test_demo_mode_sends_nothing_and_says_so(
    fake: FakeWeChat, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("WECHAT_APPSECRET")
    assert main(["menu", "push"]) == 0
    assert "nothing left this machine" in capsys.readouterr().out
    assert fake.calls == []


def test_staff_cli_tags_and_untags(fake: FakeWeChat) -> None:
    assert main(["staff", "add", MEMBER]) == 0
    tag_id = next(iter(fake.menus.tags))
    assert fake.menus.tagged[tag_id] == {MEMBER}
    assert main(["staff", "remove", MEMBER]) == 0
    assert fake.menus.tagged[tag_id] == set()


def test_staff_cli_change_stands_when_wechat_refuses(fake: FakeWeChat, capsys: pytest.CaptureFixture[str]) -> None:
    from collections import deque

    fake.scripts["/cgi-bin/tags/create"] = deque([-1])
    assert main(["staff", "add", MEMBER]) == 0
    assert "is now staff" in capsys.readouterr().out
    assert fake.menus.tags == {}


async def test_admin_api_tags_and_untags(urls: tuple[str, str], clock: FrozenClock) -> None:
    settings = make_settings(*urls, wechat_appsecret="x", wechat_api_base="http://fake.wechat")
    fake_app = create_fake_wechat()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake_app)) as http:
        async with serving(create_app(settings, clock=clock, http=http), clock) as wechat:
            menus = fake_of(fake_app).menus
            added = await wechat.client.post("/api/admin/staff", json={"openid": MEMBER}, headers=ADMIN)
            assert added.status_code == 201
            tag_id = next(iter(menus.tags))
            assert menus.tagged[tag_id] == {MEMBER}
            removed = await wechat.client.delete(f"/api/admin/staff/{MEMBER}", headers=ADMIN)
            assert removed.status_code == 200
            assert menus.tagged[tag_id] == set()
