"""services.orders on a real migrated SQLite database: creation, amendments, requests,
payments, refunds, events, listing, and concurrent buyers of the last units."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from models.db import Database
from models.tables import (
    DEFAULT_SHOP_ID,
    OrderEvent,
    OrderLine,
    OrderRequest,
    OrderStatus,
    Payment,
    Refund,
    ShopOrder,
    Variant,
)
from models.types import utcnow
from services import catalog, order_rules, orders
from services.addresses import AddressSnapshot
from services.catalog import StockChange, VariantRef
from services.codes import ALPHABET, CODE_LENGTH
from services.errors import (
    AlreadyPaid,
    InvalidTransition,
    InvalidValue,
    ItemUnavailable,
    LastLine,
    LatePaymentStockGone,
    LineNotInOrder,
    NoPendingRequest,
    OrderNotFound,
    OutOfStock,
    RefundTooLarge,
    RequestPending,
)
from services.limits import FIELD_AMOUNT, MAX_REASON, MAX_REMARK, ORDER_PAGE_SIZE
from services.order_rules import Mode
from services.orders import Actor

SHOP = DEFAULT_SHOP_ID
CUSTOMER_ID = 30003
OTHER_CUSTOMER_ID = 30004
STAFF_ID = 20002
GROUP_ID = 555000
TIMEOUT = timedelta(minutes=30)

CUSTOMER = Actor("customer", CUSTOMER_ID)
STAFF = Actor("staff", STAFF_ID)
HOME = AddressSnapshot("张三", "13812345678", "浙江省杭州市西湖区文三路 100 号")
OFFICE = AddressSnapshot("张三", "13912345678", "浙江省杭州市滨江区网商路 599 号")
S = OrderStatus


# --- helpers -----------------------------------------------------------------------------


async def _variant(
    db: Database, name: str = "咖啡豆", price: int = 5900, stock: int = 10
) -> tuple[int, int]:
    """A new single-variant item; returns (item id, variant id)."""
    async with db.write() as s:
        item, variant = await catalog.create_item(s, SHOP, name, price, stock)
        assert item.id is not None and variant.id is not None
        return item.id, variant.id


async def _second_variant(
    db: Database, item_id: int, name: str = "500g", price: int = 10900, stock: int = 5
) -> int:
    async with db.write() as s:
        variant = await catalog.add_variant(s, SHOP, item_id, name, price, stock)
        assert variant.id is not None
        return variant.id


async def _place(
    db: Database,
    wanted: list[tuple[int, int]],
    *,
    user: int = CUSTOMER_ID,
    group: int | None = None,
    now: datetime | None = None,
    remark: str = "",
) -> ShopOrder:
    async with db.write() as s:
        return await orders.place_order(
            s, SHOP, user, group, wanted, HOME, remark, now or utcnow(), TIMEOUT
        )


async def _order(db: Database, code: str) -> ShopOrder:
    async with db.read() as s:
        return await orders.get_order(s, SHOP, code)


async def _lines(db: Database, code: str) -> list[OrderLine]:
    async with db.read() as s:
        order = await orders.get_order(s, SHOP, code)
        return await orders.order_lines(s, order.id or 0)


async def _events(db: Database, code: str) -> list[OrderEvent]:
    async with db.read() as s:
        order = await orders.get_order(s, SHOP, code)
        return (await orders.order_detail(s, order)).events


async def _requests(db: Database, code: str) -> list[OrderRequest]:
    async with db.read() as s:
        order = await orders.get_order(s, SHOP, code)
        return (await orders.order_detail(s, order)).requests


async def _variant_row(db: Database, variant_id: int) -> Variant:
    async with db.read() as s:
        variant = await s.get(Variant, variant_id)
        assert variant is not None
        return variant


async def _stock(db: Database, variant_id: int) -> int:
    return (await _variant_row(db, variant_id)).stock


async def _count(db: Database, table) -> int:
    async with db.read() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar_one())


async def _pay(
    db: Database,
    code: str,
    reference: str = "ref-1",
    amount: int | None = None,
    now: datetime | None = None,
) -> bool:
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        return await orders.record_payment(
            s,
            order,
            "manual",
            reference,
            order.total_fen if amount is None else amount,
            STAFF,
            now or utcnow(),
        )


async def _set_status(db: Database, code: str, status: OrderStatus) -> None:
    """No shipping service yet: move a paid order on by hand."""
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        order.status = status.value


async def _paid_order(db: Database, quantity: int = 2, stock: int = 10) -> tuple[ShopOrder, int]:
    _, variant_id = await _variant(db, stock=stock)
    order = await _place(db, [(variant_id, quantity)])
    assert await _pay(db, order.code)
    return await _order(db, order.code), variant_id


# --- place_order -------------------------------------------------------------------------


async def test_place_order_copies_names_and_prices_onto_lines(db: Database) -> None:
    item_id, default_id = await _variant(db, "云南咖啡豆", 5900, 10)
    big_id = await _second_variant(db, item_id, "500g", 10900, 5)
    now = utcnow()
    order = await _place(db, [(default_id, 2), (big_id, 1)], now=now, remark="  不要辣  ")
    assert order.status == S.PENDING_PAYMENT.value
    assert order.total_fen == 2 * 5900 + 10900
    assert order.user_id == CUSTOMER_ID and order.group_id is None
    assert (order.receiver_name, order.receiver_phone, order.receiver_address) == (
        HOME.name,
        HOME.phone,
        HOME.detail,
    )
    assert order.remark == "不要辣"
    assert order.paid_fen == 0 and order.refunded_fen == 0
    lines = await _lines(db, order.code)
    assert [
        (ln.item_name, ln.variant_name, ln.unit_price_fen, ln.quantity, ln.position) for ln in lines
    ] == [
        ("云南咖啡豆", "默认", 5900, 2, 1),
        ("云南咖啡豆", "500g", 10900, 1, 2),
    ]
    assert all(line.item_id == item_id for line in lines)

    # A later price change does not touch the order.
    async with db.write() as s:
        await catalog.set_price(s, SHOP, VariantRef(item_id, 1), 9900)
    again = await _order(db, order.code)
    assert again.total_fen == 2 * 5900 + 10900
    assert [line.unit_price_fen for line in await _lines(db, order.code)] == [5900, 10900]


async def test_place_order_merges_duplicate_variant_lines(db: Database) -> None:
    _, variant_id = await _variant(db, stock=10)
    order = await _place(db, [(variant_id, 2), (variant_id, 3)])
    lines = await _lines(db, order.code)
    assert len(lines) == 1
    assert lines[0].quantity == 5
    assert order.total_fen == 5 * 5900
    assert await _stock(db, variant_id) == 5


async def test_place_order_reserves_stock_and_writes_created_event(db: Database) -> None:
    _, variant_id = await _variant(db, stock=10)
    now = utcnow()
    order = await _place(db, [(variant_id, 3)], now=now)
    assert await _stock(db, variant_id) == 7
    assert (await _variant_row(db, variant_id)).sold == 0  # sold counts payments, not reservations
    events = await _events(db, order.code)
    assert len(events) == 1
    event = events[0]
    assert (event.action, event.actor, event.actor_id) == ("created", "customer", CUSTOMER_ID)
    assert (event.from_status, event.to_status) == (None, S.PENDING_PAYMENT.value)
    assert event.at == now


async def test_place_order_expiry_is_now_plus_timeout(db: Database) -> None:
    _, variant_id = await _variant(db)
    now = utcnow()
    order = await _place(db, [(variant_id, 1)], now=now)
    stored = await _order(db, order.code)
    assert stored.expires_at == now + TIMEOUT
    assert stored.created_at == now
    assert stored.reminded_at is None and stored.paid_at is None and stored.closed_at is None


async def test_order_codes_are_ten_characters_and_unique(db: Database) -> None:
    _, variant_id = await _variant(db, stock=100)
    codes = [(await _place(db, [(variant_id, 1)])).code for _ in range(30)]
    assert len(set(codes)) == 30
    for code in codes:
        assert len(code) == CODE_LENGTH == 10
        assert set(code) <= set(ALPHABET)


async def test_out_of_stock_on_second_line_rolls_back_the_first_reservation(db: Database) -> None:
    _, plenty = await _variant(db, "挂耳咖啡", 2990, 10)
    _, scarce = await _variant(db, "手冲滤杯", 12800, 1)
    with pytest.raises(OutOfStock) as caught:
        await _place(db, [(plenty, 4), (scarce, 2)])
    assert caught.value.name == "手冲滤杯"
    assert caught.value.requested == 2
    assert caught.value.available == 1
    assert await _stock(db, plenty) == 10
    assert await _stock(db, scarce) == 1
    assert await _count(db, ShopOrder) == 0
    assert await _count(db, OrderLine) == 0
    assert await _count(db, OrderEvent) == 0


async def test_out_of_stock_names_the_variant(db: Database) -> None:
    item_id, _ = await _variant(db, "咖啡豆", stock=5)
    big = await _second_variant(db, item_id, "500g", stock=0)
    with pytest.raises(OutOfStock) as caught:
        await _place(db, [(big, 1)])
    assert caught.value.name == "咖啡豆（500g）"
    assert caught.value.available == 0


async def test_delisted_item_is_unavailable(db: Database) -> None:
    item_id, variant_id = await _variant(db, "下架的豆子")
    async with db.write() as s:
        await catalog.set_listed(s, SHOP, item_id, False)
    with pytest.raises(ItemUnavailable) as caught:
        await _place(db, [(variant_id, 1)])
    assert caught.value.name == "下架的豆子"
    assert await _stock(db, variant_id) == 10
    assert await _count(db, ShopOrder) == 0


async def test_unknown_variant_is_unavailable(db: Database) -> None:
    with pytest.raises(ItemUnavailable):
        await _place(db, [(999_999, 1)])


@pytest.mark.parametrize("quantity", [0, -1, 1000])
async def test_place_order_rejects_bad_quantities(db: Database, quantity: int) -> None:
    _, variant_id = await _variant(db, stock=5000)
    with pytest.raises(InvalidValue) as caught:
        await _place(db, [(variant_id, quantity)])
    assert caught.value.field == "quantity"
    assert await _stock(db, variant_id) == 5000


async def test_place_order_rejects_a_too_long_remark(db: Database) -> None:
    _, variant_id = await _variant(db)
    with pytest.raises(InvalidValue) as caught:
        await _place(db, [(variant_id, 1)], remark="字" * (MAX_REMARK + 1))
    assert caught.value.field == "remark"


# --- get_order ---------------------------------------------------------------------------


async def test_get_order_is_case_insensitive_and_private(db: Database) -> None:
    _, variant_id = await _variant(db)
    order = await _place(db, [(variant_id, 1)])
    async with db.read() as s:
        found = await orders.get_order(s, SHOP, f"  {order.code.lower()} ", customer_id=CUSTOMER_ID)
        assert found.id == order.id
        # Staff (no customer_id) see every order.
        assert (await orders.get_order(s, SHOP, order.code)).id == order.id

        with pytest.raises(OrderNotFound) as theirs:
            await orders.get_order(s, SHOP, order.code, customer_id=OTHER_CUSTOMER_ID)
        unknown_code = "ZZZZZZZZZZ" if order.code != "ZZZZZZZZZZ" else "YYYYYYYYYY"
        with pytest.raises(OrderNotFound) as unknown:
            await orders.get_order(s, SHOP, unknown_code.lower(), customer_id=OTHER_CUSTOMER_ID)
        # Indistinguishable: same type, same shape, only the (normalised) code typed.
        assert type(theirs.value) is type(unknown.value)
        assert vars(theirs.value) == {"code": order.code}
        assert vars(unknown.value) == {"code": unknown_code}

        with pytest.raises(OrderNotFound):
            await orders.get_order(s, 2, order.code)  # another shop


# --- amend_quantity ----------------------------------------------------------------------


async def test_amend_quantity_up_and_down(db: Database) -> None:
    item_id, variant_id = await _variant(db, stock=10)
    order = await _place(db, [(variant_id, 2)])
    assert await _stock(db, variant_id) == 8

    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        line, old = await orders.amend_quantity(s, o, VariantRef(item_id), 5, CUSTOMER, utcnow())
        assert (old, line.quantity) == (2, 5)
    assert await _stock(db, variant_id) == 5
    assert (await _order(db, order.code)).total_fen == 5 * 5900

    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        line, old = await orders.amend_quantity(s, o, VariantRef(item_id, 1), 1, CUSTOMER, utcnow())
        assert (old, line.quantity) == (5, 1)
    assert await _stock(db, variant_id) == 9
    assert (await _order(db, order.code)).total_fen == 5900
    events = [e for e in await _events(db, order.code) if e.action == "quantity_changed"]
    assert len(events) == 2
    assert all(e.from_status == e.to_status == S.PENDING_PAYMENT.value for e in events)
    assert all(e.actor == "customer" and e.actor_id == CUSTOMER_ID for e in events)


async def test_amend_quantity_zero_removes_a_line(db: Database) -> None:
    item_id, small = await _variant(db, stock=10)
    big = await _second_variant(db, item_id, stock=5)
    order = await _place(db, [(small, 2), (big, 1)])
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        await orders.amend_quantity(s, o, VariantRef(item_id, 2), 0, CUSTOMER, utcnow())
    lines = await _lines(db, order.code)
    assert [(ln.variant_id, ln.quantity) for ln in lines] == [(small, 2)]
    assert (await _order(db, order.code)).total_fen == 2 * 5900
    assert await _stock(db, big) == 5


async def test_amend_quantity_zero_on_the_only_line_is_refused(db: Database) -> None:
    item_id, variant_id = await _variant(db, stock=10)
    order = await _place(db, [(variant_id, 2)])
    with pytest.raises(LastLine) as caught:
        async with db.write() as s:
            o = await orders.get_order(s, SHOP, order.code)
            await orders.amend_quantity(s, o, VariantRef(item_id), 0, CUSTOMER, utcnow())
    assert caught.value.code == order.code
    assert await _stock(db, variant_id) == 8
    assert len(await _lines(db, order.code)) == 1


async def test_amend_quantity_beyond_stock(db: Database) -> None:
    item_id, variant_id = await _variant(db, stock=5)
    order = await _place(db, [(variant_id, 2)])
    with pytest.raises(OutOfStock) as caught:
        async with db.write() as s:
            o = await orders.get_order(s, SHOP, order.code)
            await orders.amend_quantity(s, o, VariantRef(item_id), 6, CUSTOMER, utcnow())
    assert caught.value.requested == 6
    assert caught.value.available == 2 + 3  # what the order holds plus what is left
    assert await _stock(db, variant_id) == 3
    assert (await _lines(db, order.code))[0].quantity == 2
    # Exactly all of it is fine.
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        await orders.amend_quantity(s, o, VariantRef(item_id), 5, CUSTOMER, utcnow())
    assert await _stock(db, variant_id) == 0


async def test_amend_quantity_of_a_line_not_in_the_order(db: Database) -> None:
    item_id, small = await _variant(db)
    big = await _second_variant(db, item_id)
    other_item, _ = await _variant(db, "别的")
    order = await _place(db, [(small, 1), (big, 1)])
    for ref in (VariantRef(other_item), VariantRef(item_id, 3), VariantRef(item_id)):
        with pytest.raises(LineNotInOrder) as caught:
            async with db.write() as s:
                o = await orders.get_order(s, SHOP, order.code)
                await orders.amend_quantity(s, o, ref, 1, CUSTOMER, utcnow())
        assert caught.value.ref == str(ref)


async def test_amend_quantity_is_refused_on_paid_orders(db: Database) -> None:
    order, variant_id = await _paid_order(db, quantity=2)
    lines = await _lines(db, order.code)
    with pytest.raises(InvalidTransition) as caught:
        async with db.write() as s:
            o = await orders.get_order(s, SHOP, order.code)
            await orders.amend_quantity(s, o, VariantRef(lines[0].item_id), 1, CUSTOMER, utcnow())
    assert caught.value.status == S.PAID.value
    assert await _stock(db, variant_id) == 8


# --- amend_address / amend_remark --------------------------------------------------------


async def test_amend_address_and_remark_direct_when_unpaid(db: Database) -> None:
    _, variant_id = await _variant(db)
    order = await _place(db, [(variant_id, 1)])
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        assert await orders.amend_address(s, o, OFFICE, CUSTOMER, utcnow()) is Mode.DIRECT
        assert await orders.amend_remark(s, o, " 周末送 ", CUSTOMER, utcnow()) is Mode.DIRECT
    stored = await _order(db, order.code)
    assert (stored.receiver_phone, stored.receiver_address) == (OFFICE.phone, OFFICE.detail)
    assert stored.remark == "周末送"
    actions = [e.action for e in await _events(db, order.code)]
    assert actions == ["created", "address_changed", "remark_changed"]
    assert await _requests(db, order.code) == []


async def test_amend_address_and_remark_are_requests_when_paid(db: Database) -> None:
    order, _ = await _paid_order(db)
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        assert await orders.amend_address(s, o, OFFICE, CUSTOMER, utcnow()) is Mode.REQUEST
        assert await orders.amend_remark(s, o, "周末送", CUSTOMER, utcnow()) is Mode.REQUEST
    stored = await _order(db, order.code)
    assert stored.receiver_address == HOME.detail  # nothing applied yet
    assert stored.remark == ""
    requests = await _requests(db, order.code)
    assert [(r.kind, r.status, r.requested_by) for r in requests] == [
        ("address", "pending", CUSTOMER_ID),
        ("remark", "pending", CUSTOMER_ID),
    ]
    assert [e.action for e in await _events(db, order.code)][-2:] == [
        "address_requested",
        "remark_requested",
    ]

    # A second pending request of the same kind is refused.
    with pytest.raises(RequestPending) as caught:
        async with db.write() as s:
            o = await orders.get_order(s, SHOP, order.code)
            await orders.amend_address(s, o, OFFICE, CUSTOMER, utcnow())
    assert caught.value.kind == "address"
    with pytest.raises(RequestPending):
        async with db.write() as s:
            o = await orders.get_order(s, SHOP, order.code)
            await orders.amend_remark(s, o, "周末送", CUSTOMER, utcnow())
    assert len(await _requests(db, order.code)) == 2


async def test_approved_address_request_is_applied(db: Database) -> None:
    order, _ = await _paid_order(db)
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        await orders.amend_address(s, o, OFFICE, CUSTOMER, utcnow())
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        decided = await orders.decide(s, o, True, STAFF, "好的", utcnow())
    assert [r.kind for r in decided] == ["address"]
    stored = await _order(db, order.code)
    assert (stored.receiver_name, stored.receiver_phone, stored.receiver_address) == (
        OFFICE.name,
        OFFICE.phone,
        OFFICE.detail,
    )
    assert stored.status == S.PAID.value
    request = (await _requests(db, order.code))[0]
    assert (request.status, request.decided_by, request.decision_reason) == (
        "approved",
        STAFF_ID,
        "好的",
    )
    event = (await _events(db, order.code))[-1]
    assert (event.action, event.actor, event.actor_id) == ("address_changed", "staff", STAFF_ID)


@pytest.mark.parametrize("status", [S.SHIPPED, S.DELIVERED, S.COMPLETED])
async def test_changes_are_refused_once_shipped(db: Database, status: OrderStatus) -> None:
    order, variant_id = await _paid_order(db)
    await _set_status(db, order.code, status)
    for change in ("address", "remark", "cancel"):
        with pytest.raises(InvalidTransition) as caught:
            async with db.write() as s:
                o = await orders.get_order(s, SHOP, order.code)
                if change == "address":
                    await orders.amend_address(s, o, OFFICE, CUSTOMER, utcnow())
                elif change == "remark":
                    await orders.amend_remark(s, o, "x", CUSTOMER, utcnow())
                else:
                    await orders.cancel(s, o, CUSTOMER, "", utcnow())
        assert caught.value.status == status.value
        assert caught.value.action == change
    assert await _requests(db, order.code) == []
    assert await _stock(db, variant_id) == 8


# --- cancel and decide -------------------------------------------------------------------


async def test_cancel_unpaid_is_immediate_and_releases_stock(db: Database) -> None:
    item_id, small = await _variant(db, stock=10)
    big = await _second_variant(db, item_id, stock=5)
    order = await _place(db, [(small, 3), (big, 2)])
    now = utcnow()
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        assert await orders.cancel(s, o, CUSTOMER, "不想要了", now) is Mode.DIRECT
    stored = await _order(db, order.code)
    assert stored.status == S.CANCELLED.value
    assert stored.closed_at == now
    assert stored.expires_at is None
    assert await _stock(db, small) == 10
    assert await _stock(db, big) == 5
    event = (await _events(db, order.code))[-1]
    assert (event.action, event.actor, event.actor_id) == ("cancelled", "customer", CUSTOMER_ID)
    assert (event.from_status, event.to_status, event.reason) == (
        "pending_payment",
        "cancelled",
        "不想要了",
    )

    # Cancelled is final: a second cancel neither succeeds nor releases stock twice.
    with pytest.raises(InvalidTransition):
        async with db.write() as s:
            o = await orders.get_order(s, SHOP, order.code)
            await orders.cancel(s, o, CUSTOMER, "", utcnow())
    assert await _stock(db, small) == 10


async def test_cancel_reason_is_bounded(db: Database) -> None:
    _, variant_id = await _variant(db)
    order = await _place(db, [(variant_id, 1)])
    with pytest.raises(InvalidValue) as caught:
        async with db.write() as s:
            o = await orders.get_order(s, SHOP, order.code)
            await orders.cancel(s, o, CUSTOMER, "因" * (MAX_REASON + 1), utcnow())
    assert caught.value.field == "reason"
    assert (await _order(db, order.code)).status == S.PENDING_PAYMENT.value


async def test_cancel_paid_is_a_request_then_approval_refunds_in_full(db: Database) -> None:
    order, variant_id = await _paid_order(db, quantity=3)
    assert await _stock(db, variant_id) == 7
    assert (await _variant_row(db, variant_id)).sold == 3
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        assert await orders.cancel(s, o, CUSTOMER, "买错了", utcnow()) is Mode.REQUEST
    stored = await _order(db, order.code)
    assert stored.status == S.PAID.value
    requests = await _requests(db, order.code)
    assert [(r.kind, r.status, r.reason) for r in requests] == [("cancel", "pending", "买错了")]

    now = utcnow()
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        decided = await orders.decide(s, o, True, STAFF, "", now)
    assert [r.kind for r in decided] == ["cancel"]
    stored = await _order(db, order.code)
    assert stored.status == S.REFUNDED.value
    assert stored.refunded_fen == stored.paid_fen == 3 * 5900
    assert stored.closed_at == now
    assert await _stock(db, variant_id) == 10
    assert (await _variant_row(db, variant_id)).sold == 0
    assert await _count(db, Refund) == 1
    event = (await _events(db, order.code))[-1]
    assert (event.action, event.actor, event.actor_id) == ("cancel_approved", "staff", STAFF_ID)
    assert (event.from_status, event.to_status) == ("paid", "refunded")
    assert event.reason == "买错了"  # the customer's reason when staff give none
    assert (await _requests(db, order.code))[0].status == "approved"


async def test_decide_reject_leaves_the_order_alone(db: Database) -> None:
    order, variant_id = await _paid_order(db)
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        await orders.cancel(s, o, CUSTOMER, "买错了", utcnow())
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        await orders.decide(s, o, False, STAFF, "已打包", utcnow())
    stored = await _order(db, order.code)
    assert stored.status == S.PAID.value
    assert stored.refunded_fen == 0
    assert await _stock(db, variant_id) == 8
    request = (await _requests(db, order.code))[0]
    assert (request.status, request.decided_by, request.decision_reason) == (
        "rejected",
        STAFF_ID,
        "已打包",
    )
    event = (await _events(db, order.code))[-1]
    assert (event.action, event.from_status, event.to_status, event.reason) == (
        "cancel_rejected",
        "paid",
        "paid",
        "已打包",
    )
    # A new request may be made after a rejection.
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        assert await orders.cancel(s, o, CUSTOMER, "还是想取消", utcnow()) is Mode.REQUEST


async def test_decide_with_nothing_pending(db: Database) -> None:
    order, _ = await _paid_order(db)
    for approve in (True, False):
        with pytest.raises(NoPendingRequest) as caught:
            async with db.write() as s:
                o = await orders.get_order(s, SHOP, order.code)
                await orders.decide(s, o, approve, STAFF, "", utcnow())
        assert caught.value.code == order.code


async def test_approving_after_the_order_shipped_is_refused(db: Database) -> None:
    order, variant_id = await _paid_order(db)
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        await orders.cancel(s, o, CUSTOMER, "买错了", utcnow())
    await _set_status(db, order.code, S.SHIPPED)
    with pytest.raises(InvalidTransition) as caught:
        async with db.write() as s:
            o = await orders.get_order(s, SHOP, order.code)
            await orders.decide(s, o, True, STAFF, "", utcnow())
    assert caught.value.status == "shipped"
    assert caught.value.action == "approve_cancel"
    stored = await _order(db, order.code)
    assert stored.status == "shipped" and stored.refunded_fen == 0
    assert (await _requests(db, order.code))[0].status == "pending"
    assert await _stock(db, variant_id) == 8
    # Rejecting is still possible.
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        await orders.decide(s, o, False, STAFF, "已发货", utcnow())
    assert (await _requests(db, order.code))[0].status == "rejected"


async def test_approving_several_requests_address_then_cancel(db: Database) -> None:
    order, variant_id = await _paid_order(db)
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        await orders.amend_address(s, o, OFFICE, CUSTOMER, utcnow())
        await orders.cancel(s, o, CUSTOMER, "", utcnow())
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        decided = await orders.decide(s, o, True, STAFF, "", utcnow())
    assert [r.kind for r in decided] == ["address", "cancel"]
    assert (await _order(db, order.code)).status == S.REFUNDED.value
    assert await _stock(db, variant_id) == 10


async def test_approving_several_requests_cancel_then_remark(db: Database) -> None:
    order, variant_id = await _paid_order(db)
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        await orders.cancel(s, o, CUSTOMER, "", utcnow())
        await orders.amend_remark(s, o, "周末送", CUSTOMER, utcnow())
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        await orders.decide(s, o, True, STAFF, "", utcnow())
    assert (await _order(db, order.code)).status == S.REFUNDED.value
    assert await _stock(db, variant_id) == 10


# --- record_payment ----------------------------------------------------------------------


async def test_record_payment_marks_paid_and_counts_sold(db: Database) -> None:
    _, variant_id = await _variant(db, stock=10)
    order = await _place(db, [(variant_id, 3)])
    now = utcnow()
    assert await _pay(db, order.code, "WX-1", now=now) is True
    stored = await _order(db, order.code)
    assert stored.status == S.PAID.value
    assert stored.paid_fen == stored.total_fen == 3 * 5900
    assert stored.paid_at == now
    assert stored.expires_at is None  # nothing left to expire
    variant = await _variant_row(db, variant_id)
    assert (variant.stock, variant.sold) == (7, 3)
    event = (await _events(db, order.code))[-1]
    assert (event.action, event.actor, event.actor_id, event.from_status, event.to_status) == (
        "paid",
        "staff",
        STAFF_ID,
        "pending_payment",
        "paid",
    )


async def test_record_payment_is_idempotent(db: Database) -> None:
    _, variant_id = await _variant(db, stock=10)
    order = await _place(db, [(variant_id, 2)])
    assert await _pay(db, order.code, "WX-42") is True
    assert await _pay(db, order.code, "WX-42") is False
    assert await _count(db, Payment) == 1
    stored = await _order(db, order.code)
    assert stored.status == S.PAID.value
    assert stored.paid_fen == 2 * 5900
    assert (await _variant_row(db, variant_id)).sold == 2  # not counted twice
    assert [e.action for e in await _events(db, order.code)].count("paid") == 1


async def test_record_payment_with_the_wrong_amount(db: Database) -> None:
    _, variant_id = await _variant(db)
    order = await _place(db, [(variant_id, 1)])
    with pytest.raises(InvalidValue) as caught:
        await _pay(db, order.code, "WX-1", amount=5800)
    assert caught.value.field == FIELD_AMOUNT
    assert caught.value.limit == 5900
    stored = await _order(db, order.code)
    assert stored.status == S.PENDING_PAYMENT.value and stored.paid_fen == 0
    assert await _count(db, Payment) == 0


async def test_record_payment_on_a_cancelled_order(db: Database) -> None:
    _, variant_id = await _variant(db)
    order = await _place(db, [(variant_id, 1)])
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        await orders.cancel(s, o, CUSTOMER, "", utcnow())
    with pytest.raises(InvalidTransition) as caught:
        await _pay(db, order.code, "WX-1")
    assert (caught.value.status, caught.value.action) == ("cancelled", "pay")
    assert await _count(db, Payment) == 0


async def _expire(db: Database, code: str) -> None:
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, code)
        await orders.cancel(s, o, Actor.system(), "超时未付款", utcnow(), action="expired")


async def test_late_payment_revives_an_expired_order(db: Database) -> None:
    item_id, first = await _variant(db, stock=5)
    second = await _second_variant(db, item_id, stock=4)
    order = await _place(db, [(first, 2), (second, 1)])
    await _expire(db, order.code)
    assert (await _stock(db, first), await _stock(db, second)) == (5, 4)
    now = utcnow()
    assert await _pay(db, order.code, "WX-late", now=now) is True
    stored = await _order(db, order.code)
    assert (stored.status, stored.paid_fen, stored.paid_at) == ("paid", stored.total_fen, now)
    assert (stored.closed_at, stored.expires_at) == (None, None)
    assert (await _stock(db, first), await _stock(db, second)) == (3, 3)
    assert ((await _variant_row(db, first)).sold, (await _variant_row(db, second)).sold) == (2, 1)
    event = (await _events(db, order.code))[-1]
    assert (event.action, event.actor_id, event.from_status, event.to_status) == (
        "paid_late",
        STAFF_ID,
        "cancelled",
        "paid",
    )
    assert "订单恢复" in event.detail
    # Idempotent like any payment; a second reference finds it paid.
    assert await _pay(db, order.code, "WX-late") is False
    with pytest.raises(AlreadyPaid):
        await _pay(db, order.code, "WX-other")
    assert await _stock(db, first) == 3


async def test_late_payment_when_the_stock_is_gone_changes_nothing(db: Database) -> None:
    item_id, first = await _variant(db, stock=5)
    second = await _second_variant(db, item_id, stock=4)
    order = await _place(db, [(first, 2), (second, 3)])
    await _expire(db, order.code)
    await _place(db, [(second, 2)], user=OTHER_CUSTOMER_ID)  # someone bought meanwhile
    with pytest.raises(LatePaymentStockGone) as caught:
        await _pay(db, order.code, "WX-late")
    assert (caught.value.code, caught.value.name, caught.value.available) == (
        order.code,
        "咖啡豆（500g）",
        2,
    )
    stored = await _order(db, order.code)
    assert (stored.status, stored.paid_fen) == ("cancelled", 0)
    assert (await _stock(db, first), await _stock(db, second)) == (
        5,
        2,
    )  # the first line's units went back
    assert await _count(db, Payment) == 0
    # Restocked, the same payment goes through.
    async with db.write() as s:
        await s.execute(update(Variant).where(Variant.id == second).values(stock=10))  # type: ignore[arg-type]
    assert await _pay(db, order.code, "WX-late") is True
    assert (await _order(db, order.code)).status == "paid"


async def test_late_payment_does_not_reopen_other_cancellations_or_refunds(db: Database) -> None:
    _, variant_id = await _variant(db)
    by_staff = await _place(db, [(variant_id, 1)])
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, by_staff.code)
        await orders.cancel(s, o, STAFF, "顾客电话取消", utcnow())
    refunded, _ = await _paid_order(db)
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, refunded.code)
        await orders.refund(s, o, None, "缺货", STAFF, utcnow())
    with pytest.raises(InvalidTransition):
        await _pay(db, by_staff.code, "WX-1")
    with pytest.raises(AlreadyPaid):
        await _pay(db, refunded.code, "WX-2")
    # The guarded transition is open to a late payment only.
    order_rules.check_transition("cancelled", S.PAID, "paid_late")
    for action in ("paid", "pay", "reopen"):
        with pytest.raises(InvalidTransition):
            order_rules.check_transition("cancelled", S.PAID, action)
    for status in S:
        if status is not S.CANCELLED and S.PAID not in order_rules.TRANSITIONS[status]:
            with pytest.raises(InvalidTransition):
                order_rules.check_transition(status.value, S.PAID, "paid_late")


async def test_record_payment_twice_with_a_new_reference(db: Database) -> None:
    order, variant_id = await _paid_order(db)
    with pytest.raises(AlreadyPaid) as caught:
        await _pay(db, order.code, "another-ref")
    assert caught.value.code == order.code
    assert await _count(db, Payment) == 1
    assert (await _variant_row(db, variant_id)).sold == 2


# --- refund ------------------------------------------------------------------------------


async def test_partial_refunds_up_to_the_cap_then_full(db: Database) -> None:
    order, variant_id = await _paid_order(db, quantity=2)  # 11800 paid
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        assert await orders.refund(s, o, 1000, "少了一包", STAFF, utcnow()) == (1000, False)
    stored = await _order(db, order.code)
    assert stored.status == S.PAID.value
    assert stored.refunded_fen == 1000
    event = (await _events(db, order.code))[-1]
    assert (event.action, event.from_status, event.to_status, event.reason) == (
        "partial_refund",
        "paid",
        "paid",
        "少了一包",
    )

    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        assert await orders.refund(s, o, 800, "", STAFF, utcnow()) == (800, False)

    with pytest.raises(RefundTooLarge) as caught:
        async with db.write() as s:
            o = await orders.get_order(s, SHOP, order.code)
            await orders.refund(s, o, 10_001, "", STAFF, utcnow())
    assert (caught.value.requested, caught.value.refundable) == (10_001, 10_000)

    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        assert await orders.refund(s, o, 10_000, "", STAFF, utcnow()) == (10_000, True)
    stored = await _order(db, order.code)
    assert stored.status == S.REFUNDED.value
    assert stored.refunded_fen == stored.paid_fen == 11_800
    assert stored.closed_at is not None
    assert await _count(db, Refund) == 3
    # Never shipped: the stock goes back and the sale is undone.
    variant = await _variant_row(db, variant_id)
    assert (variant.stock, variant.sold) == (10, 0)
    # Nothing left to refund.
    with pytest.raises(InvalidTransition):
        async with db.write() as s:
            o = await orders.get_order(s, SHOP, order.code)
            await orders.refund(s, o, 1, "", STAFF, utcnow())


async def test_full_refund_by_default(db: Database) -> None:
    order, _ = await _paid_order(db, quantity=1)
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        assert await orders.refund(s, o, None, "缺货", STAFF, utcnow()) == (5900, True)
    event = (await _events(db, order.code))[-1]
    assert (event.action, event.from_status, event.to_status) == ("refunded", "paid", "refunded")


async def test_full_refund_of_a_shipped_order_keeps_the_stock_out(db: Database) -> None:
    order, variant_id = await _paid_order(db, quantity=2)
    await _set_status(db, order.code, S.SHIPPED)
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        await orders.refund(s, o, None, "", STAFF, utcnow())
    assert (await _order(db, order.code)).status == S.REFUNDED.value
    assert await _stock(db, variant_id) == 8  # the parcel left the warehouse


async def test_refund_over_the_cap(db: Database) -> None:
    order, _ = await _paid_order(db, quantity=1)
    with pytest.raises(RefundTooLarge) as caught:
        async with db.write() as s:
            o = await orders.get_order(s, SHOP, order.code)
            await orders.refund(s, o, 5901, "", STAFF, utcnow())
    assert (caught.value.requested, caught.value.refundable) == (5901, 5900)
    assert (await _order(db, order.code)).refunded_fen == 0


@pytest.mark.parametrize("amount", [0, -100])
async def test_refund_of_nothing(db: Database, amount: int) -> None:
    order, _ = await _paid_order(db, quantity=1)
    with pytest.raises(InvalidValue) as caught:
        async with db.write() as s:
            o = await orders.get_order(s, SHOP, order.code)
            await orders.refund(s, o, amount, "", STAFF, utcnow())
    assert caught.value.field == FIELD_AMOUNT
    assert await _count(db, Refund) == 0


async def test_refund_is_refused_on_unpaid_and_cancelled_orders(db: Database) -> None:
    _, variant_id = await _variant(db)
    unpaid = await _place(db, [(variant_id, 1)])
    cancelled = await _place(db, [(variant_id, 1)])
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, cancelled.code)
        await orders.cancel(s, o, CUSTOMER, "", utcnow())
    for code, status in ((unpaid.code, "pending_payment"), (cancelled.code, "cancelled")):
        for amount in (None, 100):
            with pytest.raises(InvalidTransition) as caught:
                async with db.write() as s:
                    o = await orders.get_order(s, SHOP, code)
                    await orders.refund(s, o, amount, "", STAFF, utcnow())
            assert (caught.value.status, caught.value.action) == (status, "refund")
    assert await _count(db, Refund) == 0


# --- events ------------------------------------------------------------------------------


async def test_every_status_change_writes_an_event(db: Database) -> None:
    order, _ = await _paid_order(db)
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        await orders.refund(s, o, None, "缺货", STAFF, utcnow())
    events = await _events(db, order.code)
    assert [(e.action, e.actor, e.actor_id, e.from_status, e.to_status) for e in events] == [
        ("created", "customer", CUSTOMER_ID, None, "pending_payment"),
        ("paid", "staff", STAFF_ID, "pending_payment", "paid"),
        ("refunded", "staff", STAFF_ID, "paid", "refunded"),
    ]
    # The chain is unbroken: each event starts where the previous one ended.
    for before, after in itertools.pairwise(events):
        assert after.from_status == before.to_status
    assert all(e.at is not None for e in events)


async def test_system_actor_has_no_user(db: Database) -> None:
    _, variant_id = await _variant(db)
    order = await _place(db, [(variant_id, 1)])
    async with db.write() as s:
        o = await orders.get_order(s, SHOP, order.code)
        await orders.cancel(s, o, Actor.system(), "超时未付款", utcnow(), action="expired")
    event = (await _events(db, order.code))[-1]
    assert (event.action, event.actor, event.actor_id) == ("expired", "system", None)


# --- list_orders -------------------------------------------------------------------------


async def test_list_orders_newest_first_filtered_and_paged(db: Database) -> None:
    _, variant_id = await _variant(db, stock=100)
    start = utcnow()
    mine = []
    for minute in range(13):
        order = await _place(db, [(variant_id, 1)], now=start + timedelta(minutes=minute))
        mine.append(order.code)
    theirs = await _place(
        db, [(variant_id, 1)], user=OTHER_CUSTOMER_ID, now=start + timedelta(minutes=30)
    )
    await _pay(db, mine[0], "a")
    await _pay(db, mine[5], "b")

    async with db.read() as s:
        page1, total = await orders.list_orders(s, SHOP, customer_id=CUSTOMER_ID)
        page2, total2 = await orders.list_orders(s, SHOP, customer_id=CUSTOMER_ID, page=2)
        page3, _ = await orders.list_orders(s, SHOP, customer_id=CUSTOMER_ID, page=3)
        everyone, all_total = await orders.list_orders(s, SHOP)
        paid, paid_total = await orders.list_orders(s, SHOP, customer_id=CUSTOMER_ID, status=S.PAID)
        unpaid, unpaid_total = await orders.list_orders(s, SHOP, status=S.PENDING_PAYMENT)
        other, other_total = await orders.list_orders(s, SHOP, customer_id=OTHER_CUSTOMER_ID)
        nobody, nobody_total = await orders.list_orders(s, SHOP, customer_id=99999)

    newest_first = list(reversed(mine))
    assert total == total2 == 13
    assert len(page1) == ORDER_PAGE_SIZE == 10
    assert [o.code for o in page1] == newest_first[:10]
    assert [o.code for o in page2] == newest_first[10:]
    assert page3 == []
    assert all_total == 14 and everyone[0].code == theirs.code
    assert paid_total == 2 and [o.code for o in paid] == [mine[5], mine[0]]
    assert unpaid_total == 12 and all(o.status == "pending_payment" for o in unpaid)
    assert other_total == 1 and [o.code for o in other] == [theirs.code]
    assert (nobody, nobody_total) == ([], 0)


async def test_list_orders_same_time_newest_id_first(db: Database) -> None:
    _, variant_id = await _variant(db, stock=10)
    now = utcnow()
    codes = [(await _place(db, [(variant_id, 1)], now=now)).code for _ in range(3)]
    async with db.read() as s:
        page, _ = await orders.list_orders(s, SHOP)
    assert [o.code for o in page] == codes[::-1]


# --- concurrency -------------------------------------------------------------------------


async def _race(
    db: Database, variant_id: int, buyers: int, quantity: int
) -> tuple[list[ShopOrder], list[BaseException]]:
    async def buy(user: int) -> ShopOrder:
        async with db.write() as s:
            return await orders.place_order(
                s, SHOP, user, None, [(variant_id, quantity)], HOME, "", utcnow(), TIMEOUT
            )

    results = await asyncio.gather(
        *(buy(40_000 + n) for n in range(buyers)), return_exceptions=True
    )
    placed = [r for r in results if isinstance(r, ShopOrder)]
    failed = [r for r in results if isinstance(r, BaseException)]
    return placed, failed


async def test_fifty_buyers_for_ten_units(db: Database) -> None:
    _, variant_id = await _variant(db, "限量款", 9900, 10)
    seen: list[int] = []
    done = asyncio.Event()

    async def watch() -> None:
        """Reads the stock between the buyers' transactions while they race."""
        while not done.is_set():
            seen.append(await _stock(db, variant_id))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    try:
        placed, failed = await _race(db, variant_id, 50, 1)
    finally:
        done.set()
        await watcher
    assert seen and min(seen) >= 0
    assert seen == sorted(seen, reverse=True)  # only ever goes down
    assert len(placed) == 10
    assert len(failed) == 40
    assert all(isinstance(e, OutOfStock) for e in failed), failed[:3]
    assert all(e.available == 0 for e in failed if isinstance(e, OutOfStock))
    assert await _stock(db, variant_id) == 0
    assert await _count(db, ShopOrder) == 10
    assert len({o.code for o in placed}) == 10
    async with db.read() as s:
        held = (await s.execute(select(func.sum(OrderLine.quantity)))).scalar_one()
    assert held == 10


async def test_concurrent_buyers_of_three_units_against_ten(db: Database) -> None:
    _, variant_id = await _variant(db, "限量款", 9900, 10)
    placed, failed = await _race(db, variant_id, 50, 3)
    assert len(placed) == 3
    assert len(failed) == 47
    assert all(isinstance(e, OutOfStock) and e.available == 1 for e in failed)
    assert await _stock(db, variant_id) == 1
    assert await _count(db, ShopOrder) == 3


async def test_concurrent_buyers_and_restock(db: Database) -> None:
    """Orders and the merchant's stock changes interleave; stock never goes negative and
    every unit is accounted for."""
    item_id, variant_id = await _variant(db, "限量款", 9900, 5)

    async def restock() -> None:
        async with db.write() as s:
            await catalog.change_stock(s, SHOP, VariantRef(item_id), StockChange("add", 5))

    buyers = _race(db, variant_id, 30, 1)
    (placed, _), _ = await asyncio.gather(buyers, restock())
    stock = await _stock(db, variant_id)
    assert stock >= 0
    assert len(placed) + stock == 10
