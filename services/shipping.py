"""Shipping: /发货, tracking events (entered by staff or polled from a provider), delivery,
/确认收货 and the auto-confirm clock. Every status change goes through orders._move, so
it writes an order_event like any other."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import Database
from models.tables import OrderStatus, Shipment, ShopOrder, TrackingEventRow

from . import notices, orders
from .errors import (
    InvalidTransition,
    InvalidValue,
    NotForVirtualOrder,
    ShopError,
    VirtualOrderAction,
)
from .orders import Actor
from .tracking import (
    NOT_ARRIVING,
    Carrier,
    TrackingConfigError,
    TrackingEvent,
    TrackingProvider,
    TrackingRejected,
    TrackingState,
    TrackingUnavailable,
)

S = OrderStatus
MAX_EVENT_TEXT = 100
FIELD_TRACKING_TEXT = "tracking_text"


@dataclass(frozen=True)
class TrackingView:
    shipment: Shipment
    events: list[TrackingEventRow]


@dataclass
class PollReport:
    polled: int = 0
    new_events: int = 0
    delivered: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def shipment_of(session: AsyncSession, order: ShopOrder) -> Shipment | None:
    return (
        await session.execute(select(Shipment).where(Shipment.order_id == order.id))
    ).scalar_one_or_none()


async def tracking_view(session: AsyncSession, order: ShopOrder) -> TrackingView | None:
    shipment = await shipment_of(session, order)
    if shipment is None:
        return None
    rows = await session.execute(
        select(TrackingEventRow)
        .where(TrackingEventRow.shipment_id == shipment.id)
        .order_by(TrackingEventRow.at, TrackingEventRow.id)  # type: ignore[arg-type]
    )
    return TrackingView(shipment, list(rows.scalars()))


async def ship(
    session: AsyncSession,
    order: ShopOrder,
    carrier: Carrier,
    number: str,
    actor: Actor,
    now: datetime,
) -> Shipment:
    """paid → shipped; tracking starts (the first poll is due at once). Tells nobody: the
    use case (services.usecases.fulfilment) queues the customer's notice."""
    if order.virtual:  # card keys: handed out with the payment, nothing to ship
        raise NotForVirtualOrder(order.code, VirtualOrderAction.SHIP)
    if order.status != S.PAID.value:
        raise InvalidTransition(order.status, "ship")
    orders.move(session, order, S.SHIPPED, actor, "shipped", now, detail=f"{carrier.name} {number}")
    shipment = Shipment(
        order_id=order.id or 0,
        carrier_code=carrier.code,
        carrier_name=carrier.name,
        number=number,
        shipped_at=now,
        next_poll_at=now,
    )
    session.add(shipment)
    await session.flush()
    return shipment


async def _store_events(
    session: AsyncSession,
    shipment: Shipment,
    events: list[TrackingEvent],
    source: str,
    now: datetime,
) -> list[TrackingEventRow]:
    """Stores the events not seen before (by key); returns the new ones, oldest first."""
    known = set(
        (
            await session.execute(
                select(TrackingEventRow.key).where(TrackingEventRow.shipment_id == shipment.id)
            )
        ).scalars()
    )
    new_rows = []
    for event in sorted(events, key=lambda e: e.at):
        key = event.key[:120]
        if key in known:
            continue
        known.add(key)
        row = TrackingEventRow(
            shipment_id=shipment.id or 0,
            key=key,
            at=event.at,
            text=event.text[:300],
            state=event.state.value if event.state else "",
            source=source,
            recorded_at=now,
        )
        session.add(row)
        new_rows.append(row)
    await session.flush()
    return new_rows


def _mark_delivered(
    session: AsyncSession,
    order: ShopOrder,
    shipment: Shipment,
    actor: Actor,
    now: datetime,
    at: datetime,
) -> None:
    orders.move(session, order, S.DELIVERED, actor, "delivered", now)
    shipment.delivered_at = at
    shipment.in_transit = False


async def _deliver(
    session: AsyncSession,
    order: ShopOrder,
    shipment: Shipment,
    actor: Actor,
    now: datetime,
    at: datetime,
) -> None:
    """The poll clock's delivery: marks it and tells the customer."""
    _mark_delivered(session, order, shipment, actor, now, at)
    await notices.to_customer(session, order, notices.delivered(order), "delivered", now)


async def add_manual_event(
    session: AsyncSession, order: ShopOrder, text: str, signed: bool, actor: Actor, now: datetime
) -> TrackingEventRow:
    """/物流更新: one event typed by staff; `signed` marks the parcel delivered. Tells
    nobody: the use case queues the customer's notice."""
    text = text.strip()
    if not text or len(text) > MAX_EVENT_TEXT:
        raise InvalidValue(FIELD_TRACKING_TEXT, "empty" if not text else "too_long", MAX_EVENT_TEXT)
    shipment = await shipment_of(session, order)
    if shipment is None or order.status != S.SHIPPED.value:
        raise InvalidTransition(order.status, "track")
    state = TrackingState.SIGNED if signed else None
    event = TrackingEvent(at=now, text=text, state=state)
    stored = await _store_events(session, shipment, [event], "manual", now)
    if not stored:  # the very same text at the very same instant: already recorded
        raise InvalidValue(FIELD_TRACKING_TEXT, "duplicate")
    row = stored[0]
    if state is not None:
        shipment.state = state.value
    if signed:
        _mark_delivered(session, order, shipment, actor, now, now)
    return row


