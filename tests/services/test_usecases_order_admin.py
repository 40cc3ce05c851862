"""Use cases of merchant order administration (services/usecases/order_admin.py and
payments.py) on a real temp shop: their results, the order events they write and the
notices they queue, and their main refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models.tables import (
    OrderEvent,
    OrderRequest,
    OrderStatus,
    OutboxMessage,
    Payment,
    Refund,
    RequestKind,
    Shop,
)
from services import orders
from services.actors import Actor, Caller
from services.addresses import AddressSnapshot
from services.context import ShopContext
from services.errors import (
    InvalidValue,
    LatePaymentStockGone,
    MediaUnavailable,
    NoPendingRequest,
    NoPendingRequestOfKind,
    RefundTooLarge,
)
from services.staff import Role
from services.usecases import order_admin, payments
from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID
from tests.plugins.helpers import (
    PROXY_VARIABLES,
    add_staff,
    get_order_row,
    outbox_rows,
    pay_order,
    png_bytes,
    rows_of,
    seed_demo,
    seed_order,
    serve_png,
    set_stock,
    stock_of,
)

STAFF = Caller(STAFF_ID, None, Role.STAFF)
NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in the default shop time zone
NEW_ADDRESS = AddressSnapshot("李四", "13900002222", "江苏省南京市鼓楼区中山路 8 号")


@pytest.fixture
async def shop(shop_context: ShopContext) -> ShopContext:
    await seed_demo(shop_context)
    await add_staff(shop_context, STAFF_ID)
    return shop_context


def text_of(row: OutboxMessage) -> str:
    return "".join(s["data"]["text"] for s in json.loads(row.segments) if s["type"] == "text")


async def notices_by_key(shop: ShopContext) -> dict[str, tuple[str, int, str]]:
    """dedupe key → (target type, target id, text) of every queued notice."""
    return {
        row.dedupe_key: (row.target_type, row.target_id, text_of(row))
        for row in await outbox_rows(shop)
    }


async def actions_of(shop: ShopContext, code: str) -> list[tuple[str, str, int | None]]:
    """(action, actor, actor id) of the order's events, oldest first."""
    order = await get_order_row(shop, code)
    return [
        (e.action, e.actor, e.actor_id)
        for e in await rows_of(shop, OrderEvent)
        if e.order_id == order.id
    ]


async def record_by_hand(shop: ShopContext, code: str, **kwargs: Any) -> payments.PaymentOutcome:
    return await payments.record_payment(
        shop,
        STAFF.actor,
        code,
        provider=payments.MANUAL,
        reference=payments.manual_reference(code),
        amount_fen=None,
        now=NOW,
        **kwargs,
    )


# --- payments.record_payment ------------------------------------------------------------


async def test_a_payment_by_hand_tells_the_customer_once_and_not_staff(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID, ((1, 2, 2),))
    outcome = await record_by_hand(shop, code.lower())
    assert (outcome.order.code, outcome.recorded, outcome.revived) == (code, True, False)
    assert (outcome.order.status, outcome.order.paid_fen) == ("paid", 21800)
    again = await record_by_hand(shop, code)
    assert (again.recorded, again.revived) == (False, False)
    assert [(p.provider, p.reference, p.amount_fen) for p in await rows_of(shop, Payment)] == [
        ("manual", f"manual:{code}", 21800)
    ]
    assert (await actions_of(shop, code))[1:] == [("paid", "staff", STAFF_ID)]
    assert await notices_by_key(shop) == {
        f"order:{code}:paid": (
            "private",
            CUSTOMER_ID,
            f"订单号：{code} 已确认收款 ¥218.00，我们会尽快发货。",
        )
    }


async def test_a_gateway_payment_can_tell_staff_too(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID, group_id=GROUP_ID)
    for _ in range(2):  # the gateway retries its callback
        outcome = await payments.record_payment(
            shop,
            Actor.system(),
            code,
            provider="epay",
            reference="EP-20260302-1",
            amount_fen=3990,
            notify_staff=True,
            now=NOW,
        )
    assert outcome.recorded is False
    assert (await get_order_row(shop, code)).paid_fen == 3990
    assert (await actions_of(shop, code))[1:] == [("paid", "system", None)]
    staff_text = (
        f"订单号：{code} 已付款 ¥39.90，顾客 {CUSTOMER_ID}，"
        f"请尽快发货：/发货 {code} <快递公司> <运单号>"
    )
    assert await notices_by_key(shop) == {
        f"order:{code}:paid": (
            "group",
            GROUP_ID,
            f" 订单号：{code} 已确认收款 ¥39.90，我们会尽快发货。",
        ),
        f"order:{code}:paid:staff:{OWNER_ID}": ("private", OWNER_ID, staff_text),
        f"order:{code}:paid:staff:{STAFF_ID}": ("private", STAFF_ID, staff_text),
    }


