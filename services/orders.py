"""Orders: creation with atomic stock reservation, amendments, cancellation, requests
decided by staff, payments and refunds. Every status change writes an order_event row.

All functions run inside the caller's `Database.write()` transaction: if anything
raises, every stock reservation made so far in it is rolled back with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import for_writing
from models.tables import (
    OrderEvent,
    OrderLine,
    OrderRequest,
    OrderStatus,
    Payment,
    Refund,
    RequestKind,
    RequestStatus,
    ShopOrder,
    Variant,
)

from . import order_rules, placing, safeguards
from .actors import Actor
from .addresses import AddressSnapshot
from .catalog import VariantRef, line_name
from .codes import new_code, normalise_code
from .errors import (
    AlreadyPaid,
    InvalidTransition,
    InvalidValue,
    LastLine,
    LatePaymentStockGone,
    LineNotInOrder,
    NoPendingRequest,
    NotForVirtualOrder,
    OrderNotFound,
    OutOfStock,
    RefundTooLarge,
    RequestPending,
    VirtualOrderAction,
)
from .limits import (
    FIELD_AMOUNT,
    FIELD_REASON,
    FIELD_REMARK,
    MAX_REASON,
    MAX_REMARK,
    ORDER_PAGE_SIZE,
    check_quantity,
)
from .order_rules import REFUNDABLE, REVIVABLE_CANCELLATION, Change, Mode

S = OrderStatus
_VARIANT = Variant.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class OrderDetail:
    order: ShopOrder
    lines: list[OrderLine]
    events: list[OrderEvent]
    requests: list[OrderRequest]

    @property
    def pending_requests(self) -> list[OrderRequest]:
        return [r for r in self.requests if r.status == RequestStatus.PENDING]


def check_remark(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_REMARK:
        raise InvalidValue(FIELD_REMARK, "too_long", MAX_REMARK)
    return text


def check_reason(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_REASON:
        raise InvalidValue(FIELD_REASON, "too_long", MAX_REASON)
    return text


def order_total(lines: list[OrderLine]) -> int:
    return sum(line.unit_price_fen * line.quantity for line in lines)


# --- stock --------------------------------------------------------------------------


async def reserve_stock(session: AsyncSession, variant_id: int, quantity: int) -> bool:
    """Takes `quantity` units if (and only if) that many are there, in one statement, so
    concurrent buyers can never take the same last unit."""
    result = await session.execute(
        update(Variant)
        .where(_VARIANT.id == variant_id, _VARIANT.stock >= quantity)
        .values(stock=_VARIANT.stock - quantity)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_stock(session: AsyncSession, variant_id: int, quantity: int) -> None:
    await session.execute(
        update(Variant).where(_VARIANT.id == variant_id).values(stock=_VARIANT.stock + quantity)
    )


async def _current_stock(session: AsyncSession, variant_id: int) -> int:
    return int(
        (
            await session.execute(select(_VARIANT.stock).where(_VARIANT.id == variant_id))
        ).scalar_one()
    )


# --- reading ------------------------------------------------------------------------


async def get_order(
    session: AsyncSession, shop_id: int, code: str, *, customer_id: int | None = None
) -> ShopOrder:
    """`customer_id` set: only that customer's order is found; anyone else's looks exactly
    like a number that does not exist."""
    code = normalise_code(code)
    query = select(ShopOrder).where(ShopOrder.code == code, ShopOrder.shop_id == shop_id)
    order = (await session.execute(for_writing(query, session))).scalar_one_or_none()
    if order is None or (customer_id is not None and order.user_id != customer_id):
        raise OrderNotFound(code)
    return order


async def order_lines(session: AsyncSession, order_id: int) -> list[OrderLine]:
    rows = await session.execute(
        select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.id)
    )  # type: ignore[arg-type]
    return list(rows.scalars())


async def order_detail(session: AsyncSession, order: ShopOrder) -> OrderDetail:
    assert order.id is not None
    events = await session.execute(
        select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
    )  # type: ignore[arg-type]
    requests = await session.execute(
        select(OrderRequest).where(OrderRequest.order_id == order.id).order_by(OrderRequest.id)  # type: ignore[arg-type]
    )
    return OrderDetail(
        order,
        await order_lines(session, order.id),
        list(events.scalars()),
        list(requests.scalars()),
    )


async def list_orders(
    session: AsyncSession,
    shop_id: int,
    *,
    customer_id: int | None = None,
    status: OrderStatus | None = None,
    page: int = 1,
) -> tuple[list[ShopOrder], int]:
    """Newest first; returns the page and the total count."""
    conditions = [ShopOrder.shop_id == shop_id]
    if customer_id is not None:
        conditions.append(ShopOrder.user_id == customer_id)
    if status is not None:
        conditions.append(ShopOrder.status == status.value)
    total = (
        await session.execute(select(func.count()).select_from(ShopOrder).where(*conditions))
    ).scalar_one()
    rows = await session.execute(
        select(ShopOrder)
        .where(*conditions)
        .order_by(ShopOrder.created_at.desc(), ShopOrder.id.desc())  # type: ignore[attr-defined]
        .limit(ORDER_PAGE_SIZE)
        .offset((page - 1) * ORDER_PAGE_SIZE)
    )
    return list(rows.scalars()), int(total)


# --- events -------------------------------------------------------------------------


def _event(
    session: AsyncSession,
    order: ShopOrder,
    actor: Actor,
    action: str,
    now: datetime,
    *,
    to_status: str | None = None,
    detail: str = "",
    reason: str = "",
) -> OrderEvent:
    event = OrderEvent(
        order_id=order.id or 0,
        at=now,
        actor=actor.kind,
        actor_id=actor.user_id,
        from_status=order.status,
        to_status=to_status or order.status,
        action=action,
        detail=detail[:300],
        reason=reason[:200],
    )
    session.add(event)
    if to_status is not None:
        order.status = to_status
    order.updated_at = now
    return event


def move(
    session: AsyncSession,
    order: ShopOrder,
    target: OrderStatus,
    actor: Actor,
    action: str,
    now: datetime,
    **kw: str,
) -> None:
    """The one way an order changes status: checked against order_rules, with an event."""
    order_rules.check_transition(order.status, target, action)
    _event(session, order, actor, action, now, to_status=target.value, **kw)
    if target in (S.CANCELLED, S.REFUNDED, S.COMPLETED):
        order.closed_at = now
    if target is not S.PENDING_PAYMENT:
        order.expires_at = None


def record_event(
    session: AsyncSession,
    order: ShopOrder,
    actor: Actor,
    action: str,
    now: datetime,
    *,
    detail: str = "",
    reason: str = "",
) -> OrderEvent:
    """An event that changes no status (returned goods put back on the shelf by an
    after-sales ticket): in the order's history like any other, who, when, what, why."""
    return _event(session, order, actor, action, now, detail=detail, reason=reason)


