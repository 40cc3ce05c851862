"""services.clock.run_order_clocks with a controlled `now`: reminders, expiry, catch-up,
auto-approval of cancellation requests, and where the notices go."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select

from models.db import Database
from models.tables import (
    DEFAULT_SHOP_ID,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    OutboxMessage,
    ShopOrder,
    Variant,
)
from models.types import utcnow
from services import catalog, clock, orders
from services.addresses import AddressSnapshot
from services.clock import OrderClockSettings
from services.orders import Actor

SHOP = DEFAULT_SHOP_ID
CUSTOMER_ID = 30003
STAFF_ID = 20002
GROUP_ID = 555000
TIMEOUT = timedelta(minutes=30)
AUTO_APPROVE = timedelta(hours=48)
SETTINGS = OrderClockSettings(unpaid_timeout=TIMEOUT, refund_auto_approve=AUTO_APPROVE)
PHONE = "13812345678"
HOME = AddressSnapshot("张三", PHONE, "浙江省杭州市西湖区文三路 100 号 3 单元 502")
CUSTOMER = Actor("customer", CUSTOMER_ID)
STAFF = Actor("staff", STAFF_ID)
S = OrderStatus


async def _variant(db: Database, stock: int = 10) -> int:
    async with db.write() as s:
        _, variant = await catalog.create_item(s, SHOP, "咖啡豆", 5900, stock)
        assert variant.id is not None
        return variant.id


async def _place(
    db: Database, variant_id: int, now: datetime, quantity: int = 1, group: int | None = None
) -> str:
    async with db.write() as s:
        order = await orders.place_order(
            s, SHOP, CUSTOMER_ID, group, [(variant_id, quantity)], HOME, "", now, TIMEOUT
        )
        return order.code


async def _order(db: Database, code: str) -> ShopOrder:
    async with db.read() as s:
        return await orders.get_order(s, SHOP, code)


async def _stock(db: Database, variant_id: int) -> int:
    async with db.read() as s:
        variant = await s.get(Variant, variant_id)
        assert variant is not None
        return variant.stock


async def _outbox(db: Database) -> list[OutboxMessage]:
    async with db.read() as s:
        return list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def _events(db: Database, code: str) -> list[OrderEvent]:
    order = await _order(db, code)
    async with db.read() as s:
        rows = await s.execute(
            select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
        )
        return list(rows.scalars())


async def _requests(db: Database, code: str) -> list[OrderRequest]:
    order = await _order(db, code)
    async with db.read() as s:
        rows = await s.execute(
            select(OrderRequest).where(OrderRequest.order_id == order.id).order_by(OrderRequest.id)
        )
        return list(rows.scalars())


def _text(message: OutboxMessage) -> str:
    return "".join(seg["data"].get("text", "") for seg in json.loads(message.segments))


async def _run(db: Database, now: datetime) -> clock.ClockReport:
    return await clock.run_order_clocks(db, SETTINGS, now)


async def _paid_with_cancel_request(
    db: Database, now: datetime, group: int | None = None
) -> tuple[str, int]:
    variant_id = await _variant(db)
    code = await _place(db, variant_id, now, quantity=2, group=group)
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        await orders.record_payment(s, order, "manual", f"ref-{code}", order.total_fen, STAFF, now)
        await orders.cancel(s, order, CUSTOMER, "买错了", now)
    return code, variant_id


# --- reminders ---------------------------------------------------------------------------


async def test_reminder_exactly_once_after_half_the_timeout(db: Database) -> None:
    variant_id = await _variant(db)
    t0 = utcnow()
    code = await _place(db, variant_id, t0)

    report = await _run(db, t0 + TIMEOUT / 2 - timedelta(seconds=1))
    assert report.reminded == [] and report.expired == []
    assert await _outbox(db) == []

    half = t0 + TIMEOUT / 2
    report = await _run(db, half)
    assert report.reminded == [code]
    assert report.expired == []
    assert (await _order(db, code)).reminded_at == half

    for later in (half, half + timedelta(minutes=1), half + timedelta(minutes=14)):
        assert (await _run(db, later)).reminded == []
    rows = await _outbox(db)
    assert len(rows) == 1
    message = rows[0]
    assert (message.target_type, message.target_id) == ("private", CUSTOMER_ID)
    assert message.dedupe_key == f"order:{code}:remind"
    text = _text(message)
    assert f"订单号：{code}" in text
    assert f"/付款 {code}" in text
    assert "15 分钟" in text
    assert "¥59.00" in text
    # A reminder changes no status.
    assert (await _order(db, code)).status == S.PENDING_PAYMENT.value


async def test_no_reminder_for_paid_or_cancelled_orders(db: Database) -> None:
    variant_id = await _variant(db)
    t0 = utcnow()
    paid = await _place(db, variant_id, t0)
    cancelled = await _place(db, variant_id, t0)
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, paid)
        await orders.record_payment(s, order, "manual", "r", order.total_fen, STAFF, t0)
        order = await orders.get_order(s, SHOP, cancelled)
        await orders.cancel(s, order, CUSTOMER, "", t0)
    report = await _run(db, t0 + TIMEOUT / 2)
    assert report.reminded == []
    assert await _outbox(db) == []


# --- expiry ------------------------------------------------------------------------------


async def test_expiry_cancels_releases_and_notifies_once(db: Database) -> None:
    variant_id = await _variant(db, stock=10)
    t0 = utcnow()
    code = await _place(db, variant_id, t0, quantity=4)
    assert await _stock(db, variant_id) == 6

    assert (await _run(db, t0 + TIMEOUT - timedelta(seconds=1))).expired == []
    assert (await _order(db, code)).status == S.PENDING_PAYMENT.value

    at = t0 + TIMEOUT
    report = await _run(db, at)
    assert report.expired == [code]
    order = await _order(db, code)
    assert order.status == S.CANCELLED.value
    assert order.closed_at == at
    assert await _stock(db, variant_id) == 10
    event = (await _events(db, code))[-1]
    assert (event.action, event.actor, event.actor_id) == ("expired", "system", None)
    assert (event.from_status, event.to_status) == ("pending_payment", "cancelled")
    assert event.at == at

    expired_rows = [m for m in await _outbox(db) if m.dedupe_key == f"order:{code}:expired"]
    assert len(expired_rows) == 1
    assert f"订单号：{code}" in _text(expired_rows[0])
    assert "自动取消" in _text(expired_rows[0])

    # A second run does nothing.
    before = await _outbox(db)
    report = await _run(db, at)
    assert report == clock.ClockReport()
    report = await _run(db, at + timedelta(hours=1))
    assert report == clock.ClockReport()
    assert len(await _outbox(db)) == len(before)
    assert await _stock(db, variant_id) == 10
    assert [e.action for e in await _events(db, code)].count("expired") == 1


async def test_reminder_then_expiry_gives_two_notices(db: Database) -> None:
    variant_id = await _variant(db)
    t0 = utcnow()
    code = await _place(db, variant_id, t0)
    await _run(db, t0 + TIMEOUT / 2)
    await _run(db, t0 + TIMEOUT)
    await _run(db, t0 + TIMEOUT + timedelta(minutes=5))
    assert [m.dedupe_key for m in await _outbox(db)] == [
        f"order:{code}:remind",
        f"order:{code}:expired",
    ]


async def test_an_order_paid_before_expiry_is_untouched(db: Database) -> None:
    variant_id = await _variant(db, stock=10)
    t0 = utcnow()
    code = await _place(db, variant_id, t0, quantity=3)
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        await orders.record_payment(
            s, order, "manual", "r1", order.total_fen, STAFF, t0 + timedelta(minutes=29)
        )
    for later in (t0 + TIMEOUT, t0 + timedelta(days=3)):
        report = await _run(db, later)
        assert report.expired == [] and report.reminded == []
    order = await _order(db, code)
    assert order.status == S.PAID.value
    assert order.closed_at is None
    assert await _stock(db, variant_id) == 7
    assert await _outbox(db) == []


async def test_catch_up_after_downtime_expires_everything_due(db: Database) -> None:
    variant_id = await _variant(db, stock=20)
    t0 = utcnow()
    codes = [
        await _place(db, variant_id, t0 + timedelta(minutes=n * 7), quantity=2) for n in range(5)
    ]
    paid = await _place(db, variant_id, t0)
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, paid)
        await orders.record_payment(s, order, "manual", "r", order.total_fen, STAFF, t0)
    assert await _stock(db, variant_id) == 20 - 5 * 2 - 1

    report = await _run(db, t0 + timedelta(days=3))
    assert sorted(report.expired) == sorted(codes)
    assert report.reminded == []  # too late to remind: only the expiry notice goes out
    for code in codes:
        assert (await _order(db, code)).status == S.CANCELLED.value
    assert (await _order(db, paid)).status == S.PAID.value
    assert await _stock(db, variant_id) == 19
    rows = await _outbox(db)
    assert sorted(m.dedupe_key for m in rows) == sorted(f"order:{c}:expired" for c in codes)
    assert await _run(db, t0 + timedelta(days=3)) == clock.ClockReport()


async def test_expiry_of_a_reminded_order_in_a_partial_catch_up(db: Database) -> None:
    """Down between the reminder and the expiry: a new order gets its reminder, the old one expires."""
    variant_id = await _variant(db)
    t0 = utcnow()
    old = await _place(db, variant_id, t0)
    new = await _place(db, variant_id, t0 + timedelta(minutes=20))
    report = await _run(db, t0 + timedelta(minutes=36))
    assert report.expired == [old]
    assert report.reminded == [new]


# --- auto-approval of cancellation requests ----------------------------------------------


async def test_auto_approve_after_the_window_not_before(db: Database) -> None:
    t0 = utcnow()
    code, variant_id = await _paid_with_cancel_request(db, t0)
    assert await _stock(db, variant_id) == 8

    report = await _run(db, t0 + AUTO_APPROVE - timedelta(seconds=1))
    assert report.auto_approved == []
    assert (await _order(db, code)).status == S.PAID.value
    assert await _outbox(db) == []

    at = t0 + AUTO_APPROVE
    report = await _run(db, at)
    assert report.auto_approved == [code]
    order = await _order(db, code)
    assert order.status == S.REFUNDED.value
    assert order.refunded_fen == order.paid_fen == 2 * 5900
    assert await _stock(db, variant_id) == 10
    [request] = await _requests(db, code)
    assert (request.status, request.decided_by, request.decided_at) == ("approved", None, at)
    event = (await _events(db, code))[-1]
    assert (event.action, event.actor, event.from_status, event.to_status) == (
        "cancel_approved",
        "system",
        "paid",
        "refunded",
    )

    rows = await _outbox(db)
    assert len(rows) == 1
    assert rows[0].dedupe_key == f"order:{code}:request:{request.id}"
    text = _text(rows[0])
    assert f"订单号：{code}" in text
    assert "取消订单申请已同意" in text
    assert "¥118.00" in text

    # Once only.
    assert (await _run(db, at + timedelta(hours=1))).auto_approved == []
    assert len(await _outbox(db)) == 1


async def test_a_request_decided_by_staff_is_left_alone(db: Database) -> None:
    t0 = utcnow()
    code, _ = await _paid_with_cancel_request(db, t0)
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        await orders.decide(s, order, False, STAFF, "已打包", t0 + timedelta(hours=1))
    report = await _run(db, t0 + AUTO_APPROVE * 2)
    assert report.auto_approved == []
    assert (await _order(db, code)).status == S.PAID.value
    assert await _outbox(db) == []


async def test_a_request_whose_order_shipped_is_rejected_by_the_system(db: Database) -> None:
    t0 = utcnow()
    code, variant_id = await _paid_with_cancel_request(db, t0)
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        order.status = S.SHIPPED.value  # no shipping service yet
    at = t0 + AUTO_APPROVE
    await _run(db, at)
    order = await _order(db, code)
    assert order.status == S.SHIPPED.value
    assert order.refunded_fen == 0
    assert await _stock(db, variant_id) == 8
    [request] = await _requests(db, code)
    assert request.status == "rejected"
    assert request.decided_at == at
    event = (await _events(db, code))[-1]
    assert (event.action, event.actor) == ("cancel_rejected", "system")
    rows = await _outbox(db)
    assert len(rows) == 1
    text = _text(rows[0])
    assert f"订单号：{code}" in text
    assert "未通过" in text
    assert "售后" in text
    assert (await _run(db, at + timedelta(days=1))).auto_approved == []
    assert len(await _outbox(db)) == 1


async def test_auto_approve_with_a_later_remark_request(db: Database) -> None:
    t0 = utcnow()
    code, _ = await _paid_with_cancel_request(db, t0)
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        await orders.amend_remark(s, order, "周末送", CUSTOMER, t0 + timedelta(minutes=1))
    report = await _run(db, t0 + AUTO_APPROVE + timedelta(minutes=5))
    assert (await _order(db, code)).status == S.REFUNDED.value
    # Whatever happens to the remark, the customer hears about the cancellation once and
    # nothing is left pending on a closed order.
    texts = [_text(m) for m in await _outbox(db)]
    assert any("取消订单申请已同意" in text for text in texts), texts
    assert [r.status for r in await _requests(db, code) if r.status == "pending"] == []
    assert report.auto_approved == [code]


async def test_no_misleading_notice_when_staff_already_refunded(db: Database) -> None:
    t0 = utcnow()
    code, _ = await _paid_with_cancel_request(db, t0)
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        await orders.refund(s, order, None, "同意取消", STAFF, t0 + timedelta(hours=1))
    report = await _run(db, t0 + AUTO_APPROVE)
    assert report.auto_approved == []
    texts = [_text(m) for m in await _outbox(db)]
    assert not any("已发货" in text or "申请已同意" in text for text in texts), texts
    assert [(r.kind, r.status) for r in await _requests(db, code)] == [("cancel", "approved")]


# --- where notices go --------------------------------------------------------------------


def _assert_private_free(message: OutboxMessage) -> None:
    text = _text(message)
    assert PHONE not in text
    assert PHONE[-4:] not in text
    assert "文三路" not in text
    assert "张三" not in text


async def test_group_orders_notices_go_to_the_group_with_an_at(db: Database) -> None:
    t0 = utcnow()
    variant_id = await _variant(db)
    expiring = await _place(db, variant_id, t0, group=GROUP_ID)
    cancelling, _ = await _paid_with_cancel_request(db, t0, group=GROUP_ID)
    await _run(db, t0 + TIMEOUT / 2)  # reminder
    await _run(db, t0 + TIMEOUT)  # expiry
    await _run(db, t0 + AUTO_APPROVE)  # auto-approval
    rows = await _outbox(db)
    keys = sorted(m.dedupe_key for m in rows)
    request_id = (await _requests(db, cancelling))[0].id
    assert keys == sorted(
        [
            f"order:{expiring}:remind",
            f"order:{expiring}:expired",
            f"order:{cancelling}:request:{request_id}",
        ]
    )
    for message in rows:
        assert (message.target_type, message.target_id) == ("group", GROUP_ID)
        segments = json.loads(message.segments)
        assert segments[0] == {"type": "at", "data": {"qq": str(CUSTOMER_ID)}}
        assert all(seg["type"] in ("at", "text") for seg in segments)
        assert sum(seg["type"] == "at" for seg in segments) == 1
        _assert_private_free(message)


async def test_private_orders_notices_go_to_the_customer(db: Database) -> None:
    t0 = utcnow()
    variant_id = await _variant(db)
    await _place(db, variant_id, t0)
    await _paid_with_cancel_request(db, t0)
    await _run(db, t0 + TIMEOUT / 2)
    await _run(db, t0 + TIMEOUT)
    await _run(db, t0 + AUTO_APPROVE)
    rows = await _outbox(db)
    assert len(rows) == 3
    for message in rows:
        assert (message.target_type, message.target_id) == ("private", CUSTOMER_ID)
        segments = json.loads(message.segments)
        assert all(seg["type"] == "text" for seg in segments)
        _assert_private_free(message)