async def _expire(shop: ShopContext, code: str) -> None:
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, code)
        await orders.cancel(session, order, Actor.system(), "超时未付款", NOW, action="expired")


async def test_a_late_payment_revives_the_expired_order(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID, ((1, 2, 2),))
    await _expire(shop, code)
    stock = await stock_of(shop, 1, 2)
    outcome = await record_by_hand(shop, code)
    assert (outcome.recorded, outcome.revived, outcome.order.status) == (True, True, "paid")
    assert await stock_of(shop, 1, 2) == stock - 2
    assert [action for action, _, _ in await actions_of(shop, code)] == [
        "created",
        "expired",
        "paid_late",
    ]
    assert (await notices_by_key(shop))[f"order:{code}:paid"][2] == (
        f"订单号：{code} 超时取消后收到了你的付款 ¥218.00，订单已恢复，我们会尽快发货。"
    )


async def test_a_late_payment_whose_stock_is_gone_is_refused_and_writes_nothing(
    shop: ShopContext,
) -> None:
    code = await seed_order(shop, CUSTOMER_ID, ((1, 2, 2),))
    await _expire(shop, code)
    await set_stock(shop, 1, 2, 1)
    with pytest.raises(LatePaymentStockGone) as caught:
        await record_by_hand(shop, code, notify_staff=True)
    assert caught.value.available == 1
    assert (await get_order_row(shop, code)).status == "cancelled"
    assert await stock_of(shop, 1, 2) == 1
    assert await rows_of(shop, Payment) == []
    assert await outbox_rows(shop) == []


async def test_a_payment_of_the_wrong_amount_is_refused(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    with pytest.raises(InvalidValue):
        await payments.record_payment(
            shop, Actor.system(), code, provider="epay", reference="EP-1", amount_fen=1, now=NOW
        )
    assert await rows_of(shop, Payment) == []
    assert await outbox_rows(shop) == []


# --- order_admin.list_orders ------------------------------------------------------------


async def test_staff_list_every_customers_orders_with_their_lines(shop: ShopContext) -> None:
    first = await seed_order(shop, CUSTOMER_ID, ((1, 2, 2), (2, 1, 1)), at=NOW)
    second = await seed_order(shop, OTHER_CUSTOMER_ID, at=NOW + timedelta(minutes=1))
    await pay_order(shop, second)
    listing = await order_admin.list_orders(shop, STAFF)
    assert (listing.total, listing.page, listing.status) == (2, 1, None)
    assert [(order.code, [line.quantity for line in lines]) for order, lines in listing.rows] == [
        (second, [1]),
        (first, [2, 1]),
    ]
    paid = await order_admin.list_orders(shop, STAFF, status=OrderStatus.PAID)
    assert [order.code for order, _ in paid.rows] == [second]
    far = await order_admin.list_orders(shop, STAFF, page=2)
    assert (far.rows, far.total) == ([], 2)


# --- order_admin.decide_requests --------------------------------------------------------


async def _ask_to_cancel(shop: ShopContext, code: str) -> None:
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, code)
        await orders.cancel(session, order, Actor("customer", CUSTOMER_ID), "买重了", NOW)


async def test_approving_a_cancellation_refunds_and_tells_the_customer(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID, ((3, 1, 2),))
    await pay_order(shop, code)
    await _ask_to_cancel(shop, code)
    decided = await order_admin.decide_requests(shop, STAFF, code, approve=True, now=NOW)
    assert decided.approved is True
    assert [(r.kind, r.status, r.decided_by) for r in decided.requests] == [
        ("cancel", "approved", STAFF_ID)
    ]
    assert (decided.order.status, decided.order.refunded_fen) == ("refunded", 25600)
    assert (await actions_of(shop, code))[2:] == [
        ("cancel_requested", "customer", CUSTOMER_ID),
        ("cancel_approved", "staff", STAFF_ID),
    ]
    request_id = decided.requests[0].id
    assert await notices_by_key(shop) == {
        f"order:{code}:request:{request_id}": (
            "private",
            CUSTOMER_ID,
            f"订单号：{code} 的取消订单申请已同意。已全额退款 ¥256.00。",
        )
    }