# --- creating -----------------------------------------------------------------------


async def place_order(
    session: AsyncSession,
    shop_id: int,
    user_id: int,
    group_id: int | None,
    wanted: list[tuple[int, int]],
    address: AddressSnapshot | None,
    remark: str,
    now: datetime,
    unpaid_timeout: timedelta,
) -> ShopOrder:
    """Creates an unpaid order for [(variant_id, quantity)], reserving stock atomically.
    Raises OutOfStock / ItemUnavailable (and reserves nothing) if any line cannot be had.
    Card keys (virtual items) make a virtual order, which takes no address; they are
    never mixed with physical goods (MixedVirtualOrder). A physical order needs one."""
    remark = check_remark(remark)
    # One read of the goods, their guards and what the customer bought, then one
    # conditional UPDATE per line and one INSERT per row kind (services/placing.py).
    merged = placing.merged_quantities(wanted)
    found = await placing.goods_by_id(session, shop_id, user_id, list(merged))
    return await placing.place(
        session,
        shop_id,
        user_id,
        group_id,
        [(found.get(variant_id), quantity) for variant_id, quantity in merged.items()],
        address,
        remark,
        now,
        unpaid_timeout,
    )


async def _unused_code(session: AsyncSession) -> str:
    while True:
        code = new_code()
        exists = (await session.execute(select(ShopOrder.id).where(ShopOrder.code == code))).first()
        if exists is None:
            return code


