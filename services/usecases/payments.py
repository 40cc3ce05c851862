"""Recording a payment: one use case whichever door the money comes through (staff typing
/收款 today; the payment gateway's callback and a reconciliation clock next)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.tables import OrderStatus, ShopOrder
from models.types import utcnow

from .. import notices, orders
from ..actors import Actor
from ..codes import normalise_code
from ..context import ShopContext
from .card_keys import deliver_with_payment

MANUAL = "manual"


@dataclass(frozen=True)
class PaymentOutcome:
    order: ShopOrder
    recorded: bool  # False: this (provider, reference) was recorded before, nothing changed
    revived: bool  # the order had expired unpaid and is back, its stock reserved again
    keys_delivered: bool = False  # a virtual order: its card keys were handed out, completed


def manual_reference(order_code: str) -> str:
    """The reference of a payment staff confirm by hand: one per order, so confirming the
    same order twice records it once."""
    return f"{MANUAL}:{normalise_code(order_code)}"


async def record_payment(
    shop: ShopContext,
    actor: Actor,
    order_code: str,
    *,
    provider: str,
    reference: str,
    amount_fen: int | None,
    notify_staff: bool = False,
    now: datetime | None = None,
) -> PaymentOutcome:
    """Marks the order paid and tells its customer. Idempotent by (provider, reference).
    `amount_fen` None: the order's total, as when staff confirm by hand that it arrived.
    An order that expired unpaid is revived if its stock can be reserved again; otherwise
    (and for any order that cannot take a payment) a ShopError refuses it.
    `notify_staff`: also tell staff there is a paid order to ship, for payments they did
    not record themselves.
    A virtual order gets its card keys in this same transaction, whichever door the
    money came through: completed, keys queued to the buyer privately (exactly once per
    order, see services/card_keys.deliver)."""
    now = now or utcnow()
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, order_code)
        # PostgreSQL: the order's row is locked until this transaction ends, so two doors
        # paying it at once (a notify and /收款) are taken one after the other and the
        # second sees the first's outcome (SQLite's single writer does this already).
        await session.refresh(order, with_for_update=True)
        # orders.record_payment takes a cancelled order only if it expired unpaid.
        was_cancelled = order.status == OrderStatus.CANCELLED.value
        amount = order.total_fen if amount_fen is None else amount_fen
        recorded = await orders.record_payment(
            session, order, provider, reference, amount, actor, now
        )
        revived = recorded and was_cancelled
        keys_delivered = False
        if recorded and order.virtual:
            keys_delivered = (
                await deliver_with_payment(shop, session, order, notify_staff=notify_staff, now=now)
                > 0
            )
        elif recorded:
            await notices.to_customer(
                session, order, notices.payment_received(order, revived=revived), "paid", now
            )
            if notify_staff:
                await notices.to_staff(
                    session,
                    shop.shop_id,
                    shop.owners,
                    notices.paid_order_for_staff(order),
                    f"order:{order.code}:paid",
                    now,
                )
    return PaymentOutcome(order, recorded, revived, keys_delivered)