async def test_deciding_without_a_pending_request_is_refused(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    with pytest.raises(NoPendingRequest):
        await order_admin.decide_requests(shop, STAFF, code, approve=False, reason="不行", now=NOW)
    assert await outbox_rows(shop) == []


async def _ask_for_everything(shop: ShopContext, code: str) -> None:
    """The customer asks for a new address, a new remark and the cancellation, in turn."""
    customer = Actor("customer", CUSTOMER_ID)
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, code)
        await orders.amend_address(session, order, NEW_ADDRESS, customer, NOW)
        await orders.amend_remark(session, order, "加急", customer, NOW)
        await orders.cancel(session, order, customer, "买重了", NOW)


async def _requests(shop: ShopContext) -> list[tuple[str, str]]:
    return [(r.kind, r.status) for r in await rows_of(shop, OrderRequest)]


async def test_deciding_one_kind_leaves_the_others_pending(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID, remark="原备注")
    await pay_order(shop, code)
    await _ask_for_everything(shop, code)
    decided = await order_admin.decide_requests(
        shop, STAFF, code, approve=True, kind=RequestKind.REMARK, reason="好的", now=NOW
    )
    assert [(r.kind, r.status) for r in decided.requests] == [("remark", "approved")]
    assert (decided.order.remark, decided.reason, decided.superseded) == ("加急", "好的", [])
    assert [r.kind for r in decided.still_pending] == ["address", "cancel"]
    assert await _requests(shop) == [
        ("address", "pending"),
        ("remark", "approved"),
        ("cancel", "pending"),
    ]
    order = await get_order_row(shop, code)
    assert (order.status, order.remark, order.receiver_name) == ("paid", "加急", "张三")
    [request_id] = [r.id for r in decided.requests]
    # The customer hears of the one decided request only.
    assert await notices_by_key(shop) == {
        f"order:{code}:request:{request_id}": (
            "private",
            CUSTOMER_ID,
            f"订单号：{code} 的修改备注申请已同意。说明：好的",
        )
    }
    assert (await actions_of(shop, code))[-1] == ("remark_changed", "staff", STAFF_ID)


