"""Paying through the EPay gateway (PAYMENT_PROVIDER=epay): a customer starts a payment
(/付款), the gateway tells us it was paid (the notify callback), and a clock or staff ask
the gateway about payments we have not heard of (reconciliation, /对账). Money that pays
an order goes through the one payment use case (usecases/payments.record_payment);
money that pays none changes no order and alerts staff once."""

from __future__ import annotations

import asyncio
import io
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import segno
from sqlalchemy.exc import IntegrityError

from config import PaymentProvider
from models.tables import OrderStatus, PaymentAttempt, PayType, ShopOrder
from models.types import utcnow

from .. import epay, notices, orders, payment_attempts
from ..actors import Actor, Caller
from ..codes import normalise_code
from ..context import ShopContext
from ..epay import EpayGateway
from ..errors import (
    AlreadyPaid,
    InvalidTransition,
    InvalidValue,
    LatePaymentStockGone,
    PaymentGatewayError,
    PayTypeNotOffered,
)
from ..order_rules import status_name
from .payments import record_payment

PROVIDER = "epay"  # Payment.provider of gateway payments; the reference is its trade_no
# mapi.php wants the payer's IP; a chat customer has none we know of. Gateways use it
# for risk checks only.
UNKNOWN_CLIENT_IP = "127.0.0.1"
RECONCILE_BATCH = 200  # attempts asked about per clock run at most
RECONCILE_CONCURRENCY = 4  # gateway queries in flight at once
_NEW_ATTEMPT_TRIES = 3  # the order may change while the gateway is asked; then again


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentLink:
    """What /付款 shows: the amount, the link and a QR code of it."""

    order_code: str
    out_trade_no: str
    pay_type: PayType
    amount_fen: int
    pay_url: str
    qr_png: bytes
    reused: bool  # an attempt made earlier for the same total and method
    expires_at: datetime | None  # the order's; unpaid by then it is cancelled


class AlertReason(StrEnum):
    """Why money the gateway took paid no order (each alerts staff once)."""

    UNKNOWN = "unknown"  # no attempt with that out_trade_no
    VOIDED = "voided"  # the order's total changed after the attempt was made
    MISMATCH = "mismatch"  # the money is not the attempt's (or order's) amount
    ALREADY_PAID = "already_paid"  # a second payment of a paid order
    CLOSED = "closed"  # the order was cancelled (not expired) or refunded
    STOCK_GONE = "stock_gone"  # late money for an expired order whose stock was sold


class CheckResult(StrEnum):
    RECORDED = "recorded"  # the order is paid now
    DUPLICATE = "duplicate"  # recorded before: nothing changed
    ALERTED = "alerted"  # verified money that pays no order: staff told, nothing changed
    NOT_PAID = "not_paid"  # notify: trade_status not TRADE_SUCCESS; query: not paid yet
    REJECTED = "rejected"  # notify: wrong pid or signature (or epay not configured)
    EXPIRED = "expired"  # query: still unpaid past the unpaid timeout + grace
    UNREACHABLE = "unreachable"  # query: the gateway could not answer


@dataclass(frozen=True)
class PaymentCheck:
    """The outcome of one notify, or of one attempt asked about by reconciliation."""

    result: CheckResult
    out_trade_no: str
    order_code: str | None = None
    alert: AlertReason | None = None
    revived: bool = False  # recorded for an order that had expired unpaid
    detail: str = ""  # UNREACHABLE: the gateway's reason, for staff and logs

    @property
    def answer(self) -> str:
        """What the notify endpoint answers: `success` to every verified notify (anything
        else makes the gateway retry for hours), `fail` otherwise."""
        return "fail" if self.result is CheckResult.REJECTED else "success"


NotifyOutcome = PaymentCheck


@dataclass(frozen=True)
class ReconcileReport:
    checks: tuple[PaymentCheck, ...]

    def _with(self, result: CheckResult) -> tuple[PaymentCheck, ...]:
        return tuple(check for check in self.checks if check.result is result)

    @property
    def recorded(self) -> tuple[PaymentCheck, ...]:
        return self._with(CheckResult.RECORDED)

    @property
    def alerts(self) -> tuple[PaymentCheck, ...]:
        return self._with(CheckResult.ALERTED)

    @property
    def expired(self) -> tuple[PaymentCheck, ...]:
        return self._with(CheckResult.EXPIRED)

    @property
    def unreachable(self) -> tuple[PaymentCheck, ...]:
        return self._with(CheckResult.UNREACHABLE)


