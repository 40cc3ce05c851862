"""After-sales tickets: 退款, 退货, 换货, 投诉.

States: open → approved → (退货/换货) awaiting_return → return_shipped → refunded | closed;
rejected; withdrawn by the customer. TICKET_TRANSITIONS is the one place that says which
change is allowed; every change writes a ticket_event. Refunds go through orders.refund,
so they never exceed what was paid minus what was already refunded. A completed 退货's
goods go back on the shelf only when staff say so (/完成 <工单号> 入库), once per order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import Database, for_writing
from models.tables import (
    Item,
    OrderEvent,
    OrderLine,
    OrderStatus,
    ShopOrder,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketMessage,
    TicketStatus,
    Variant,
)

from . import orders, safeguards
from .catalog import line_name
from .codes import new_code, normalise_code
from .errors import (  # the ticket errors stay importable from here, their old home
    InvalidTicketTransition,
    InvalidValue,
    RestockRefusal,
    RestockRefused,
    ShopError,
    TicketNotAllowed,
    TicketNotFound,
    TicketRefusal,
)
from .limits import check_text
from .order_rules import REFUNDABLE
from .orders import Actor

T = TicketStatus
K = TicketKind
MAX_TICKET_TEXT = 500
FIELD_TICKET_TEXT = "ticket_text"
MAX_TICKET_IMAGES = 5  # per ticket or message; more go in a further /留言
FIELD_TICKET_IMAGES = "ticket_images"
RETURN_SHIP_DAYS = 7  # an approved return not shipped back within this closes the ticket

KIND_NAMES = {K.REFUND: "退款", K.RETURN: "退货", K.EXCHANGE: "换货", K.COMPLAINT: "投诉"}
KIND_BY_NAME = {name: kind for kind, name in KIND_NAMES.items()}
STATUS_NAMES = {
    T.OPEN: "待处理",
    T.APPROVED: "已同意",
    T.AWAITING_RETURN: "待退货",
    T.RETURN_SHIPPED: "退货中",
    T.REFUNDED: "已退款",
    T.CLOSED: "已完成",
    T.REJECTED: "已拒绝",
    T.WITHDRAWN: "已撤销",
}
STATUS_BY_NAME = {name: status for status, name in STATUS_NAMES.items()}
TERMINAL = frozenset({T.REFUNDED, T.CLOSED, T.REJECTED, T.WITHDRAWN})

TICKET_TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    T.OPEN: frozenset({T.APPROVED, T.REJECTED, T.WITHDRAWN}),
    T.APPROVED: frozenset({T.AWAITING_RETURN, T.REFUNDED, T.CLOSED}),
    T.AWAITING_RETURN: frozenset({T.RETURN_SHIPPED, T.REFUNDED, T.CLOSED}),
    T.RETURN_SHIPPED: frozenset({T.REFUNDED, T.CLOSED}),
    T.REFUNDED: frozenset(),
    T.CLOSED: frozenset(),
    T.REJECTED: frozenset(),
    T.WITHDRAWN: frozenset(),
}
# A ticket needs money that came in and an order not closed: the refundable orders.
ELIGIBLE_ORDER_STATUSES = REFUNDABLE


# --- windows ------------------------------------------------------------------------


@dataclass(frozen=True)
class Windows:
    aftersale: timedelta  # 退款/退货 after completion (七天无理由)
    exchange: timedelta  # 换货/投诉 after completion


async def _items_allow_no_reason(session: AsyncSession, order: ShopOrder) -> bool:
    rows = await session.execute(
        select(Item.no_reason_return)
        .join(OrderLine, OrderLine.item_id == Item.id)
        .where(OrderLine.order_id == order.id)
    )
    return all(rows.scalars())


async def check_eligible(
    session: AsyncSession, order: ShopOrder, kind: TicketKind, windows: Windows, now: datetime
) -> None:
    if OrderStatus(order.status) not in ELIGIBLE_ORDER_STATUSES:
        raise TicketNotAllowed(TicketRefusal.ORDER_STATUS, kind.value)
    if order.virtual and kind in (K.RETURN, K.EXCHANGE):
        # Card keys handed out cannot be sent back or swapped; a refund or a complaint
        # still can be asked for. An order is all card keys or all physical goods (the
        # order path refuses a mix), so `order.virtual` says it for every line; a physical
        # order of an item made card keys later was shipped as goods and may go back.
        raise TicketNotAllowed(TicketRefusal.VIRTUAL, kind.value)
    money_back = kind in (K.REFUND, K.RETURN)
    if order.status == OrderStatus.COMPLETED.value:
        # After completion the clock runs: 七天无理由 for money back, longer for exchange
        # and complaints.
        window = windows.aftersale if money_back else windows.exchange
        if order.closed_at is not None and now - order.closed_at > window:
            raise TicketNotAllowed(
                TicketRefusal.WINDOW, kind.value, max(1, round(window.total_seconds() / 86400))
            )
        if money_back and not await _items_allow_no_reason(session, order):
            raise TicketNotAllowed(TicketRefusal.NO_REASON, kind.value)
    open_same = (
        await session.execute(
            select(Ticket.id).where(
                Ticket.order_id == order.id,
                Ticket.kind == kind.value,
                Ticket.status.not_in([s.value for s in TERMINAL]),  # type: ignore[attr-defined]
            )
        )
    ).first()
    if open_same is not None:
        raise TicketNotAllowed(TicketRefusal.DUPLICATE, kind.value)


# --- reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketDetail:
    ticket: Ticket
    order_code: str
    messages: list[TicketMessage]
    events: list[TicketEvent]


async def get_ticket(
    session: AsyncSession, shop_id: int, code: str, *, customer_id: int | None = None
) -> Ticket:
    """Another customer's ticket is indistinguishable from one that does not exist."""
    code = normalise_code(code)
    query = select(Ticket).where(Ticket.code == code, Ticket.shop_id == shop_id)
    ticket = (await session.execute(for_writing(query, session))).scalar_one_or_none()
    if ticket is None or (customer_id is not None and ticket.user_id != customer_id):
        raise TicketNotFound(code)
    return ticket


