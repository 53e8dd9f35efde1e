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
    database_url: str = f"sqlite:///{VAR_DIR}/wxbot.db"
    redis_url: str = "memory://"
    timezone: str = "Asia/Shanghai"
    admin_token: str = ""
    pii_key: str = ""
    order_webhook_secret: str = ""
    rules_file: str = ""
    signature_max_age: int = Field(default=600, ge=0)
    reply_deadline: float = Field(default=4.0, gt=0, le=4.8)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    dedupe_ttl: int = Field(default=3600, ge=60)
    log_level: str = "INFO"
    wechat_push_qps: float = Field(default=20.0, ge=0)
    wechat_template_ids: dict[str, str] = Field(default_factory=dict)
    miniprogram_subscribe_template_ids: dict[str, str] = Field(default_factory=dict)

    @field_validator("wechat_aes_key", "wechat_aes_key_previous", "miniprogram_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: str) -> str:
        if value and (len(value) != 43 or not value.isalnum()):
            raise ValueError("an EncodingAESKey is 43 letters and digits")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def demo(self) -> bool:
        """No secret means nothing leaves the machine: outbound calls are recorded locally."""
        return not self.wechat_appsecret

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def safe_mode(self) -> bool:
        return bool(self.wechat_aes_key)

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

    def with_demo_secrets(self, var_dir: Path = VAR_DIR) -> Settings:
        """Demo mode only: fill ADMIN_TOKEN and PII_KEY from files under var/ (created once)."""
        if not self.demo:
            return self
        updates: dict[str, str] = {}
        if not self.admin_token:
            updates["admin_token"] = _persisted(var_dir / "admin_token", lambda: secrets.token_urlsafe(24))
        if not self.pii_key:
            updates["pii_key"] = _persisted(var_dir / "pii_key", new_pii_key)
        return self.model_copy(update=updates) if updates else self


def new_pii_key() -> str:
    """32 random bytes, URL-safe base64: the PII_KEY format."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _persisted(path: Path, make: Callable[[], str]) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    path.write_text(value)
    path.chmod(0o600)
    return str(value)
