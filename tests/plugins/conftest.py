"""Fixtures for the plugin tests that need an EPay shop: a test that takes `epay` gets a
shop runtime (conftest's `shop`) opened with PAYMENT_PROVIDER=epay on a fake gateway
served over real HTTP. The gateway's own notifies are dropped by the tests that want a
payment to be found by /对账 or the clock, or handed to the bot by the test itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.plugins.helpers import PROXY_VARIABLES, enable_group, epay_settings
from tools.fake_epay import FakeEpay

if TYPE_CHECKING:
    from config import ShopSettings
    from plugins._common.runtime import ShopRuntime


@pytest.fixture(scope="module")
def fake_epay() -> Iterator[FakeEpay]:
    server = FakeEpay(retry_delays=(0.0,))
    with server.running():
        yield server


@pytest.fixture
def settings(settings: ShopSettings, request: pytest.FixtureRequest) -> ShopSettings:
    """conftest's settings; for a test that takes `epay`, PAYMENT_PROVIDER=epay on the
    fake gateway, so the shop runtime opens with its gateway client."""
    if "epay" not in request.fixturenames:
        return settings
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return epay_settings(settings, request.getfixturevalue("fake_epay").url)


@pytest.fixture
def epay(shop: ShopRuntime, fake_epay: FakeEpay) -> FakeEpay:
    """The fake gateway of this test's epay shop."""
    assert shop.shop.payment_gateway is not None
    return fake_epay


@pytest.fixture(params=("private", "group"))
async def chat(request: pytest.FixtureRequest, shop: ShopRuntime) -> str:
    """A command test once in a private chat and once in an enabled group."""
    if request.param == "group":
        await enable_group(shop)
    return request.param


@pytest.fixture
def no_flood_limit(shop: ShopRuntime) -> None:
    """For tests that send whole conversations at once (take it in an autouse fixture)."""
    from plugins._common.runtime import FloodGuard

    shop.flood = FloodGuard(10_000, 10.0)
