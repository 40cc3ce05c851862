"""What staff do to orders: list them all, decide customers' requests, refund, set the
payment instructions, read the numbers, ask the payment gateway now (/对账). (Recording a
payment: usecases/payments.py.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from config import PaymentProvider
from models.tables import (
    OrderLine,
    OrderRequest,
    OrderStatus,
    RequestKind,
    RequestStatus,
    ShopOrder,
)
from models.types import utcnow

from .. import notices, orders, stats
from .. import shop as shop_row
from ..actors import Caller
from ..codes import normalise_code
from ..context import ShopContext
from ..errors import NoPendingRequestOfKind, PaymentGatewayError
from ..media import download_image
from .epay import ReconcileReport, reconcile


@dataclass(frozen=True)
class OrderListing:
    rows: list[tuple[ShopOrder, list[OrderLine]]]  # newest first, each with its lines
    total: int  # orders matching, over all pages
    page: int
    status: OrderStatus | None


@dataclass(frozen=True)
class RequestsDecided:
    """What one /审核 decided. `requests` are the decided ones (the order shows what
    approving them changed); `superseded` were pending too but became moot when an
    approved cancellation refunded the order; `still_pending` are left for another /审核."""

    order: ShopOrder
    requests: list[OrderRequest]
    approved: bool
    reason: str = ""
    superseded: list[OrderRequest] = field(default_factory=list)
    still_pending: list[OrderRequest] = field(default_factory=list)


@dataclass(frozen=True)
class RefundOutcome:
    order: ShopOrder
    refunded_fen: int  # this refund; order.refunded_fen is the running total
    fully: bool  # everything paid is back and the order is closed


@dataclass(frozen=True)
class PaymentInfo:
    text: str
    has_qr: bool


@dataclass(frozen=True)
class Reconciliation:
    """What /对账 asked the gateway and what came of each payment attempt."""

    automatic: bool  # False: PAYMENT_PROVIDER=manual, there is no gateway to ask
    order_code: str | None  # the one order asked about; None: every attempt due
    report: ReconcileReport = field(default_factory=lambda: ReconcileReport(()))


async def list_orders(
    shop: ShopContext, caller: Caller, *, status: OrderStatus | None = None, page: int = 1
) -> OrderListing:
    """/订单列表: every customer's orders for staff (a customer would see only their own)."""
    async with shop.database.read() as session:
        rows, total = await orders.list_orders(
            session, shop.shop_id, customer_id=caller.own_only, status=status, page=page
        )
        with_lines = [(order, await orders.order_lines(session, order.id or 0)) for order in rows]
    return OrderListing(with_lines, total, page, status)


async def decide_requests(
    shop: ShopContext,
    caller: Caller,
    order_code: str,
    *,
    approve: bool,
    kind: RequestKind | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> RequestsDecided:
    """/审核: approves or rejects the pending request of `kind`, or (None) every pending
    request of the order; the customer hears about each decided one. A kind with nothing
    pending is refused with what is pending instead."""
    now = now or utcnow()
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, order_code)
        pending = (await orders.order_detail(session, order)).pending_requests
        if kind is not None and pending and all(r.kind != kind.value for r in pending):
            raise NoPendingRequestOfKind(
                order.code, kind, tuple(RequestKind(r.kind) for r in pending)
            )
        kinds = None if kind is None else frozenset({kind})
        decided = await orders.decide(
            session, order, approve, caller.actor, reason, now, kinds=kinds
        )
        await notices.tell_requests_decided(session, order, decided, approve, reason, now)
    # The same rows as in the session: an approved cancellation marked the rest superseded.
    left = [r for r in pending if all(r.id != d.id for d in decided)]
    return RequestsDecided(
        order,
        decided,
        approve,
        reason.strip(),
        superseded=[r for r in left if r.status == RequestStatus.SUPERSEDED.value],
        still_pending=[r for r in left if r.status == RequestStatus.PENDING.value],
    )


async def refund(
    shop: ShopContext,
    caller: Caller,
    order_code: str,
    *,
    amount_fen: int | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> RefundOutcome:
    """/退款: `amount_fen` None refunds everything still refundable; the customer hears."""
    now = now or utcnow()
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, order_code)
        refunded, fully = await orders.refund(session, order, amount_fen, reason, caller.actor, now)
        # Keyed by the running total, so each refund of the order is its own notice.
        await notices.to_customer(
            session,
            order,
            notices.refunded(order, refunded, fully),
            f"refund:{order.refunded_fen}",
            now,
        )
    return RefundOutcome(order, refunded, fully)


async def set_payment_info(
    shop: ShopContext, caller: Caller, *, text: str, image_url: str | None = None
) -> PaymentInfo:
    """/设置收款: the instructions /付款 shows (empty text keeps the old one) and, from
    `image_url`, a new QR image replacing the old one."""
    # Downloaded before the transaction: a slow image host must not hold the write lock.
    qr_path = await download_image(image_url, shop.data_dir) if image_url else None
    async with shop.database.write() as session:
        row = await shop_row.set_payment_info(session, shop.shop_id, text, qr_path)
    return PaymentInfo(row.payment_text, row.payment_qr_path is not None)


async def shop_stats(
    shop: ShopContext, caller: Caller, period: str, now: datetime | None = None
) -> stats.ShopStats:
    """/统计 over `period` (a key of stats.PERIODS), in the shop's time zone."""
    async with shop.database.read() as session:
        return await stats.shop_stats(
            session, shop.shop_id, period, now or utcnow(), shop.settings.timezone
        )


async def reconcile_payments(
    shop: ShopContext,
    caller: Caller,
    order_code: str | None = None,
    now: datetime | None = None,
) -> Reconciliation:
    """/对账 [订单号]: asks the EPay gateway now about one order's payment attempts (live
    or expired), or about every live attempt due for its periodic check, and records
    what was paid exactly as a notify would (customer and staff are told). With
    PAYMENT_PROVIDER=manual there is nothing to ask."""
    if shop.settings.payment_provider is not PaymentProvider.EPAY:
        return Reconciliation(automatic=False, order_code=order_code)
    gateway = shop.payment_gateway
    if gateway is None:
        raise PaymentGatewayError("", "PAYMENT_PROVIDER=epay but no gateway is configured")
    code = normalise_code(order_code) if order_code is not None else None
    report = await reconcile(shop, gateway, now or utcnow(), code, every_live=True)
    return Reconciliation(automatic=True, order_code=code, report=report)
