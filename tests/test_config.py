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


# --- payments (EPay) ---------------------------------------------------------------------

_EPAY = {
    "payment_provider": "epay",
    "epay_api_url": "https://pay.example.com",
    "epay_pid": "1001",
    "epay_key": "s3cret-merchant-key",
}


def test_payment_defaults_are_manual() -> None:
    settings = ShopSettings()
    assert settings.payment_provider == "manual"
    assert [t.value for t in settings.pay_types] == ["alipay", "wxpay", "qqpay"]
    assert settings.epay_reconcile_minutes == 2 and settings.epay_reconcile_grace_minutes == 720
    assert settings.public_base_url == ""


def test_epay_settings_are_normalised() -> None:
    settings = ShopSettings.model_validate(
        {
            **_EPAY,
            "payment_provider": " EPAY ",
            "epay_types": "wxpay, ALIPAY，wxpay",
            "public_base_url": "https://shop.example.com/",
        }
    )
    assert settings.payment_provider == "epay"
    assert settings.epay_api_url == "https://pay.example.com/"  # the trailing / added
    assert settings.epay_types == "wxpay,alipay"  # order kept, each once
    assert [t.value for t in settings.pay_types] == ["wxpay", "alipay"]
    assert settings.public_base_url == "https://shop.example.com"
    # NoneBot hands `.env` values that parse as JSON over as numbers (EPAY_PID=1001).
    numeric = ShopSettings.model_validate({**_EPAY, "epay_pid": 1001, "epay_key": 123456})
    assert numeric.epay_pid == "1001" and numeric.epay_key.get_secret_value() == "123456"


@pytest.mark.parametrize(
    ("missing", "setting"),
    [("epay_api_url", "EPAY_API_URL"), ("epay_pid", "EPAY_PID"), ("epay_key", "EPAY_KEY")],
)
def test_epay_without_its_settings_names_what_is_missing(missing: str, setting: str) -> None:
    with pytest.raises(ValidationError) as error:
        ShopSettings.model_validate({**_EPAY, missing: ""})
    assert f"PAYMENT_PROVIDER=epay needs {setting}" in str(error.value)
    assert _EPAY["epay_key"] not in str(error.value)


def test_a_demo_may_leave_the_gateway_to_the_fake() -> None:
    demo = ShopSettings(shop_demo=True, payment_provider="epay")  # type: ignore[arg-type]
    assert demo.epay_demo_gateway
    assert not ShopSettings.model_validate(_EPAY).epay_demo_gateway
    with pytest.raises(ValidationError):  # half a gateway is still an error in a demo
        ShopSettings.model_validate({**_EPAY, "shop_demo": True, "epay_key": ""})


@pytest.mark.parametrize(
    "bad",
    [
        {"payment_provider": "alipay"},
        {"epay_types": "alipay,paypal"},
        {"epay_types": " , "},
        {"epay_api_url": "pay.example.com"},
        {"public_base_url": "shop.example.com"},
        {"epay_reconcile_minutes": 0},
        {"epay_pid": 1.5},
    ],
)
def test_bad_payment_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as error:
        ShopSettings.model_validate({**_EPAY, **bad})
    assert _EPAY["epay_key"] not in str(error.value)


def test_the_epay_key_never_shows() -> None:
    settings = ShopSettings.model_validate(_EPAY)
    key = _EPAY["epay_key"]
    for shown in (repr(settings), str(settings), settings.model_dump_json(), f"{settings}"):
        assert key not in shown
    assert settings.epay_key.get_secret_value() == key
