"""The shop's own settings.

Declared once as a pydantic model; NoneBot reads `.env`, `.env.<ENVIRONMENT>` and the
environment (names case-insensitive) and `load_settings()` validates the keys we own.
Services never import this module's NoneBot half: they receive plain values.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/shop.db"
KUAIDI100_OFFICIAL_QUERY_URL = "https://poll.kuaidi100.com/poll/query.do"


class ShopSettings(BaseModel):
    """Every key of DESIGN.md's settings table that is the shop's (not NoneBot's)."""

    model_config = ConfigDict(extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    shop_name: str = "小店"
    shop_timezone: str = "Asia/Shanghai"
    shop_demo: bool = False
    data_dir: str = "data"

    confirm_timeout_seconds: float = Field(300, gt=0)
    unpaid_timeout_minutes: float = Field(30, gt=0)
    refund_auto_approve_hours: float = Field(48, gt=0)
    auto_confirm_days: float = Field(7, gt=0)
    auto_confirm_days_after_ship: float = Field(15, gt=0)
    aftersale_days: float = Field(7, gt=0)
    exchange_days: float = Field(15, gt=0)
    ticket_remind_hours: float = Field(24, gt=0)
    ticket_escalate_hours: float = Field(48, gt=0)

    tracking_provider: str = "manual"
    tracking_poll_minutes: float = Field(30, gt=0)
    kuaidi100_customer: str = ""
    kuaidi100_key: str = ""
    kuaidi100_query_url: str = KUAIDI100_OFFICIAL_QUERY_URL

    send_interval_seconds: float = Field(1.5, ge=0)
    send_per_minute: int = Field(20, gt=0)
    clock_tick_seconds: float = Field(30, gt=0)

    # Chat hygiene: how many commands one user may send in `flood_window_seconds`.
    flood_max_commands: int = Field(8, gt=0)
    flood_window_seconds: float = Field(10, gt=0)

    @field_validator("shop_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown SHOP_TIMEZONE {value!r}, e.g. Asia/Shanghai") from error
        return value

    @field_validator("tracking_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in {"manual", "kuaidi100"}:
            raise ValueError("TRACKING_PROVIDER must be 'manual' or 'kuaidi100'")
        return value

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.shop_timezone)

    @property
    def confirm_timeout(self) -> timedelta:
        return timedelta(seconds=self.confirm_timeout_seconds)

    @property
    def unpaid_timeout(self) -> timedelta:
        return timedelta(minutes=self.unpaid_timeout_minutes)

    @property
    def refund_auto_approve(self) -> timedelta:
        return timedelta(hours=self.refund_auto_approve_hours)


def load_settings() -> ShopSettings:
    """The settings as NoneBot parsed them from `.env` and the environment."""
    import nonebot

    return nonebot.get_plugin_config(ShopSettings)
