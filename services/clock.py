"""The shop's clocks for orders. Each job finds its work in the database (so it catches
up after downtime), handles each order in its own transaction, and is idempotent: a
second run at the same moment finds nothing left to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.db import Database
from models.tables import OrderStatus, RequestKind

from . import notices, orders
from .errors import ShopError
from .orders import Actor


@dataclass(frozen=True)
class OrderClockSettings:
    unpaid_timeout: timedelta
    refund_auto_approve: timedelta


@dataclass
class ClockReport:
    expired: list[str] = field(default_factory=list)
    reminded: list[str] = field(default_factory=list)
    auto_approved: list[str] = field(default_factory=list)


async def run_order_clocks(
    database: Database, settings: OrderClockSettings, now: datetime
) -> ClockReport:
    report = ClockReport()
    async with database.read() as session:
        expiring = [o.id for o in await orders.unpaid_due(session, now)]
        reminding = [
            o.id for o in await orders.reminders_due(session, now, settings.unpaid_timeout)
        ]
        approving = [
            (request.id, order.id)
            for request, order in await orders.open_requests_due(
                session, RequestKind.CANCEL, now - settings.refund_auto_approve
            )
        ]
    for order_id in expiring:
        async with database.write() as session:
            # Locked and read afresh: a payment committed meanwhile (another process,
            # PostgreSQL) is seen here, and expiring never overwrites it. The order is
            # locked before its stock, as record_payment does: no deadlock between them.
            order = await session.get(orders.ShopOrder, order_id, with_for_update=True)
            if order is None or order.status != OrderStatus.PENDING_PAYMENT.value:
                continue
            await orders.cancel(session, order, Actor.system(), "超时未付款", now, action="expired")
            await notices.to_customer(session, order, notices.order_expired(order), "expired", now)
            report.expired.append(order.code)
    for order_id in reminding:
        async with database.write() as session:
            order = await session.get(orders.ShopOrder, order_id)
            if (
                order is None
                or order.reminded_at is not None
                or order.status != OrderStatus.PENDING_PAYMENT.value
            ):
                continue
            order.reminded_at = now
            assert order.expires_at is not None
            minutes_left = max(1, round((order.expires_at - now).total_seconds() / 60))
            await notices.to_customer(
                session, order, notices.payment_reminder(order, minutes_left), "remind", now
            )
            report.reminded.append(order.code)
    for _request_id, order_id in approving:
        try:
            async with database.write() as session:
                order = await session.get(orders.ShopOrder, order_id)
                if order is None:
                    continue
                # Paid and still undecided: approved. Shipped meanwhile: too late to cancel.
                approve = order.status == OrderStatus.PAID.value
                reason = (
                    "超时未处理，系统自动同意"
                    if approve
                    else "订单已发货，取消申请失效，如需退款请走售后"
                )
                decided = await orders.decide(
                    session,
                    order,
                    approve,
                    Actor.system(),
                    reason,
                    now,
                    kinds=frozenset({RequestKind.CANCEL}),
                )
                await notices.tell_requests_decided(session, order, decided, approve, reason, now)
                report.auto_approved.append(order.code)
        except ShopError:
            # Rolled back as a whole; the next tick sees the order as it is then.
            continue
    return report
