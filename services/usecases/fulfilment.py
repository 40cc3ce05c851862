"""Fulfilment: staff ship a paid order (/发货) and add tracking events by hand
(/物流更新, "签收" delivers it); anyone reads an order's tracking (/物流), customers only
their own; the customer confirms receipt (/确认收货)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.tables import Shipment, ShopOrder, TrackingEventRow
from models.types import utcnow
from services import notices, orders, shipping
from services.actors import Caller
from services.context import ShopContext
from services.shipping import TrackingView
from services.tracking import Carrier


@dataclass(frozen=True)
class Shipped:
    order: ShopOrder
    shipment: Shipment


@dataclass(frozen=True)
class Tracking:
    order: ShopOrder
    view: TrackingView | None  # None: not shipped yet


@dataclass(frozen=True)
class TrackingUpdated:
    order: ShopOrder
    event: TrackingEventRow
    signed: bool
    coming_back: bool = False  # the words say the parcel goes back: the other staff were told


async def ship_order(
    shop: ShopContext,
    caller: Caller,
    code: str,
    carrier: Carrier,
    number: str,
    now: datetime | None = None,
) -> Shipped:
    """paid → shipped, tracking starts, and the customer hears the carrier and number."""
    now = now or utcnow()
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, code)
        shipment = await shipping.ship(session, order, carrier, number, caller.actor, now)
        await notices.to_customer(
            session, order, notices.shipped(order, carrier.name, number), "shipped", now
        )
    return Shipped(order, shipment)


async def view_tracking(shop: ShopContext, caller: Caller, code: str) -> Tracking:
    """The order's carrier, number and tracking events; a customer asking about someone
    else's order gets OrderNotFound, exactly as for a code that does not exist."""
    async with shop.database.read() as session:
        order = await orders.get_order(session, shop.shop_id, code, customer_id=caller.own_only)
        view = await shipping.tracking_view(session, order)
    return Tracking(order, view)


async def update_tracking(
    shop: ShopContext,
    caller: Caller,
    code: str,
    text: str,
    signed: bool,
    now: datetime | None = None,
) -> TrackingUpdated:
    """One tracking event typed by staff; the customer hears it, or, when `signed`, that
    the parcel was delivered (the order moves to delivered). Words of a parcel going back
    (拒签, 退回…) mark the shipment so, and the other staff and owners hear it privately,
    once per shipment."""
    now = now or utcnow()
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, code)
        event = await shipping.add_manual_event(session, order, text, signed, caller.actor, now)
        if signed:
            await notices.to_customer(session, order, notices.delivered(order), "delivered", now)
        else:
            await notices.to_customer(
                session,
                order,
                notices.tracking_update(order, event.text, event.state or None),
                f"track:{event.key}",
                now,
            )
        # add_manual_event found the shipment (it refuses an order without one).
        back = (
            await shipping.shipment_of(session, order) if shipping.going_back(event.state) else None
        )
        if back is not None:
            await shipping.tell_parcel_back(
                session,
                order,
                back,
                event.state,
                event.text,
                shop.owners,
                now,
                except_user=caller.user_id,
            )
    return TrackingUpdated(order, event, signed, coming_back=back is not None)


async def confirm_receipt(
    shop: ShopContext, caller: Caller, code: str, now: datetime | None = None
) -> ShopOrder:
    """shipped or delivered → completed. Only ever the caller's own order, staff included:
    confirming receipt is the buyer's word, nobody else's."""
    now = now or utcnow()
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, code, customer_id=caller.user_id)
        await shipping.confirm_received(session, order, caller.actor, now)
    return order