# --- /付款 -------------------------------------------------------------------------------

# Two /付款 for one order at the same moment (a double tap) must not both create an
# attempt: the second waits and reuses the first's.
_order_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


@asynccontextmanager
async def _one_at_a_time(order_code: str) -> AsyncIterator[None]:
    lock = _order_locks.get(order_code)
    if lock is None:
        lock = _order_locks[order_code] = asyncio.Lock()
    async with lock:
        yield


def _check_payable(order: ShopOrder) -> None:
    if order.status != OrderStatus.PENDING_PAYMENT.value:
        if order.paid_fen > 0:
            raise AlreadyPaid(order.code)
        raise InvalidTransition(order.status, "pay")


def _payment_name(shop: ShopContext, order: ShopOrder) -> str:
    """The product name the payer sees on the gateway's page."""
    return f"{shop.settings.shop_name} 订单{order.code}"[:60]


def qr_png(text: str) -> bytes:
    """A QR code of `text` as PNG, made locally (no third-party QR service sees the link)."""
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()


async def _link(order: ShopOrder, attempt: PaymentAttempt, *, reused: bool) -> PaymentLink:
    png = await asyncio.to_thread(qr_png, attempt.qr_text or attempt.pay_url)
    return PaymentLink(
        order_code=order.code,
        out_trade_no=attempt.out_trade_no,
        pay_type=PayType(attempt.type),
        amount_fen=attempt.amount_fen,
        pay_url=attempt.pay_url,
        qr_png=png,
        reused=reused,
        expires_at=order.expires_at,
    )


def _chosen_type(shop: ShopContext, pay_type: PayType | None) -> PayType:
    offered = shop.settings.pay_types
    if pay_type is None:
        return offered[0]
    if pay_type not in offered:
        raise PayTypeNotOffered(pay_type.value, tuple(t.value for t in offered))
    return pay_type


async def start_payment(
    shop: ShopContext,
    caller: Caller,
    order_code: str,
    pay_type: PayType | None,
    gateway: EpayGateway,
    now: datetime | None = None,
) -> PaymentLink:
    """/付款 <订单号> [方式] with PAYMENT_PROVIDER=epay: the caller's unpaid order (staff:
    any) gets a payment link and QR code. A live attempt of the same method for the same
    total, younger than the unpaid timeout, is shown again; otherwise the gateway
    creates a new one (`<order code>-<n>`). The gateway is asked outside any write
    transaction, so a slow gateway never holds SQLite's write lock."""
    now = now or utcnow()
    chosen = _chosen_type(shop, pay_type)
    code = normalise_code(order_code)
    settings = shop.settings
    async with _one_at_a_time(code):
        for _ in range(_NEW_ATTEMPT_TRIES):
            async with shop.database.read() as session:
                order = await orders.get_order(
                    session, shop.shop_id, code, customer_id=caller.own_only
                )
                _check_payable(order)
                reusable = await payment_attempts.reusable_attempt(
                    session, order, chosen, now - settings.unpaid_timeout
                )
                if reusable is not None:
                    return await _link(order, reusable, reused=True)
                out_trade_no = await payment_attempts.next_out_trade_no(session, order)
            amount = order.total_fen
            created = await gateway.create(
                out_trade_no,
                chosen,
                _payment_name(shop, order),
                amount,
                gateway.notify_url,
                gateway.return_url,
                UNKNOWN_CLIENT_IP,
            )
            try:
                async with shop.database.write() as session:
                    order = await orders.get_order(session, shop.shop_id, code)
                    unchanged = (
                        order.status == OrderStatus.PENDING_PAYMENT.value
                        and order.total_fen == amount
                    )
                    attempt = payment_attempts.add_attempt(
                        session,
                        order,
                        out_trade_no,
                        chosen,
                        amount,
                        created,
                        now,
                        settings.epay_reconcile_every,
                        live=unchanged,
                    )
            except IntegrityError:
                # Another bot process stored this out_trade_no first (PostgreSQL): look
                # again, its attempt may be the one to show.
                continue
            if unchanged:
                return await _link(order, attempt, reused=False)
            _check_payable(order)  # paid or closed meanwhile: refused as such
        raise InvalidTransition(order.status, "pay")  # changed on every try