async def test_rejecting_one_kind(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    await _ask_for_everything(shop, code)
    decided = await order_admin.decide_requests(
        shop, STAFF, code, approve=False, kind=RequestKind.CANCEL, reason="已打包", now=NOW
    )
    assert [(r.kind, r.status, r.decision_reason) for r in decided.requests] == [
        ("cancel", "rejected", "已打包")
    ]
    assert [r.kind for r in decided.still_pending] == ["address", "remark"]
    assert (await get_order_row(shop, code)).status == "paid"
    assert (await actions_of(shop, code))[-1] == ("cancel_rejected", "staff", STAFF_ID)


async def test_approving_the_cancellation_alone_supersedes_the_rest(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    await _ask_for_everything(shop, code)
    decided = await order_admin.decide_requests(
        shop, STAFF, code, approve=True, kind=RequestKind.CANCEL, now=NOW
    )
    assert [r.kind for r in decided.requests] == ["cancel"]
    assert [(r.kind, r.status) for r in decided.superseded] == [
        ("address", "superseded"),
        ("remark", "superseded"),
    ]
    assert decided.still_pending == []
    assert decided.order.status == "refunded"
    assert await _requests(shop) == [
        ("address", "superseded"),
        ("remark", "superseded"),
        ("cancel", "approved"),
    ]
    assert [key.split(":")[2] for key in await notices_by_key(shop)] == ["request"]


async def test_deciding_everything_without_a_kind(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    await _ask_for_everything(shop, code)
    decided = await order_admin.decide_requests(shop, STAFF, code, approve=False, now=NOW)
    assert [(r.kind, r.status) for r in decided.requests] == [
        ("address", "rejected"),
        ("remark", "rejected"),
        ("cancel", "rejected"),
    ]
    assert (decided.superseded, decided.still_pending) == ([], [])
    assert len(await notices_by_key(shop)) == 3  # one notice per request


async def test_a_kind_with_nothing_pending_names_what_is(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, code)
        customer = Actor("customer", CUSTOMER_ID)
        await orders.amend_remark(session, order, "加急", customer, NOW)
        await orders.cancel(session, order, customer, "", NOW)
    with pytest.raises(NoPendingRequestOfKind) as refused:
        await order_admin.decide_requests(
            shop, STAFF, code, approve=True, kind=RequestKind.ADDRESS, now=NOW
        )
    assert refused.value == NoPendingRequestOfKind(
        code, RequestKind.ADDRESS, (RequestKind.REMARK, RequestKind.CANCEL)
    )
    assert await _requests(shop) == [("remark", "pending"), ("cancel", "pending")]
    assert await outbox_rows(shop) == []
    # Nothing pending at all: the plain refusal, as without a kind.
    other = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, other)
    with pytest.raises(NoPendingRequest):
        await order_admin.decide_requests(
            shop, STAFF, other, approve=True, kind=RequestKind.REMARK, now=NOW
        )


# --- order_admin.refund -----------------------------------------------------------------


async def test_refunds_part_then_the_rest_each_with_its_notice(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    part = await order_admin.refund(shop, STAFF, code, amount_fen=1000, reason="少发", now=NOW)
    assert (part.refunded_fen, part.fully, part.order.status) == (1000, False, "paid")
    rest = await order_admin.refund(shop, STAFF, code, now=NOW)
    assert (rest.refunded_fen, rest.fully, rest.order.status) == (2990, True, "refunded")
    assert rest.order.refunded_fen == 3990
    assert [(r.amount_fen, r.reason, r.by) for r in await rows_of(shop, Refund)] == [
        (1000, "少发", STAFF_ID),
        (2990, "", STAFF_ID),
    ]
    assert (await actions_of(shop, code))[2:] == [
        ("partial_refund", "staff", STAFF_ID),
        ("refunded", "staff", STAFF_ID),
    ]
    assert await notices_by_key(shop) == {
        f"order:{code}:refund:1000": ("private", CUSTOMER_ID, f"订单号：{code} 已退款 ¥10.00。"),
        f"order:{code}:refund:3990": (
            "private",
            CUSTOMER_ID,
            f"订单号：{code} 已退款 ¥29.90，订单已关闭。",
        ),
    }


async def test_refunding_more_than_was_paid_is_refused(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    with pytest.raises(RefundTooLarge) as caught:
        await order_admin.refund(shop, STAFF, code, amount_fen=3991, now=NOW)
    assert (caught.value.requested, caught.value.refundable) == (3991, 3990)
    assert await rows_of(shop, Refund) == []
    assert await outbox_rows(shop) == []


# --- order_admin.set_payment_info -------------------------------------------------------


async def test_payment_text_and_qr_image(
    shop: ShopContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    text_only = await order_admin.set_payment_info(shop, STAFF, text=" 微信转账 wxid_shop ")
    assert (text_only.text, text_only.has_qr) == ("微信转账 wxid_shop", False)
    with serve_png() as url:
        with_qr = await order_admin.set_payment_info(shop, STAFF, text="", image_url=url)
    assert (with_qr.text, with_qr.has_qr) == ("微信转账 wxid_shop", True)
    [row] = await rows_of(shop, Shop)
    assert row.payment_qr_path
    assert (shop.data_dir / row.payment_qr_path).read_bytes() == png_bytes()


async def test_payment_info_refusals_change_nothing(
    shop: ShopContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InvalidValue):
        await order_admin.set_payment_info(shop, STAFF, text="长" * 1000)
    with serve_png() as url, pytest.raises(MediaUnavailable):
        await order_admin.set_payment_info(
            shop, STAFF, text="转账", image_url=url.replace("qr.png", "gone.png")
        )
    [row] = await rows_of(shop, Shop)
    assert (row.payment_text, row.payment_qr_path) == ("", None)


# --- order_admin.shop_stats -------------------------------------------------------------


async def test_stats_of_today(shop: ShopContext) -> None:
    paid = await seed_order(shop, CUSTOMER_ID, ((2, 1, 2),), at=NOW)
    await pay_order(shop, paid)
    await seed_order(shop, OTHER_CUSTOMER_ID, at=NOW)
    result = await order_admin.shop_stats(shop, STAFF, "今日", NOW + timedelta(hours=1))
    assert (result.label, result.orders, result.to_ship) == ("今日", 2, 1)
    assert result.since <= NOW
    # pay_order stamps the real clock, so revenue counts in a window that contains it
    week = await order_admin.shop_stats(shop, STAFF, "30天")
    assert (week.paid_orders, week.revenue_fen, week.best_sellers) == (1, 7980, [("冷萃咖啡液", 2)])