async def ticket_detail(session: AsyncSession, ticket: Ticket) -> TicketDetail:
    order = await session.get(ShopOrder, ticket.order_id)
    messages = await session.execute(
        select(TicketMessage).where(TicketMessage.ticket_id == ticket.id).order_by(TicketMessage.id)  # type: ignore[arg-type]
    )
    events = await session.execute(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)  # type: ignore[arg-type]
    )
    return TicketDetail(
        ticket, order.code if order else "", list(messages.scalars()), list(events.scalars())
    )


async def list_tickets(
    session: AsyncSession,
    shop_id: int,
    *,
    customer_id: int | None = None,
    status: TicketStatus | None = None,
    limit: int = 20,
) -> list[tuple[Ticket, str]]:
    """Customers: newest first. Staff: open ones first, oldest first (the queue)."""
    query = (
        select(Ticket, ShopOrder.code)
        .join(ShopOrder, ShopOrder.id == Ticket.order_id)
        .where(Ticket.shop_id == shop_id)
    )
    if customer_id is not None:
        query = query.where(Ticket.user_id == customer_id).order_by(
            Ticket.created_at.desc(), Ticket.id.desc()
        )  # type: ignore[attr-defined]
    else:
        if status is not None:
            query = query.where(Ticket.status == status.value)
        terminal = Ticket.status.in_([s.value for s in TERMINAL])  # type: ignore[attr-defined]
        query = query.order_by(terminal, Ticket.created_at, Ticket.id)
    rows = await session.execute(query.limit(limit))
    return [(ticket, code) for ticket, code in rows]


def images_of(message: TicketMessage) -> list[str]:
    return list(json.loads(message.images or "[]"))


# --- changes ------------------------------------------------------------------------


def _move(
    session: AsyncSession,
    ticket: Ticket,
    target: TicketStatus,
    actor: Actor,
    action: str,
    now: datetime,
    reason: str = "",
) -> None:
    if target not in TICKET_TRANSITIONS[TicketStatus(ticket.status)]:
        raise InvalidTicketTransition(ticket.status, action)
    session.add(
        TicketEvent(
            ticket_id=ticket.id or 0,
            at=now,
            actor=actor.kind,
            actor_id=actor.user_id,
            from_status=ticket.status,
            to_status=target.value,
            action=action,
            reason=reason[:200],
        )
    )
    ticket.status = target.value
    ticket.updated_at = now
    if target in TERMINAL:
        ticket.closed_at = now


def check_image_count(count: int) -> None:
    """Checked before anything is downloaded, and again when the message is stored."""
    if count > MAX_TICKET_IMAGES:
        raise InvalidValue(FIELD_TICKET_IMAGES, "too_large", MAX_TICKET_IMAGES)


def _check_text(text: str, *, required: bool) -> str:
    text = text.strip()
    if not text and not required:
        return ""
    return check_text(FIELD_TICKET_TEXT, text, MAX_TICKET_TEXT)