# --- the notify callback ---------------------------------------------------------------


async def handle_notify(
    shop: ShopContext, params: Mapping[str, str], now: datetime | None = None
) -> PaymentCheck:
    """A notify from the gateway (GET query or POST form, as a dict of strings). Only a
    notify with our pid and a valid signature is believed; only trade_status
    TRADE_SUCCESS means paid. Idempotent: the gateway repeats notifies until it reads
    `success`, and two may race."""
    now = now or utcnow()
    settings = shop.settings
    out_trade_no = str(params.get("out_trade_no", ""))[:64]
    if settings.payment_provider is not PaymentProvider.EPAY or not epay.verify(
        params, settings.epay_key.get_secret_value(), settings.epay_pid
    ):
        return PaymentCheck(CheckResult.REJECTED, out_trade_no)
    if params.get("trade_status") != epay.TRADE_SUCCESS:
        return PaymentCheck(CheckResult.NOT_PAID, out_trade_no)
    trade_no = str(params.get("trade_no") or "").strip()[:64] or out_trade_no
    return await _settle(shop, out_trade_no, trade_no, str(params.get("money", "")), now)


async def _settle(
    shop: ShopContext, out_trade_no: str, trade_no: str, money: str, now: datetime
) -> PaymentCheck:
    """Money the gateway took for `out_trade_no` (a verified notify, or a query that
    says paid): record it on its order, or tell staff why not. Notify and reconciliation
    share this, so both follow the same rules."""
    async with shop.database.read() as session:
        found = await payment_attempts.find_attempt(session, shop.shop_id, out_trade_no)
    if found is None:
        body = notices.epay_unknown_payment(out_trade_no, trade_no, money[:20])
        return await _alert(shop, AlertReason.UNKNOWN, out_trade_no, None, body, now)
    attempt, order = found
    if attempt.state == payment_attempts.A.PAID.value and attempt.trade_no == trade_no:
        return PaymentCheck(CheckResult.DUPLICATE, out_trade_no, order.code)
    shown = money[:20]
    if attempt.state == payment_attempts.A.VOIDED.value:
        body = notices.epay_voided_payment(order.code, out_trade_no, trade_no, shown)
        return await _alert(shop, AlertReason.VOIDED, out_trade_no, order.code, body, now)
    if not epay.money_matches(money, attempt.amount_fen):
        body = notices.epay_amount_mismatch(
            order.code, out_trade_no, trade_no, shown, attempt.amount_fen
        )
        return await _alert(shop, AlertReason.MISMATCH, out_trade_no, order.code, body, now)
    try:
        outcome = await record_payment(
            shop,
            Actor.system(),
            order.code,
            provider=PROVIDER,
            reference=trade_no,
            amount_fen=attempt.amount_fen,
            notify_staff=True,
            now=now,
        )
    except AlreadyPaid:
        body = notices.epay_second_payment(order.code, out_trade_no, trade_no, shown)
        return await _alert(
            shop, AlertReason.ALREADY_PAID, out_trade_no, order.code, body, now, attempt, trade_no
        )
    except LatePaymentStockGone as gone:
        body = notices.epay_late_payment_stock_gone(
            order.code, gone.name, gone.available, out_trade_no, trade_no, shown
        )
        return await _alert(
            shop, AlertReason.STOCK_GONE, out_trade_no, order.code, body, now, attempt, trade_no
        )
    except InvalidTransition as closed:
        body = notices.epay_closed_order_paid(
            order.code, status_name(closed.status), out_trade_no, trade_no, shown
        )
        return await _alert(
            shop, AlertReason.CLOSED, out_trade_no, order.code, body, now, attempt, trade_no
        )
    except InvalidValue:
        # The order's total changed without voiding this attempt: still a mismatch.
        body = notices.epay_amount_mismatch(
            order.code, out_trade_no, trade_no, shown, order.total_fen
        )
        return await _alert(shop, AlertReason.MISMATCH, out_trade_no, order.code, body, now)
    except IntegrityError:
        # PostgreSQL: a racing notify inserted the same (provider, trade_no) first.
        outcome = None
    async with shop.database.write() as session:
        await payment_attempts.mark_paid(session, attempt.id or 0, trade_no, now)
    if outcome is None or not outcome.recorded:
        return PaymentCheck(CheckResult.DUPLICATE, out_trade_no, order.code)
    return PaymentCheck(CheckResult.RECORDED, out_trade_no, order.code, revived=outcome.revived)