# --- customer changes ---------------------------------------------------------------


async def _open_request(
    session: AsyncSession,
    order: ShopOrder,
    kind: RequestKind,
    payload: str,
    reason: str,
    actor: Actor,
    now: datetime,
) -> OrderRequest:
    pending = (
        await session.execute(
            select(OrderRequest).where(
                OrderRequest.order_id == order.id,
                OrderRequest.kind == kind.value,
                OrderRequest.status == RequestStatus.PENDING.value,
            )
        )
    ).scalar_one_or_none()
    if pending is not None:
        raise RequestPending(kind.value)
    request = OrderRequest(
        order_id=order.id or 0,
        kind=kind.value,
        payload=payload,
        reason=reason,
        requested_by=actor.user_id or 0,
        requested_at=now,
    )
    session.add(request)
    _event(
        session,
        order,
        actor,
        f"{kind.value}_requested",
        now,
        detail=payload.replace("\t", " "),
        reason=reason,
    )
    await session.flush()
    return request


def _address_payload(address: AddressSnapshot) -> str:
    return "\t".join((address.name, address.phone, address.detail))


def _payload_address(payload: str) -> AddressSnapshot:
    name, phone, detail = payload.split("\t", 2)
    return AddressSnapshot(name, phone, detail)


def _apply_address(order: ShopOrder, address: AddressSnapshot) -> None:
    order.receiver_name, order.receiver_phone, order.receiver_address = (
        address.name,
        address.phone,
        address.detail,
    )


async def amend_address(
    session: AsyncSession, order: ShopOrder, address: AddressSnapshot, actor: Actor, now: datetime
) -> Mode:
    if order.virtual:
        raise NotForVirtualOrder(order.code, VirtualOrderAction.ADDRESS)
    mode = order_rules.change_mode(order.status, Change.ADDRESS)
    if mode is Mode.REQUEST:
        await _open_request(
            session, order, RequestKind.ADDRESS, _address_payload(address), "", actor, now
        )
        return mode
    _apply_address(order, address)
    _event(session, order, actor, "address_changed", now, detail=f"收货地址改为 {address.detail}")
    await session.flush()
    return mode


async def amend_remark(
    session: AsyncSession, order: ShopOrder, remark: str, actor: Actor, now: datetime
) -> Mode:
    remark = check_remark(remark)
    mode = order_rules.change_mode(order.status, Change.REMARK)
    if mode is Mode.REQUEST:
        await _open_request(session, order, RequestKind.REMARK, remark, "", actor, now)
        return mode
    order.remark = remark
    _event(session, order, actor, "remark_changed", now, detail=f"备注改为：{remark}")
    await session.flush()
    return mode


async def amend_quantity(
    session: AsyncSession,
    order: ShopOrder,
    ref: VariantRef,
    quantity: int,
    actor: Actor,
    now: datetime,
) -> tuple[OrderLine, int]:
    """Sets one line's quantity (0 removes it), re-reserving stock; returns the line and
    its old quantity. Unpaid orders only."""
    order_rules.change_mode(order.status, Change.QUANTITY)
    check_quantity(quantity, allow_zero=True)
    lines = await order_lines(session, order.id or 0)
    matching = [
        line
        for line in lines
        if line.item_id == ref.item_id and (ref.position is None or line.position == ref.position)
    ]
    if len(matching) != 1:
        raise LineNotInOrder(str(ref))
    line = matching[0]
    old = line.quantity
    if quantity == 0 and len(lines) == 1:
        raise LastLine(order.code)
    delta = quantity - old
    if delta > 0:
        await safeguards.check_purchase_limits(
            session, order.shop_id, order.user_id, {line.variant_id: delta}
        )
    if delta > 0 and not await reserve_stock(session, line.variant_id, delta):
        raise OutOfStock(
            line_name(line.item_name, line.variant_name),
            quantity,
            old + await _current_stock(session, line.variant_id),
        )
    if delta < 0:
        await release_stock(session, line.variant_id, -delta)
    if delta:
        await safeguards.after_stock_change(session, line.variant_id, now)
    if quantity == 0:
        await session.delete(line)
        lines.remove(line)
    else:
        line.quantity = quantity
    order.total_fen = order_total(lines)
    _event(
        session,
        order,
        actor,
        "quantity_changed",
        now,
        detail=f"{line_name(line.item_name, line.variant_name)} 数量 {old} → {quantity}，合计 {order.total_fen} 分",
    )
    await session.flush()
    return line, old


