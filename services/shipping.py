"""Shipping: /发货, tracking events (entered by staff or polled from a provider), delivery,
/确认收货 and the auto-confirm clock. Every status change goes through orders._move, so
it writes an order_event like any other.

A shipment is polled while it is in transit: until it is signed for, its order leaves
`shipped`, or its parcel is back at the shop (退签). A refused parcel (拒签) or one on its
way back (退回) is still polled, to learn when it is home.

Staff hear privately, through the outbox, about what tracking alone would only log:
a parcel going back to the shop (退回, 退签, 拒签; once per shipment) and a provider
that keeps failing (once per failure kind and day, see `failure_alert_key`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import Database
from models.tables import OrderStatus, Shipment, ShopOrder, TrackingEventRow

from . import notices, orders, privacy
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
    SETTINGS_FAILURES,
    Carrier,
    FailureKind,
    TrackingConfigError,
    TrackingEvent,
    TrackingProvider,
    TrackingProviderError,
    TrackingRejected,
    TrackingResult,
    TrackingState,
    failure_kind,
)

S = OrderStatus
MAX_EVENT_TEXT = 100
FIELD_TRACKING_TEXT = "tracking_text"
# One network hiccup is no news: staff hear about an unreachable provider once a
# shipment's polls failed this many times in a row (with TRACKING_POLL_MINUTES=30, after
# about an hour). A failure of the settings (bad key, quota) is told at once.
FAILURES_BEFORE_ALERT = 3
_NOT_ARRIVING_VALUES = frozenset(state.value for state in NOT_ARRIVING)


@dataclass(frozen=True)
class StaffAlerts:
    """Who is told privately about parcels coming back and a failing provider (the
    owners, and every staff member of the order's shop), and the shop's time zone, whose
    date keys a failure alert."""

    owners: frozenset[int]
    zone: ZoneInfo


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
    # Order codes whose parcel is going back, and the FailureKind values worth an alert,
    # of this sweep; staff hear of each once (the outbox's dedupe keys), not every sweep.
    coming_back: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)


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


def manual_state(text: str, signed: bool) -> TrackingState | None:
    """The state of an event staff typed: signed when they said so; a parcel going back
    when the words say it (拒签, 退签, 退回…, the same words that name a typed event's
    state in groups); None otherwise (staff words about anything else leave the
    shipment's state as it was)."""
    if signed:
        return TrackingState.SIGNED
    value = privacy.courier_state(text)
    return TrackingState(value) if value in _NOT_ARRIVING_VALUES else None


async def add_manual_event(
    session: AsyncSession, order: ShopOrder, text: str, signed: bool, actor: Actor, now: datetime
) -> TrackingEventRow:
    """/物流更新: one event typed by staff; `signed` marks the parcel delivered, words of a
    parcel going back mark it so (it then never completes by itself). Tells nobody: the
    use case queues the customer's notice and the staff alert."""
    text = text.strip()
    if not text or len(text) > MAX_EVENT_TEXT:
        raise InvalidValue(FIELD_TRACKING_TEXT, "empty" if not text else "too_long", MAX_EVENT_TEXT)
    shipment = await shipment_of(session, order)
    if shipment is None or order.status != S.SHIPPED.value:
        raise InvalidTransition(order.status, "track")
    state = manual_state(text, signed)
    event = TrackingEvent(at=now, text=text, state=state)
    stored = await _store_events(session, shipment, [event], "manual", now)
    if not stored:  # the very same text at the very same instant: already recorded
        raise InvalidValue(FIELD_TRACKING_TEXT, "duplicate")
    row = stored[0]
    if state is not None:
        shipment.state = state.value
    _stop_when_home(shipment, state)
    if signed:
        _mark_delivered(session, order, shipment, actor, now, now)
    return row


def going_back(state: str) -> bool:
    """Whether a tracking state (a TrackingState value) says the parcel goes back."""
    return state in _NOT_ARRIVING_VALUES


async def tell_parcel_back(
    session: AsyncSession,
    order: ShopOrder,
    shipment: Shipment,
    state: str,
    text: str,
    owners: frozenset[int],
    now: datetime,
    *,
    except_user: int | None = None,
) -> None:
    """Staff hear privately that a shipment's parcel is going back: order code, carrier,
    number, the event's text in full (a private message may carry what a group must
    not). Each person at most once per shipment, whoever reports it first (the poll or
    /物流更新); `except_user` typed it, so only the provider's word may reach them."""
    await notices.to_staff(
        session,
        order.shop_id,
        owners,
        notices.parcel_back_for_staff(order, shipment.carrier_name, shipment.number, state, text),
        f"parcel-back:{shipment.id}",
        now,
        except_user=except_user,
    )


def failure_alert_key(kind: FailureKind, now: datetime, zone: ZoneInfo) -> str:
    """The dedupe key of a provider failure alert: once per kind and shop day. A failure
    that lasts is told again the next day (the owner may have missed it), and one that
    comes back after the provider recovered is told again from the next day on; within
    one day staff hear of each kind once, however often it recurs."""
    return f"tracking-fail:{kind.value}:{now.astimezone(zone).date().isoformat()}"


async def tell_provider_failure(
    session: AsyncSession,
    shop_id: int,
    alerts: StaffAlerts,
    kind: FailureKind,
    body: str,
    now: datetime,
) -> None:
    await notices.to_staff(
        session, shop_id, alerts.owners, body, failure_alert_key(kind, now, alerts.zone), now
    )


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
    alerts: StaffAlerts | None = None,
) -> PollReport:
    """Asks the provider about shipments in transit that are due, stores new events once,
    pushes each new state to the customer, and moves signed parcels to delivered. With
    `alerts`, staff hear of parcels going back and of failures worth their attention
    (None: nobody is told, e.g. the benchmark). A failure of the provider's settings ends
    the sweep: every other query would fail alike, so the rest wait an interval."""
    report = PollReport()
    if provider.name == "manual":
        return report
    sweep = _Sweep(provider.name, now, interval, alerts, report)
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
    for index, (shipment, order) in enumerate(due):
        report.polled += 1
        result: TrackingResult | None = None
        failure: TrackingProviderError | None = None
        carrier = Carrier(shipment.carrier_name, shipment.carrier_code)
        try:
            # Outside any transaction: the network must not hold the write lock.
            result = await provider.query(carrier, shipment.number, order.receiver_phone)
        except TrackingProviderError as error:
            failure = error
        async with database.write() as session:
            await _record_poll(session, sweep, shipment.id, order.id, result, failure)
        if failure is not None and failure_kind(failure) in SETTINGS_FAILURES:
            rest = [later.id for later, _ in due[index + 1 :]]
            if rest:
                async with database.write() as session:
                    await session.execute(
                        update(Shipment)
                        .where(Shipment.id.in_(rest))  # type: ignore[union-attr]
                        .values(next_poll_at=now + interval)
                    )
            break
    return report


@dataclass(frozen=True)
class _Sweep:
    """What every shipment of one poll_due run shares."""

    source: str  # the provider's name, stored with each event
    now: datetime
    interval: timedelta
    alerts: StaffAlerts | None
    report: PollReport


async def _record_poll(
    session: AsyncSession,
    sweep: _Sweep,
    shipment_id: int | None,
    order_id: int | None,
    result: TrackingResult | None,
    failure: TrackingProviderError | None,
) -> None:
    """One shipment's answer (or failure), in the transaction that stores it."""
    now, alerts, report = sweep.now, sweep.alerts, sweep.report
    shipment = await session.get(Shipment, shipment_id)
    order = await session.get(ShopOrder, order_id)
    if shipment is None or order is None or not shipment.in_transit:
        return
    if order.status != S.SHIPPED.value:
        # Refunded, or completed by hand, meanwhile: the customer wants no more pushes
        # about it, and the shop no more paid queries.
        shipment.in_transit = False
        return
    shipment.next_poll_at = now + sweep.interval
    if failure is not None:
        await _record_failure(session, sweep, order, shipment, failure)
        return
    shipment.poll_failures = 0  # counts failures in a row: an answer ends the run
    if result is None:
        return
    new_rows = await _store_events(session, shipment, result.events, sweep.source, now)
    report.new_events += len(new_rows)
    previous = shipment.state
    shipment.state = result.state.value
    if result.signed:
        # Still shipped here: any other status was turned away above.
        signed_at = result.events[-1].at if result.events else now
        await _deliver(session, order, shipment, Actor.system(), now, signed_at)
        report.delivered.append(order.code)
        return
    if new_rows and result.state.value != previous:
        latest = new_rows[-1]
        await notices.to_customer(
            session,
            order,
            notices.tracking_update(order, latest.text, result.state.value),
            f"track:{result.state.value}:{latest.key}",
            now,
        )
    if going_back(result.state.value) and alerts is not None:
        # The text of the latest event that says so (the latest event otherwise).
        said = [event for event in result.events if event.state in NOT_ARRIVING]
        text = (said or result.events)[-1].text
        await tell_parcel_back(
            session, order, shipment, result.state.value, text, alerts.owners, now
        )
        report.coming_back.append(order.code)
    _stop_when_home(shipment, result.state)


def _stop_when_home(shipment: Shipment, state: TrackingState | None) -> None:
    """A parcel signed for by the shop (退签) is home: nothing more will happen to it, so
    it is polled no more (each poll is a paid query). A refused one (拒签) or one on its
    way back (退回) is still travelling and is polled until it is home; staff settle the
    order (/退款) whatever its tracking says, and that too ends the polls."""
    if state is TrackingState.RETURN_SIGNED:
        shipment.in_transit = False


async def _record_failure(
    session: AsyncSession,
    sweep: _Sweep,
    order: ShopOrder,
    shipment: Shipment,
    failure: TrackingProviderError,
) -> None:
    """Counts the failure on the shipment (a rejected one is polled no more) and tells
    staff when it is worth it: a rejection once per shipment, a settings failure at
    once, an unreachable provider after FAILURES_BEFORE_ALERT failures in a row."""
    now, alerts, report = sweep.now, sweep.alerts, sweep.report
    kind = failure_kind(failure)
    shipment.poll_failures += 1
    report.failures.append(order.code)
    if isinstance(failure, TrackingRejected):
        shipment.last_error = f"rejected {failure}"[:300]
        shipment.in_transit = False
    else:
        shipment.last_error = repr(failure)[:300]
    if alerts is None:
        return
    if isinstance(failure, TrackingRejected):
        body = notices.tracking_rejected_for_staff(
            order, shipment.carrier_name, shipment.number, failure.code, failure.message
        )
        await notices.to_staff(
            session,
            order.shop_id,
            alerts.owners,
            body,
            f"tracking-fail:rejected:{shipment.id}",
            now,
        )
    elif isinstance(failure, TrackingConfigError):  # kind is one of SETTINGS_FAILURES
        body = notices.tracking_settings_failed_for_staff(kind, failure.message)
        await tell_provider_failure(session, order.shop_id, alerts, kind, body, now)
    elif shipment.poll_failures >= FAILURES_BEFORE_ALERT:
        body = notices.tracking_unavailable_for_staff(shipment.poll_failures)
        await tell_provider_failure(session, order.shop_id, alerts, kind, body, now)
    else:
        return
    report.alerts.append(kind.value)


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
