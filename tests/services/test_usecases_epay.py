"""The EPay use cases (services/usecases/epay.py) on a real temp SQLite shop against the
fake gateway over real HTTP: every rule of DESIGN.md's Payments section."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config import PaymentProvider, ShopSettings
from models.tables import (
    AttemptState,
    OrderEvent,
    OrderStatus,
    OutboxMessage,
    Payment,
    PaymentAttempt,
    PayType,
    ShopOrder,
)
from services import catalog, orders, payment_attempts
from services.actors import Caller
from services.addresses import AddressSnapshot
from services.catalog import VariantRef
from services.context import ShopContext, close_shop, open_shop, payment_gateway_for
from services.epay import EpayGateway
from services.errors import (
    AlreadyPaid,
    InvalidTransition,
    OrderNotFound,
    PaymentGatewayError,
    PayTypeNotOffered,
)
from services.staff import Role
from services.usecases import clocks, epay, order_admin
from services.usecases.epay import AlertReason, CheckResult
from tests.conftest import CUSTOMER_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID
from tools.bot_process import PROXY_VARIABLES, free_port
from tools.fake_epay import KEY, PID, FakeEpay, NotifyMode

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
CUSTOMER = Caller(CUSTOMER_ID, None, Role.CUSTOMER)
OTHER_CUSTOMER = Caller(OTHER_CUSTOMER_ID, None, Role.CUSTOMER)
STAFF = Caller(STAFF_ID, None, Role.STAFF)
HOME = AddressSnapshot("张三", "13812345678", "浙江省杭州市西湖区文三路 100 号")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
UNPAID = timedelta(minutes=30)
_names = itertools.count(1)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeEpay]:
    # Notifies the fake would send go nowhere here: the tests hand them over themselves.
    server = FakeEpay(retry_delays=(0.0,))
    with server.running():
        yield server


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake: FakeEpay) -> ShopSettings:
    return ShopSettings(
        database_url=database_url,
        data_dir=str(tmp_path / "data"),
        shop_name="测试小店",
        payment_provider="epay",  # type: ignore[arg-type]
        epay_api_url=fake.url,
        epay_pid=PID,
        epay_key=KEY,  # type: ignore[arg-type]
        public_base_url="http://127.0.0.1:9",
    )


@pytest.fixture
async def gateway(fake: FakeEpay) -> AsyncIterator[EpayGateway]:
    client = EpayGateway(
        fake.url,
        PID,
        KEY,
        notify_url=f"http://127.0.0.1:{free_port()}/pay/epay/notify",
        return_url="http://127.0.0.1:9/pay/epay/return",
        timeout=5.0,
    )
    yield client
    await client.aclose()


# --- helpers ---------------------------------------------------------------------------


async def _variant(shop: ShopContext, price_fen: int = 5900, stock: int = 10) -> int:
    async with shop.database.write() as session:
        _, variant = await catalog.create_item(
            session, shop.shop_id, f"商品{next(_names)}", price_fen, stock
        )
        assert variant.id is not None
        return variant.id


async def _unpaid(
    shop: ShopContext,
    *,
    customer: int = CUSTOMER_ID,
    quantity: int = 1,
    variant_id: int | None = None,
    at: datetime = NOW - timedelta(minutes=1),
) -> str:
    variant_id = variant_id or await _variant(shop)
    async with shop.database.write() as session:
        order = await orders.place_order(
            session, shop.shop_id, customer, None, [(variant_id, quantity)], HOME, "", at, UNPAID
        )
        return order.code


async def _order(shop: ShopContext, code: str) -> ShopOrder:
    async with shop.database.read() as session:
        return await orders.get_order(session, shop.shop_id, code)


async def _attempts(shop: ShopContext, code: str) -> list[PaymentAttempt]:
    async with shop.database.read() as session:
        order = await orders.get_order(session, shop.shop_id, code)
        rows = await session.execute(
            select(PaymentAttempt)
            .where(PaymentAttempt.order_id == order.id)
            .order_by(PaymentAttempt.id)  # type: ignore[arg-type]
        )
        return list(rows.scalars())


async def _payments(shop: ShopContext) -> list[Payment]:
    async with shop.database.read() as session:
        return list((await session.execute(select(Payment))).scalars())


async def _outbox(shop: ShopContext) -> list[OutboxMessage]:
    async with shop.database.read() as session:
        rows = await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))  # type: ignore[arg-type]
        return list(rows.scalars())


async def _events(shop: ShopContext, code: str) -> list[OrderEvent]:
    async with shop.database.read() as session:
        order = await orders.get_order(session, shop.shop_id, code)
        rows = await session.execute(
            select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)  # type: ignore[arg-type]
        )
        return list(rows.scalars())


async def _alert_keys(shop: ShopContext) -> list[str]:
    return [row.dedupe_key for row in await _outbox(shop) if row.dedupe_key.startswith("epay:")]


async def _start(
    shop: ShopContext,
    gateway: EpayGateway,
    code: str,
    pay_type: PayType | None = None,
    now: datetime = NOW,
) -> epay.PaymentLink:
    return await epay.start_payment(shop, CUSTOMER, code, pay_type, gateway, now)


# --- /付款 -------------------------------------------------------------------------------


async def test_start_payment_creates_an_attempt_with_link_and_qr(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context, quantity=2)
    link = await _start(shop_context, gateway, code)
    assert link.order_code == code and link.out_trade_no == f"{code}-1"
    assert link.pay_type is PayType.ALIPAY  # the first of EPAY_TYPES
    assert link.amount_fen == 11800 and not link.reused
    assert link.pay_url.startswith(fake.url) and link.qr_png.startswith(PNG_MAGIC)
    assert link.expires_at == NOW - timedelta(minutes=1) + UNPAID
    sent = fake.payments[link.out_trade_no]
    assert sent.money == "118.00" and sent.type == "alipay"
    assert sent.notify_url == gateway.notify_url and code in sent.name
    [attempt] = await _attempts(shop_context, code)
    assert attempt.state == AttemptState.LIVE and attempt.amount_fen == 11800
    assert attempt.pay_url == link.pay_url and attempt.qr_text.startswith(f"{fake.url}qr/")
    assert attempt.next_check_at == NOW + timedelta(minutes=2)
    assert attempt.trade_no == sent.trade_no
    # Starting a payment changes nothing on the order and tells nobody.
    assert (await _order(shop_context, code)).status == OrderStatus.PENDING_PAYMENT
    assert await _outbox(shop_context) == []


async def test_an_attempt_is_reused_for_the_same_total_and_method(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    first = await _start(shop_context, gateway, code)
    created = len([r for r in fake.requests if r[0] == "mapi.php"])
    again = await _start(shop_context, gateway, code, now=NOW + timedelta(minutes=10))
    assert again.reused and again.out_trade_no == first.out_trade_no
    assert again.pay_url == first.pay_url
    assert len([r for r in fake.requests if r[0] == "mapi.php"]) == created  # no new one
    # Another method: another attempt, the next counter.
    wechat = await _start(shop_context, gateway, code, PayType.WXPAY)
    assert wechat.out_trade_no == f"{code}-2" and not wechat.reused


async def test_a_new_attempt_after_the_total_changed(
    shop_context: ShopContext, gateway: EpayGateway
) -> None:
    variant_id = await _variant(shop_context)
    code = await _unpaid(shop_context, variant_id=variant_id)
    first = await _start(shop_context, gateway, code)
    # What /修改 <订单号> 数量 does in its transaction: amend, then void live attempts.
    async with shop_context.database.write() as session:
        order = await orders.get_order(session, shop_context.shop_id, code)
        [line] = await orders.order_lines(session, order.id or 0)
        await orders.amend_quantity(
            session, order, VariantRef(line.item_id), 3, CUSTOMER.actor, NOW
        )
        assert await payment_attempts.void_live_attempts(session, order.id or 0, NOW) == 1
    second = await _start(shop_context, gateway, code)
    assert second.out_trade_no == f"{code}-2" and second.amount_fen == 3 * 5900
    states = [a.state for a in await _attempts(shop_context, code)]
    assert states == [AttemptState.VOIDED, AttemptState.LIVE]
    assert first.out_trade_no != second.out_trade_no


async def test_an_old_attempt_is_not_reused(
    shop_context: ShopContext, gateway: EpayGateway
) -> None:
    code = await _unpaid(shop_context)
    first = await _start(shop_context, gateway, code, now=NOW - timedelta(minutes=31))
    later = await _start(shop_context, gateway, code)
    assert not later.reused and later.out_trade_no == f"{code}-2" != first.out_trade_no


async def test_start_payment_refusals(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    with pytest.raises(OrderNotFound):  # someone else's order looks like no order
        await epay.start_payment(shop_context, OTHER_CUSTOMER, code, None, gateway, NOW)
    staff_link = await epay.start_payment(shop_context, STAFF, code, None, gateway, NOW)
    assert staff_link.out_trade_no == f"{code}-1"
    shop_context.settings = shop_context.settings.model_copy(update={"epay_types": "alipay,wxpay"})
    with pytest.raises(PayTypeNotOffered) as not_offered:
        await _start(shop_context, gateway, code, PayType.QQPAY)
    assert not_offered.value.offered == ("alipay", "wxpay")
    fake.refuse_next_create = "商户已被封禁"
    with pytest.raises(PaymentGatewayError) as refused:
        await _start(shop_context, gateway, code, PayType.WXPAY)
    assert refused.value.reason == "商户已被封禁"
    assert len(await _attempts(shop_context, code)) == 1  # nothing stored for the refusal
    await epay.handle_notify(shop_context, fake.notify_params(f"{code}-1"), NOW)
    with pytest.raises(AlreadyPaid):
        await _start(shop_context, gateway, code)
    cancelled = await _unpaid(shop_context)
    async with shop_context.database.write() as session:
        order = await orders.get_order(session, shop_context.shop_id, cancelled)
        await orders.cancel(session, order, CUSTOMER.actor, "", NOW)
    with pytest.raises(InvalidTransition):
        await _start(shop_context, gateway, cancelled)


async def test_two_payments_started_at_once_make_one_attempt(
    shop_context: ShopContext, gateway: EpayGateway
) -> None:
    code = await _unpaid(shop_context)
    first, second = await asyncio.gather(
        _start(shop_context, gateway, code), _start(shop_context, gateway, code)
    )
    assert first.out_trade_no == second.out_trade_no and (first.reused or second.reused)
    assert len(await _attempts(shop_context, code)) == 1


# --- the notify ------------------------------------------------------------------------


async def test_a_verified_notify_pays_the_order(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    params = fake.pay(link.out_trade_no, NotifyMode.DROP)
    check = await epay.handle_notify(shop_context, params, NOW + timedelta(minutes=1))
    assert check.result is CheckResult.RECORDED and check.answer == "success"
    assert check.order_code == code and not check.revived
    order = await _order(shop_context, code)
    assert order.status == OrderStatus.PAID and order.paid_fen == 5900
    [payment] = await _payments(shop_context)
    assert payment.provider == "epay" and payment.reference == params["trade_no"]
    assert payment.amount_fen == 5900 and payment.recorded_by is None
    paid_event = (await _events(shop_context, code))[-1]
    assert (paid_event.action, paid_event.actor, paid_event.to_status) == (
        "paid",
        "system",
        "paid",
    )
    keys = {row.dedupe_key for row in await _outbox(shop_context)}
    assert f"order:{code}:paid" in keys  # the customer: 已确认收款
    assert f"order:{code}:paid:staff:{OWNER_ID}" in keys  # staff: a paid order to ship
    [attempt] = await _attempts(shop_context, code)
    assert attempt.state == AttemptState.PAID and attempt.trade_no == params["trade_no"]
    assert attempt.next_check_at is None
    # The gateway repeats it: success again, nothing more.
    outbox_before = len(await _outbox(shop_context))
    repeat = await epay.handle_notify(shop_context, params, NOW + timedelta(minutes=2))
    assert repeat.result is CheckResult.DUPLICATE and repeat.answer == "success"
    assert len(await _payments(shop_context)) == 1
    assert len(await _outbox(shop_context)) == outbox_before


async def test_racing_duplicate_notifies_record_one_payment(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    params = fake.pay(link.out_trade_no, NotifyMode.DROP)
    checks = await asyncio.gather(
        *(epay.handle_notify(shop_context, dict(params), NOW) for _ in range(3))
    )
    assert sorted(check.result for check in checks) == sorted(
        [CheckResult.RECORDED, CheckResult.DUPLICATE, CheckResult.DUPLICATE]
    )
    assert all(check.answer == "success" for check in checks)
    assert len(await _payments(shop_context)) == 1
    customer_notices = [r for r in await _outbox(shop_context) if r.dedupe_key.endswith(":paid")]
    assert len(customer_notices) == 1


async def test_bad_signature_and_wrong_pid_fail_and_change_nothing(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    fake.mark_paid(link.out_trade_no)
    forged = fake.notify_params(link.out_trade_no, sign="0" * 32)
    tampered = {**fake.notify_params(link.out_trade_no), "money": "0.01"}
    other_merchant = FakeEpay(pid="2002", key=KEY)
    other_merchant.payments = fake.payments
    wrong_pid = other_merchant.notify_params(link.out_trade_no)  # signed with our key
    unsigned = {k: v for k, v in fake.notify_params(link.out_trade_no).items() if k != "sign"}
    for params in (forged, tampered, wrong_pid, unsigned):
        check = await epay.handle_notify(shop_context, params, NOW)
        assert check.result is CheckResult.REJECTED and check.answer == "fail"
    assert (await _order(shop_context, code)).status == OrderStatus.PENDING_PAYMENT
    assert await _payments(shop_context) == [] and await _outbox(shop_context) == []


async def test_notify_fails_when_epay_is_not_the_provider(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    params = fake.pay(link.out_trade_no, NotifyMode.DROP)
    shop_context.settings = shop_context.settings.model_copy(update={"payment_provider": "manual"})
    check = await epay.handle_notify(shop_context, params, NOW)
    assert check.answer == "fail"
    assert (await _order(shop_context, code)).status == OrderStatus.PENDING_PAYMENT


async def test_a_status_other_than_trade_success_changes_nothing(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    for status in ("WAIT_BUYER_PAY", "TRADE_CLOSED", ""):
        params = fake.notify_params(link.out_trade_no, trade_status=status)
        check = await epay.handle_notify(shop_context, params, NOW)
        assert check.result is CheckResult.NOT_PAID and check.answer == "success"
    assert (await _order(shop_context, code)).status == OrderStatus.PENDING_PAYMENT
    assert await _payments(shop_context) == [] and await _outbox(shop_context) == []


async def test_a_wrong_amount_changes_nothing_and_alerts_staff_once(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    fake.mark_paid(link.out_trade_no)
    params = fake.notify_params(link.out_trade_no, money="0.59")
    for _ in range(2):  # the gateway repeats it
        check = await epay.handle_notify(shop_context, params, NOW)
        assert check.result is CheckResult.ALERTED and check.alert is AlertReason.MISMATCH
        assert check.answer == "success"
    assert (await _order(shop_context, code)).status == OrderStatus.PENDING_PAYMENT
    assert await _payments(shop_context) == []
    assert await _alert_keys(shop_context) == [
        f"epay:{link.out_trade_no}:mismatch:staff:{OWNER_ID}"
    ]
    [alert] = await _outbox(shop_context)
    assert code in alert.segments and "0.59" in alert.segments and "¥59.00" in alert.segments
    # "59.0" is the same amount as a decimal: that one pays.
    ok = fake.notify_params(link.out_trade_no, money="59.0")
    assert (await epay.handle_notify(shop_context, ok, NOW)).result is CheckResult.RECORDED


async def test_a_notify_for_a_voided_attempt_changes_nothing_and_alerts_staff(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    async with shop_context.database.write() as session:
        order = await orders.get_order(session, shop_context.shop_id, code)
        await payment_attempts.void_live_attempts(session, order.id or 0, NOW)
    params = fake.pay(link.out_trade_no, NotifyMode.DROP)
    for _ in range(2):
        check = await epay.handle_notify(shop_context, params, NOW)
        assert check.result is CheckResult.ALERTED and check.alert is AlertReason.VOIDED
        assert check.answer == "success"
    assert (await _order(shop_context, code)).status == OrderStatus.PENDING_PAYMENT
    assert await _payments(shop_context) == []
    assert await _alert_keys(shop_context) == [f"epay:{link.out_trade_no}:voided:staff:{OWNER_ID}"]


async def test_a_notify_for_an_unknown_payment_alerts_staff(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    # A payment made at the gateway under our merchant id, but not by this shop's bot.
    await gateway.create("NOTOURS001-1", PayType.ALIPAY, "x", 100, "http://x/", "", "127.0.0.1")
    params = fake.pay("NOTOURS001-1", NotifyMode.DROP)
    check = await epay.handle_notify(shop_context, params, NOW)
    assert check.result is CheckResult.ALERTED and check.alert is AlertReason.UNKNOWN
    assert check.answer == "success" and check.order_code is None
    await epay.handle_notify(shop_context, params, NOW)
    assert await _alert_keys(shop_context) == [f"epay:NOTOURS001-1:unknown:staff:{OWNER_ID}"]
    assert await _payments(shop_context) == []


async def test_a_second_payment_of_a_paid_order_alerts_staff(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    alipay = await _start(shop_context, gateway, code, PayType.ALIPAY)
    wechat = await _start(shop_context, gateway, code, PayType.WXPAY)
    first = await epay.handle_notify(
        shop_context, fake.pay(alipay.out_trade_no, NotifyMode.DROP), NOW
    )
    assert first.result is CheckResult.RECORDED
    second = await epay.handle_notify(
        shop_context, fake.pay(wechat.out_trade_no, NotifyMode.DROP), NOW
    )
    assert second.result is CheckResult.ALERTED and second.alert is AlertReason.ALREADY_PAID
    assert second.answer == "success"
    [payment] = await _payments(shop_context)
    assert payment.reference == fake.payments[alipay.out_trade_no].trade_no
    assert await _alert_keys(shop_context) == [
        f"epay:{wechat.out_trade_no}:already_paid:staff:{OWNER_ID}"
    ]
    # The second attempt got money: reconciliation need not ask about it again.
    states = {a.out_trade_no: a.state for a in await _attempts(shop_context, code)}
    assert states == {
        alipay.out_trade_no: AttemptState.PAID,
        wechat.out_trade_no: AttemptState.PAID,
    }


async def test_money_for_an_order_the_customer_cancelled_alerts_staff(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    async with shop_context.database.write() as session:
        order = await orders.get_order(session, shop_context.shop_id, code)
        await orders.cancel(session, order, CUSTOMER.actor, "", NOW)
    check = await epay.handle_notify(
        shop_context, fake.pay(link.out_trade_no, NotifyMode.DROP), NOW
    )
    assert check.alert is AlertReason.CLOSED and check.answer == "success"
    assert (await _order(shop_context, code)).status == OrderStatus.CANCELLED
    assert len(await _alert_keys(shop_context)) == 1


# --- late money --------------------------------------------------------------------------


async def test_late_payment_after_expiry_revives_the_order(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    await clocks.order_clocks(shop_context, NOW + timedelta(minutes=31))
    assert (await _order(shop_context, code)).status == OrderStatus.CANCELLED
    params = fake.pay(link.out_trade_no, NotifyMode.DROP)
    check = await epay.handle_notify(shop_context, params, NOW + timedelta(minutes=40))
    assert check.result is CheckResult.RECORDED and check.revived
    order = await _order(shop_context, code)
    assert order.status == OrderStatus.PAID and order.paid_fen == 5900
    assert (await _events(shop_context, code))[-1].action == "paid_late"
    assert f"order:{code}:paid" in {row.dedupe_key for row in await _outbox(shop_context)}


async def test_late_payment_whose_stock_is_gone_alerts_staff_to_refund(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    variant_id = await _variant(shop_context, stock=1)
    code = await _unpaid(shop_context, variant_id=variant_id)
    link = await _start(shop_context, gateway, code)
    await clocks.order_clocks(shop_context, NOW + timedelta(minutes=31))
    await _unpaid(
        shop_context,
        customer=OTHER_CUSTOMER_ID,
        variant_id=variant_id,
        at=NOW + timedelta(minutes=32),
    )
    params = fake.pay(link.out_trade_no, NotifyMode.DROP)
    check = await epay.handle_notify(shop_context, params, NOW + timedelta(minutes=40))
    assert check.result is CheckResult.ALERTED and check.alert is AlertReason.STOCK_GONE
    assert check.answer == "success"
    # The gateway repeats it: seen before (the attempt is known paid), no second alert.
    repeat = await epay.handle_notify(shop_context, params, NOW + timedelta(minutes=41))
    assert repeat.result is CheckResult.DUPLICATE and repeat.answer == "success"
    order = await _order(shop_context, code)
    assert order.status == OrderStatus.CANCELLED and order.paid_fen == 0
    assert await _payments(shop_context) == []
    keys = await _alert_keys(shop_context)
    assert keys == [f"epay:{link.out_trade_no}:stock_gone:staff:{OWNER_ID}"]
    alert = next(r for r in await _outbox(shop_context) if r.dedupe_key == keys[0])
    assert "退款" in alert.segments


# --- reconciliation ------------------------------------------------------------------------


async def test_a_lost_notify_is_found_by_reconciliation(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    fake.pay(link.out_trade_no, NotifyMode.DROP)  # the notify never arrives
    early = await epay.reconcile(shop_context, gateway, NOW + timedelta(minutes=1))
    assert early.checks == ()  # not due yet
    report = await epay.reconcile(shop_context, gateway, NOW + timedelta(minutes=2))
    [check] = report.recorded
    assert check.order_code == code and check.out_trade_no == link.out_trade_no
    order = await _order(shop_context, code)
    assert order.status == OrderStatus.PAID
    [payment] = await _payments(shop_context)
    assert payment.provider == "epay"
    assert payment.reference == fake.payments[link.out_trade_no].trade_no
    assert f"order:{code}:paid" in {row.dedupe_key for row in await _outbox(shop_context)}
    # Nothing is due any more; the notify arriving after all changes nothing.
    assert (await epay.reconcile(shop_context, gateway, NOW + timedelta(hours=1))).checks == ()
    late_notify = await epay.handle_notify(
        shop_context, fake.notify_params(link.out_trade_no), NOW + timedelta(hours=1)
    )
    assert late_notify.result is CheckResult.DUPLICATE
    assert len(await _payments(shop_context)) == 1


async def test_reconciliation_checks_every_few_minutes_until_the_grace_is_over(
    shop_context: ShopContext, gateway: EpayGateway
) -> None:
    code = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    report = await epay.reconcile(shop_context, gateway, NOW + timedelta(minutes=2))
    assert [c.result for c in report.checks] == [CheckResult.NOT_PAID]
    [attempt] = await _attempts(shop_context, code)
    assert attempt.checked_at == NOW + timedelta(minutes=2)
    assert attempt.next_check_at == NOW + timedelta(minutes=4)
    assert (await epay.reconcile(shop_context, gateway, NOW + timedelta(minutes=3))).checks == ()
    # The unpaid timeout (30 min) plus the grace (720 min) after the attempt: expired.
    give_up = NOW + timedelta(minutes=30 + 720)
    still = await epay.reconcile(shop_context, gateway, give_up - timedelta(seconds=1))
    assert [c.result for c in still.checks] == [CheckResult.NOT_PAID]
    final = await epay.reconcile(shop_context, gateway, give_up)
    assert [c.out_trade_no for c in final.expired] == [link.out_trade_no]
    [attempt] = await _attempts(shop_context, code)
    assert attempt.state == AttemptState.EXPIRED and attempt.next_check_at is None
    assert (await epay.reconcile(shop_context, gateway, give_up + timedelta(days=1))).checks == ()


async def test_reconcile_one_order_now_even_after_expiry(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    other = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    await _start(shop_context, gateway, other)
    asked = await epay.reconcile(shop_context, gateway, NOW, order_code=code.lower())
    assert [c.out_trade_no for c in asked.checks] == [link.out_trade_no]  # not due, asked
    await epay.reconcile(shop_context, gateway, NOW + timedelta(days=1))  # both expire
    fake.pay(link.out_trade_no, NotifyMode.DROP)  # the customer paid very late
    report = await epay.reconcile(shop_context, gateway, NOW + timedelta(days=1), order_code=code)
    assert [c.order_code for c in report.recorded] == [code]
    with pytest.raises(OrderNotFound):
        await epay.reconcile(shop_context, gateway, NOW, order_code="NOSUCHCODE")


async def test_reconciliation_survives_an_unreachable_gateway(
    shop_context: ShopContext, gateway: EpayGateway
) -> None:
    code = await _unpaid(shop_context)
    await _start(shop_context, gateway, code)
    dead = EpayGateway(f"http://127.0.0.1:{free_port()}/", PID, KEY, timeout=2.0)
    try:
        report = await epay.reconcile(shop_context, dead, NOW + timedelta(minutes=2))
    finally:
        await dead.aclose()
    [check] = report.unreachable
    assert check.order_code == code and KEY not in check.detail
    [attempt] = await _attempts(shop_context, code)
    assert attempt.state == AttemptState.LIVE
    assert attempt.next_check_at == NOW + timedelta(minutes=4)


async def test_reconciliation_and_a_notify_at_once_record_one_payment(
    shop_context: ShopContext, gateway: EpayGateway, fake: FakeEpay
) -> None:
    code = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    params = fake.pay(link.out_trade_no, NotifyMode.DROP)
    report, notify = await asyncio.gather(
        epay.reconcile(shop_context, gateway, NOW + timedelta(minutes=5)),
        epay.handle_notify(shop_context, params, NOW + timedelta(minutes=5)),
    )
    results = sorted([report.checks[0].result, notify.result])
    assert results == sorted([CheckResult.RECORDED, CheckResult.DUPLICATE])
    assert len(await _payments(shop_context)) == 1
    async with shop_context.database.read() as session:
        paid_events = (
            await session.execute(
                select(func.count()).select_from(OrderEvent).where(OrderEvent.action == "paid")
            )
        ).scalar_one()
    assert paid_events == 1


# --- the shop's gateway, the clock job, /对账 ----------------------------------------------


def test_the_gateway_follows_the_settings(settings: ShopSettings, fake: FakeEpay) -> None:
    gateway = payment_gateway_for(settings, "http://127.0.0.1:8080")
    assert gateway is not None
    assert (gateway.api_url, gateway.pid) == (fake.url, PID)
    # PUBLIC_BASE_URL wins over where the bot listens.
    assert gateway.notify_url == "http://127.0.0.1:9/pay/epay/notify"
    assert gateway.return_url == "http://127.0.0.1:9/pay/epay/return"
    assert KEY not in repr(gateway)
    local = payment_gateway_for(settings.model_copy(update={"public_base_url": ""}), "http://h:1/")
    assert local is not None and local.notify_url == "http://h:1/pay/epay/notify"
    manual = settings.model_copy(update={"payment_provider": PaymentProvider.MANUAL})
    assert payment_gateway_for(manual) is None
    # A demo set to epay with no gateway configured: none until the demo starts its fake.
    demo = ShopSettings(shop_demo=True, payment_provider="epay")  # type: ignore[arg-type]
    assert demo.epay_demo_gateway and payment_gateway_for(demo) is None


async def test_open_shop_builds_the_gateway_and_close_shop_closes_it(
    settings: ShopSettings, tmp_path: Path
) -> None:
    other = settings.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"}
    )
    shop = await open_shop(other, frozenset({OWNER_ID}), local_base_url="http://127.0.0.1:1")
    gateway = shop.payment_gateway
    assert gateway is not None and gateway.notify_url.startswith("http://127.0.0.1:9/")
    code = await _unpaid(shop)
    assert (await epay.start_payment(shop, CUSTOMER, code, None, gateway, NOW)).pay_url
    await close_shop(shop)
    assert shop.payment_gateway is None


async def test_the_reconcile_clock_job_finds_a_lost_notify(
    shop_context: ShopContext, fake: FakeEpay
) -> None:
    gateway = shop_context.payment_gateway
    assert gateway is not None
    code = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    fake.pay(link.out_trade_no, NotifyMode.DROP)
    report = await clocks.reconcile_payments(shop_context, NOW + timedelta(minutes=2))
    assert report is not None and [c.order_code for c in report.recorded] == [code]
    assert (await _order(shop_context, code)).status == OrderStatus.PAID
    keys = {row.dedupe_key for row in await _outbox(shop_context)}
    assert {f"order:{code}:paid", f"order:{code}:paid:staff:{OWNER_ID}"} <= keys
    # Without a gateway to ask (PAYMENT_PROVIDER=manual) the job does nothing.
    epay_settings = shop_context.settings
    shop_context.settings = epay_settings.model_copy(
        update={"payment_provider": PaymentProvider.MANUAL}
    )
    try:
        assert await clocks.reconcile_payments(shop_context, NOW + timedelta(hours=1)) is None
    finally:
        shop_context.settings = epay_settings


async def test_staff_reconcile_now(shop_context: ShopContext, fake: FakeEpay) -> None:
    gateway = shop_context.payment_gateway
    assert gateway is not None
    code = await _unpaid(shop_context)
    link = await _start(shop_context, gateway, code)
    # /对账 without an order asks about every live attempt now, due for the clock or not.
    unpaid = await order_admin.reconcile_payments(shop_context, STAFF, None, NOW)
    assert [(c.result, c.out_trade_no) for c in unpaid.report.checks] == [
        (CheckResult.NOT_PAID, link.out_trade_no)
    ]
    fake.pay(link.out_trade_no, NotifyMode.DROP)
    done = await order_admin.reconcile_payments(shop_context, STAFF, code.lower(), NOW)
    assert (done.automatic, done.order_code) == (True, code)
    [check] = done.report.checks
    assert (check.result, check.out_trade_no) == (CheckResult.RECORDED, link.out_trade_no)
    assert (await _order(shop_context, code)).status == OrderStatus.PAID
    assert [p.provider for p in await _payments(shop_context)] == ["epay"]
    keys = {row.dedupe_key for row in await _outbox(shop_context)}
    assert {f"order:{code}:paid", f"order:{code}:paid:staff:{OWNER_ID}"} <= keys
    with pytest.raises(OrderNotFound):
        await order_admin.reconcile_payments(shop_context, STAFF, "2K7QH9M3XA", NOW)
    # PAYMENT_PROVIDER=epay but no gateway: refused as the gateway being unreachable.
    shop_context.payment_gateway = None
    try:
        with pytest.raises(PaymentGatewayError):
            await order_admin.reconcile_payments(shop_context, STAFF, code, NOW)
    finally:
        shop_context.payment_gateway = gateway
    # PAYMENT_PROVIDER=manual: nothing to ask.
    epay_settings = shop_context.settings
    shop_context.settings = epay_settings.model_copy(
        update={"payment_provider": PaymentProvider.MANUAL}
    )
    try:
        manual = await order_admin.reconcile_payments(shop_context, STAFF, None, NOW)
    finally:
        shop_context.settings = epay_settings
    assert (manual.automatic, manual.report.checks) == (False, ())