async def _release_all(session: AsyncSession, order: ShopOrder, now: datetime) -> None:
    for line in await order_lines(session, order.id or 0):
        await release_stock(session, line.variant_id, line.quantity)
        await safeguards.after_stock_change(session, line.variant_id, now)


async def cancel(
    session: AsyncSession,
    order: ShopOrder,
    actor: Actor,
    reason: str,
    now: datetime,
    *,
    action: str = "cancelled",
) -> Mode:
    """Unpaid: cancelled at once, stock released. Paid: a request for staff."""
    reason = check_reason(reason)
    # Locked and read afresh, before any stock is touched: a payment committing meanwhile
    # (another process, PostgreSQL) is seen (the cancel becomes a request), and the lock
    # order (order, then stock) is record_payment's, so the two cannot deadlock.
    await session.refresh(order, with_for_update=True)
    mode = order_rules.change_mode(order.status, Change.CANCEL)
    if mode is Mode.REQUEST:
        await _open_request(session, order, RequestKind.CANCEL, "", reason, actor, now)
        return mode
    await _release_all(session, order, now)
    move(session, order, S.CANCELLED, actor, action, now, reason=reason)
    await session.flush()
    return mode


# --- staff decisions ----------------------------------------------------------------


async def decide(
    session: AsyncSession,
    order: ShopOrder,
    approve: bool,
    actor: Actor,
    reason: str,
    now: datetime,
    *,
    kinds: frozenset[RequestKind] | None = None,
) -> list[OrderRequest]:
    """Approves or rejects the pending requests of the order (of `kinds`, default all);
    returns them. A cancellation is applied last: once it refunds the order, nothing
    else can be changed, and requests still pending become superseded."""
    reason = check_reason(reason)
    detail = await order_detail(session, order)
    pending = [r for r in detail.pending_requests if kinds is None or RequestKind(r.kind) in kinds]
    if not pending:
        raise NoPendingRequest(order.code)
    pending.sort(key=lambda r: r.kind == RequestKind.CANCEL.value)
    for request in pending:
        if approve:
            await _apply_request(session, order, request, actor, reason, now)
        else:
            _event(session, order, actor, f"{request.kind}_rejected", now, reason=reason)
        _settle(
            request,
            RequestStatus.APPROVED if approve else RequestStatus.REJECTED,
            actor,
            reason,
            now,
        )
    await session.flush()
    return pending


def _settle(
    request: OrderRequest, status: RequestStatus, actor: Actor, reason: str, now: datetime
) -> None:
    request.status = status.value
    request.decided_by = actor.user_id
    request.decided_at = now
    request.decision_reason = reason


async def _supersede_pending(
    session: AsyncSession, order: ShopOrder, actor: Actor, now: datetime
) -> None:
    """The order closed (refunded): whatever the customer still asked for is moot. A
    cancellation request counts as granted (the money went back)."""
    rows = await session.execute(
        select(OrderRequest).where(
            OrderRequest.order_id == order.id, OrderRequest.status == RequestStatus.PENDING.value
        )
    )
    for request in rows.scalars():
        granted = request.kind == RequestKind.CANCEL.value
        _settle(
            request,
            RequestStatus.APPROVED if granted else RequestStatus.SUPERSEDED,
            actor,
            "订单已全额退款",
            now,
        )