async def add_message(
    session: AsyncSession, ticket: Ticket, actor: Actor, text: str, images: list[str], now: datetime
) -> TicketMessage:
    if actor.kind == "customer" and T(ticket.status) in TERMINAL:
        # An ended ticket has nobody left to read it; a new question is a new ticket.
        # Staff may still write (a follow-up after a refund), which reaches the customer.
        raise InvalidTicketTransition(ticket.status, "message")
    check_image_count(len(images))
    text = _check_text(text, required=not images)
    message = TicketMessage(
        ticket_id=ticket.id or 0,
        author=actor.kind,
        author_id=actor.user_id,
        text=text,
        images=json.dumps(images, ensure_ascii=False),
        at=now,
    )
    session.add(message)
    ticket.updated_at = now
    await session.flush()
    return message


async def _unused_code(session: AsyncSession) -> str:
    while True:
        code = new_code()
        if (await session.execute(select(Ticket.id).where(Ticket.code == code))).first() is None:
            return code


async def open_ticket(
    session: AsyncSession,
    order: ShopOrder,
    kind: TicketKind,
    reason: str,
    images: list[str],
    actor: Actor,
    group_id: int | None,
    windows: Windows,
    now: datetime,
) -> Ticket:
    check_image_count(len(images))
    text = _check_text(reason, required=True)
    await check_eligible(session, order, kind, windows, now)
    ticket = Ticket(
        code=await _unused_code(session),
        shop_id=order.shop_id,
        order_id=order.id or 0,
        user_id=order.user_id,
        group_id=group_id,
        kind=kind.value,
        status=T.OPEN.value,
        reason=text[:200],
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    await session.flush()
    session.add(
        TicketEvent(
            ticket_id=ticket.id or 0,
            at=now,
            actor=actor.kind,
            actor_id=actor.user_id,
            from_status=None,
            to_status=T.OPEN.value,
            action="opened",
            reason=text[:200],
        )
    )
    # The first message keeps the customer's whole description; the ticket row keeps a summary.
    await add_message(session, ticket, actor, text, images, now)
    return ticket


async def withdraw(session: AsyncSession, ticket: Ticket, actor: Actor, now: datetime) -> None:
    _move(session, ticket, T.WITHDRAWN, actor, "withdrawn", now)
    await session.flush()


async def approve(
    session: AsyncSession,
    ticket: Ticket,
    amount_fen: int | None,
    actor: Actor,
    reason: str,
    now: datetime,
) -> tuple[int, bool]:
    """退款: refunds at once (default: everything still refundable) → refunded.
    退货: → awaiting_return, the refund is made when staff /完成 after the parcel is back.
    换货: → awaiting_return. 投诉: → approved. Returns (refund amount, refunded now)."""
    kind = TicketKind(ticket.kind)
    # Status first: a finished ticket is refused as such, not for its money.
    if T.APPROVED not in TICKET_TRANSITIONS[TicketStatus(ticket.status)]:
        raise InvalidTicketTransition(ticket.status, "approved")
    order = await session.get(ShopOrder, ticket.order_id)
    assert order is not None
    if kind in (K.REFUND, K.RETURN):
        ticket.refund_fen = orders.refund_amount(order, amount_fen)
    elif amount_fen is not None:
        raise InvalidTicketTransition(ticket.status, "approve_with_amount")
    _move(session, ticket, T.APPROVED, actor, "approved", now, reason)
    ticket.approved_at = now
    if kind is K.REFUND:
        await orders.refund(
            session, order, ticket.refund_fen, f"售后退款 {ticket.code}", actor, now
        )
        _move(session, ticket, T.REFUNDED, actor, "refunded", now)
        await session.flush()
        return ticket.refund_fen, True
    if kind in (K.RETURN, K.EXCHANGE):
        _move(session, ticket, T.AWAITING_RETURN, actor, "awaiting_return", now)
    await session.flush()
    return ticket.refund_fen, False


async def reject(
    session: AsyncSession, ticket: Ticket, actor: Actor, reason: str, now: datetime
) -> None:
    _move(
        session,
        ticket,
        T.REJECTED,
        actor,
        "rejected",
        now,
        _check_text(reason, required=True)[:200],
    )
    await session.flush()


async def return_shipped(
    session: AsyncSession, ticket: Ticket, carrier: str, number: str, actor: Actor, now: datetime
) -> None:
    if ticket.status != T.AWAITING_RETURN.value:
        raise InvalidTicketTransition(ticket.status, "return_shipped")
    ticket.return_carrier, ticket.return_number = carrier, number
    _move(session, ticket, T.RETURN_SHIPPED, actor, "return_shipped", now, f"{carrier} {number}")
    await session.flush()


async def complete(
    session: AsyncSession, ticket: Ticket, actor: Actor, now: datetime
) -> tuple[int, bool]:
    """/完成: 退货 → refund now (the parcel is back) → refunded; 换货/投诉 → closed.
    A 退款 ticket is refunded on approval and cannot be completed again."""
    kind = TicketKind(ticket.kind)
    status = TicketStatus(ticket.status)
    if kind is K.RETURN:
        if status not in (T.AWAITING_RETURN, T.RETURN_SHIPPED):
            raise InvalidTicketTransition(ticket.status, "complete")
        order = await session.get(ShopOrder, ticket.order_id)
        assert order is not None
        amount = min(ticket.refund_fen, order.paid_fen - order.refunded_fen)
        if amount > 0:
            await orders.refund(session, order, amount, f"退货退款 {ticket.code}", actor, now)
        _move(session, ticket, T.REFUNDED, actor, "refunded", now)
        await session.flush()
        return amount, True
    if kind is K.REFUND or status not in (T.APPROVED, T.AWAITING_RETURN, T.RETURN_SHIPPED):
        raise InvalidTicketTransition(ticket.status, "complete")
    _move(session, ticket, T.CLOSED, actor, "closed", now)
    await session.flush()
    return 0, False


# --- returned goods back on the shelf ---------------------------------------------------

RESTOCKED = "restocked"  # the action of the order event and the ticket event
_VARIANT = Variant.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RestockedLine:
    name: str  # 商品（规格） as ordered
    quantity: int
    stock: int  # the variant's stock afterwards


@dataclass(frozen=True)
class Restock:
    """What one /完成 <工单号> 入库 put back: every line of the order, in full (the ticket
    names no quantities; staff correct a partial return with /库存)."""

    lines: list[RestockedLine]
    skipped: list[str]  # lines left alone: their item is sold as card keys now (or is gone)


async def restock_refusal(session: AsyncSession, ticket: Ticket) -> RestockRefusal | None:
    """Why the goods of this ticket's order cannot go back on the shelf, or None. Only a
    退货 brings goods back; card keys have no shelf (a virtual variant's stock is its
    unused keys); an order that never shipped still holds its stock, or got it back with
    its refund; and an order's goods go back once, whichever of its tickets says so."""
    if TicketKind(ticket.kind) is not K.RETURN:
        return RestockRefusal.NOT_RETURN
    order = await session.get(ShopOrder, ticket.order_id)
    assert order is not None
    if order.virtual:
        return RestockRefusal.VIRTUAL
    history = select(OrderEvent.id).where(OrderEvent.order_id == order.id)
    if order.status == OrderStatus.PAID.value:
        return RestockRefusal.NOT_SHIPPED
    if order.status == OrderStatus.REFUNDED.value:
        # Refunded before or after it shipped? Only its history says.
        shipped = history.where(OrderEvent.to_status == OrderStatus.SHIPPED.value)
        if (await session.execute(shipped.limit(1))).first() is None:
            return RestockRefusal.NOT_SHIPPED
    restocked = history.where(OrderEvent.action == RESTOCKED)
    if (await session.execute(restocked.limit(1))).first() is not None:
        return RestockRefusal.ALREADY
    return None


async def restock_return(
    session: AsyncSession, ticket: Ticket, actor: Actor, now: datetime
) -> Restock:
    """Puts the goods of a completed (refunded) 退货 back on the shelf: each line's
    quantity goes back to its variant's stock in one relative UPDATE (concurrent sales
    of the variant lose nothing), its sales count goes down by as much, the low-stock
    alert re-arms as for any restock, and an order event and a ticket event say which
    variants and how many, who and why. Runs in the caller's transaction, after
    `complete` when both happen at once."""
    if TicketKind(ticket.kind) is not K.RETURN:
        raise RestockRefused(RestockRefusal.NOT_RETURN, ticket.code)
    if ticket.status != T.REFUNDED.value:
        raise InvalidTicketTransition(ticket.status, RESTOCKED)
    order = await session.get(ShopOrder, ticket.order_id)
    assert order is not None
    # Two tickets of one order restocking at once take turns here, so the second sees
    # the first one's event and is refused (PostgreSQL; SQLite writers take turns anyway).
    await session.refresh(order, with_for_update=True)
    refusal = await restock_refusal(session, ticket)
    if refusal is not None:
        raise RestockRefused(refusal, ticket.code)
    rows = await session.execute(
        select(OrderLine, Item.virtual)
        .join(Item, Item.id == OrderLine.item_id)
        .where(OrderLine.order_id == order.id)
        .order_by(OrderLine.id)  # type: ignore[arg-type]
    )
    done: list[RestockedLine] = []
    skipped: list[str] = []
    for line, virtual in rows:
        name = line_name(line.item_name, line.variant_name)
        if virtual:  # made a card-key item since: its stock must stay its key count
            skipped.append(name)
            continue
        # Relative to the row as it is at this moment, in one statement: units sold or
        # added meanwhile stay counted.
        changed = await session.execute(
            update(Variant)
            .where(_VARIANT.id == line.variant_id, _VARIANT.shop_id == order.shop_id)
            .values(
                stock=_VARIANT.stock + line.quantity,
                sold=case((_VARIANT.sold >= line.quantity, _VARIANT.sold - line.quantity), else_=0),
            )
        )
        if not changed.rowcount:  # type: ignore[attr-defined]
            skipped.append(name)
            continue
        await safeguards.after_stock_change(session, line.variant_id, now)
        stock = (
            await session.execute(select(_VARIANT.stock).where(_VARIANT.id == line.variant_id))
        ).scalar_one()
        done.append(RestockedLine(name, line.quantity, int(stock)))
    if not done:
        raise RestockRefused(RestockRefusal.VIRTUAL, ticket.code)
    what = "、".join(f"{line.name} ×{line.quantity}" for line in done)
    orders.record_event(
        session,
        order,
        actor,
        RESTOCKED,
        now,
        detail=f"退货入库：{what}",
        reason=f"退货 {ticket.code}",
    )
    session.add(
        TicketEvent(
            ticket_id=ticket.id or 0,
            at=now,
            actor=actor.kind,
            actor_id=actor.user_id,
            from_status=ticket.status,
            to_status=ticket.status,
            action=RESTOCKED,
            reason=what[:200],
        )
    )
    ticket.updated_at = now
    await session.flush()
    return Restock(done, skipped)


# --- clocks -------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketClockSettings:
    remind_after: timedelta
    escalate_after: timedelta
    return_ship_within: timedelta = timedelta(days=RETURN_SHIP_DAYS)


@dataclass
class TicketClockReport:
    reminded: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    expired_returns: list[str] = field(default_factory=list)


async def run_ticket_clocks(
    database: Database, owners: frozenset[int], settings: TicketClockSettings, now: datetime
) -> TicketClockReport:
    """Staff reminded of tickets open too long, the owner told later, approved returns
    never shipped back closed. Each notice once (stamped on the ticket, deduped in the outbox)."""
    # Imported here: services.notices reads the ticket names from this module.
    from . import notices

    report = TicketClockReport()
    async with database.read() as session:
        open_rows = list(
            (
                await session.execute(
                    select(Ticket).where(
                        Ticket.status == T.OPEN.value,
                        Ticket.created_at <= now - settings.remind_after,
                        # Finished work is not re-read on every tick.
                        or_(Ticket.reminded_at.is_(None), Ticket.escalated_at.is_(None)),  # type: ignore[union-attr]
                    )
                )
            ).scalars()
        )
        stale_returns = list(
            (
                await session.execute(
                    select(Ticket).where(
                        Ticket.status == T.AWAITING_RETURN.value,
                        Ticket.approved_at <= now - settings.return_ship_within,  # type: ignore[operator]
                    )
                )
            ).scalars()
        )
    for stale in open_rows:
        async with database.write() as session:
            ticket = await session.get(Ticket, stale.id)
            if ticket is None or ticket.status != T.OPEN.value:
                continue
            if ticket.reminded_at is None:
                ticket.reminded_at = now
                await notices.ticket_to_staff(
                    session,
                    ticket,
                    owners,
                    notices.ticket_reminder_for_staff(ticket),
                    "remind",
                    now,
                )
                report.reminded.append(ticket.code)
            if ticket.escalated_at is None and ticket.created_at <= now - settings.escalate_after:
                ticket.escalated_at = now
                await notices.ticket_to_owners(
                    session, ticket, owners, notices.ticket_escalation(ticket), "escalate", now
                )
                report.escalated.append(ticket.code)
    for stale in stale_returns:
        try:
            async with database.write() as session:
                ticket = await session.get(Ticket, stale.id)
                if ticket is None or ticket.status != T.AWAITING_RETURN.value:
                    continue
                _move(
                    session,
                    ticket,
                    T.CLOSED,
                    Actor.system(),
                    "return_expired",
                    now,
                    f"{RETURN_SHIP_DAYS} 天内未寄回",
                )
                await notices.ticket_to_customer(
                    session, ticket, notices.ticket_return_expired(ticket), "return_expired", now
                )
                report.expired_returns.append(ticket.code)
        except ShopError:
            continue
    return report
