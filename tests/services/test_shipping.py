"""services.shipping on a real migrated SQLite database: /发货, manual tracking events,
/确认收货, the poll job against the local fake kuaidi100 server, and auto-confirm.
Time is always passed in (`now`); nothing sleeps."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from models.db import Database
from models.tables import (
    DEFAULT_SHOP_ID,
    OrderEvent,
    OrderStatus,
    OutboxMessage,
    Shipment,
    ShopOrder,
    TrackingEventRow,
)
from services import catalog, notices, orders, shipping
from services.addresses import AddressSnapshot
from services.errors import InvalidTransition, InvalidValue
from services.orders import Actor
from services.tracking import (
    NOT_ARRIVING,
    Carrier,
    Kuaidi100Provider,
    ManualProvider,
    TrackingState,
    normalise_carrier,
)

from .fake_kuaidi100 import FakeKuaidi100

SHOP = DEFAULT_SHOP_ID
CUSTOMER_ID = 30003
STAFF_ID = 20002
OWNER_ID = 10001
GROUP_ID = 555000
TIMEOUT = timedelta(minutes=30)
INTERVAL = timedelta(minutes=30)
AFTER_DELIVERY = timedelta(days=7)
AFTER_SHIPPING = timedelta(days=15)

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
SF = Carrier("顺丰", "shunfeng")
STAFF = Actor("staff", STAFF_ID)
CUSTOMER = Actor("customer", CUSTOMER_ID)
HOME = AddressSnapshot("张三", "13812345678", "浙江省杭州市西湖区文三路 100 号")
S = OrderStatus
_names = itertools.count(1)


# --- helpers -----------------------------------------------------------------------------


async def _unpaid(
    db: Database, *, group: int | None = None, now: datetime = NOW - timedelta(hours=1)
) -> str:
    async with db.write() as s:
        _, variant = await catalog.create_item(s, SHOP, f"商品{next(_names)}", 5900, 10)
        assert variant.id is not None
        order = await orders.place_order(
            s, SHOP, CUSTOMER_ID, group, [(variant.id, 1)], HOME, "", now, TIMEOUT
        )
        return order.code


async def _paid(db: Database, *, group: int | None = None, now: datetime = NOW) -> str:
    code = await _unpaid(db, group=group, now=now - timedelta(minutes=10))
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        await orders.record_payment(
            s, order, "manual", f"manual:{code}", order.total_fen, Actor("owner", OWNER_ID), now
        )
    return code


async def _ship(
    db: Database,
    code: str,
    *,
    number: str = "SF1234567890",
    now: datetime = NOW,
    carrier: Carrier = SF,
) -> Shipment:
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        return await shipping.ship(s, order, carrier, number, STAFF, now)


async def _shipped(
    db: Database, *, number: str = "SF1234567890", now: datetime = NOW, group: int | None = None
) -> str:
    code = await _paid(db, group=group, now=now - timedelta(minutes=5))
    await _ship(db, code, number=number, now=now)
    return code


async def _manual(
    db: Database, code: str, text: str, *, signed: bool = False, now: datetime = NOW
) -> TrackingEventRow:
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        return await shipping.add_manual_event(s, order, text, signed, STAFF, now)


async def _order(db: Database, code: str) -> ShopOrder:
    async with db.read() as s:
        return await orders.get_order(s, SHOP, code)


async def _shipments(db: Database, code: str) -> list[Shipment]:
    async with db.read() as s:
        rows = await s.execute(
            select(Shipment)
            .join(ShopOrder, ShopOrder.id == Shipment.order_id)
            .where(ShopOrder.code == code)
        )
        return list(rows.scalars())


async def _shipment(db: Database, code: str) -> Shipment:
    [shipment] = await _shipments(db, code)
    return shipment


async def _tracking(db: Database, code: str) -> list[TrackingEventRow]:
    async with db.read() as s:
        rows = await s.execute(
            select(TrackingEventRow)
            .join(Shipment, Shipment.id == TrackingEventRow.shipment_id)
            .join(ShopOrder, ShopOrder.id == Shipment.order_id)
            .where(ShopOrder.code == code)
            .order_by(TrackingEventRow.id)  # type: ignore[arg-type]
        )
        return list(rows.scalars())


async def _order_events(db: Database, code: str) -> list[OrderEvent]:
    async with db.read() as s:
        order = await orders.get_order(s, SHOP, code)
        return (await orders.order_detail(s, order)).events


async def _notices(db: Database, code: str) -> list[OutboxMessage]:
    """The outbox rows about an order for its customer (not staff copies), oldest first."""
    async with db.read() as s:
        rows = await s.execute(
            select(OutboxMessage)
            .where(OutboxMessage.dedupe_key.startswith(f"order:{code}:"))  # type: ignore[attr-defined]
            .order_by(OutboxMessage.id)  # type: ignore[arg-type]
        )
        return [r for r in rows.scalars() if ":staff:" not in r.dedupe_key]


def _keys(rows: list[OutboxMessage], code: str) -> list[str]:
    return [r.dedupe_key.removeprefix(f"order:{code}:") for r in rows]


def _text(row: OutboxMessage) -> str:
    return "".join(
        s["data"].get("text", "") for s in json.loads(row.segments) if s["type"] == "text"
    )


def _as_sent(row: OutboxMessage) -> tuple[str, int, list[dict[str, object]]]:
    return row.target_type, row.target_id, json.loads(row.segments)


def _private_notice(text: str) -> tuple[str, int, list[dict[str, object]]]:
    return "private", CUSTOMER_ID, [{"type": "text", "data": {"text": text}}]


# --- ship ----------------------------------------------------------------------------------


async def test_ship_moves_paid_to_shipped_and_starts_tracking(db: Database) -> None:
    code = await _paid(db, now=NOW - timedelta(hours=2))
    carrier = normalise_carrier("顺丰速运")
    shipment = await _ship(db, code, carrier=carrier, number="SF1234567890")
    assert shipment.id is not None

    order = await _order(db, code)
    assert order.status == S.SHIPPED.value
    assert order.updated_at == NOW
    last = (await _order_events(db, code))[-1]
    assert (last.action, last.from_status, last.to_status, last.actor, last.actor_id, last.at) == (
        "shipped",
        "paid",
        "shipped",
        "staff",
        STAFF_ID,
        NOW,
    )
    assert last.detail == "顺丰 SF1234567890"

    stored = await _shipment(db, code)
    assert (
        stored.order_id,
        stored.carrier_name,
        stored.carrier_code,
        stored.number,
        stored.shipped_at,
        stored.next_poll_at,
        stored.in_transit,
        stored.state,
        stored.delivered_at,
        stored.poll_failures,
    ) == (order.id, "顺丰", "shunfeng", "SF1234567890", NOW, NOW, True, "", None, 0)
    assert await _tracking(db, code) == []

    # Telling the customer is the use case's part (tests/services/test_usecases_fulfilment.py).
    assert await _notices(db, code) == []


@pytest.mark.parametrize("state", ["unpaid", "cancelled", "shipped", "delivered", "completed"])
async def test_ship_refuses_orders_that_are_not_waiting_for_shipment(
    db: Database, state: str
) -> None:
    if state == "unpaid":
        code = await _unpaid(db)
    elif state == "cancelled":
        code = await _unpaid(db)
        async with db.write() as s:
            order = await orders.get_order(s, SHOP, code)
            await orders.cancel(s, order, CUSTOMER, "不要了", NOW - timedelta(minutes=1))
    else:
        code = await _shipped(db, now=NOW - timedelta(days=1))
        if state in ("delivered", "completed"):
            await _manual(db, code, "已签收", signed=True, now=NOW - timedelta(hours=1))
        if state == "completed":
            async with db.write() as s:
                order = await orders.get_order(s, SHOP, code)
                await shipping.confirm_received(s, order, CUSTOMER, NOW - timedelta(minutes=1))
    before_status = (await _order(db, code)).status
    before_events = len(await _order_events(db, code))
    before_notices = _keys(await _notices(db, code), code)
    before_shipments = [s.model_dump() for s in await _shipments(db, code)]

    with pytest.raises(InvalidTransition) as caught:
        await _ship(db, code, number="YT9999999999", carrier=normalise_carrier("圆通"))
    assert caught.value.status == before_status

    assert (await _order(db, code)).status == before_status
    assert len(await _order_events(db, code)) == before_events
    assert _keys(await _notices(db, code), code) == before_notices
    assert [s.model_dump() for s in await _shipments(db, code)] == before_shipments


# --- manual events -------------------------------------------------------------------------


async def test_manual_event_is_stored_and_the_customer_told(db: Database) -> None:
    code = await _shipped(db, now=NOW - timedelta(hours=3))
    row = await _manual(db, code, "  已到达杭州转运中心 ", now=NOW)

    [stored] = await _tracking(db, code)
    assert stored.id == row.id
    assert (stored.at, stored.text, stored.state, stored.source, stored.recorded_at) == (
        NOW,
        "已到达杭州转运中心",
        "",
        "manual",
        NOW,
    )
    order = await _order(db, code)
    assert order.status == S.SHIPPED.value
    shipment = await _shipment(db, code)
    assert (shipment.in_transit, shipment.delivered_at, shipment.state) == (True, None, "")

    assert await _notices(db, code) == []  # the use case tells the customer

    # A second, different event: stored too, in order.
    later = NOW + timedelta(hours=2)
    await _manual(db, code, "派送中", now=later)
    assert [(e.at, e.text) for e in await _tracking(db, code)] == [
        (NOW, "已到达杭州转运中心"),
        (later, "派送中"),
    ]


async def test_signed_manual_event_delivers_the_order(db: Database) -> None:
    code = await _shipped(db, now=NOW - timedelta(days=2))
    await _manual(db, code, "已由前台代收", signed=True, now=NOW)

    order = await _order(db, code)
    assert order.status == S.DELIVERED.value
    assert order.closed_at is None
    shipment = await _shipment(db, code)
    assert (shipment.in_transit, shipment.delivered_at, shipment.state) == (False, NOW, "signed")
    [stored] = await _tracking(db, code)
    assert (stored.text, stored.state, stored.source) == ("已由前台代收", "signed", "manual")

    last = (await _order_events(db, code))[-1]
    assert (last.action, last.from_status, last.to_status, last.actor_id, last.at) == (
        "delivered",
        "shipped",
        "delivered",
        STAFF_ID,
        NOW,
    )
    assert await _notices(db, code) == []  # the use case tells the customer
    # Delivered: no more manual events.
    with pytest.raises(InvalidTransition) as caught:
        await _manual(db, code, "又一条", now=NOW + timedelta(minutes=1))
    assert (caught.value.status, caught.value.action) == ("delivered", "track")


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "empty"), ("   ", "empty"), ("很" * 101, "too_long"), ("x" * 150, "too_long")],
)
async def test_manual_event_text_is_checked(db: Database, text: str, reason: str) -> None:
    code = await _shipped(db)
    with pytest.raises(InvalidValue) as caught:
        await _manual(db, code, text, signed=True)
    assert (caught.value.field, caught.value.reason, caught.value.limit) == (
        shipping.FIELD_TRACKING_TEXT,
        reason,
        shipping.MAX_EVENT_TEXT,
    )
    assert await _tracking(db, code) == []
    assert (await _order(db, code)).status == S.SHIPPED.value


async def test_manual_event_of_exactly_the_longest_text(db: Database) -> None:
    code = await _shipped(db)
    await _manual(db, code, "到" * 100)
    [row] = await _tracking(db, code)
    assert row.text == "到" * 100


@pytest.mark.parametrize("state", ["unpaid", "paid"])
async def test_manual_event_needs_a_shipped_order(db: Database, state: str) -> None:
    code = await (_unpaid(db) if state == "unpaid" else _paid(db))
    status = (await _order(db, code)).status
    with pytest.raises(InvalidTransition) as caught:
        await _manual(db, code, "已到达杭州转运中心")
    assert (caught.value.status, caught.value.action) == (status, "track")
    with pytest.raises(InvalidTransition):
        await _manual(db, code, "签收", signed=True)
    assert (await _order(db, code)).status == status
    assert await _shipments(db, code) == []


# --- confirm_received ------------------------------------------------------------------------


@pytest.mark.parametrize("delivered", [False, True], ids=["shipped", "delivered"])
async def test_confirm_received_completes(db: Database, delivered: bool) -> None:
    code = await _shipped(db, now=NOW - timedelta(days=3))
    if delivered:
        await _manual(db, code, "签收", signed=True, now=NOW - timedelta(days=1))
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        await shipping.confirm_received(s, order, CUSTOMER, NOW)

    order = await _order(db, code)
    assert (order.status, order.closed_at) == (S.COMPLETED.value, NOW)
    last = (await _order_events(db, code))[-1]
    assert (last.action, last.from_status, last.to_status, last.actor, last.actor_id) == (
        "completed",
        "delivered" if delivered else "shipped",
        "completed",
        "customer",
        CUSTOMER_ID,
    )
    assert (await _shipment(db, code)).in_transit is False
    # Completing twice is refused.
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        with pytest.raises(InvalidTransition):
            await shipping.confirm_received(s, order, CUSTOMER, NOW)


@pytest.mark.parametrize("state", ["unpaid", "paid"])
async def test_confirm_received_needs_a_shipped_order(db: Database, state: str) -> None:
    code = await (_unpaid(db) if state == "unpaid" else _paid(db))
    status = (await _order(db, code)).status
    before = len(await _order_events(db, code))
    with pytest.raises(InvalidTransition) as caught:
        async with db.write() as s:
            order = await orders.get_order(s, SHOP, code)
            await shipping.confirm_received(s, order, CUSTOMER, NOW)
    assert caught.value.status == status
    order = await _order(db, code)
    assert (order.status, order.closed_at) == (status, None)
    assert len(await _order_events(db, code)) == before


# --- poll_due with kuaidi100 (the local fake server) -------------------------------------------


async def test_poll_stores_events_once_and_tells_each_state_once(
    db: Database, fake: FakeKuaidi100, provider: Kuaidi100Provider
) -> None:
    code = await _shipped(db, number="TRANSIT001")
    asked = len(fake.requests)

    report = await shipping.poll_due(db, provider, NOW, INTERVAL)
    assert (report.polled, report.new_events, report.delivered, report.failures) == (1, 3, [], [])
    [form] = fake.requests[asked:]
    param = json.loads(form["param"])
    assert (param["com"], param["num"], param["phone"]) == ("shunfeng", "TRANSIT001", "5678")

    rows = await _tracking(db, code)
    assert [r.text for r in rows] == [
        "【深圳市】顺丰速运 已收取快件",
        "快件已发车，下一站【上海转运中心】",
        "快件到达【上海转运中心】",
    ]
    assert rows[0].at == datetime(2026, 11, 22, 10, 30, tzinfo=UTC)  # 18:30 in Shanghai
    assert [r.state for r in rows] == ["picked_up", "in_transit", "in_transit"]
    assert {(r.source, r.recorded_at) for r in rows} == {("kuaidi100", NOW)}
    shipment = await _shipment(db, code)
    assert (shipment.state, shipment.in_transit, shipment.next_poll_at) == (
        TrackingState.IN_TRANSIT.value,
        True,
        NOW + INTERVAL,
    )
    assert (await _order(db, code)).status == S.SHIPPED.value
    notices_ = await _notices(db, code)
    assert _keys(notices_, code) == [f"track:in_transit:{rows[-1].key}"]
    assert _as_sent(notices_[-1]) == _private_notice(
        f"订单号：{code} 物流更新：在途：快件到达【上海转运中心】"
    )

    # Same moment again: not due, nobody asked.
    again = await shipping.poll_due(db, provider, NOW, INTERVAL)
    assert (again.polled, again.new_events) == (0, 0)
    assert len(fake.requests) == asked + 1

    # One interval later: asked again, the same answer adds nothing and tells nobody.
    later = await shipping.poll_due(db, provider, NOW + INTERVAL, INTERVAL)
    assert (later.polled, later.new_events, later.delivered, later.failures) == (1, 0, [], [])
    assert len(fake.requests) == asked + 2
    assert [r.id for r in await _tracking(db, code)] == [r.id for r in rows]
    assert len(await _notices(db, code)) == 1
    assert (await _shipment(db, code)).next_poll_at == NOW + 2 * INTERVAL


async def test_poll_of_a_signed_parcel_delivers_the_order(
    db: Database, provider: Kuaidi100Provider
) -> None:
    code = await _shipped(db, number="SIGNED0001", group=GROUP_ID)
    report = await shipping.poll_due(db, provider, NOW, INTERVAL)
    assert (report.polled, report.new_events, report.delivered) == (1, 5, [code])

    order = await _order(db, code)
    assert order.status == S.DELIVERED.value
    shipment = await _shipment(db, code)
    assert (shipment.state, shipment.in_transit) == ("signed", False)
    # When the parcel was signed (11:42 in Shanghai), not when we learnt it.
    assert shipment.delivered_at == datetime(2026, 11, 24, 3, 42, tzinfo=UTC)
    assert [r.state for r in await _tracking(db, code)][-1] == "signed"
    last = (await _order_events(db, code))[-1]
    assert (last.action, last.actor, last.to_status, last.at) == (
        "delivered",
        "system",
        "delivered",
        NOW,
    )

    notices_ = await _notices(db, code)
    assert _keys(notices_, code) == ["delivered"]
    assert _as_sent(notices_[-1]) == (
        "group",
        GROUP_ID,
        [
            {"type": "at", "data": {"qq": str(CUSTOMER_ID)}},
            {"type": "text", "data": {"text": " " + notices.delivered(order)}},
        ],
    )
    # Delivered shipments are never polled again.
    assert (await shipping.poll_due(db, provider, NOW + 10 * INTERVAL, INTERVAL)).polled == 0


async def test_a_busy_provider_is_retried_later(db: Database, provider: Kuaidi100Provider) -> None:
    code = await _shipped(db, number="ERROR501")
    report = await shipping.poll_due(db, provider, NOW, INTERVAL)
    assert (report.polled, report.new_events, report.failures) == (1, 0, [code])
    shipment = await _shipment(db, code)
    assert (shipment.in_transit, shipment.poll_failures, shipment.next_poll_at) == (
        True,
        1,
        NOW + INTERVAL,
    )
    assert "501" in shipment.last_error
    assert (await _order(db, code)).status == S.SHIPPED.value
    assert await _notices(db, code) == []

    assert (await shipping.poll_due(db, provider, NOW + INTERVAL / 2, INTERVAL)).polled == 0
    again = await shipping.poll_due(db, provider, NOW + INTERVAL, INTERVAL)
    assert (again.polled, again.failures) == (1, [code])
    assert (await _shipment(db, code)).poll_failures == 2


async def test_a_rejected_shipment_stops_polling(db: Database, provider: Kuaidi100Provider) -> None:
    code = await _shipped(db, number="ERROR400")
    report = await shipping.poll_due(db, provider, NOW, INTERVAL)
    assert (report.polled, report.failures) == (1, [code])
    shipment = await _shipment(db, code)
    assert (shipment.in_transit, shipment.poll_failures) == (False, 1)
    assert shipment.last_error.startswith("rejected")
    assert "找不到对应公司" in shipment.last_error
    assert (await _order(db, code)).status == S.SHIPPED.value
    assert (await shipping.poll_due(db, provider, NOW + 10 * INTERVAL, INTERVAL)).polled == 0


async def test_no_result_yet_just_waits(db: Database, provider: Kuaidi100Provider) -> None:
    code = await _shipped(db, number="NOTHINGYET1")
    report = await shipping.poll_due(db, provider, NOW, INTERVAL)
    assert (report.polled, report.new_events, report.failures) == (1, 0, [])
    shipment = await _shipment(db, code)
    assert (shipment.in_transit, shipment.poll_failures, shipment.next_poll_at) == (
        True,
        0,
        NOW + INTERVAL,
    )
    assert await _tracking(db, code) == []


async def test_poll_visits_at_most_a_batch_oldest_due_first(
    db: Database, fake: FakeKuaidi100, provider: Kuaidi100Provider
) -> None:
    codes = [
        await _shipped(db, number="TRANSIT001", now=NOW - timedelta(minutes=m)) for m in (3, 2, 1)
    ]
    asked = len(fake.requests)
    report = await shipping.poll_due(db, provider, NOW, INTERVAL, batch=2)
    assert (report.polled, report.new_events) == (2, 6)
    assert len(fake.requests) == asked + 2
    assert [(await _shipment(db, c)).next_poll_at for c in codes] == [
        NOW + INTERVAL,
        NOW + INTERVAL,
        NOW - timedelta(minutes=1),
    ]
    assert [len(await _tracking(db, c)) for c in codes] == [3, 3, 0]

    rest = await shipping.poll_due(db, provider, NOW, INTERVAL, batch=2)
    assert (rest.polled, rest.new_events) == (1, 3)
    assert [len(await _tracking(db, c)) for c in codes] == [3, 3, 3]


async def test_manual_provider_polls_nothing(db: Database) -> None:
    code = await _shipped(db, number="TRANSIT001", now=NOW - timedelta(days=1))
    report = await shipping.poll_due(db, ManualProvider(), NOW, INTERVAL)
    assert report == shipping.PollReport()
    shipment = await _shipment(db, code)
    assert (shipment.next_poll_at, shipment.in_transit) == (NOW - timedelta(days=1), True)
    assert await _tracking(db, code) == []


async def test_shipments_not_yet_due_are_left_alone(
    db: Database, fake: FakeKuaidi100, provider: Kuaidi100Provider
) -> None:
    await _shipped(db, number="TRANSIT001", now=NOW + timedelta(seconds=1))
    asked = len(fake.requests)
    assert (await shipping.poll_due(db, provider, NOW, INTERVAL)).polled == 0
    assert len(fake.requests) == asked


async def test_a_signed_parcel_of_a_refunded_order_is_not_polled_forever(
    db: Database, provider: Kuaidi100Provider
) -> None:
    code = await _shipped(db, number="SIGNED0001", now=NOW - timedelta(hours=1))
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        await orders.refund(
            s, order, None, "少发了", Actor("owner", OWNER_ID), NOW - timedelta(minutes=30)
        )
    assert (await _order(db, code)).status == S.REFUNDED.value
    first = await shipping.poll_due(db, provider, NOW, INTERVAL)
    assert first.polled == 1
    assert (await _order(db, code)).status == S.REFUNDED.value
    # Signed is final: nothing more can be learnt about this parcel.
    assert (await _shipment(db, code)).in_transit is False
    assert (await shipping.poll_due(db, provider, NOW + INTERVAL, INTERVAL)).polled == 0


# --- auto_confirm_due ------------------------------------------------------------------------


async def _delivered(db: Database, *, delivered_ago: timedelta) -> str:
    code = await _shipped(db, now=NOW - delivered_ago - timedelta(days=1))
    await _manual(db, code, "签收", signed=True, now=NOW - delivered_ago)
    return code


async def test_auto_confirm_completes_old_deliveries_and_old_shipments_once(db: Database) -> None:
    delivered_7 = await _delivered(db, delivered_ago=AFTER_DELIVERY)
    delivered_6 = await _delivered(db, delivered_ago=timedelta(days=6))
    shipped_15 = await _shipped(db, now=NOW - AFTER_SHIPPING)
    shipped_14 = await _shipped(db, now=NOW - timedelta(days=14))

    done = await shipping.auto_confirm_due(db, NOW, AFTER_DELIVERY, AFTER_SHIPPING)
    assert sorted(done) == sorted([delivered_7, shipped_15])

    for code in (delivered_7, shipped_15):
        order = await _order(db, code)
        assert (order.status, order.closed_at) == (S.COMPLETED.value, NOW)
        last = (await _order_events(db, code))[-1]
        assert (last.action, last.actor, last.actor_id, last.to_status, last.at) == (
            "auto_completed",
            "system",
            None,
            "completed",
            NOW,
        )
        assert (await _shipment(db, code)).in_transit is False
        notices_ = await _notices(db, code)
        assert _keys(notices_, code)[-1] == "completed"
        assert _as_sent(notices_[-1]) == _private_notice(notices.auto_completed(order))
        assert "已自动确认收货" in _text(notices_[-1])

    assert (await _order(db, delivered_6)).status == S.DELIVERED.value
    assert (await _order(db, shipped_14)).status == S.SHIPPED.value
    assert (await _shipment(db, shipped_14)).in_transit is True
    for code in (delivered_6, shipped_14):
        assert "completed" not in _keys(await _notices(db, code), code)

    # Running again at the same moment changes nothing and tells nobody twice.
    before = {c: len(await _notices(db, c)) for c in (delivered_7, shipped_15)}
    assert await shipping.auto_confirm_due(db, NOW, AFTER_DELIVERY, AFTER_SHIPPING) == []
    assert {c: len(await _notices(db, c)) for c in (delivered_7, shipped_15)} == before
    for code in (delivered_7, shipped_15):
        assert [e.action for e in await _order_events(db, code)].count("auto_completed") == 1

    # A day later the other two are due too.
    later = await shipping.auto_confirm_due(
        db, NOW + timedelta(days=1), AFTER_DELIVERY, AFTER_SHIPPING
    )
    assert sorted(later) == sorted([delivered_6, shipped_14])


async def test_auto_confirm_leaves_orders_the_customer_already_completed(db: Database) -> None:
    code = await _delivered(db, delivered_ago=timedelta(days=10))
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        await shipping.confirm_received(s, order, CUSTOMER, NOW - timedelta(days=9))
    assert await shipping.auto_confirm_due(db, NOW, AFTER_DELIVERY, AFTER_SHIPPING) == []
    assert "completed" not in _keys(await _notices(db, code), code)


@pytest.mark.parametrize("state", sorted(s.value for s in NOT_ARRIVING))
async def test_auto_confirm_never_completes_a_parcel_on_its_way_back(
    db: Database, state: str
) -> None:
    back = await _shipped(db, now=NOW - AFTER_SHIPPING - timedelta(days=5))
    arriving = await _shipped(db, now=NOW - AFTER_SHIPPING)
    async with db.write() as s:
        shipment = (
            await s.execute(select(Shipment).join(ShopOrder).where(ShopOrder.code == back))
        ).scalar_one()
        shipment.state = state
    assert await shipping.auto_confirm_due(db, NOW, AFTER_DELIVERY, AFTER_SHIPPING) == [arriving]
    assert (await _order(db, back)).status == S.SHIPPED.value
    assert "completed" not in _keys(await _notices(db, back), back)


async def test_poll_stops_for_an_order_refunded_in_transit(
    db: Database, fake: FakeKuaidi100, provider: Kuaidi100Provider
) -> None:
    code = await _shipped(db, number="TRANSIT001")
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, code)
        await orders.refund(s, order, None, "顾客拒收，已退款", STAFF, NOW)
    before = _keys(await _notices(db, code), code)
    asked = len(fake.requests)
    report = await shipping.poll_due(db, provider, NOW, INTERVAL)
    assert (report.polled, report.new_events, report.delivered) == (1, 0, [])
    assert _keys(await _notices(db, code), code) == before  # no "物流更新" for a refunded order
    assert (await _shipment(db, code)).in_transit is False
    later = await shipping.poll_due(db, provider, NOW + INTERVAL, INTERVAL)
    assert later.polled == 0
    assert len(fake.requests) - asked <= 1


# --- courier texts in groups ------------------------------------------------------------------

_COURIER_TEXT = "派送至 四川省成都市武侯区天府大道北段1700号，收件人 孙悟空，电话 13912345678"


class _OneEventProvider:
    """A provider whose parcel is out for delivery with a courier text full of personal data."""

    name = "fake"

    async def query(self, carrier: Carrier, number: str, phone: str | None = None) -> object:
        from services.tracking import TrackingEvent, TrackingResult

        event = TrackingEvent(NOW - timedelta(hours=1), _COURIER_TEXT, TrackingState.DELIVERING)
        return TrackingResult(TrackingState.DELIVERING, [event])

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("group", [None, GROUP_ID], ids=["private", "group"])
async def test_poll_push_shows_a_group_the_state_and_city_only(
    db: Database, group: int | None
) -> None:
    code = await _shipped(db, group=group)
    await shipping.poll_due(db, _OneEventProvider(), NOW, INTERVAL)  # type: ignore[arg-type]
    [*_, pushed] = await _notices(db, code)
    assert pushed.dedupe_key.startswith(f"order:{code}:track:delivering:")
    if group is None:
        assert _as_sent(pushed) == _private_notice(
            f"订单号：{code} 物流更新：派件：{_COURIER_TEXT}"
        )
        return
    assert _as_sent(pushed) == (
        "group",
        GROUP_ID,
        [
            {"type": "at", "data": {"qq": str(CUSTOMER_ID)}},
            {"type": "text", "data": {"text": f" 订单号：{code} 物流更新：派件 · 成都市"}},
        ],
    )
