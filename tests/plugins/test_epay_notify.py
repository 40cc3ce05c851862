"""The EPay notify endpoint of plugins/payments on NoneBot's own FastAPI app: GET and POST
notifies (through httpx's ASGI transport), the answers `success`/`fail`, one log line per
notify without the key or the signature, and the fake gateway delivering its notifies to
the app served over real HTTP."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import CUSTOMER_ID
from tools.bot_process import PROXY_VARIABLES, free_port
from tools.fake_epay import KEY, PID, FakeEpay, NotifyMode

if TYPE_CHECKING:
    from config import ShopSettings
    from plugins._common.runtime import ShopRuntime
    from services.epay import EpayGateway

NOTIFY = "/pay/epay/notify"
_names = itertools.count(1)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeEpay]:
    server = FakeEpay(retry_delays=(0.0, 0.2, 0.5))
    with server.running():
        yield server


@pytest.fixture
def bot_port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, fake: FakeEpay, bot_port: int) -> ShopSettings:
    from config import ShopSettings

    return ShopSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}",
        data_dir=str(tmp_path / "data"),
        shop_name="测试小店",
        payment_provider="epay",  # type: ignore[arg-type]
        epay_api_url=fake.url,
        epay_pid=PID,
        epay_key=KEY,  # type: ignore[arg-type]
        public_base_url=f"http://127.0.0.1:{bot_port}",
    )


@pytest.fixture
async def client(shop: ShopRuntime) -> AsyncIterator[httpx.AsyncClient]:
    import nonebot

    transport = httpx.ASGITransport(app=nonebot.get_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
        yield http


@pytest.fixture
async def gateway(shop: ShopRuntime) -> AsyncIterator[EpayGateway]:
    from plugins.payments import _close_gateway, epay_gateway

    built = epay_gateway()
    assert built is not None
    yield built
    await _close_gateway()


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    from nonebot import logger

    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="INFO")
    yield lines
    logger.remove(sink)


async def _order_with_attempt(shop: ShopRuntime, gateway: EpayGateway) -> tuple[str, str]:
    """An unpaid order of CUSTOMER_ID and the out_trade_no of its payment at the fake."""
    from models.types import utcnow
    from services import catalog, orders
    from services.actors import Caller
    from services.addresses import AddressSnapshot
    from services.staff import Role
    from services.usecases.epay import start_payment

    now = utcnow()
    async with shop.database.write() as session:
        _, variant = await catalog.create_item(
            session, shop.shop_id, f"商品{next(_names)}", 5900, 10
        )
        address = AddressSnapshot("张三", "13812345678", "浙江省杭州市西湖区文三路 100 号")
        order = await orders.place_order(
            session,
            shop.shop_id,
            CUSTOMER_ID,
            None,
            [(variant.id or 0, 1)],
            address,
            "",
            now,
            timedelta(minutes=30),
        )
    caller = Caller(CUSTOMER_ID, None, Role.CUSTOMER)
    link = await start_payment(shop.shop, caller, order.code, None, gateway)
    return order.code, link.out_trade_no


async def _status(shop: ShopRuntime, code: str) -> str:
    from services import orders

    async with shop.database.read() as session:
        return (await orders.get_order(session, shop.shop_id, code)).status


async def _payment_count(shop: ShopRuntime) -> int:
    from sqlalchemy import func, select

    from models.tables import Payment

    async with shop.database.read() as session:
        return int((await session.execute(select(func.count()).select_from(Payment))).scalar_one())


# --- over the ASGI app -----------------------------------------------------------------


async def test_get_notify_pays_the_order_and_logs_one_line(
    shop: ShopRuntime,
    client: httpx.AsyncClient,
    gateway: EpayGateway,
    fake: FakeEpay,
    log_lines: list[str],
) -> None:
    code, out_trade_no = await _order_with_attempt(shop, gateway)
    params = fake.pay(out_trade_no, NotifyMode.DROP)
    response = await client.get(NOTIFY, params=params)
    assert response.status_code == 200 and response.text == "success"
    assert "set-cookie" not in response.headers
    assert await _status(shop, code) == "paid"
    [line] = [line for line in log_lines if "epay notify" in line]
    assert out_trade_no in line and code in line and "recorded" in line
    assert KEY not in line and params["sign"] not in line
    # The gateway repeats it: success again, one payment.
    again = await client.get(NOTIFY, params=params)
    assert again.text == "success" and await _payment_count(shop) == 1


async def test_post_notify_pays_the_order(
    shop: ShopRuntime, client: httpx.AsyncClient, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code, out_trade_no = await _order_with_attempt(shop, gateway)
    params = fake.pay(out_trade_no, NotifyMode.DROP)
    response = await client.post(NOTIFY, data=params)
    assert response.status_code == 200 and response.text == "success"
    assert await _status(shop, code) == "paid"


async def test_unverified_notifies_answer_fail(
    shop: ShopRuntime,
    client: httpx.AsyncClient,
    gateway: EpayGateway,
    fake: FakeEpay,
    log_lines: list[str],
) -> None:
    code, out_trade_no = await _order_with_attempt(shop, gateway)
    fake.mark_paid(out_trade_no)
    forged = fake.notify_params(out_trade_no, sign="0" * 32)
    assert (await client.get(NOTIFY, params=forged)).text == "fail"
    assert (await client.post(NOTIFY, data=forged)).text == "fail"
    assert (await client.get(NOTIFY)).text == "fail"
    assert (await client.post(NOTIFY, content=b"\xff\xfe garbage")).text == "fail"
    assert await _status(shop, code) == "pending_payment"
    assert all(KEY not in line and "0" * 32 not in line for line in log_lines)


async def test_unpaid_status_and_mismatch_answer_success(
    shop: ShopRuntime, client: httpx.AsyncClient, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code, out_trade_no = await _order_with_attempt(shop, gateway)
    waiting = fake.notify_params(out_trade_no, trade_status="WAIT_BUYER_PAY")
    assert (await client.post(NOTIFY, data=waiting)).text == "success"
    cheap = fake.notify_params(out_trade_no, money="0.01")
    assert (await client.post(NOTIFY, data=cheap)).text == "success"
    assert await _status(shop, code) == "pending_payment"


async def test_an_oversized_body_is_refused(shop: ShopRuntime, client: httpx.AsyncClient) -> None:
    response = await client.post(NOTIFY, content=b"a=" + b"x" * 20_000)
    assert response.status_code == 413 and response.text == "fail"


async def test_the_return_page_is_only_a_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/pay/epay/return", params={"trade_status": "TRADE_SUCCESS"})
    assert response.status_code == 200 and "QQ" in response.text


async def test_the_gateway_client_follows_the_settings(
    shop: ShopRuntime, gateway: EpayGateway, bot_port: int
) -> None:
    from plugins.payments import epay_gateway

    assert gateway.notify_url == f"http://127.0.0.1:{bot_port}{NOTIFY}"
    assert epay_gateway() is gateway  # one client, kept
    shop.shop.settings = shop.settings.model_copy(update={"payment_provider": "manual"})
    assert epay_gateway() is None


# --- over real HTTP ------------------------------------------------------------------------


@pytest.fixture
async def served(shop: ShopRuntime, bot_port: int) -> AsyncIterator[None]:
    """NoneBot's app served by uvicorn on PUBLIC_BASE_URL's port (no lifespan: the test
    shop is already open)."""
    import nonebot
    import uvicorn

    config = uvicorn.Config(
        nonebot.get_app(), host="127.0.0.1", port=bot_port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, no event)
        await asyncio.sleep(0.02)
    yield
    server.should_exit = True
    await task


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_the_gateway_notifies_over_http_until_success(
    shop: ShopRuntime, served: None, gateway: EpayGateway, fake: FakeEpay, method: str
) -> None:
    code, out_trade_no = await _order_with_attempt(shop, gateway)
    fake.notify_method = method
    try:
        fake.pay(out_trade_no, NotifyMode.TWICE)  # a duplicate delivery, at the same time
        await asyncio.to_thread(fake.wait_notified, 10.0)
    finally:
        fake.notify_method = "POST"
    assert fake.answers_for(out_trade_no) == ["success", "success"]
    assert await _status(shop, code) == "paid"
    assert await _payment_count(shop) == 1
