"""services.aftersales on a real migrated SQLite database: the ticket state machine,
eligibility and windows, refunds through orders.refund, events and messages, who sees
which ticket, the queues, and the ticket clocks (reminders, escalation, expired returns).

Every `now` is a fixed, controlled value; nothing sleeps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from models.db import Database
from models.tables import (
    DEFAULT_SHOP_ID,
    OrderEvent,
    OrderStatus,
    OutboxMessage,
    Refund,
    ShopOrder,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketMessage,
    TicketStatus,
    Variant,
)
from services import aftersales, catalog, notices, orders, staff
from services.addresses import AddressSnapshot
from services.aftersales import TERMINAL, TICKET_TRANSITIONS, TicketClockSettings, Windows
from services.errors import (
    InvalidTicketTransition,
    InvalidValue,
    RefundTooLarge,
    TicketNotAllowed,
    TicketNotFound,
)
from services.orders import Actor

SHOP = DEFAULT_SHOP_ID
OWNER_ID = 10001
STAFF_ID = 20002
CUSTOMER_ID = 30003
OTHER_CUSTOMER_ID = 30004
GROUP_ID = 555000
OWNERS = frozenset({OWNER_ID})
PRICE = 5900
TIMEOUT = timedelta(minutes=30)
WINDOWS = Windows(aftersale=timedelta(days=7), exchange=timedelta(days=15))
CLOCKS = TicketClockSettings(remind_after=timedelta(hours=24), escalate_after=timedelta(hours=48))
HOME = AddressSnapshot("张三", "13812345678", "浙江省杭州市西湖区文三路 100 号")

CUSTOMER = Actor("customer", CUSTOMER_ID)
OTHER = Actor("customer", OTHER_CUSTOMER_ID)
STAFF = Actor("staff", STAFF_ID)
OWNER = Actor("owner", OWNER_ID)

T = TicketStatus
K = TicketKind
S = OrderStatus
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # all times are offsets from this
ALL_KINDS = (K.REFUND, K.RETURN, K.EXCHANGE, K.COMPLAINT)


# --- helpers -----------------------------------------------------------------------------


async def _variant(
    db: Database, *, price: int = PRICE, stock: int = 10, no_reason: bool = True
) -> int:
    async with db.write() as s:
        item, variant = await catalog.create_item(s, SHOP, "陶瓷杯", price, stock)
        assert item.id is not None and variant.id is not None
        if not no_reason:
            await catalog.set_no_reason_return(s, SHOP, item.id, False)
        return variant.id


async def _order(
    db: Database,
    variant_id: int | None = None,
    *,
    status: OrderStatus = S.PAID,
    closed_at: datetime | None = None,
    user: int = CUSTOMER_ID,
    group: int | None = None,
    quantity: int = 1,
    now: datetime = T0 - timedelta(days=1),
) -> str:
    """A placed order, paid unless `status` is pending; other statuses are set by hand
    (the shipping/confirmation services are not what is tested here)."""
    if variant_id is None:
        variant_id = await _variant(db)
    async with db.write() as s:
        order = await orders.place_order(
            s, SHOP, user, group, [(variant_id, quantity)], HOME, "", now, TIMEOUT
        )
        if status is not S.PENDING_PAYMENT:
            assert await orders.record_payment(
                s, order, "manual", f"ref-{order.code}", order.total_fen, STAFF, now
            )
        if status not in (S.PENDING_PAYMENT, S.PAID):
            order.status = status.value
            if status in (S.COMPLETED, S.CANCELLED, S.REFUNDED):
                order.closed_at = closed_at or now
        return order.code


async def _get_order(db: Database, code: str) -> ShopOrder:
    async with db.read() as s:
        return await orders.get_order(s, SHOP, code)


async def _open(
    db: Database,
    order_code: str,
    kind: TicketKind,
    *,
    now: datetime = T0,
    reason: str = "杯子有裂纹",
    images: list[str] | None = None,
    group: int | None = None,
    actor: Actor = CUSTOMER,
) -> str:
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, order_code)
        ticket = await aftersales.open_ticket(
            s, order, kind, reason, images or [], actor, group, WINDOWS, now
        )
        return ticket.code


async def _ticket(db: Database, code: str) -> Ticket:
    async with db.read() as s:
        return await aftersales.get_ticket(s, SHOP, code)


async def _events(db: Database, code: str) -> list[TicketEvent]:
    async with db.read() as s:
        ticket = await aftersales.get_ticket(s, SHOP, code)
        return (await aftersales.ticket_detail(s, ticket)).events


async def _messages(db: Database, code: str) -> list[TicketMessage]:
    async with db.read() as s:
        ticket = await aftersales.get_ticket(s, SHOP, code)
        return (await aftersales.ticket_detail(s, ticket)).messages


async def _refunds(db: Database, order_code: str) -> list[Refund]:
    order = await _get_order(db, order_code)
    async with db.read() as s:
        rows = await s.execute(
            select(Refund).where(Refund.order_id == order.id).order_by(Refund.id)
        )
        return list(rows.scalars())


async def _order_events(db: Database, order_code: str) -> list[OrderEvent]:
    async with db.read() as s:
        order = await orders.get_order(s, SHOP, order_code)
        return (await orders.order_detail(s, order)).events


async def _outbox(db: Database) -> list[OutboxMessage]:
    async with db.read() as s:
        return list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def _count(db: Database, table) -> int:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar_one())


def _segments(message: OutboxMessage) -> list[dict]:
    return json.loads(message.segments)


def _text(message: OutboxMessage) -> str:
    return "".join(seg["data"].get("text", "") for seg in _segments(message))


async def _approve(
    db: Database, code: str, amount: int | None = None, *, now: datetime = T0 + timedelta(hours=1)
) -> tuple[int, bool]:
    async with db.write() as s:
        ticket = await aftersales.get_ticket(s, SHOP, code)
        return await aftersales.approve(s, ticket, amount, STAFF, "同意", now)


async def _reject(db: Database, code: str, *, now: datetime = T0 + timedelta(hours=1)) -> None:
    async with db.write() as s:
        ticket = await aftersales.get_ticket(s, SHOP, code)
        await aftersales.reject(s, ticket, STAFF, "不符合售后条件", now)


async def _withdraw(db: Database, code: str, *, now: datetime = T0 + timedelta(hours=1)) -> None:
    async with db.write() as s:
        ticket = await aftersales.get_ticket(s, SHOP, code)
        await aftersales.withdraw(s, ticket, CUSTOMER, now)


async def _ship_back(db: Database, code: str, *, now: datetime = T0 + timedelta(days=1)) -> None:
    async with db.write() as s:
        ticket = await aftersales.get_ticket(s, SHOP, code)
        await aftersales.return_shipped(s, ticket, "中通", "ZT123456789", CUSTOMER, now)


async def _complete(
    db: Database, code: str, *, now: datetime = T0 + timedelta(days=3)
) -> tuple[int, bool]:
    async with db.write() as s:
        ticket = await aftersales.get_ticket(s, SHOP, code)
        return await aftersales.complete(s, ticket, STAFF, now)


ACTIONS = {
    "approve": _approve,
    "reject": _reject,
    "withdraw": _withdraw,
    "return_shipped": _ship_back,
    "complete": _complete,
}


async def _ticket_in(db: Database, status: TicketStatus, kind: TicketKind) -> tuple[str, str]:
    """A ticket of `kind` brought to `status` through the service functions; returns
    (ticket code, order code). Refunds are partial so money is left on the order."""
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, kind)
    if status is T.OPEN:
        pass
    elif status is T.REJECTED:
        await _reject(db, code)
    elif status is T.WITHDRAWN:
        await _withdraw(db, code)
    elif status is T.APPROVED:
        assert kind is K.COMPLAINT
        await _approve(db, code)
    elif status is T.AWAITING_RETURN:
        assert kind in (K.RETURN, K.EXCHANGE)
        await _approve(db, code, 1000 if kind is K.RETURN else None)
    elif status is T.RETURN_SHIPPED:
        await _approve(db, code, 1000 if kind is K.RETURN else None)
        await _ship_back(db, code)
    elif status is T.REFUNDED:
        if kind is K.REFUND:
            await _approve(db, code, 1000)
        else:
            assert kind is K.RETURN
            await _approve(db, code, 1000)
            await _complete(db, code)
    elif status is T.CLOSED:
        if kind is K.COMPLAINT:
            await _approve(db, code)
        else:
            assert kind is K.EXCHANGE
            await _approve(db, code)
        await _complete(db, code)
    assert (await _ticket(db, code)).status == status.value
    return code, order_code


# --- the transition table ----------------------------------------------------------------


def test_transition_table_is_the_designed_one() -> None:
    assert TICKET_TRANSITIONS == {
        T.OPEN: {T.APPROVED, T.REJECTED, T.WITHDRAWN},
        T.APPROVED: {T.AWAITING_RETURN, T.REFUNDED, T.CLOSED},
        T.AWAITING_RETURN: {T.RETURN_SHIPPED, T.REFUNDED, T.CLOSED},
        T.RETURN_SHIPPED: {T.REFUNDED, T.CLOSED},
        T.REFUNDED: set(),
        T.CLOSED: set(),
        T.REJECTED: set(),
        T.WITHDRAWN: set(),
    }
    assert set(TICKET_TRANSITIONS) == set(TicketStatus)
    assert {T.REFUNDED, T.CLOSED, T.REJECTED, T.WITHDRAWN} == TERMINAL
    assert all(not TICKET_TRANSITIONS[s] for s in TERMINAL)


class _Sink:
    def __init__(self) -> None:
        self.added: list[object] = []

    def add(self, obj: object) -> None:
        self.added.append(obj)


@pytest.mark.parametrize("source", list(TicketStatus))
@pytest.mark.parametrize("target", list(TicketStatus))
def test_every_status_pair_is_checked_by_the_table(
    source: TicketStatus, target: TicketStatus
) -> None:
    """The gate every service change goes through: allowed pairs move and write one event,
    every other pair raises InvalidTicketTransition and changes nothing."""
    ticket = Ticket(
        id=7,
        code="ABCDEFGHJK",
        shop_id=SHOP,
        order_id=1,
        user_id=CUSTOMER_ID,
        kind=K.RETURN.value,
        status=source.value,
        reason="r",
        created_at=T0,
        updated_at=T0,
    )
    sink = _Sink()
    at = T0 + timedelta(hours=5)
    if target in TICKET_TRANSITIONS[source]:
        aftersales._move(sink, ticket, target, STAFF, "act", at, "why")  # type: ignore[arg-type]
        assert ticket.status == target.value and ticket.updated_at == at
        assert ticket.closed_at == (at if target in TERMINAL else None)
        [event] = sink.added
        assert isinstance(event, TicketEvent)
        assert (event.ticket_id, event.from_status, event.to_status) == (
            7,
            source.value,
            target.value,
        )
        assert (event.actor, event.actor_id, event.action, event.reason, event.at) == (
            "staff",
            STAFF_ID,
            "act",
            "why",
            at,
        )
    else:
        with pytest.raises(InvalidTicketTransition) as caught:
            aftersales._move(sink, ticket, target, STAFF, "act", at)  # type: ignore[arg-type]
        assert (caught.value.status, caught.value.action) == (source.value, "act")
        assert (
            ticket.status == source.value and ticket.updated_at == T0 and ticket.closed_at is None
        )
        assert sink.added == []


# (from, to, kind, starting status, action, final status): every allowed pair, done
# through the public functions.
ALLOWED = [
    (T.OPEN, T.APPROVED, K.COMPLAINT, T.OPEN, "approve", T.APPROVED),
    (T.OPEN, T.REJECTED, K.REFUND, T.OPEN, "reject", T.REJECTED),
    (T.OPEN, T.WITHDRAWN, K.RETURN, T.OPEN, "withdraw", T.WITHDRAWN),
    (T.APPROVED, T.AWAITING_RETURN, K.RETURN, T.OPEN, "approve", T.AWAITING_RETURN),
    (T.APPROVED, T.REFUNDED, K.REFUND, T.OPEN, "approve", T.REFUNDED),
    (T.APPROVED, T.CLOSED, K.COMPLAINT, T.APPROVED, "complete", T.CLOSED),
    (
        T.AWAITING_RETURN,
        T.RETURN_SHIPPED,
        K.RETURN,
        T.AWAITING_RETURN,
        "return_shipped",
        T.RETURN_SHIPPED,
    ),
    (T.AWAITING_RETURN, T.REFUNDED, K.RETURN, T.AWAITING_RETURN, "complete", T.REFUNDED),
    (T.AWAITING_RETURN, T.CLOSED, K.EXCHANGE, T.AWAITING_RETURN, "complete", T.CLOSED),
    (T.RETURN_SHIPPED, T.REFUNDED, K.RETURN, T.RETURN_SHIPPED, "complete", T.REFUNDED),
    (T.RETURN_SHIPPED, T.CLOSED, K.EXCHANGE, T.RETURN_SHIPPED, "complete", T.CLOSED),
]


def test_allowed_cases_cover_every_pair_of_the_table() -> None:
    pairs = {(a, b) for a, b, *_ in ALLOWED}
    assert pairs == {(a, b) for a, targets in TICKET_TRANSITIONS.items() for b in targets}


@pytest.mark.parametrize(
    ("source", "target", "kind", "start", "action", "final"),
    ALLOWED,
    ids=[f"{a.value}->{b.value}-{k.value}" for a, b, k, *_ in ALLOWED],
)
async def test_allowed_transition_through_the_service(
    db: Database,
    source: TicketStatus,
    target: TicketStatus,
    kind: TicketKind,
    start: TicketStatus,
    action: str,
    final: TicketStatus,
) -> None:
    code, _ = await _ticket_in(db, start, kind)
    before = len(await _events(db, code))
    await ACTIONS[action](db, code)
    ticket = await _ticket(db, code)
    assert ticket.status == final.value
    new = [(e.from_status, e.to_status) for e in (await _events(db, code))[before:]]
    assert (source.value, target.value) in new
    assert (ticket.closed_at is not None) == (final in TERMINAL)


# (status, kind, action) that must be refused with InvalidTicketTransition.
REFUSED = [
    *[(T.OPEN, k, a) for k in ALL_KINDS for a in ("return_shipped", "complete")],
    *[(T.APPROVED, K.COMPLAINT, a) for a in ("approve", "reject", "withdraw", "return_shipped")],
    *[
        (T.AWAITING_RETURN, k, a)
        for k in (K.RETURN, K.EXCHANGE)
        for a in ("approve", "reject", "withdraw")
    ],
    *[
        (T.RETURN_SHIPPED, k, a)
        for k in (K.RETURN, K.EXCHANGE)
        for a in ("approve", "reject", "withdraw", "return_shipped")
    ],
    *[(T.REFUNDED, k, a) for k in (K.REFUND, K.RETURN) for a in ACTIONS],
    *[(T.CLOSED, k, a) for k in (K.COMPLAINT, K.EXCHANGE) for a in ACTIONS],
    *[(T.REJECTED, k, a) for k in ALL_KINDS for a in ACTIONS],
    *[(T.WITHDRAWN, k, a) for k in ALL_KINDS for a in ACTIONS],
]


@pytest.mark.parametrize(
    ("status", "kind", "action"), REFUSED, ids=[f"{a}-{s.value}-{k.value}" for s, k, a in REFUSED]
)
async def test_refused_transition_raises_and_changes_nothing(
    db: Database, status: TicketStatus, kind: TicketKind, action: str
) -> None:
    code, order_code = await _ticket_in(db, status, kind)
    ticket_before = await _ticket(db, code)
    events_before = len(await _events(db, code))
    order_before = await _get_order(db, order_code)
    with pytest.raises(InvalidTicketTransition) as caught:
        await ACTIONS[action](db, code)
    assert caught.value.status == status.value
    ticket = await _ticket(db, code)
    assert (ticket.status, ticket.refund_fen, ticket.return_number) == (
        ticket_before.status,
        ticket_before.refund_fen,
        ticket_before.return_number,
    )
    assert len(await _events(db, code)) == events_before
    assert (await _get_order(db, order_code)).refunded_fen == order_before.refunded_fen


async def test_refused_examples_name_the_action(db: Database) -> None:
    rejected, _ = await _ticket_in(db, T.REJECTED, K.REFUND)
    with pytest.raises(InvalidTicketTransition) as caught:
        await _approve(db, rejected)
    assert (caught.value.status, caught.value.action) == ("rejected", "approved")

    approved, _ = await _ticket_in(db, T.AWAITING_RETURN, K.RETURN)
    with pytest.raises(InvalidTicketTransition) as caught:
        await _withdraw(db, approved)
    assert (caught.value.status, caught.value.action) == ("awaiting_return", "withdrawn")

    still_open, _ = await _ticket_in(db, T.OPEN, K.RETURN)
    with pytest.raises(InvalidTicketTransition) as caught:
        await _ship_back(db, still_open)
    assert (caught.value.status, caught.value.action) == ("open", "return_shipped")

    refund_open, _ = await _ticket_in(db, T.OPEN, K.REFUND)
    with pytest.raises(InvalidTicketTransition) as caught:
        await _complete(db, refund_open)
    assert (caught.value.status, caught.value.action) == ("open", "complete")

    exchange_open, _ = await _ticket_in(db, T.OPEN, K.EXCHANGE)
    with pytest.raises(InvalidTicketTransition) as caught:
        await _complete(db, exchange_open)
    assert (caught.value.status, caught.value.action) == ("open", "complete")

    withdrawn, _ = await _ticket_in(db, T.WITHDRAWN, K.COMPLAINT)
    with pytest.raises(InvalidTicketTransition) as caught:
        await _reject(db, withdrawn)
    assert (caught.value.status, caught.value.action) == ("withdrawn", "rejected")


async def test_approving_a_refunded_ticket_of_a_fully_refunded_order_is_a_transition_error(
    db: Database,
) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.REFUND)
    assert await _approve(db, code) == (PRICE, True)
    with pytest.raises(InvalidTicketTransition):
        await _approve(db, code)


async def test_approving_a_withdrawn_ticket_with_a_large_amount_is_a_transition_error(
    db: Database,
) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.REFUND)
    await _withdraw(db, code)
    with pytest.raises(InvalidTicketTransition):
        await _approve(db, code, PRICE + 1)


# --- eligibility -------------------------------------------------------------------------


@pytest.mark.parametrize("order_status", [S.PENDING_PAYMENT, S.CANCELLED, S.REFUNDED])
@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_unpaid_and_closed_orders_are_not_eligible(
    db: Database, order_status: OrderStatus, kind: TicketKind
) -> None:
    if order_status is S.CANCELLED:
        order_code = await _order(db, status=S.PENDING_PAYMENT)
        async with db.write() as s:
            order = await orders.get_order(s, SHOP, order_code)
            await orders.cancel(s, order, CUSTOMER, "", T0 - timedelta(hours=1))
    elif order_status is S.REFUNDED:
        order_code = await _order(db, status=S.PAID)
        async with db.write() as s:
            order = await orders.get_order(s, SHOP, order_code)
            await orders.refund(s, order, None, "缺货", STAFF, T0 - timedelta(hours=1))
    else:
        order_code = await _order(db, status=order_status)
    assert (await _get_order(db, order_code)).status == order_status.value
    with pytest.raises(TicketNotAllowed) as caught:
        await _open(db, order_code, kind)
    assert (caught.value.why, caught.value.kind) == ("order_status", kind.value)
    assert await _count(db, Ticket) == 0
    assert await _count(db, TicketEvent) == 0


@pytest.mark.parametrize("order_status", [S.PAID, S.SHIPPED, S.DELIVERED])
@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_paid_shipped_delivered_orders_allow_every_kind(
    db: Database, order_status: OrderStatus, kind: TicketKind
) -> None:
    # Even for an item without 七天无理由: that rule starts with completion.
    order_code = await _order(db, await _variant(db, no_reason=False), status=order_status)
    code = await _open(db, order_code, kind)
    ticket = await _ticket(db, code)
    assert (ticket.kind, ticket.status) == (kind.value, T.OPEN.value)


@pytest.mark.parametrize(
    ("kind", "days"),
    [(K.REFUND, 7), (K.RETURN, 7), (K.EXCHANGE, 15), (K.COMPLAINT, 15)],
)
async def test_completed_orders_within_and_after_the_window(
    db: Database, kind: TicketKind, days: int
) -> None:
    window = timedelta(days=days)
    closed = T0 - window
    inside = await _order(db, status=S.COMPLETED, closed_at=closed)
    # Exactly at the end of the window is still inside.
    code = await _open(db, inside, kind, now=T0)
    assert (await _ticket(db, code)).status == T.OPEN.value

    late = await _order(db, status=S.COMPLETED, closed_at=closed - timedelta(seconds=1))
    with pytest.raises(TicketNotAllowed) as caught:
        await _open(db, late, kind, now=T0)
    assert (caught.value.why, caught.value.kind, caught.value.days) == ("window", kind.value, days)


async def test_exchange_window_is_longer_than_the_refund_window(db: Database) -> None:
    order_code = await _order(db, status=S.COMPLETED, closed_at=T0 - timedelta(days=10))
    for kind in (K.REFUND, K.RETURN):
        with pytest.raises(TicketNotAllowed) as caught:
            await _open(db, order_code, kind)
        assert (caught.value.why, caught.value.days) == ("window", 7)
    await _open(db, order_code, K.EXCHANGE)
    await _open(db, order_code, K.COMPLAINT)


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_no_reason_items_block_money_back_after_completion(
    db: Database, kind: TicketKind
) -> None:
    variant_id = await _variant(db, no_reason=False)
    order_code = await _order(db, variant_id, status=S.COMPLETED, closed_at=T0 - timedelta(days=1))
    if kind in (K.REFUND, K.RETURN):
        with pytest.raises(TicketNotAllowed) as caught:
            await _open(db, order_code, kind)
        assert (caught.value.why, caught.value.kind) == ("no_reason", kind.value)
        assert await _count(db, Ticket) == 0
    else:
        await _open(db, order_code, kind)


async def test_one_item_without_no_reason_blocks_the_whole_order(db: Database) -> None:
    allowed = await _variant(db)
    not_allowed = await _variant(db, no_reason=False)
    async with db.write() as s:
        order = await orders.place_order(
            s,
            SHOP,
            CUSTOMER_ID,
            None,
            [(allowed, 1), (not_allowed, 1)],
            HOME,
            "",
            T0 - timedelta(days=2),
            TIMEOUT,
        )
        await orders.record_payment(
            s, order, "manual", "r-mixed", order.total_fen, STAFF, T0 - timedelta(days=2)
        )
        order.status = S.COMPLETED.value
        order.closed_at = T0 - timedelta(days=1)
        order_code = order.code
    with pytest.raises(TicketNotAllowed) as caught:
        await _open(db, order_code, K.RETURN)
    assert caught.value.why == "no_reason"


async def test_check_eligible_alone_writes_nothing(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, order_code)
        await aftersales.check_eligible(s, order, K.RETURN, WINDOWS, T0)
        assert not s.new and not s.dirty and not s.deleted  # nothing pending for the commit
    assert await _count(db, Ticket) == 0


async def test_one_open_ticket_per_order_and_kind(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    first = await _open(db, order_code, K.RETURN)
    with pytest.raises(TicketNotAllowed) as caught:
        await _open(db, order_code, K.RETURN)
    assert (caught.value.why, caught.value.kind) == ("duplicate", K.RETURN.value)
    # Another kind on the same order is fine.
    await _open(db, order_code, K.COMPLAINT)
    # Still duplicate while the first is in progress.
    await _approve(db, first, 1000)
    with pytest.raises(TicketNotAllowed) as caught:
        await _open(db, order_code, K.RETURN)
    assert caught.value.why == "duplicate"
    await _ship_back(db, first)
    with pytest.raises(TicketNotAllowed):
        await _open(db, order_code, K.RETURN)
    assert await _count(db, Ticket) == 2


@pytest.mark.parametrize("terminal", [T.REJECTED, T.WITHDRAWN, T.REFUNDED, T.CLOSED])
async def test_a_new_ticket_of_the_same_kind_after_a_terminal_one(
    db: Database, terminal: TicketStatus
) -> None:
    kind = {T.REFUNDED: K.REFUND, T.CLOSED: K.EXCHANGE}.get(terminal, K.RETURN)
    first, order_code = await _ticket_in(db, terminal, kind)
    second = await _open(db, order_code, kind, now=T0 + timedelta(days=4))
    assert second != first
    assert (await _ticket(db, second)).status == T.OPEN.value


# --- opening -----------------------------------------------------------------------------


async def test_open_writes_ticket_event_and_first_message(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED, group=GROUP_ID)
    images = ["tickets/2026/a.jpg", "tickets/2026/图片b.png"]
    code = await _open(
        db, order_code, K.RETURN, reason="  杯子有裂纹  ", images=images, group=GROUP_ID
    )
    ticket = await _ticket(db, code)
    order = await _get_order(db, order_code)
    assert (ticket.shop_id, ticket.order_id, ticket.user_id, ticket.group_id) == (
        SHOP,
        order.id,
        CUSTOMER_ID,
        GROUP_ID,
    )
    assert (ticket.kind, ticket.status, ticket.reason, ticket.refund_fen) == (
        "return",
        "open",
        "杯子有裂纹",
        0,
    )
    assert ticket.created_at == ticket.updated_at == T0
    assert (
        ticket.approved_at is ticket.closed_at is ticket.reminded_at is ticket.escalated_at is None
    )

    [event] = await _events(db, code)
    assert (event.from_status, event.to_status, event.action) == (None, "open", "opened")
    assert (event.actor, event.actor_id, event.at, event.reason) == (
        "customer",
        CUSTOMER_ID,
        T0,
        "杯子有裂纹",
    )

    [message] = await _messages(db, code)
    assert (message.author, message.author_id, message.text, message.at) == (
        "customer",
        CUSTOMER_ID,
        "杯子有裂纹",
        T0,
    )
    assert json.loads(message.images) == images
    assert aftersales.images_of(message) == images

    async with db.read() as s:
        detail = await aftersales.ticket_detail(s, ticket)
    assert detail.order_code == order_code


async def test_open_codes_are_unique_and_well_formed(db: Database) -> None:
    from services.codes import looks_like_code

    codes = set()
    for kind in ALL_KINDS:
        order_code = await _order(db, status=S.DELIVERED)
        codes.add(await _open(db, order_code, kind))
    assert len(codes) == 4
    assert all(looks_like_code(code) for code in codes)


async def test_open_needs_a_reason_of_bounded_length(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    with pytest.raises(InvalidValue) as caught:
        await _open(db, order_code, K.RETURN, reason="   ", images=["tickets/a.jpg"])
    assert (caught.value.field, caught.value.reason) == ("ticket_text", "empty")
    with pytest.raises(InvalidValue) as caught:
        await _open(db, order_code, K.RETURN, reason="裂" * 501)
    assert (caught.value.field, caught.value.reason, caught.value.limit) == (
        "ticket_text",
        "too_long",
        500,
    )
    assert await _count(db, Ticket) == 0
    assert await _count(db, TicketMessage) == 0


async def test_open_keeps_a_200_char_reason_on_the_ticket(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.COMPLAINT, reason="慢" * 300)
    ticket = await _ticket(db, code)
    assert ticket.reason == "慢" * 200  # the summary column holds 200
    [event] = await _events(db, code)
    assert len(event.reason) <= 200


async def test_open_keeps_the_full_text_in_the_first_message(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    text = "裂" * 150 + "，" + "另外包装也破了" * 30  # 361 chars, within the 500 accepted
    assert 200 < len(text) <= 500
    code = await _open(db, order_code, K.COMPLAINT, reason=text)
    [message] = await _messages(db, code)
    assert message.text == text


# --- 退款 -------------------------------------------------------------------------------


async def test_refund_without_amount_refunds_everything(db: Database) -> None:
    variant_id = await _variant(db, stock=10)
    order_code = await _order(db, variant_id, status=S.PAID, quantity=2)
    code = await _open(db, order_code, K.REFUND)
    at = T0 + timedelta(hours=2)
    assert await _approve(db, code, now=at) == (2 * PRICE, True)

    ticket = await _ticket(db, code)
    assert (ticket.status, ticket.refund_fen, ticket.approved_at, ticket.closed_at) == (
        "refunded",
        2 * PRICE,
        at,
        at,
    )
    order = await _get_order(db, order_code)
    assert (order.status, order.refunded_fen, order.paid_fen) == ("refunded", 2 * PRICE, 2 * PRICE)
    assert order.closed_at == at
    [refund] = await _refunds(db, order_code)
    assert (refund.amount_fen, refund.by, refund.at) == (2 * PRICE, STAFF_ID, at)
    assert code in refund.reason
    last = (await _order_events(db, order_code))[-1]
    assert (last.action, last.from_status, last.to_status, last.actor) == (
        "refunded",
        "paid",
        "refunded",
        "staff",
    )
    # Not shipped yet: the stock goes back on the shelf.
    async with db.read() as s:
        variant = await s.get(Variant, variant_id)
        assert variant is not None and variant.stock == 10 and variant.sold == 0

    trail = [
        (e.from_status, e.to_status, e.action, e.actor, e.actor_id) for e in await _events(db, code)
    ]
    assert trail == [
        (None, "open", "opened", "customer", CUSTOMER_ID),
        ("open", "approved", "approved", "staff", STAFF_ID),
        ("approved", "refunded", "refunded", "staff", STAFF_ID),
    ]


async def test_partial_refund_keeps_the_order_status(db: Database) -> None:
    order_code = await _order(db, status=S.SHIPPED)
    code = await _open(db, order_code, K.REFUND)
    assert await _approve(db, code, 1500) == (1500, True)
    assert (await _ticket(db, code)).status == "refunded"
    order = await _get_order(db, order_code)
    assert (order.status, order.refunded_fen, order.closed_at) == ("shipped", 1500, None)
    assert [r.amount_fen for r in await _refunds(db, order_code)] == [1500]
    last = (await _order_events(db, order_code))[-1]
    assert (last.action, last.from_status, last.to_status) == (
        "partial_refund",
        "shipped",
        "shipped",
    )


@pytest.mark.parametrize("amount", [PRICE + 1, 10 * PRICE])
async def test_refund_over_what_is_refundable_changes_nothing(db: Database, amount: int) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.REFUND)
    with pytest.raises(RefundTooLarge) as caught:
        await _approve(db, code, amount)
    assert (caught.value.requested, caught.value.refundable) == (amount, PRICE)
    ticket = await _ticket(db, code)
    assert (ticket.status, ticket.refund_fen, ticket.approved_at) == ("open", 0, None)
    assert len(await _events(db, code)) == 1
    order = await _get_order(db, order_code)
    assert (order.status, order.refunded_fen) == ("delivered", 0)
    assert await _refunds(db, order_code) == []


@pytest.mark.parametrize("amount", [0, -100])
async def test_refund_amount_must_be_positive(db: Database, amount: int) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    for kind in (K.REFUND, K.RETURN):
        code = await _open(db, order_code, kind)
        with pytest.raises(InvalidValue) as caught:
            await _approve(db, code, amount)
        assert (caught.value.field, caught.value.reason) == ("amount", "too_small")
        assert (await _ticket(db, code)).status == "open"
    assert await _refunds(db, order_code) == []


async def test_partial_refund_tickets_never_exceed_what_was_paid(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    first = await _open(db, order_code, K.REFUND)
    assert await _approve(db, first, 4000) == (4000, True)

    second = await _open(db, order_code, K.REFUND, now=T0 + timedelta(hours=3))
    with pytest.raises(RefundTooLarge) as caught:
        await _approve(db, second, 2000)
    assert (caught.value.requested, caught.value.refundable) == (2000, PRICE - 4000)
    assert await _approve(db, second) == (PRICE - 4000, True)

    order = await _get_order(db, order_code)
    assert (order.status, order.refunded_fen) == ("refunded", PRICE)
    assert sum(r.amount_fen for r in await _refunds(db, order_code)) == PRICE
    # Nothing left: the order is closed for after-sales.
    with pytest.raises(TicketNotAllowed) as denied:
        await _open(db, order_code, K.REFUND, now=T0 + timedelta(hours=4))
    assert denied.value.why == "order_status"


async def test_refund_and_return_tickets_together_never_exceed_what_was_paid(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    ret = await _open(db, order_code, K.RETURN)
    assert await _approve(db, ret) == (PRICE, False)  # promised, not paid
    refund = await _open(db, order_code, K.REFUND)
    assert await _approve(db, refund, 2000) == (2000, True)
    # The return comes back: only what is still refundable goes out.
    assert await _complete(db, ret) == (PRICE - 2000, True)
    order = await _get_order(db, order_code)
    assert (order.status, order.refunded_fen) == ("refunded", PRICE)
    assert [r.amount_fen for r in await _refunds(db, order_code)] == [2000, PRICE - 2000]


# --- 退货 -------------------------------------------------------------------------------


async def test_return_flow_refunds_on_completion(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.RETURN)

    approved_at = T0 + timedelta(hours=1)
    assert await _approve(db, code, 3000, now=approved_at) == (3000, False)
    ticket = await _ticket(db, code)
    assert (ticket.status, ticket.refund_fen, ticket.approved_at, ticket.closed_at) == (
        "awaiting_return",
        3000,
        approved_at,
        None,
    )
    assert await _refunds(db, order_code) == []
    assert (await _get_order(db, order_code)).refunded_fen == 0

    shipped_at = T0 + timedelta(days=1)
    await _ship_back(db, code, now=shipped_at)
    ticket = await _ticket(db, code)
    assert (ticket.status, ticket.return_carrier, ticket.return_number, ticket.updated_at) == (
        "return_shipped",
        "中通",
        "ZT123456789",
        shipped_at,
    )
    assert await _refunds(db, order_code) == []

    done_at = T0 + timedelta(days=3)
    assert await _complete(db, code, now=done_at) == (3000, True)
    ticket = await _ticket(db, code)
    assert (ticket.status, ticket.closed_at) == ("refunded", done_at)
    [refund] = await _refunds(db, order_code)
    assert (refund.amount_fen, refund.at) == (3000, done_at)
    assert code in refund.reason
    order = await _get_order(db, order_code)
    assert (order.status, order.refunded_fen) == ("delivered", 3000)

    trail = [
        (e.from_status, e.to_status, e.action, e.actor, e.actor_id, e.at)
        for e in await _events(db, code)
    ]
    assert trail == [
        (None, "open", "opened", "customer", CUSTOMER_ID, T0),
        ("open", "approved", "approved", "staff", STAFF_ID, approved_at),
        ("approved", "awaiting_return", "awaiting_return", "staff", STAFF_ID, approved_at),
        (
            "awaiting_return",
            "return_shipped",
            "return_shipped",
            "customer",
            CUSTOMER_ID,
            shipped_at,
        ),
        ("return_shipped", "refunded", "refunded", "staff", STAFF_ID, done_at),
    ]
    assert (await _events(db, code))[3].reason == "中通 ZT123456789"


async def test_return_without_amount_refunds_everything_and_closes_the_order(db: Database) -> None:
    order_code = await _order(db, status=S.COMPLETED, closed_at=T0 - timedelta(days=2))
    code = await _open(db, order_code, K.RETURN)
    assert await _approve(db, code) == (PRICE, False)
    assert (await _ticket(db, code)).refund_fen == PRICE
    assert await _complete(db, code) == (PRICE, True)
    order = await _get_order(db, order_code)
    assert (order.status, order.refunded_fen) == ("refunded", PRICE)


async def test_return_refund_is_capped_by_what_staff_refunded_meanwhile(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.RETURN)
    await _approve(db, code)
    await _ship_back(db, code)
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, order_code)
        await orders.refund(s, order, 5000, "先退一部分", OWNER, T0 + timedelta(days=2))
    assert await _complete(db, code) == (PRICE - 5000, True)
    assert [r.amount_fen for r in await _refunds(db, order_code)] == [5000, PRICE - 5000]
    assert (await _get_order(db, order_code)).status == "refunded"
    assert (await _ticket(db, code)).status == "refunded"


async def test_return_after_a_full_refund_moves_no_money(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.RETURN)
    await _approve(db, code, 3000)
    async with db.write() as s:
        order = await orders.get_order(s, SHOP, order_code)
        await orders.refund(s, order, None, "全额退款", OWNER, T0 + timedelta(days=2))
    assert await _complete(db, code) == (0, True)
    assert [r.amount_fen for r in await _refunds(db, order_code)] == [PRICE]
    assert (await _ticket(db, code)).status == "refunded"


async def test_return_completed_before_a_tracking_number(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.RETURN)
    await _approve(db, code, 1200)
    assert await _complete(db, code) == (1200, True)
    events = await _events(db, code)
    assert (events[-1].from_status, events[-1].to_status) == ("awaiting_return", "refunded")


# --- 换货 and 投诉 -----------------------------------------------------------------------


async def test_exchange_flow_moves_no_money(db: Database) -> None:
    order_code = await _order(db, status=S.COMPLETED, closed_at=T0 - timedelta(days=10))
    code = await _open(db, order_code, K.EXCHANGE)
    assert await _approve(db, code) == (0, False)
    assert (await _ticket(db, code)).status == "awaiting_return"
    await _ship_back(db, code)
    assert (await _ticket(db, code)).status == "return_shipped"
    assert await _complete(db, code) == (0, False)
    ticket = await _ticket(db, code)
    assert (ticket.status, ticket.refund_fen) == ("closed", 0)
    assert ticket.closed_at is not None
    assert await _refunds(db, order_code) == []
    order = await _get_order(db, order_code)
    assert (order.status, order.refunded_fen) == ("completed", 0)
    assert [e.to_status for e in await _events(db, code)] == [
        "open",
        "approved",
        "awaiting_return",
        "return_shipped",
        "closed",
    ]


async def test_complaint_flow(db: Database) -> None:
    order_code = await _order(db, status=S.SHIPPED)
    code = await _open(db, order_code, K.COMPLAINT, reason="客服态度差")
    approved_at = T0 + timedelta(hours=1)
    assert await _approve(db, code, now=approved_at) == (0, False)
    ticket = await _ticket(db, code)
    assert (ticket.status, ticket.approved_at) == ("approved", approved_at)
    # A complaint takes no parcel back.
    with pytest.raises(InvalidTicketTransition):
        await _ship_back(db, code)
    assert await _complete(db, code) == (0, False)
    assert (await _ticket(db, code)).status == "closed"
    assert await _refunds(db, order_code) == []
    assert [(e.from_status, e.to_status) for e in await _events(db, code)] == [
        (None, "open"),
        ("open", "approved"),
        ("approved", "closed"),
    ]


@pytest.mark.parametrize("kind", [K.EXCHANGE, K.COMPLAINT])
async def test_approving_exchange_or_complaint_with_an_amount_is_refused(
    db: Database, kind: TicketKind
) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, kind)
    with pytest.raises(InvalidTicketTransition) as caught:
        await _approve(db, code, 1000)
    assert (caught.value.status, caught.value.action) == ("open", "approve_with_amount")
    ticket = await _ticket(db, code)
    assert (ticket.status, ticket.refund_fen) == ("open", 0)
    assert len(await _events(db, code)) == 1
    assert await _refunds(db, order_code) == []


async def test_reject_and_withdraw_record_who_and_why(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    rejected = await _open(db, order_code, K.RETURN)
    at = T0 + timedelta(hours=6)
    async with db.write() as s:
        ticket = await aftersales.get_ticket(s, SHOP, rejected)
        with pytest.raises(InvalidValue):
            await aftersales.reject(s, ticket, OWNER, "   ", at)
        await aftersales.reject(s, ticket, OWNER, "  超过无理由期限  ", at)
    ticket = await _ticket(db, rejected)
    assert (ticket.status, ticket.closed_at) == ("rejected", at)
    event = (await _events(db, rejected))[-1]
    assert (
        event.actor,
        event.actor_id,
        event.from_status,
        event.to_status,
        event.action,
        event.reason,
    ) == (
        "owner",
        OWNER_ID,
        "open",
        "rejected",
        "rejected",
        "超过无理由期限",
    )

    withdrawn = await _open(db, order_code, K.COMPLAINT)
    await _withdraw(db, withdrawn, now=at)
    event = (await _events(db, withdrawn))[-1]
    assert (event.actor, event.actor_id, event.from_status, event.to_status, event.action) == (
        "customer",
        CUSTOMER_ID,
        "open",
        "withdrawn",
        "withdrawn",
    )
    assert (await _ticket(db, withdrawn)).closed_at == at


# --- reading -----------------------------------------------------------------------------


async def test_get_ticket_is_case_insensitive_and_private(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.RETURN)
    async with db.read() as s:
        mine = await aftersales.get_ticket(s, SHOP, f"  {code.lower()} ", customer_id=CUSTOMER_ID)
        assert mine.code == code
        as_staff = await aftersales.get_ticket(s, SHOP, code.lower())
        assert as_staff.id == mine.id

        with pytest.raises(TicketNotFound) as other:
            await aftersales.get_ticket(s, SHOP, code.lower(), customer_id=OTHER_CUSTOMER_ID)
        unknown_code = "ZZZZZZZZZZ" if code != "ZZZZZZZZZZ" else "YYYYYYYYYY"
        with pytest.raises(TicketNotFound) as unknown:
            await aftersales.get_ticket(
                s, SHOP, unknown_code.lower(), customer_id=OTHER_CUSTOMER_ID
            )
    # Same error type and shape: only the (normalised) code the user typed differs.
    assert other.value == TicketNotFound(code)
    assert unknown.value == TicketNotFound(unknown_code)
    assert type(other.value) is type(unknown.value)
    assert vars(other.value).keys() == vars(unknown.value).keys()


async def test_staff_see_every_customers_ticket(db: Database) -> None:
    other_order = await _order(db, status=S.DELIVERED, user=OTHER_CUSTOMER_ID)
    code = await _open(db, other_order, K.COMPLAINT, actor=OTHER)
    async with db.read() as s:
        assert (
            await aftersales.get_ticket(s, SHOP, code, customer_id=None)
        ).user_id == OTHER_CUSTOMER_ID
        with pytest.raises(TicketNotFound):
            await aftersales.get_ticket(s, SHOP, code, customer_id=CUSTOMER_ID)


async def test_list_tickets_for_customers_and_staff(db: Database) -> None:
    codes = []
    order_codes = []
    for hours in (0, 1, 2):
        order_code = await _order(db, status=S.DELIVERED)
        order_codes.append(order_code)
        codes.append(await _open(db, order_code, K.COMPLAINT, now=T0 + timedelta(hours=hours)))
    oldest, middle, newest = codes
    other_order = await _order(db, status=S.DELIVERED, user=OTHER_CUSTOMER_ID)
    others = await _open(db, other_order, K.REFUND, now=T0 + timedelta(hours=3), actor=OTHER)
    await _reject(db, oldest, now=T0 + timedelta(hours=4))
    await _approve(db, middle, now=T0 + timedelta(hours=4))

    async with db.read() as s:
        mine = await aftersales.list_tickets(s, SHOP, customer_id=CUSTOMER_ID)
        theirs = await aftersales.list_tickets(s, SHOP, customer_id=OTHER_CUSTOMER_ID)
        queue = await aftersales.list_tickets(s, SHOP)
        open_only = await aftersales.list_tickets(s, SHOP, status=T.OPEN)
        rejected_only = await aftersales.list_tickets(s, SHOP, status=T.REJECTED)
        limited = await aftersales.list_tickets(s, SHOP, limit=2)

    # Customers: their own, newest first, whatever the status.
    assert [(t.code, o) for t, o in mine] == [
        (newest, order_codes[2]),
        (middle, order_codes[1]),
        (oldest, order_codes[0]),
    ]
    assert [t.code for t, _ in theirs] == [others]
    # Staff: everything not finished first, oldest first; finished ones after.
    assert [t.code for t, _ in queue] == [middle, newest, others, oldest]
    assert [t.code for t, _ in open_only] == [newest, others]
    assert [t.code for t, _ in rejected_only] == [oldest]
    assert [t.code for t, _ in limited] == [middle, newest]


# --- messages ----------------------------------------------------------------------------


async def test_add_message_needs_text_or_images(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.RETURN)
    at = T0 + timedelta(hours=2)
    async with db.write() as s:
        ticket = await aftersales.get_ticket(s, SHOP, code)
        text_only = await aftersales.add_message(s, ticket, STAFF, "  请拍一下底部  ", [], at)
        image_only = await aftersales.add_message(s, ticket, CUSTOMER, "", ["tickets/b.jpg"], at)
        both = await aftersales.add_message(
            s, ticket, CUSTOMER, "底部", ["tickets/c.jpg", "tickets/d.jpg"], at
        )
        longest = await aftersales.add_message(s, ticket, CUSTOMER, "长" * 500, [], at)
        for empty in ("", "   \n"):
            with pytest.raises(InvalidValue) as caught:
                await aftersales.add_message(s, ticket, CUSTOMER, empty, [], at)
            assert (caught.value.field, caught.value.reason) == ("ticket_text", "empty")
        for images in ([], ["tickets/e.jpg"]):
            with pytest.raises(InvalidValue) as caught:
                await aftersales.add_message(s, ticket, CUSTOMER, "长" * 501, images, at)
            assert (caught.value.field, caught.value.reason, caught.value.limit) == (
                "ticket_text",
                "too_long",
                500,
            )
    assert (text_only.text, text_only.author, text_only.author_id) == (
        "请拍一下底部",
        "staff",
        STAFF_ID,
    )
    assert (image_only.text, aftersales.images_of(image_only)) == ("", ["tickets/b.jpg"])
    assert aftersales.images_of(both) == ["tickets/c.jpg", "tickets/d.jpg"]
    assert longest.text == "长" * 500

    messages = await _messages(db, code)
    assert [m.text for m in messages] == ["杯子有裂纹", "请拍一下底部", "", "底部", "长" * 500]
    ticket = await _ticket(db, code)
    assert (ticket.updated_at, ticket.status) == (at, "open")
    # Messages are not status changes.
    assert len(await _events(db, code)) == 1


@pytest.mark.parametrize("status", [T.REFUNDED, T.REJECTED, T.WITHDRAWN, T.CLOSED])
async def test_customer_cannot_write_on_an_ended_ticket_staff_can(
    db: Database, status: TicketStatus
) -> None:
    kind = K.COMPLAINT if status is T.CLOSED else K.REFUND
    code, _ = await _ticket_in(db, status, kind)
    at = T0 + timedelta(hours=5)
    async with db.write() as s:
        ticket = await aftersales.get_ticket(s, SHOP, code)
        with pytest.raises(InvalidTicketTransition) as caught:
            await aftersales.add_message(s, ticket, CUSTOMER, "还有个问题", [], at)
        assert (caught.value.status, caught.value.action) == (status.value, "message")
        await aftersales.add_message(s, ticket, STAFF, "已为你补寄赠品", [], at)
    assert [m.text for m in await _messages(db, code)][-1] == "已为你补寄赠品"
    assert (await _ticket(db, code)).status == status.value


async def test_customer_can_write_on_every_unended_ticket(db: Database) -> None:
    for status, kind in [
        (T.OPEN, K.REFUND),
        (T.APPROVED, K.COMPLAINT),
        (T.AWAITING_RETURN, K.RETURN),
        (T.RETURN_SHIPPED, K.EXCHANGE),
    ]:
        code, _ = await _ticket_in(db, status, kind)
        async with db.write() as s:
            ticket = await aftersales.get_ticket(s, SHOP, code)
            await aftersales.add_message(
                s, ticket, CUSTOMER, "补充一下", [], T0 + timedelta(hours=5)
            )
        assert [m.text for m in await _messages(db, code)][-1] == "补充一下"


# --- notices -----------------------------------------------------------------------------


async def test_customer_notices_go_to_the_chat_the_ticket_came_from(db: Database) -> None:
    private_order = await _order(db, status=S.DELIVERED)
    group_order = await _order(db, status=S.DELIVERED, group=GROUP_ID)
    private = await _open(db, private_order, K.COMPLAINT)
    group = await _open(db, group_order, K.COMPLAINT, group=GROUP_ID)
    async with db.write() as s:
        for code in (private, group):
            ticket = await aftersales.get_ticket(s, SHOP, code)
            await notices.ticket_to_customer(s, ticket, "已处理", "approved", T0)
            # The same key twice: one row.
            await notices.ticket_to_customer(s, ticket, "已处理", "approved", T0)
    rows = await _outbox(db)
    assert len(rows) == 2
    by_key = {row.dedupe_key: row for row in rows}
    p = by_key[f"ticket:{private}:approved"]
    assert (p.target_type, p.target_id) == ("private", CUSTOMER_ID)
    assert _segments(p) == [{"type": "text", "data": {"text": "已处理"}}]
    g = by_key[f"ticket:{group}:approved"]
    assert (g.target_type, g.target_id) == ("group", GROUP_ID)
    assert _segments(g) == [
        {"type": "at", "data": {"qq": str(CUSTOMER_ID)}},
        {"type": "text", "data": {"text": " 已处理"}},
    ]


async def test_staff_notices_go_to_owners_and_staff_once(db: Database) -> None:
    async with db.write() as s:
        await staff.add_staff(s, SHOP, STAFF_ID, OWNER_ID, OWNERS)
    order_code = await _order(db, status=S.DELIVERED, group=GROUP_ID)
    code = await _open(db, order_code, K.RETURN, group=GROUP_ID)
    async with db.write() as s:
        ticket = await aftersales.get_ticket(s, SHOP, code)
        await notices.ticket_to_staff(s, ticket, OWNERS, "新工单", "opened", T0)
        await notices.ticket_to_staff(s, ticket, OWNERS, "新工单", "opened", T0)
    rows = await _outbox(db)
    assert sorted((r.target_type, r.target_id, r.dedupe_key) for r in rows) == [
        ("private", OWNER_ID, f"ticket:{code}:opened:staff:{OWNER_ID}"),
        ("private", STAFF_ID, f"ticket:{code}:opened:staff:{STAFF_ID}"),
    ]


# --- clocks ------------------------------------------------------------------------------


async def _with_staff(db: Database) -> None:
    async with db.write() as s:
        await staff.add_staff(s, SHOP, STAFF_ID, OWNER_ID, OWNERS)


async def _clock(db: Database, now: datetime) -> aftersales.TicketClockReport:
    return await aftersales.run_ticket_clocks(db, OWNERS, CLOCKS, now)


async def test_reminder_once_per_staff_and_owner(db: Database) -> None:
    await _with_staff(db)
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.RETURN, now=T0)

    report = await _clock(db, T0 + timedelta(hours=24) - timedelta(seconds=1))
    assert report == aftersales.TicketClockReport()
    assert await _outbox(db) == []

    at = T0 + timedelta(hours=24)
    report = await _clock(db, at)
    assert (report.reminded, report.escalated, report.expired_returns) == ([code], [], [])
    rows = await _outbox(db)
    assert sorted((r.target_type, r.target_id, r.dedupe_key) for r in rows) == [
        ("private", OWNER_ID, f"ticket:{code}:remind:staff:{OWNER_ID}"),
        ("private", STAFF_ID, f"ticket:{code}:remind:staff:{STAFF_ID}"),
    ]
    assert all(code in _text(r) and "退货" in _text(r) for r in rows)
    ticket = await _ticket(db, code)
    assert (ticket.reminded_at, ticket.escalated_at, ticket.status) == (at, None, "open")

    for later in (at, at + timedelta(hours=1), T0 + timedelta(hours=48) - timedelta(seconds=1)):
        assert await _clock(db, later) == aftersales.TicketClockReport()
    assert len(await _outbox(db)) == 2
    assert (await _ticket(db, code)).reminded_at == at
    assert len(await _events(db, code)) == 1  # reminders change no status


async def test_escalation_once_to_the_owner_only(db: Database) -> None:
    await _with_staff(db)
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.REFUND, now=T0)
    await _clock(db, T0 + timedelta(hours=25))
    assert len(await _outbox(db)) == 2

    at = T0 + timedelta(hours=48)
    report = await _clock(db, at)
    assert (report.reminded, report.escalated) == ([], [code])
    new = (await _outbox(db))[2:]
    assert [(r.target_type, r.target_id, r.dedupe_key) for r in new] == [
        ("private", OWNER_ID, f"ticket:{code}:escalate:{OWNER_ID}"),
    ]
    assert code in _text(new[0]) and str(CUSTOMER_ID) in _text(new[0])
    assert (await _ticket(db, code)).escalated_at == at

    for later in (at, at + timedelta(days=3)):
        assert await _clock(db, later) == aftersales.TicketClockReport()
    assert len(await _outbox(db)) == 3


async def test_catching_up_reminds_and_escalates_in_one_run(db: Database) -> None:
    await _with_staff(db)
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.EXCHANGE, now=T0)
    report = await _clock(db, T0 + timedelta(days=5))
    assert (report.reminded, report.escalated) == ([code], [code])
    rows = await _outbox(db)
    assert sorted((r.target_id, r.dedupe_key.split(":")[2]) for r in rows) == [
        (OWNER_ID, "escalate"),
        (OWNER_ID, "remind"),
        (STAFF_ID, "remind"),
    ]
    assert await _clock(db, T0 + timedelta(days=6)) == aftersales.TicketClockReport()
    assert len(await _outbox(db)) == 3


async def test_tickets_decided_before_the_clock_are_left_alone(db: Database) -> None:
    await _with_staff(db)
    codes = []
    for kind in (K.RETURN, K.COMPLAINT, K.REFUND):
        order_code = await _order(db, status=S.DELIVERED)
        codes.append(await _open(db, order_code, kind, now=T0))
    returned, complaint, refund = codes
    await _approve(db, returned, now=T0 + timedelta(hours=1))
    await _ship_back(db, returned, now=T0 + timedelta(days=2))  # shipped back: no expiry
    await _approve(db, complaint, now=T0 + timedelta(hours=1))  # approved, not awaiting return
    await _withdraw(db, refund, now=T0 + timedelta(hours=1))
    before = {c: await _ticket(db, c) for c in codes}

    report = await _clock(db, T0 + timedelta(days=30))
    assert report == aftersales.TicketClockReport()
    assert await _outbox(db) == []
    for c in codes:
        after = await _ticket(db, c)
        assert (after.status, after.reminded_at, after.escalated_at, after.updated_at) == (
            before[c].status,
            None,
            None,
            before[c].updated_at,
        )


@pytest.mark.parametrize("kind", [K.RETURN, K.EXCHANGE])
async def test_unshipped_approved_return_closes_after_seven_days(
    db: Database, kind: TicketKind
) -> None:
    await _with_staff(db)
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, kind, now=T0)
    approved_at = T0 + timedelta(hours=2)
    await _approve(db, code, now=approved_at)

    assert (
        await _clock(db, approved_at + timedelta(days=7) - timedelta(seconds=1))
    ).expired_returns == []
    assert (await _ticket(db, code)).status == "awaiting_return"

    at = approved_at + timedelta(days=7)
    report = await _clock(db, at)
    assert report.expired_returns == [code]
    ticket = await _ticket(db, code)
    assert (ticket.status, ticket.closed_at) == ("closed", at)
    event = (await _events(db, code))[-1]
    assert (
        event.actor,
        event.actor_id,
        event.from_status,
        event.to_status,
        event.action,
        event.at,
    ) == (
        "system",
        None,
        "awaiting_return",
        "closed",
        "return_expired",
        at,
    )
    notices = [r for r in await _outbox(db) if r.dedupe_key == f"ticket:{code}:return_expired"]
    assert len(notices) == 1
    assert (notices[0].target_type, notices[0].target_id) == ("private", CUSTOMER_ID)
    assert code in _text(notices[0]) and "已关闭" in _text(notices[0])
    # No money moved, no staff bothered.
    assert await _refunds(db, order_code) == []
    assert all(r.target_id == CUSTOMER_ID for r in await _outbox(db))

    count = len(await _outbox(db))
    for later in (at, at + timedelta(days=1)):
        assert (await _clock(db, later)).expired_returns == []
    assert len(await _outbox(db)) == count
    assert [e.action for e in await _events(db, code)].count("return_expired") == 1
    # A closed return leaves room for a new ticket of the same kind.
    await _open(db, order_code, kind, now=at)


async def test_group_ticket_expiry_notice_goes_to_the_group_with_an_at(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED, group=GROUP_ID)
    code = await _open(db, order_code, K.RETURN, now=T0, group=GROUP_ID)
    await _approve(db, code, 1000, now=T0)
    report = await _clock(db, T0 + timedelta(days=8))
    assert report.expired_returns == [code]
    [row] = await _outbox(db)
    assert (row.target_type, row.target_id, row.dedupe_key) == (
        "group",
        GROUP_ID,
        f"ticket:{code}:return_expired",
    )
    segments = _segments(row)
    assert segments[0] == {"type": "at", "data": {"qq": str(CUSTOMER_ID)}}
    assert segments[1]["type"] == "text" and segments[1]["data"]["text"].startswith(" ")
    assert code in segments[1]["data"]["text"]


async def test_clock_reminds_without_staff_table_only_the_owner(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.COMPLAINT, now=T0)
    report = await _clock(db, T0 + timedelta(hours=30))
    assert report.reminded == [code]
    rows = await _outbox(db)
    assert [(r.target_type, r.target_id) for r in rows] == [("private", OWNER_ID)]


async def test_at_most_five_images_per_ticket_or_message(db: Database) -> None:
    order_code = await _order(db, status=S.DELIVERED)
    code = await _open(db, order_code, K.RETURN)
    six = [f"media/{n}.png" for n in range(6)]
    async with db.write() as s:
        ticket = await aftersales.get_ticket(s, SHOP, code)
        with pytest.raises(InvalidValue) as caught:
            await aftersales.add_message(s, ticket, CUSTOMER, "六张", six, T0)
        assert (caught.value.field, caught.value.reason, caught.value.limit) == (
            "ticket_images",
            "too_large",
            5,
        )
        await aftersales.add_message(s, ticket, CUSTOMER, "五张", six[:5], T0)
    assert [m.text for m in await _messages(db, code)][-1] == "五张"