async def confirm_received(
    session: AsyncSession,
    order: ShopOrder,
    actor: Actor,
    now: datetime,
    *,
    action: str = "completed",
) -> None:
    """Customer's /确认收货 (shipped or delivered → completed)."""
    orders.move(session, order, S.COMPLETED, actor, action, now)
    shipment = await shipment_of(session, order)
    if shipment is not None and shipment.in_transit:
        shipment.in_transit = False
    await session.flush()


# --- clocks -------------------------------------------------------------------------


async def poll_due(
    database: Database,
    provider: TrackingProvider,
    now: datetime,
    interval: timedelta,
    *,
    batch: int = 50,
) -> PollReport:
    """Asks the provider about shipments in transit that are due, stores new events once,
    pushes each new state to the customer, and moves signed parcels to delivered."""
    report = PollReport()
    if provider.name == "manual":
        return report
    async with database.read() as session:
        due = list(
            (
                await session.execute(
                    select(Shipment, ShopOrder)
                    .join(ShopOrder, ShopOrder.id == Shipment.order_id)
                    .where(Shipment.in_transit.is_(True), Shipment.next_poll_at <= now)  # type: ignore[attr-defined]
                    .order_by(Shipment.next_poll_at)  # type: ignore[arg-type]
                    .limit(batch)
                )
            ).all()
        )
    for shipment, order in due:
        report.polled += 1
        result = None
        error: str = ""
        stop = False
        carrier = Carrier(shipment.carrier_name, shipment.carrier_code)
        try:
            # Outside any transaction: the network must not hold the write lock.
            result = await provider.query(carrier, shipment.number, order.receiver_phone)
        except TrackingRejected as rejected:
            error, stop = f"rejected {rejected}", True
        except (TrackingUnavailable, TrackingConfigError) as failure:
            error = repr(failure)
        async with database.write() as session:
            fresh_shipment = await session.get(Shipment, shipment.id)
            fresh_order = await session.get(ShopOrder, order.id)
            if fresh_shipment is None or fresh_order is None or not fresh_shipment.in_transit:
                continue
            if fresh_order.status != S.SHIPPED.value:
                # Refunded, or completed by hand, meanwhile: the customer wants no more
                # pushes about it, and the shop no more paid queries.
                fresh_shipment.in_transit = False
                continue
            fresh_shipment.next_poll_at = now + interval
            if error:
                fresh_shipment.poll_failures += 1
                fresh_shipment.last_error = error[:300]
                fresh_shipment.in_transit = not stop
                report.failures.append(fresh_order.code)
                continue
            if result is None:
                continue
            new_rows = await _store_events(
                session, fresh_shipment, result.events, provider.name, now
            )
            report.new_events += len(new_rows)
            previous = fresh_shipment.state
            fresh_shipment.state = result.state.value
            if result.signed:
                # Still shipped here: any other status was turned away above.
                signed_at = result.events[-1].at if result.events else now
                await _deliver(session, fresh_order, fresh_shipment, Actor.system(), now, signed_at)
                report.delivered.append(fresh_order.code)
            elif new_rows and result.state.value != previous:
                latest = new_rows[-1]
                await notices.to_customer(
                    session,
                    fresh_order,
                    notices.tracking_update(fresh_order, latest.text, result.state.value),
                    f"track:{result.state.value}:{latest.key}",
                    now,
                )
    return report


async def auto_confirm_due(
    database: Database, now: datetime, after_delivery: timedelta, after_shipping: timedelta
) -> list[str]:
    """delivered for `after_delivery` → completed; shipped for `after_shipping` with no
    delivery ever reported → completed. Returns the order codes."""
    async with database.read() as session:
        delivered = (
            (
                await session.execute(
                    select(ShopOrder.id)
                    .join(Shipment, Shipment.order_id == ShopOrder.id)
                    .where(
                        ShopOrder.status == S.DELIVERED.value,
                        Shipment.delivered_at <= now - after_delivery,
                    )  # type: ignore[operator]
                )
            )
            .scalars()
            .all()
        )
        shipped = (
            (
                await session.execute(
                    select(ShopOrder.id)
                    .join(Shipment, Shipment.order_id == ShopOrder.id)
                    .where(
                        ShopOrder.status == S.SHIPPED.value,
                        Shipment.shipped_at <= now - after_shipping,
                        # A parcel on its way back never completes by itself.
                        Shipment.state.not_in([state.value for state in NOT_ARRIVING]),  # type: ignore[attr-defined]
                    )
                )
            )
            .scalars()
            .all()
        )
    done = []
    for order_id in [*delivered, *shipped]:
        try:
            async with database.write() as session:
                order = await session.get(ShopOrder, order_id)
                if order is None or order.status not in (S.DELIVERED.value, S.SHIPPED.value):
                    continue
                await confirm_received(session, order, Actor.system(), now, action="auto_completed")
                await notices.to_customer(
                    session, order, notices.auto_completed(order), "completed", now
                )
                done.append(order.code)
        except ShopError:
            continue
    return done
