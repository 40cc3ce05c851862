"""Tracking polls stop once a parcel is back at the shop (退签), polled from the local fake
kuaidi100 server or typed with /物流更新; a refused parcel (拒签) and one on its way back
(退回) are still travelling and are polled on. Real migrated databases; time is passed in."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from models.tables import Shipment, ShopOrder
from services import catalog, orders, shipping
from services.actors import Caller
from services.addresses import AddressSnapshot
from services.context import ShopContext
from services.orders import Actor
from services.staff import Role
from services.tracking import Kuaidi100Provider, normalise_carrier
from services.usecases import fulfilment
from tests.conftest import CUSTOMER_ID, OWNER_ID

from .fake_kuaidi100 import FakeKuaidi100

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=30)
OWNER = Caller(OWNER_ID, None, Role.OWNER)
SF = normalise_carrier("顺丰")
HOME = AddressSnapshot("张三", "13812345678", "浙江省杭州市西湖区文三路 100 号")
_names = itertools.count(1)


async def _shipped(shop: ShopContext, number: str) -> str:
    async with shop.database.write() as session:
        _, variant = await catalog.create_item(
            session, shop.shop_id, f"商品{next(_names)}", 5900, 10
        )
        order = await orders.place_order(
            session,
            shop.shop_id,
            CUSTOMER_ID,
            None,
            [(variant.id or 0, 1)],
            HOME,
            "",
            NOW - timedelta(hours=2),
            timedelta(minutes=30),
        )
        await orders.record_payment(
            session,
            order,
            "manual",
            f"manual:{order.code}",
            order.total_fen,
            Actor("owner", OWNER_ID),
            NOW - timedelta(hours=1, minutes=50),
        )
        code = order.code
    await fulfilment.ship_order(shop, OWNER, code, SF, number, NOW - timedelta(hours=1))
    return code


async def _poll(shop: ShopContext, provider: Kuaidi100Provider, now: datetime) -> list[str]:
    """The order codes polled at `now`."""
    alerts = shipping.StaffAlerts(shop.owners, ZoneInfo("Asia/Shanghai"))
    before = await _polled_at(shop)
    await shipping.poll_due(shop.database, provider, now, INTERVAL, alerts=alerts)
    after = await _polled_at(shop)
    return sorted(code for code, at in after.items() if at != before.get(code))


async def _polled_at(shop: ShopContext) -> dict[str, datetime | None]:
    async with shop.database.read() as session:
        rows = await session.execute(
            select(ShopOrder.code, Shipment.next_poll_at).join(
                ShopOrder, ShopOrder.id == Shipment.order_id
            )
        )
        return {code: at for code, at in rows.all()}


async def _shipment(shop: ShopContext, code: str) -> Shipment:
    async with shop.database.read() as session:
        rows = await session.execute(
            select(Shipment)
            .join(ShopOrder, ShopOrder.id == Shipment.order_id)
            .where(ShopOrder.code == code)
        )
        return rows.scalar_one()


async def _due_now(shop: ShopContext) -> None:
    async with shop.database.write() as session:
        await session.execute(update(Shipment).values(next_poll_at=NOW))


async def test_a_parcel_back_home_is_polled_no_more(
    shop_context: ShopContext, provider: Kuaidi100Provider, fake: FakeKuaidi100
) -> None:
    home = await _shipped(shop_context, "RETSIGNED1")
    refused = await _shipped(shop_context, "REJECTED01")
    returning = await _shipped(shop_context, "RETURNING1")
    await _due_now(shop_context)
    assert await _poll(shop_context, provider, NOW) == sorted([home, refused, returning])
    shipment = await _shipment(shop_context, home)
    assert (shipment.state, shipment.in_transit) == ("return_signed", False)
    for code, state in ((refused, "rejected"), (returning, "returning")):
        shipment = await _shipment(shop_context, code)
        assert (shipment.state, shipment.in_transit) == (state, True)

    asked = len(fake.requests)
    later = NOW + INTERVAL
    # The parcels still travelling are asked again; the one back home is not.
    assert await _poll(shop_context, provider, later) == sorted([refused, returning])
    assert len(fake.requests) == asked + 2
    assert all('"RETSIGNED1"' not in form["param"] for form in fake.requests[asked:])
    async with shop_context.database.read() as session:
        order = await orders.get_order(session, shop_context.shop_id, home)
    assert order.status == "shipped"  # staff settle it (/退款); tracking does not


async def test_a_typed_return_signed_event_ends_the_polls(
    shop_context: ShopContext, provider: Kuaidi100Provider
) -> None:
    code = await _shipped(shop_context, "TRANSIT001")
    await fulfilment.update_tracking(shop_context, OWNER, code, "已退签，包裹回到店里", False, NOW)
    shipment = await _shipment(shop_context, code)
    assert (shipment.state, shipment.in_transit) == ("return_signed", False)
    await _due_now(shop_context)
    assert await _poll(shop_context, provider, NOW) == []


async def test_a_typed_refusal_keeps_the_polls(
    shop_context: ShopContext, provider: Kuaidi100Provider
) -> None:
    code = await _shipped(shop_context, "TRANSIT001")
    await fulfilment.update_tracking(shop_context, OWNER, code, "收件人拒签", False, NOW)
    shipment = await _shipment(shop_context, code)
    assert (shipment.state, shipment.in_transit) == ("rejected", True)
    await _due_now(shop_context)
    assert await _poll(shop_context, provider, NOW) == [code]
