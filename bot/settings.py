"""Settings from the environment and .env (pydantic-settings), the production checks, and the
demo-mode secrets.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.kv import CLUSTER_SCHEMES, KVOptions, cluster_nodes

DEMO_TOKEN = "wxbot-dev-token"
VAR_DIR = Path("var")


class SettingsError(ValueError):
    """A setting that stops the service from starting; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    wechat_token: str = DEMO_TOKEN
    wechat_appid: str = ""
    wechat_appsecret: str = ""
    wechat_aes_key: str = ""
    wechat_aes_key_previous: str = ""
    wechat_api_base: str = "https://api.weixin.qq.com"
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    miniprogram_appid: str = ""
    miniprogram_secret: str = ""
    miniprogram_token: str = ""
    miniprogram_aes_key: str = ""
    # None: required in production (a secret set) whenever the door has an AES key; off in demo mode.
    wechat_require_safe_mode: bool | None = None
    miniprogram_require_safe_mode: bool | None = None
    database_url: str = f"sqlite:///{VAR_DIR}/wxbot.db"
    redis_url: str = "memory://"
    timezone: str = "Asia/Shanghai"
    admin_token: str = ""
    pii_key: str = ""
    order_webhook_secret: str = ""
    rules_file: str = ""
    signature_max_age: int = Field(default=600, ge=0)
    reply_deadline: float = Field(default=4.0, gt=0, le=4.8)
    api_deadline: float = Field(default=3.0, gt=0, le=30)  # a JSON API call past it is a 503 (the caller retries)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    dedupe_ttl: int = Field(default=3600, ge=60)
    # A delivery's claim and the member's conversation lock live this long unless renewed (every third of
    # it while the work runs): shorter than WeChat's ~5 s between retries, so a dead worker's claim has
    # lapsed when the next copy arrives.
    delivery_lease: float = Field(default=3.0, gt=0, lt=5)
    # A late delivery's durable record (storage/deliveries.py) is renewed while its worker lives; once
    # its lease lapses, a sweep (every late_sweep_interval, and at start-up) runs the message again.
    late_lease: float = Field(default=15.0, gt=0)
    late_sweep_interval: float = Field(default=5.0, gt=0)
    # Redis: every call is bounded well under the reply deadline, retried with exponential backoff on
    # connection and timeout errors, and a pooled connection idle this long is pinged before use.
    redis_socket_timeout: float = Field(default=0.5, gt=0)
    redis_connect_timeout: float = Field(default=0.5, gt=0)
    redis_retries: int = Field(default=3, ge=0)
    redis_health_check_interval: float = Field(default=2.0, ge=0)
    log_level: str = "INFO"
    wechat_push_qps: float = Field(default=20.0, ge=0)
    # The console: its session cookie's signing key (unset: derived from ADMIN_TOKEN) and idle expiry.
    console_secret: str = ""
    console_idle_minutes: int = Field(default=30, gt=0, le=24 * 60)
    # The operations WeCom group robot's webhook key: each new anomaly is announced there (empty: none).
    ops_wecom_robot: str = ""
    # The service staff's WeCom group robot key: new tickets, reopened ones and SLA breaches (empty: none).
    service_wecom_robot: str = ""
    # /simulator, the web chat: None follows demo mode (on without a secret); SIMULATOR=1 turns it on anyway.
    simulator: bool | None = None
    wechat_template_ids: dict[str, str] = Field(default_factory=dict)
    miniprogram_subscribe_template_ids: dict[str, str] = Field(default_factory=dict)

    @field_validator("wechat_aes_key", "wechat_aes_key_previous", "miniprogram_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: str) -> str:
        if value and (len(value) != 43 or not value.isalnum()):
            raise ValueError("an EncodingAESKey is 43 letters and digits")
        return value

    @field_validator("redis_url")
    @classmethod
    def _cluster_nodes(cls, value: str) -> str:
        if value.startswith(CLUSTER_SCHEMES):
            cluster_nodes(value)  # ValueError naming the node that is not host:port
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def kv_options(self) -> KVOptions:
        return KVOptions(
            socket_timeout=self.redis_socket_timeout, connect_timeout=self.redis_connect_timeout,
            retries=self.redis_retries, health_check_interval=self.redis_health_check_interval,
        )

    @property
    def demo(self) -> bool:
        """No secret means nothing leaves the machine: outbound calls are recorded locally."""
        return not self.wechat_appsecret

    @property
    def simulator_enabled(self) -> bool:
        return self.demo if self.simulator is None else self.simulator

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def safe_mode(self) -> bool:
        return bool(self.wechat_aes_key)

    @property
    def oa_requires_safe_mode(self) -> bool:
        """Refuse plaintext pushes on /wechat: their signature does not cover the body."""
        return self._requires(self.wechat_require_safe_mode, self.wechat_aes_key)

    @property
    def mp_requires_safe_mode(self) -> bool:
        return self._requires(self.miniprogram_require_safe_mode, self.miniprogram_aes_key)

    def _requires(self, setting: bool | None, aes_key: str) -> bool:
        """Only a door with a key can require encryption. Unset: on in production, where the console is
        in safe mode once the key is set, and off in demo mode, so `wxbot chat` works without --encrypted."""
        if not aes_key:
            return False
        return (not self.demo) if setting is None else setting

    @property
    def oa_appid(self) -> str:
        return self.wechat_appid or "wxdemo0000000000"

    def check_production(self) -> None:
        """Refuse to start in production mode with demo or missing secrets."""
        if self.demo:
            return
        if self.wechat_token == DEMO_TOKEN:
            raise SettingsError("WECHAT_TOKEN is the demo token; set the token from the WeChat console")
        if not self.admin_token:
            raise SettingsError("ADMIN_TOKEN is empty; set a long random bearer token")
        if not self.pii_key:
            raise SettingsError("PII_KEY is empty; generate one with `wxbot keygen`")
        if not self.wechat_appid:
            raise SettingsError("WECHAT_APPID is empty but WECHAT_APPSECRET is set")
        for name, setting, key in (
            ("WECHAT", self.wechat_require_safe_mode, self.wechat_aes_key),
            ("MINIPROGRAM", self.miniprogram_require_safe_mode, self.miniprogram_aes_key),
        ):
            if setting and not key:
                raise SettingsError(f"{name}_REQUIRE_SAFE_MODE is on but {name}_AES_KEY is empty")

    def with_demo_secrets(self, var_dir: Path = VAR_DIR) -> Settings:
        """Demo mode only: fill ADMIN_TOKEN and PII_KEY from files under var/ (created once)."""
        if not self.demo:
            return self
        updates: dict[str, str] = {}
        if not self.admin_token:
            updates["admin_token"] = persisted(var_dir / "admin_token", lambda: secrets.token_urlsafe(24))
        if not self.pii_key:
            updates["pii_key"] = persisted(var_dir / "pii_key", new_pii_key)
        return self.model_copy(update=updates) if updates else self


def new_pii_key() -> str:
    """32 random bytes, URL-safe base64: the PII_KEY format."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def persisted(path: Path, make: Callable[[], str]) -> str:
    """A demo secret kept in a file readable by its owner only, made on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    path.write_text(value)
    path.chmod(0o600)
    return str(value)
