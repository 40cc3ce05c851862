"""Settings: declared once, every key documented in .env.example, fractions accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from config import ShopSettings

ROOT = Path(__file__).resolve().parent.parent


def _example_keys() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and "=" in stripped:
            key, value = stripped.split("=", 1)
            pairs[key.lower()] = value
    return pairs


def test_env_example_documents_every_setting() -> None:
    keys = _example_keys()
    missing = [name for name in ShopSettings.model_fields if name not in keys]
    assert missing == []
    for nonebot_key in ("host", "port", "superusers", "command_start", "onebot_access_token"):
        assert nonebot_key in keys


def test_env_example_values_are_valid_and_match_defaults() -> None:
    keys = _example_keys()
    parsed = ShopSettings.model_validate(
        {k: v for k, v in keys.items() if k in ShopSettings.model_fields}
    )
    assert parsed == ShopSettings()


def test_fractional_durations_and_bad_values() -> None:
    assert ShopSettings(unpaid_timeout_minutes="0.5").unpaid_timeout_minutes == 0.5  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ShopSettings(shop_timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        ShopSettings(tracking_provider="sf-express")
    with pytest.raises(ValidationError):
        ShopSettings(unpaid_timeout_minutes=0)