async def _apply_request(
    session: AsyncSession,
    order: ShopOrder,
    request: OrderRequest,
    actor: Actor,
    reason: str,
    now: datetime,
) -> None:
    kind = RequestKind(request.kind)
    # The order may have moved on (shipped) since the request was made.
    if order.status != S.PAID.value:
        raise InvalidTransition(order.status, f"approve_{kind.value}")
    if kind is RequestKind.ADDRESS:
        address = _payload_address(request.payload)
        _apply_address(order, address)
        _event(
            session,
            order,
            actor,
            "address_changed",
            now,
            detail=f"收货地址改为 {address.detail}",
            reason=reason,
        )
    elif kind is RequestKind.REMARK:
        order.remark = request.payload
        _event(
            session,
            order,
            actor,
            "remark_changed",
            now,
            detail=f"备注改为：{request.payload}",
            reason=reason,
        )
    else:
        await refund(
            session,
            order,
            None,
            reason or request.reason or "取消订单",
            actor,
            now,
            action="cancel_approved",
        )


async def open_requests_due(
    session: AsyncSession, kind: RequestKind, requested_before: datetime
) -> list[tuple[OrderRequest, ShopOrder]]:
    rows = await session.execute(
        select(OrderRequest, ShopOrder)
        .join(ShopOrder, ShopOrder.id == OrderRequest.order_id)
        .where(
            OrderRequest.kind == kind.value,
            OrderRequest.status == RequestStatus.PENDING.value,
            OrderRequest.requested_at <= requested_before,
        )
        .order_by(OrderRequest.id)  # type: ignore[arg-type]
    )
    return [(request, order) for request, order in rows]


# --- money --------------------------------------------------------------------------


async def record_payment(
    session: AsyncSession,
    order: ShopOrder,
    provider: str,
    reference: str,
    amount_fen: int,
    actor: Actor,
    now: datetime,
) -> bool:
    """Marks an unpaid order paid. Idempotent: the same (provider, reference) twice changes
    nothing and returns False. Returns True when this call recorded the payment."""
    # Two payments for one order may arrive at once (two gateway notifies, a notify and
    # staff's /收款, two bot processes). Each reads the order under its row lock, afresh:
    # the second waits until the first commits and then sees its status and its Payment
    # row, so only one payment ever moves the order to paid. (SQLite renders no FOR
    # UPDATE; its single writer already serialises these transactions.)
    await session.refresh(order, with_for_update=True)
    known = (
        await session.execute(
            select(Payment).where(Payment.provider == provider, Payment.reference == reference)
        )
    ).scalar_one_or_none()
    if known is not None:
        return False
    late = (
        order.status == S.CANCELLED.value and order.paid_fen == 0 and await _expired(session, order)
    )
    if order.status != S.PENDING_PAYMENT.value and not late:
        if order.paid_fen > 0:
            raise AlreadyPaid(order.code)
        raise InvalidTransition(order.status, "pay")
    if amount_fen != order.total_fen:
        raise InvalidValue(FIELD_AMOUNT, "mismatch", order.total_fen)
    if late:
        await _reserve_again(session, order, now)
    session.add(
        Payment(
            order_id=order.id or 0,
            provider=provider,
            reference=reference,
            amount_fen=amount_fen,
            recorded_by=actor.user_id,
            at=now,
        )
    )
    order.paid_fen = amount_fen
    order.paid_at = now
    if late:
        move(
            session,
            order,
            S.PAID,
            actor,
            "paid_late",
            now,
            detail=f"超时取消后收到付款，订单恢复；{provider} 收款 {amount_fen} 分",
        )
        order.closed_at = None
    else:
        move(session, order, S.PAID, actor, "paid", now, detail=f"{provider} 收款 {amount_fen} 分")
    for line in await order_lines(session, order.id or 0):
        await session.execute(
            update(Variant)
            .where(_VARIANT.id == line.variant_id)
            .values(sold=_VARIANT.sold + line.quantity)
        )
    await session.flush()
    return True


async def _expired(session: AsyncSession, order: ShopOrder) -> bool:
    """Was the order closed by the unpaid-order clock (not by the customer or staff)?"""
    action = (
        await session.execute(
            select(OrderEvent.action)
            .where(OrderEvent.order_id == order.id, OrderEvent.to_status == S.CANCELLED.value)
            .order_by(OrderEvent.id.desc())  # type: ignore[union-attr]
            .limit(1)
        )
    ).scalar_one_or_none()
    return action == REVIVABLE_CANCELLATION


