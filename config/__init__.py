"""The shop's own settings.

Declared once as a pydantic model; NoneBot reads `.env`, `.env.<ENVIRONMENT>` and the
environment (names case-insensitive) and `load_settings()` validates the keys we own.
Services never import this module's NoneBot half: they receive plain values.
"""

from __future__ import annotations

from datetime import time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from models.tables import PayType

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/shop.db"
KUAIDI100_OFFICIAL_QUERY_URL = "https://poll.kuaidi100.com/poll/query.do"
DEFAULT_EPAY_TYPES = (PayType.ALIPAY, PayType.WXPAY, PayType.QQPAY)


class PaymentProvider(StrEnum):
    MANUAL = "manual"  # /付款 shows the merchant's instructions; staff record with /收款
    EPAY = "epay"  # an EPay-compatible gateway (易支付) takes the money


class FriendRequests(StrEnum):
    ACCEPT = "accept"  # approve every friend request (paced through the outbox)
    IGNORE = "ignore"  # leave them for the owner to handle in QQ


class ShopSettings(BaseModel):
    """Every key of DESIGN.md's settings table that is the shop's (not NoneBot's)."""

    # hide_input_in_errors: a validation error must not echo EPAY_KEY back into a log.
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

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

    payment_provider: PaymentProvider = PaymentProvider.MANUAL
    # The gateway's base URL, ending with "/" (added when missing); mapi.php and api.php
    # are relative to it.
    epay_api_url: str = ""
    epay_pid: str = ""
    # SecretStr: shows as "**********" in repr, str() and logs of the settings.
    epay_key: SecretStr = SecretStr("")
    # Comma-separated, in the order offered (the first is /付款's default); `pay_types`
    # is the typed view. A plain string because NoneBot reads env values of list fields
    # as JSON only.
    epay_types: str = ",".join(DEFAULT_EPAY_TYPES)
    # Where the gateway reaches the bot, e.g. https://shop.example.com (no trailing "/").
    public_base_url: str = ""
    epay_reconcile_minutes: float = Field(2, gt=0)
    epay_reconcile_grace_minutes: float = Field(720, ge=0)

    # Card keys (卡密) are stored encrypted with a key derived from this; None: stored
    # plain (a warning at start). Changing it makes keys imported before unreadable.
    card_key_secret: SecretStr | None = None

    send_interval_seconds: float = Field(1.5, ge=0)
    send_per_minute: int = Field(20, gt=0)
    clock_tick_seconds: float = Field(30, gt=0)

    # QQ users adding the shop's account as a friend (so they can order privately and the
    # shop's private notices reach them).
    friend_requests: FriendRequests = FriendRequests.ACCEPT

    # Chat hygiene: how many commands one user may send in `flood_window_seconds`.
    flood_max_commands: int = Field(8, gt=0)
    flood_window_seconds: float = Field(10, gt=0)

    # Merchant safeguards and reports (services/safeguards.py, services/reports.py).
    # Unpaid orders one customer may have open at once; 0: no cap.
    max_unpaid_orders: int = Field(3, ge=0)
    # Staff are told when a variant's stock falls to this or below (a variant's own
    # /预警 overrides it); 0: off.
    low_stock_threshold: int = Field(0, ge=0)
    # "HH:MM" in SHOP_TIMEZONE: the owners' daily report; empty: no report.
    daily_report_time: str = "21:00"

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

    @field_validator("payment_provider", mode="before")
    @classmethod
    def _known_payment_provider(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            if value not in set(PaymentProvider):
                raise ValueError("PAYMENT_PROVIDER must be 'manual' or 'epay'")
        return value

    @field_validator("friend_requests", mode="before")
    @classmethod
    def _known_friend_policy(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            if value not in set(FriendRequests):
                raise ValueError("FRIEND_REQUESTS must be 'accept' or 'ignore'")
        return value

    @field_validator("epay_api_url")
    @classmethod
    def _gateway_base_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError("EPAY_API_URL must start with http:// or https://")
        return value if value.endswith("/") else value + "/"

    @field_validator("public_base_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("PUBLIC_BASE_URL must start with http:// or https://")
        return value

    @field_validator("epay_pid", "epay_key", mode="before")
    @classmethod
    def _text_not_number(cls, value: Any) -> Any:
        """NoneBot reads `.env` values as JSON when they parse: EPAY_PID=1001 arrives as
        the number 1001. Integers convert back exactly; anything else numeric would not."""
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError("EPAY_PID/EPAY_KEY was read as a number and cannot be used")
        if isinstance(value, int):
            return str(value)
        return value.strip() if isinstance(value, str) else value

    @field_validator("card_key_secret", mode="before")
    @classmethod
    def _secret_text(cls, value: Any) -> Any:
        """Empty means no secret; NoneBot reads an all-digit value from `.env` as a
        number, which converts back exactly only when it is an integer."""
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError("CARD_KEY_SECRET was read as a number and cannot be used")
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("daily_report_time", mode="before")
    @classmethod
    def _report_time(cls, value: Any) -> Any:
        """`21:00` (or `9:30`); empty turns the report off."""
        if value is None:
            return ""
        if not isinstance(value, str):
            return value
        text = value.strip().replace("：", ":")
        if not text:
            return ""
        hours, _, minutes = text.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
            raise ValueError("DAILY_REPORT_TIME must look like 21:00 (or be empty for no report)")
        if not (0 <= int(hours) <= 23 and 0 <= int(minutes) <= 59):
            raise ValueError("DAILY_REPORT_TIME must be a time of day between 00:00 and 23:59")
        return f"{int(hours):02d}:{minutes}"

    @field_validator("epay_types", mode="before")
    @classmethod
    def _pay_types(cls, value: Any) -> Any:
        """`alipay,wxpay` (or a list): known names only, in the order given, each once;
        stored as `alipay,wxpay`."""
        if isinstance(value, str):
            value = value.replace("，", ",").split(",")
        if not isinstance(value, list | tuple):
            return value
        names = [str(part).strip().lower() for part in value if str(part).strip()]
        known = [pay_type.value for pay_type in PayType]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ValueError(f"EPAY_TYPES: unknown {', '.join(unknown)}; use {', '.join(known)}")
        if not names:
            raise ValueError(f"EPAY_TYPES needs at least one of {', '.join(known)}")
        return ",".join(dict.fromkeys(names))

    @model_validator(mode="after")
    def _epay_complete(self) -> ShopSettings:
        """With PAYMENT_PROVIDER=epay the gateway must be fully configured, except in a
        demo with no gateway at all (the demo then runs the fake gateway of tools/)."""
        if self.payment_provider is not PaymentProvider.EPAY or self.epay_demo_gateway:
            return self
        for name, value in (
            ("EPAY_API_URL", self.epay_api_url),
            ("EPAY_PID", self.epay_pid),
            ("EPAY_KEY", self.epay_key.get_secret_value()),
        ):
            if not value:
                raise ValueError(f"PAYMENT_PROVIDER=epay needs {name}")
        return self

    @property
    def epay_demo_gateway(self) -> bool:
        """A demo shop set to epay with no gateway configured: the fake gateway stands in."""
        return (
            self.shop_demo
            and self.payment_provider is PaymentProvider.EPAY
            and not (self.epay_api_url or self.epay_pid or self.epay_key.get_secret_value())
        )

    @property
    def pay_types(self) -> tuple[PayType, ...]:
        """The payment methods offered, in order (EPAY_TYPES)."""
        return tuple(PayType(name) for name in self.epay_types.split(","))

    @property
    def epay_reconcile_every(self) -> timedelta:
        return timedelta(minutes=self.epay_reconcile_minutes)

    @property
    def epay_reconcile_grace(self) -> timedelta:
        return timedelta(minutes=self.epay_reconcile_grace_minutes)

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

    @property
    def daily_report_at(self) -> time | None:
        """When the owners' daily report goes out, in shop time; None: never."""
        if not self.daily_report_time:
            return None
        hours, minutes = self.daily_report_time.split(":")
        return time(int(hours), int(minutes))


def load_settings() -> ShopSettings:
    """The settings as NoneBot parsed them from `.env` and the environment."""
    import nonebot

    return nonebot.get_plugin_config(ShopSettings)
