"""Settings against the configuration contract of PRODUCT.md: names, defaults, the production checks
and the refusals of malformed values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.app import create_app
from bot.crypto import PiiCipher
from bot.settings import DEMO_TOKEN, Settings, SettingsError
from storage.kv import cluster_nodes

CONTRACT_VARIABLES = [
    "WECHAT_TOKEN", "WECHAT_APPID", "WECHAT_APPSECRET", "WECHAT_AES_KEY", "WECHAT_API_BASE",
    "MINIPROGRAM_APPID", "MINIPROGRAM_SECRET", "MINIPROGRAM_TOKEN", "MINIPROGRAM_AES_KEY",
    "DATABASE_URL", "REDIS_URL", "TIMEZONE", "ADMIN_TOKEN", "PII_KEY", "ORDER_WEBHOOK_SECRET",
    "RULES_FILE", "SIGNATURE_MAX_AGE", "WECHAT_AES_KEY_PREVIOUS", "REPLY_DEADLINE", "MAX_BODY_BYTES",
]
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
PII_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CONTRACT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def production(**overrides: str) -> Settings:
    values = {
        "wechat_appid": "wx1234567890abcdef", "wechat_appsecret": "s3cret",
        "wechat_token": "RealToken42", "admin_token": "a-long-random-admin-token", "pii_key": PII_KEY,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_defaults_match_the_configuration_contract() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.wechat_token == "wxbot-dev-token" == DEMO_TOKEN
    assert (s.wechat_appid, s.wechat_appsecret, s.wechat_aes_key) == ("", "", "")
    assert s.wechat_api_base == "https://api.weixin.qq.com"
    assert (s.miniprogram_appid, s.miniprogram_secret, s.miniprogram_token, s.miniprogram_aes_key) == (
        "", "", "", "",
    )
    assert s.database_url.startswith("sqlite:///")
    assert "var/" in s.database_url  # a SQLite file under var/
    assert s.redis_url == "memory://"
    assert s.timezone == "Asia/Shanghai"
    assert str(s.tz) == "Asia/Shanghai"
    assert s.admin_token == ""
    assert s.pii_key == ""
    assert s.order_webhook_secret == ""
    assert s.rules_file == ""
    assert s.signature_max_age == 600
    assert s.reply_deadline == 4.0
    assert s.max_body_bytes == 64 * 1024
    assert s.demo is True
    assert s.safe_mode is False
    s.check_production()  # demo mode starts with nothing set


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECHAT_TOKEN", "EnvToken1")
    monkeypatch.setenv("WECHAT_AES_KEY", AES_KEY)
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/2")
    monkeypatch.setenv("TIMEZONE", "Asia/Urumqi")
    monkeypatch.setenv("SIGNATURE_MAX_AGE", "30")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.wechat_token == "EnvToken1"
    assert s.safe_mode is True
    assert s.redis_url == "redis://cache:6379/2"
    assert s.timezone == "Asia/Urumqi"
    assert s.signature_max_age == 30


def test_a_dotenv_file_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / ".env"
    env.write_text("WECHAT_TOKEN=FromDotEnv\nORDER_WEBHOOK_SECRET=pos-secret\n")
    monkeypatch.chdir(tmp_path)
    assert Settings().wechat_token == "FromDotEnv"
    assert Settings().order_webhook_secret == "pos-secret"
    monkeypatch.setenv("WECHAT_TOKEN", "FromEnv")
    assert Settings().wechat_token == "FromEnv"


def test_a_complete_production_configuration_starts() -> None:
    s = production()
    assert s.demo is False
    s.check_production()
    assert s.with_demo_secrets() is s  # production never invents secrets


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"wechat_token": DEMO_TOKEN}, "WECHAT_TOKEN"),
        ({"admin_token": ""}, "ADMIN_TOKEN"),
        ({"pii_key": ""}, "PII_KEY"),
    ],
)
def test_production_refuses_demo_or_missing_secrets_naming_the_variable(
    overrides: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError, match=variable):
        production(**overrides).check_production()


def test_production_refusal_stops_the_app_from_being_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECHAT_APPSECRET", "s3cret")
    monkeypatch.setenv("WECHAT_APPID", "wx1234567890abcdef")
    monkeypatch.setenv("ADMIN_TOKEN", "a-long-random-admin-token")
    monkeypatch.setenv("PII_KEY", PII_KEY)
    with pytest.raises(SettingsError, match="WECHAT_TOKEN"):
        create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    monkeypatch.setenv("WECHAT_TOKEN", "RealToken42")
    monkeypatch.setenv("ADMIN_TOKEN", "")
    with pytest.raises(SettingsError, match="ADMIN_TOKEN"):
        create_app(Settings(_env_file=None))  # type: ignore[call-arg]


@pytest.mark.parametrize("variable", ["wechat_aes_key", "wechat_aes_key_previous", "miniprogram_aes_key"])
@pytest.mark.parametrize(
    "value",
    [
        pytest.param("A" * 42, id="42-chars"),
        pytest.param("A" * 44, id="44-chars"),
        pytest.param("abc", id="short"),
        pytest.param("A" * 42 + "=", id="padding"),
        pytest.param("A" * 42 + "/", id="not-alnum"),
    ],
)
def test_aes_key_of_the_wrong_shape_is_refused(variable: str, value: str) -> None:
    with pytest.raises(ValidationError, match=variable):
        Settings(_env_file=None, **{variable: value})  # type: ignore[arg-type]


def test_aes_key_from_the_environment_of_the_wrong_length_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECHAT_AES_KEY", AES_KEY[:-1])
    with pytest.raises(ValidationError, match="43"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Asia/Beijing", "", "../../etc/passwd"])
def test_unknown_timezone_is_refused(zone: str) -> None:
    with pytest.raises(ValidationError, match="(?i)time ?zone"):
        Settings(_env_file=None, timezone=zone)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("field", "value"),
    [("reply_deadline", 5.0), ("reply_deadline", 0), ("signature_max_age", -1), ("max_body_bytes", 0)],
)
def test_limits_outside_their_range_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(_env_file=None, **{field: value})  # type: ignore[arg-type]


def test_demo_secrets_are_generated_once_and_kept(tmp_path: Path) -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    filled = s.with_demo_secrets(tmp_path / "var")
    assert filled.admin_token
    assert len(filled.admin_token) >= 24
    PiiCipher(filled.pii_key)  # a valid PII_KEY: 32 bytes, URL-safe base64
    again = s.with_demo_secrets(tmp_path / "var")
    assert (again.admin_token, again.pii_key) == (filled.admin_token, filled.pii_key)
    assert (tmp_path / "var" / "pii_key").stat().st_mode & 0o077 == 0  # not readable by others


def test_demo_secrets_given_explicitly_are_kept(tmp_path: Path) -> None:
    s = Settings(_env_file=None, admin_token="mine", pii_key=PII_KEY)  # type: ignore[call-arg]
    filled = s.with_demo_secrets(tmp_path / "var")
    assert (filled.admin_token, filled.pii_key) == ("mine", PII_KEY)
    assert not (tmp_path / "var").exists()


def test_oa_appid_falls_back_to_a_demo_id_only_when_unset() -> None:
    assert Settings(_env_file=None).oa_appid  # type: ignore[call-arg]
    assert Settings(_env_file=None, wechat_appid="wxREAL").oa_appid == "wxREAL"  # type: ignore[call-arg]


def test_safe_mode_is_required_by_default_in_production_only() -> None:
    demo = Settings(_env_file=None, wechat_aes_key=AES_KEY, miniprogram_aes_key=AES_KEY)  # type: ignore[call-arg]
    assert (demo.oa_requires_safe_mode, demo.mp_requires_safe_mode) == (False, False)
    live = demo.model_copy(update={"wechat_appsecret": "s"})
    assert (live.oa_requires_safe_mode, live.mp_requires_safe_mode) == (True, True)
    keyless = Settings(_env_file=None, wechat_appsecret="s")  # type: ignore[call-arg]
    assert (keyless.oa_requires_safe_mode, keyless.mp_requires_safe_mode) == (False, False)


def test_requiring_safe_mode_without_a_key_stops_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECHAT_REQUIRE_SAFE_MODE", "true")
    s = Settings(_env_file=None, wechat_token="Live1", wechat_appid="wx1", wechat_appsecret="s",  # type: ignore[call-arg]
                 admin_token="t", pii_key="k")
    assert s.wechat_require_safe_mode is True
    with pytest.raises(SettingsError, match="WECHAT_REQUIRE_SAFE_MODE is on but WECHAT_AES_KEY is empty"):
        s.check_production()


@pytest.mark.parametrize("url", ["redis+cluster://", "redis+cluster://cache", "redis+cluster://a:6379,b:port"])
def test_a_redis_cluster_url_without_host_port_nodes_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="redis_url(?s:.*)host:port"):
        Settings(_env_file=None, redis_url=url)  # type: ignore[call-arg]


def test_a_redis_cluster_url_names_its_nodes_and_credentials() -> None:
    url = "rediss+cluster://app:s3cret@10.0.0.1:7000,10.0.0.2:7001/0"
    assert Settings(_env_file=None, redis_url=url).redis_url == url  # type: ignore[call-arg]
    assert cluster_nodes(url) == ([("10.0.0.1", 7000), ("10.0.0.2", 7001)], "app", "s3cret", True)