async def _reserve_again(session: AsyncSession, order: ShopOrder, now: datetime) -> None:
    """Takes the expired order's stock back off the shelf, all lines or (the caller's
    transaction rolling back) none."""
    for line in await order_lines(session, order.id or 0):
        if not await reserve_stock(session, line.variant_id, line.quantity):
            available = await _current_stock(session, line.variant_id)
            raise LatePaymentStockGone(
                order.code, line_name(line.item_name, line.variant_name), available
            )
        await safeguards.after_stock_change(session, line.variant_id, now)


def refund_amount(order: ShopOrder, amount_fen: int | None) -> int:
    """The amount a refund of `amount_fen` (None: all that is left) would pay out: never
    more than paid minus already refunded. The one place that rule lives."""
    refundable = order.paid_fen - order.refunded_fen
    amount = refundable if amount_fen is None else amount_fen
    if refundable <= 0:
        raise RefundTooLarge(amount, 0)  # nothing left: rendered as "already fully refunded"
    if amount <= 0:
        raise InvalidValue(FIELD_AMOUNT, "too_small", 1)
    if amount > refundable:
        raise RefundTooLarge(amount, refundable)
    return amount


async def refund(
    session: AsyncSession,
    order: ShopOrder,
    amount_fen: int | None,
    reason: str,
    actor: Actor,
    now: datetime,
    *,
    action: str = "refunded",
) -> tuple[int, bool]:
    """Refunds `amount_fen` (None: everything refundable). Never more than paid minus
    already refunded. A full refund closes the order (→ refunded); if it had not shipped
    yet, its stock goes back on the shelf. Returns (amount, fully_refunded)."""
    reason = check_reason(reason)
    if OrderStatus(order.status) not in REFUNDABLE:
        raise InvalidTransition(order.status, "refund")
    amount = refund_amount(order, amount_fen)
    session.add(
        Refund(order_id=order.id or 0, amount_fen=amount, reason=reason, by=actor.user_id, at=now)
    )
    order.refunded_fen += amount
    fully = order.refunded_fen == order.paid_fen
    if fully:
        if order.status == S.PAID.value:
            await _release_all(session, order, now)
            for line in await order_lines(session, order.id or 0):
                await session.execute(
                    update(Variant)
                    .where(_VARIANT.id == line.variant_id)
                    .values(sold=_VARIANT.sold - line.quantity)
                )
        move(
            session,
            order,
            S.REFUNDED,
            actor,
            action,
            now,
            detail=f"退款 {amount} 分",
            reason=reason,
        )
        await _supersede_pending(session, order, actor, now)
    else:
        _event(
            session,
            order,
            actor,
            "partial_refund",
            now,
            detail=f"部分退款 {amount} 分",
            reason=reason,
        )
    await session.flush()
    return amount, fully


# --- clocks -------------------------------------------------------------------------


async def unpaid_due(session: AsyncSession, now: datetime) -> list[ShopOrder]:
    rows = await session.execute(
        select(ShopOrder)
        .where(ShopOrder.status == S.PENDING_PAYMENT.value, ShopOrder.expires_at <= now)  # type: ignore[operator]
        .order_by(ShopOrder.id)  # type: ignore[arg-type]
    )
    return list(rows.scalars())


async def reminders_due(
    session: AsyncSession, now: datetime, unpaid_timeout: timedelta
) -> list[ShopOrder]:
    """Unpaid orders past half their payment time that were not reminded yet."""
    rows = await session.execute(
        select(ShopOrder)
        .where(
            ShopOrder.status == S.PENDING_PAYMENT.value,
            ShopOrder.reminded_at.is_(None),  # type: ignore[union-attr]
            ShopOrder.created_at <= now - unpaid_timeout / 2,
            ShopOrder.expires_at > now,  # type: ignore[operator]
        )
        .order_by(ShopOrder.id)  # type: ignore[arg-type]
    )
    return list(rows.scalars())
