"""The fulfilment and announcement use cases (services/usecases/fulfilment.py and
announcements.py) on a real temp SQLite shop: what each returns, the order events it
writes and the notices it queues in the same transaction, and its main refusal."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models.tables import OrderEvent, OutboxMessage, Shipment, ShopOrder, TrackingEventRow
from services import catalog, groups, orders
from services.actors import Caller
from services.addresses import AddressSnapshot
from services.context import ShopContext
from services.errors import InvalidTransition, InvalidValue, OrderNotFound
from services.limits import MAX_ANNOUNCEMENT
from services.orders import Actor
from services.staff import Role
from services.tracking import normalise_carrier
from services.usecases import announcements, fulfilment
from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
STAFF = Caller(STAFF_ID, None, Role.STAFF)
CUSTOMER = Caller(CUSTOMER_ID, None, Role.CUSTOMER)
OTHER_CUSTOMER = Caller(OTHER_CUSTOMER_ID, None, Role.CUSTOMER)
SF = normalise_carrier("顺丰")
HOME = AddressSnapshot("张三", "13812345678", "浙江省杭州市西湖区文三路 100 号")
_names = itertools.count(1)


# --- helpers -------------------------------------------------------------------------------


async def _paid(shop: ShopContext, *, customer: int = CUSTOMER_ID, group: int | None = None) -> str:
    async with shop.database.write() as session:
        _, variant = await catalog.create_item(
            session, shop.shop_id, f"商品{next(_names)}", 5900, 10
        )
        assert variant.id is not None
        order = await orders.place_order(
            session,
            shop.shop_id,
            customer,
            group,
            [(variant.id, 1)],
            HOME,
            "",
            NOW - timedelta(hours=1),
            timedelta(minutes=30),
        )
        await orders.record_payment(
            session,
            order,
            "manual",
            f"manual:{order.code}",
            order.total_fen,
            Actor("owner", OWNER_ID),
            NOW - timedelta(minutes=50),
        )
        return order.code


async def _shipped(shop: ShopContext, **kwargs: Any) -> str:
    code = await _paid(shop, **kwargs)
    await fulfilment.ship_order(shop, STAFF, code, SF, "SF1234567890", NOW - timedelta(days=1))
    return code


async def _outbox_ids(shop: ShopContext) -> set[int]:
    async with shop.database.read() as session:
        return set((await session.execute(select(OutboxMessage.id))).scalars())


async def _new_outbox(shop: ShopContext, before: set[int]) -> list[OutboxMessage]:
    async with shop.database.read() as session:
        rows = await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))  # type: ignore[arg-type]
        return [row for row in rows.scalars() if row.id not in before]


async def _events(shop: ShopContext, code: str) -> list[OrderEvent]:
    async with shop.database.read() as session:
        rows = await session.execute(
            select(OrderEvent)
            .join(ShopOrder, ShopOrder.id == OrderEvent.order_id)
            .where(ShopOrder.code == code)
            .order_by(OrderEvent.id)  # type: ignore[arg-type]
        )
        return list(rows.scalars())


async def _order(shop: ShopContext, code: str) -> ShopOrder:
    async with shop.database.read() as session:
        return await orders.get_order(session, shop.shop_id, code)


def _sent(row: OutboxMessage) -> tuple[str, str, int, list[dict[str, Any]]]:
    return row.dedupe_key, row.target_type, row.target_id, json.loads(row.segments)


def _private(key: str, text: str) -> tuple[str, str, int, list[dict[str, Any]]]:
    return key, "private", CUSTOMER_ID, [{"type": "text", "data": {"text": text}}]


# --- ship_order ----------------------------------------------------------------------------


async def test_ship_order_ships_and_tells_the_customer(shop_context: ShopContext) -> None:
    code = await _paid(shop_context)
    before = await _outbox_ids(shop_context)
    shop_context.notices_committed.clear()

    shipped = await fulfilment.ship_order(
        shop_context, STAFF, code.lower(), SF, "SF1234567890", NOW
    )

    assert (shipped.order.code, shipped.order.status) == (code, "shipped")
    shipment = shipped.shipment
    assert (shipment.carrier_name, shipment.number, shipment.in_transit, shipment.shipped_at) == (
        "顺丰",
        "SF1234567890",
        True,
        NOW,
    )
    last = (await _events(shop_context, code))[-1]
    assert (last.action, last.from_status, last.to_status, last.actor, last.actor_id) == (
        "shipped",
        "paid",
        "shipped",
        "staff",
        STAFF_ID,
    )
    assert last.detail == "顺丰 SF1234567890"
    assert [_sent(row) for row in await _new_outbox(shop_context, before)] == [
        _private(
            f"order:{code}:shipped",
            f"订单号：{code} 已发货：顺丰 SF1234567890。发 /物流 {code} 查看物流。",
        )
    ]
    assert shop_context.notices_committed.is_set()


async def test_ship_order_of_a_group_order_mentions_the_customer_without_private_details(
    shop_context: ShopContext,
) -> None:
    code = await _paid(shop_context, group=GROUP_ID)
    before = await _outbox_ids(shop_context)
    await fulfilment.ship_order(
        shop_context, STAFF, code, normalise_carrier("ＪＤ"), "JD0001234567", NOW
    )
    [notice] = await _new_outbox(shop_context, before)
    assert _sent(notice) == (
        f"order:{code}:shipped",
        "group",
        GROUP_ID,
        [
            {"type": "at", "data": {"qq": str(CUSTOMER_ID)}},
            {
                "type": "text",
                "data": {
                    "text": f" 订单号：{code} 已发货：京东 JD0001234567。发 /物流 {code} 查看物流。"
                },
            },
        ],
    )
    for private_detail in ("13812345678", "张三", "文三路", "杭州"):
        assert private_detail not in notice.segments


async def test_ship_order_refuses_an_order_already_shipped(shop_context: ShopContext) -> None:
    code = await _shipped(shop_context)
    before_events = await _events(shop_context, code)
    before = await _outbox_ids(shop_context)
    with pytest.raises(InvalidTransition) as caught:
        await fulfilment.ship_order(shop_context, STAFF, code, SF, "SF9999999999", NOW)
    assert (caught.value.status, caught.value.action) == ("shipped", "ship")
    assert await _new_outbox(shop_context, before) == []
    assert await _events(shop_context, code) == before_events
    async with shop_context.database.read() as session:
        numbers = (await session.execute(select(Shipment.number))).scalars().all()
    assert numbers == ["SF1234567890"]


# --- view_tracking -------------------------------------------------------------------------


async def test_view_tracking_before_and_after_shipping(shop_context: ShopContext) -> None:
    code = await _paid(shop_context)
    before = await fulfilment.view_tracking(shop_context, CUSTOMER, code)
    assert (before.order.code, before.view) == (code, None)

    await fulfilment.ship_order(shop_context, STAFF, code, SF, "SF1234567890", NOW)
    await fulfilment.update_tracking(
        shop_context, STAFF, code, "派送中", False, NOW + timedelta(hours=2)
    )
    await fulfilment.update_tracking(shop_context, STAFF, code, "已揽收", False, NOW)
    for caller in (CUSTOMER, STAFF):
        found = await fulfilment.view_tracking(shop_context, caller, code)
        assert found.view is not None
        assert found.view.shipment.number == "SF1234567890"
        assert [e.text for e in found.view.events] == ["已揽收", "派送中"]  # oldest first


async def test_view_tracking_of_someone_elses_order_is_not_found(
    shop_context: ShopContext,
) -> None:
    code = await _shipped(shop_context)
    with pytest.raises(OrderNotFound) as caught:
        await fulfilment.view_tracking(shop_context, OTHER_CUSTOMER, code)
    assert caught.value.code == code


# --- update_tracking -----------------------------------------------------------------------


async def test_update_tracking_stores_the_event_and_tells_the_customer(
    shop_context: ShopContext,
) -> None:
    code = await _shipped(shop_context)
    before = await _outbox_ids(shop_context)
    before_events = await _events(shop_context, code)

    updated = await fulfilment.update_tracking(
        shop_context, STAFF, code, " 已到达杭州转运中心 ", False, NOW
    )

    assert (updated.order.status, updated.signed) == ("shipped", False)
    event = updated.event
    assert (event.text, event.state, event.source, event.at) == (
        "已到达杭州转运中心",
        "",
        "manual",
        NOW,
    )
    async with shop_context.database.read() as session:
        stored = (await session.execute(select(TrackingEventRow))).scalars().all()
    assert [row.id for row in stored] == [event.id]
    assert await _events(shop_context, code) == before_events  # no status change
    assert [_sent(row) for row in await _new_outbox(shop_context, before)] == [
        _private(f"order:{code}:track:{event.key}", f"订单号：{code} 物流更新：已到达杭州转运中心")
    ]


async def test_update_tracking_signed_delivers_and_tells_the_customer(
    shop_context: ShopContext,
) -> None:
    code = await _shipped(shop_context)
    before = await _outbox_ids(shop_context)

    updated = await fulfilment.update_tracking(shop_context, STAFF, code, "已由前台代收", True, NOW)

    assert (updated.order.status, updated.signed, updated.event.state) == (
        "delivered",
        True,
        "signed",
    )
    last = (await _events(shop_context, code))[-1]
    assert (last.action, last.from_status, last.to_status, last.actor_id, last.at) == (
        "delivered",
        "shipped",
        "delivered",
        STAFF_ID,
        NOW,
    )
    assert [_sent(row) for row in await _new_outbox(shop_context, before)] == [
        _private(
            f"order:{code}:delivered",
            f"订单号：{code} 已签收。收到货没问题请发 /确认收货 {code}；有问题可发 /售后。",
        )
    ]


async def test_update_tracking_refusals_queue_nothing(shop_context: ShopContext) -> None:
    paid = await _paid(shop_context)
    shipped = await _shipped(shop_context)
    await fulfilment.update_tracking(shop_context, STAFF, shipped, "已揽收", False, NOW)
    before = await _outbox_ids(shop_context)
    with pytest.raises(InvalidTransition) as not_shipped:
        await fulfilment.update_tracking(shop_context, STAFF, paid, "已揽收", False, NOW)
    assert (not_shipped.value.status, not_shipped.value.action) == ("paid", "track")
    with pytest.raises(InvalidValue) as duplicate:
        await fulfilment.update_tracking(shop_context, STAFF, shipped, "已揽收", True, NOW)
    assert duplicate.value.reason == "duplicate"
    assert (await _order(shop_context, shipped)).status == "shipped"
    assert await _new_outbox(shop_context, before) == []


# --- confirm_receipt -----------------------------------------------------------------------


async def test_confirm_receipt_completes_the_order(shop_context: ShopContext) -> None:
    code = await _shipped(shop_context)
    before = await _outbox_ids(shop_context)

    order = await fulfilment.confirm_receipt(shop_context, CUSTOMER, code.lower(), NOW)

    assert (order.code, order.status, order.closed_at) == (code, "completed", NOW)
    last = (await _events(shop_context, code))[-1]
    assert (last.action, last.from_status, last.actor, last.actor_id) == (
        "completed",
        "shipped",
        "customer",
        CUSTOMER_ID,
    )
    async with shop_context.database.read() as session:
        shipment = (await session.execute(select(Shipment))).scalar_one()
    assert shipment.in_transit is False
    assert await _new_outbox(shop_context, before) == []  # the customer said it: no notice
    with pytest.raises(InvalidTransition):
        await fulfilment.confirm_receipt(shop_context, CUSTOMER, code, NOW)


@pytest.mark.parametrize("caller", [OTHER_CUSTOMER, STAFF], ids=["other_customer", "staff"])
async def test_only_the_buyer_confirms_receipt(shop_context: ShopContext, caller: Caller) -> None:
    code = await _shipped(shop_context)
    before_events = await _events(shop_context, code)
    with pytest.raises(OrderNotFound):
        await fulfilment.confirm_receipt(shop_context, caller, code, NOW)
    assert (await _order(shop_context, code)).status == "shipped"
    assert await _events(shop_context, code) == before_events


# --- announce ------------------------------------------------------------------------------


async def _enable(shop: ShopContext, *group_ids: int) -> None:
    async with shop.database.write() as session:
        for group_id in group_ids:
            await groups.set_group_enabled(session, shop.shop_id, group_id, True, OWNER_ID)


async def test_announce_queues_one_plain_text_row_per_enabled_group(
    shop_context: ShopContext,
) -> None:
    await _enable(shop_context, 700002, 700001, 700003)
    async with shop_context.database.write() as session:
        await groups.set_group_enabled(session, shop_context.shop_id, 700003, False, OWNER_ID)
    text = "[CQ:at,qq=all] 今晚上新"

    announced = await announcements.announce(shop_context, STAFF, f"  {text}  ", NOW)

    assert announced.groups == 2
    body = [{"type": "text", "data": {"text": f"【测试小店 公告】{text}"}}]
    assert [_sent(row) for row in await _new_outbox(shop_context, set())] == [
        (f"announce:{NOW.timestamp()}:{group_id}", "group", group_id, body)
        for group_id in (700001, 700002)
    ]


async def test_announce_refuses_a_too_long_text(shop_context: ShopContext) -> None:
    await _enable(shop_context, 700001)
    with pytest.raises(InvalidValue) as caught:
        await announcements.announce(shop_context, STAFF, "好" * (MAX_ANNOUNCEMENT + 1), NOW)
    assert (caught.value.reason, caught.value.limit) == ("too_long", MAX_ANNOUNCEMENT)
    assert await _new_outbox(shop_context, set()) == []


async def test_announce_without_enabled_groups_queues_nothing(shop_context: ShopContext) -> None:
    assert (await announcements.announce(shop_context, STAFF, "全场五折", NOW)).groups == 0
    assert await _new_outbox(shop_context, set()) == []


async def test_update_tracking_of_a_group_order_tells_the_group_state_and_city_only(
    shop_context: ShopContext,
) -> None:
    code = await _shipped(shop_context, group=GROUP_ID)
    before = await _outbox_ids(shop_context)
    text = "派送至 四川省成都市武侯区天府大道北段1700号，收件人 孙悟空，电话 13912345678"

    updated = await fulfilment.update_tracking(shop_context, STAFF, code, text, False, NOW)

    assert updated.event.text == text  # kept whole: the customer reads it in private
    assert [_sent(row) for row in await _new_outbox(shop_context, before)] == [
        (
            f"order:{code}:track:{updated.event.key}",
            "group",
            GROUP_ID,
            [
                {"type": "at", "data": {"qq": str(CUSTOMER_ID)}},
                {"type": "text", "data": {"text": f" 订单号：{code} 物流更新：派件 · 成都市"}},
            ],
        )
    ]