async def _alert(
    shop: ShopContext,
    reason: AlertReason,
    out_trade_no: str,
    order_code: str | None,
    body: str,
    now: datetime,
    paid_attempt: PaymentAttempt | None = None,
    trade_no: str = "",
) -> PaymentCheck:
    """Tells staff once per payment and reason (the gateway repeats notifies, the clock
    asks again). `paid_attempt`: the gateway did take money for it, so it needs no more
    reconciliation."""
    async with shop.database.write() as session:
        await notices.to_staff(
            session, shop.shop_id, shop.owners, body, f"epay:{out_trade_no}:{reason}", now
        )
        if paid_attempt is not None:
            await payment_attempts.mark_paid(session, paid_attempt.id or 0, trade_no, now)
    return PaymentCheck(CheckResult.ALERTED, out_trade_no, order_code, alert=reason)


# --- reconciliation --------------------------------------------------------------------


async def reconcile(
    shop: ShopContext,
    gateway: EpayGateway,
    now: datetime | None = None,
    order_code: str | None = None,
    *,
    every_live: bool = False,
) -> ReconcileReport:
    """Asks the gateway about payments we may not have heard of (lost notifies, no public
    URL). Without `order_code` (the clock): live attempts due for a check, each every
    EPAY_RECONCILE_MINUTES until the unpaid timeout plus EPAY_RECONCILE_GRACE_MINUTES
    have passed (then it expires); with `every_live` (/对账, staff) every live attempt now.
    With `order_code` (/对账 <订单号>): that order's live and expired attempts, now. A
    paid answer is settled exactly like a notify."""
    now = now or utcnow()
    async with shop.database.read() as session:
        if order_code is None:
            to_ask = await payment_attempts.attempts_due(
                session, shop.shop_id, now, RECONCILE_BATCH, every_live=every_live
            )
        else:
            order = await orders.get_order(session, shop.shop_id, order_code)
            to_ask = await payment_attempts.attempts_to_ask(session, order)
    limit = asyncio.Semaphore(RECONCILE_CONCURRENCY)

    async def ask(attempt: PaymentAttempt, order: ShopOrder) -> PaymentCheck:
        async with limit:
            return await _ask_gateway(shop, gateway, attempt, order, now)

    checks = await asyncio.gather(*(ask(attempt, order) for attempt, order in to_ask))
    return ReconcileReport(tuple(checks))


async def _ask_gateway(
    shop: ShopContext,
    gateway: EpayGateway,
    attempt: PaymentAttempt,
    order: ShopOrder,
    now: datetime,
) -> PaymentCheck:
    settings = shop.settings
    try:
        answer = await gateway.query(attempt.out_trade_no)
    except PaymentGatewayError as error:
        async with shop.database.write() as session:
            await payment_attempts.checked_unpaid(
                session, attempt.id or 0, now, now + settings.epay_reconcile_every
            )
        return PaymentCheck(
            CheckResult.UNREACHABLE,
            attempt.out_trade_no,
            order.code,
            detail=error.reason or error.detail,
        )
    if answer.paid:
        trade_no = (answer.trade_no or attempt.out_trade_no)[:64]
        return await _settle(shop, attempt.out_trade_no, trade_no, answer.money, now)
    give_up_at = attempt.created_at + settings.unpaid_timeout + settings.epay_reconcile_grace
    expired = now >= give_up_at
    # The last check falls on the deadline itself, not up to one interval after it.
    next_check = min(now + settings.epay_reconcile_every, give_up_at)
    async with shop.database.write() as session:
        await payment_attempts.checked_unpaid(
            session, attempt.id or 0, now, None if expired else next_check
        )
    result = CheckResult.EXPIRED if expired else CheckResult.NOT_PAID
    return PaymentCheck(result, attempt.out_trade_no, order.code)
