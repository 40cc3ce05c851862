"""Automatic payment over the real protocol and real HTTP: `python bot.py` with
PAYMENT_PROVIDER=epay, pointed at a fake EPay gateway (tools/fake_epay.py) served by
this test process; the gateway reaches the bot at PUBLIC_BASE_URL (its own host:port).

A customer orders, asks /付款 (the bot signs mapi.php; the fake refuses a bad
signature), pays at the gateway, and hears 已确认收款 with no staff action while the
owner is told to ship. A lost notify is found by the reconciliation clock; duplicate
notifies (two at once, and a replay) record one payment. And the demo: with no gateway
configured, the bot runs the fake itself and the simulator's `:pay` pays."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import E2E_OWNER, E2E_TOKEN, BotProcess
from tools.fake_epay import KEY, PID, FakeEpay, NotifyMode

CODE = re.compile(r"订单号：([0-9A-Z]{10})")
ADDRESS = "/地址 添加 张三 13800001111 浙江省杭州市西湖区文三路 1 号"
NOTIFY_PATH = "/pay/epay/notify"
NOTICE_TIMEOUT = 20.0


@pytest.fixture
def fake() -> Iterator[FakeEpay]:
    gateway = FakeEpay(retry_delays=(0.0, 0.3, 0.6, 1.0, 2.0))
    with gateway.running():
        yield gateway


def epay_bot(workdir: Path, fake: FakeEpay, **settings: str) -> BotProcess:
    """The e2e shop taking payments through `fake`; notices sent quickly."""
    bot = BotProcess(
        workdir,
        {
            "PAYMENT_PROVIDER": "epay",
            "EPAY_API_URL": fake.url,
            "EPAY_PID": PID,
            "EPAY_KEY": KEY,
            "SEND_INTERVAL_SECONDS": "0.05",
            "SEND_PER_MINUTE": "600",
            **settings,
        },
    )
    bot.env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{bot.port}"
    return bot


@asynccontextmanager
async def connected(bot: BotProcess) -> AsyncIterator[Any]:
    from tools.onebot_sim import OneBotSimulator

    sim = OneBotSimulator(bot.url, access_token=E2E_TOKEN)
    await sim.connect(timeout=60)
    try:
        yield sim
    finally:
        await sim.close()


@pytest.fixture
async def running(tmp_path: Path, fake: FakeEpay) -> AsyncIterator[tuple[BotProcess, Any]]:
    """The bot (default reconciliation: every 2 minutes, so a payment seen within the
    test came by notify) and a connected simulator."""
    bot = epay_bot(tmp_path, fake)
    bot.start()
    try:
        async with connected(bot) as sim:
            yield bot, sim
    finally:
        bot.stop()
    assert "Traceback" not in bot.log(), bot.log()[-4000:]


def code_in(text: str) -> str:
    match = CODE.search(text)
    assert match, text
    return match.group(1)


async def place_order(sim: Any, customer: int, line: str = "2 1") -> str:
    reply = await sim.ask_private(customer, ADDRESS)
    assert "地址" in reply.text, reply.text
    reply = await sim.ask_private(customer, f"/下单 {line}")
    assert "请确认订单" in reply.text, reply.text
    reply = await sim.ask_private(customer, "确认")
    assert "下单成功" in reply.text, reply.text
    return code_in(reply.text)


async def ask_to_pay(sim: Any, customer: int, code: str) -> Any:
    reply = await sim.ask_private(customer, f"/付款 {code}", timeout=20)
    assert f"订单号：{code}" in reply.text and "付款链接：" in reply.text, reply.text
    assert reply.images, "the QR code image is missing"
    return reply


async def wait_paid(sim: Any, customer: int, code: str, since: int) -> None:
    """The customer hears 已确认收款 and the owner is told to ship (both via the outbox)."""
    notice = await sim.wait_for_send(
        lambda m: m.target_id == customer and code in m.text and "已确认收款" in m.text,
        timeout=NOTICE_TIMEOUT,
        since=since,
    )
    assert notice.action == "send_private_msg"
    staff = await sim.wait_for_send(
        lambda m: m.target_id == E2E_OWNER and code in m.text and "请尽快发货" in m.text,
        timeout=NOTICE_TIMEOUT,
        since=since,
    )
    assert staff.action == "send_private_msg" and "已付款" in staff.text


async def payments_in_database(bot: BotProcess, code: str) -> list[tuple[str, str, int]]:
    """(provider, reference, amount_fen) of the order's Payment rows, read after the bot
    stopped from the database it used (SQLite file or PostgreSQL schema)."""
    from sqlalchemy import select

    from models.db import Database
    from models.tables import Payment, ShopOrder

    database = Database(bot.env["DATABASE_URL"])
    try:
        async with database.read() as session:
            rows = await session.execute(
                select(Payment.provider, Payment.reference, Payment.amount_fen)
                .join(ShopOrder, ShopOrder.id == Payment.order_id)  # type: ignore[arg-type]
                .where(ShopOrder.code == code)
            )
            return [(provider, reference, amount) for provider, reference, amount in rows]
    finally:
        await database.dispose()


async def test_customer_pays_and_the_shop_confirms_with_no_staff_action(
    running: tuple[BotProcess, Any], fake: FakeEpay
) -> None:
    bot, sim = running
    customer = 41001
    code = await place_order(sim, customer)
    reply = await ask_to_pay(sim, customer, code)
    out_trade_no = f"{code}-1"
    # The bot signed mapi.php right (the fake checks it) and gave its public notify URL.
    created = fake.payments[out_trade_no]
    assert created.notify_url == f"http://127.0.0.1:{bot.port}{NOTIFY_PATH}"
    assert f"应付：¥{created.money}" in reply.text and created.trade_no in reply.text
    # Asking again shows the same payment.
    again = await sim.ask_private(customer, f"/付款 {code}")
    assert created.trade_no in again.text and len(fake.payments) == 1

    mark = sim.mark()
    fake.pay(out_trade_no)
    await wait_paid(sim, customer, code, mark)
    await asyncio.to_thread(fake.wait_notified)
    assert fake.answers_for(out_trade_no) == ["success"]
    reply = await sim.ask_private(customer, f"/订单 {code}")
    assert "状态：待发货" in reply.text, reply.text
    reply = await sim.ask_private(customer, f"/付款 {code}")
    assert "已付款" in reply.text and "付款链接" not in reply.text


async def test_duplicate_notifies_record_one_payment(
    running: tuple[BotProcess, Any], fake: FakeEpay
) -> None:
    bot, sim = running
    customer = 41002
    code = await place_order(sim, customer)
    await ask_to_pay(sim, customer, code)
    out_trade_no = f"{code}-1"
    mark = sim.mark()
    # The gateway delivers the same notify twice at the same moment…
    params = fake.pay(out_trade_no, NotifyMode.TWICE)
    await wait_paid(sim, customer, code, mark)
    await asyncio.to_thread(fake.wait_notified)
    assert fake.answers_for(out_trade_no) == ["success", "success"]
    # …and once more later, as a gateway retrying would, GET this time.
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        replay = await http.get(f"http://127.0.0.1:{bot.port}{NOTIFY_PATH}", params=params)
    assert replay.text == "success"
    # A forged copy is refused.
    forged = {**params, "sign": "0" * 32}
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        refused = await http.post(f"http://127.0.0.1:{bot.port}{NOTIFY_PATH}", data=forged)
    assert refused.text == "fail"
    # One 已确认收款 for the customer, whatever the gateway repeated.
    await asyncio.sleep(1.0)
    paid_notices = [
        m
        for m in sim.sent[mark:]
        if m.target_id == customer and code in m.text and "已确认收款" in m.text
    ]
    assert len(paid_notices) == 1
    bot.stop()
    payments = await payments_in_database(bot, code)
    assert payments == [("epay", params["trade_no"], int(Decimal(params["money"]) * 100))]


async def test_lost_notify_is_found_by_reconciliation(tmp_path: Path, fake: FakeEpay) -> None:
    bot = epay_bot(
        tmp_path, fake, EPAY_RECONCILE_MINUTES="0.02", CLOCK_TICK_SECONDS="0.5"
    )  # a live attempt is asked about every 1.2 s
    bot.start()
    try:
        async with connected(bot) as sim:
            customer = 41003
            code = await place_order(sim, customer)
            await ask_to_pay(sim, customer, code)
            out_trade_no = f"{code}-1"
            mark = sim.mark()
            fake.pay(out_trade_no, NotifyMode.DROP)  # paid, but the notify never comes
            await wait_paid(sim, customer, code, mark)
            assert fake.answers_for(out_trade_no) == []
            queries = [
                fields
                for path, fields in fake.requests
                if path == "api.php" and fields.get("out_trade_no") == out_trade_no
            ]
            assert queries, "paid without asking the gateway?"
            assert all(fields.get("act") == "order" for fields in queries)
            reply = await sim.ask_private(customer, f"/订单 {code}")
            assert "状态：待发货" in reply.text, reply.text
    finally:
        bot.stop()
    assert "Traceback" not in bot.log(), bot.log()[-4000:]
    assert KEY not in bot.log(), "the merchant key reached the log"
    assert len(await payments_in_database(bot, code)) == 1


async def test_demo_runs_its_own_gateway_and_the_simulator_pays(tmp_path: Path) -> None:
    """`PAYMENT_PROVIDER=epay ./run demo`: a demo shop with no gateway configured starts
    the fake gateway in the bot process; `:pay <订单号>` in the simulator pays."""
    from tools.onebot_sim.cli import demo_pay

    bot = BotProcess(
        tmp_path,
        {
            "PAYMENT_PROVIDER": "epay",
            "EPAY_API_URL": "",
            "EPAY_PID": "",
            "EPAY_KEY": "",
            "PUBLIC_BASE_URL": "",
            "SEND_INTERVAL_SECONDS": "0.05",
        },
    )
    bot.start()
    try:
        async with connected(bot) as sim:
            customer = 41004
            assert "先 /付款" in await demo_pay(sim.sent, "2K7QH9M3XA")  # no link seen yet
            code = await place_order(sim, customer)
            reply = await ask_to_pay(sim, customer, code)
            assert re.search(r"付款链接：http://127\.0\.0\.1:\d+/submit/\d+", reply.text)
            mark = sim.mark()
            answer = await demo_pay(sim.sent, code)
            assert "已付款" in answer and f"{code}-1" in answer, answer
            await wait_paid(sim, customer, code, mark)
            assert "已经付过了" in await demo_pay(sim.sent, code)
    finally:
        bot.stop()
    log = bot.log()
    assert "Traceback" not in log, log[-4000:]
    assert "demo: a fake EPay gateway serves at" in log
