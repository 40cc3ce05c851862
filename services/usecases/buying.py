"""What a customer does to buy: the cart, the order summary they confirm (/下单 or /结算,
then 确认 / 取消 / an address line), their saved addresses, their orders (list, detail,
how to pay), and changing, cancelling or reviewing an order.

The checkout use cases keep the shop's draft index (`shop.drafts`) in step with the draft
rows, so the router can tell a bare 确认 from chatter without a query; no door touches it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from config import PaymentProvider
from models.tables import (
    Address,
    CheckoutDraft,
    DraftSource,
    Item,
    OrderLine,
    OrderStatus,
    PayType,
    RequestKind,
    Review,
    ShopOrder,
    Variant,
)
from models.types import utcnow

from .. import (
    addresses,
    cart,
    checkout,
    notices,
    orders,
    payment_attempts,
    placing,
    reviews,
    safeguards,
    shipping,
)
from .. import shop as shop_row
from ..actors import Caller
from ..addresses import AddressSnapshot
from ..cart import CartView
from ..catalog import VariantRef
from ..checkout import Summary
from ..context import ShopContext
from ..errors import AlreadyPaid, InvalidTransition, NoAddress, PaymentGatewayError, ShopError
from ..media import load_image
from ..order_rules import Mode
from ..orders import OrderDetail
from ..shipping import TrackingView
from .epay import PaymentLink, start_payment
from .safeguards import refuse_if_banned

T = TypeVar("T")


# --- cart ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AddedToCart:
    item: Item
    variant: Variant
    quantity: int  # the cart line's quantity now (merged with what was there)

    @property
    def ref(self) -> VariantRef:
        return VariantRef(self.item.id or 0, self.variant.position)


async def add_to_cart(
    shop: ShopContext, caller: Caller, ref: VariantRef, quantity: int
) -> AddedToCart:
    async with shop.database.write() as session:
        await safeguards.ensure_not_banned(session, shop.shop_id, caller.user_id)
        item, variant, total = await cart.add_to_cart(
            session, shop.shop_id, caller.user_id, ref, quantity
        )
    return AddedToCart(item, variant, total)


async def view_cart(shop: ShopContext, caller: Caller) -> list[CartView]:
    async with shop.database.read() as session:
        return await cart.view_cart(session, shop.shop_id, caller.user_id)


async def remove_from_cart(shop: ShopContext, caller: Caller, ref: VariantRef) -> CartView:
    async with shop.database.write() as session:
        return await cart.remove_from_cart(session, shop.shop_id, caller.user_id, ref)


async def clear_cart(shop: ShopContext, caller: Caller) -> int:
    """Empties the caller's cart; returns how many lines were in it."""
    async with shop.database.write() as session:
        return await cart.clear_cart(session, shop.shop_id, caller.user_id)


# --- the order summary and its dialogue ---------------------------------------------


class NextStep(StrEnum):
    """What the customer is asked for next."""

    CONFIRM = "confirm"  # the summary is shown: 确认 places the order, 取消 drops it
    GIVE_ADDRESS = "give_address"  # private chat, no address yet: reply with one line
    ADD_ADDRESS_PRIVATELY = "add_address_privately"  # a group and no address: none kept
    START_AGAIN = "start_again"  # the summary timed out (or was used): /下单 or /结算 again


@dataclass(frozen=True)
class CheckoutStep:
    next_step: NextStep
    summary: Summary | None = None  # set for CONFIRM and GIVE_ADDRESS


@dataclass(frozen=True)
class OrderPlaced:
    order: ShopOrder


def _shown(shop: ShopContext, caller: Caller, summary: Summary) -> CheckoutStep:
    """Indexes the summary for the 确认 / 取消 (or address line) that follow."""
    awaiting_address = summary.needs_address  # card keys never wait for an address
    shop.drafts.put(caller.group_id, caller.user_id, summary.draft.expires_at, awaiting_address)
    return CheckoutStep(NextStep.GIVE_ADDRESS if awaiting_address else NextStep.CONFIRM, summary)


async def _start_checkout(
    shop: ShopContext,
    caller: Caller,
    source: DraftSource,
    wanted_of: Callable[[AsyncSession], Awaitable[list[tuple[int, int]]]],
    remark: str,
    now: datetime | None,
) -> CheckoutStep:
    now = now or utcnow()
    async with shop.database.write() as session:
        wanted = await wanted_of(session)
        await safeguards.ensure_may_order(
            session, shop.shop_id, caller.user_id, shop.settings.max_unpaid_orders, dict(wanted)
        )
        try:
            summary = await checkout.start(
                session,
                shop.shop_id,
                caller.user_id,
                caller.group_id,
                source,
                wanted,
                remark,
                now,
                shop.settings.confirm_timeout,
            )
        except NoAddress:
            # Addresses are never collected in a group. Any earlier summary in this chat
            # stays deleted (committed): the index below forgets it too.
            summary = None
    if summary is None:
        shop.drafts.drop(caller.group_id, caller.user_id)
        return CheckoutStep(NextStep.ADD_ADDRESS_PRIVATELY)
    return _shown(shop, caller, summary)


async def buy_now(
    shop: ShopContext,
    caller: Caller,
    ref: VariantRef,
    quantity: int,
    remark: str = "",
    now: datetime | None = None,
) -> CheckoutStep:
    """/下单: a summary of one variant (replacing any earlier one in this chat). Nothing is
    reserved until 确认. One read (the item's variants, their guards, the customer's
    ban, unpaid orders, address and any summary waiting: placing.item_goods) and two
    writes (three when an earlier summary is replaced)."""
    now = now or utcnow()
    async with shop.database.write() as session:
        found = await placing.item_goods(
            session, shop.shop_id, caller.user_id, ref.item_id, caller.group_id
        )
        goods = checkout.resolve(found, shop.shop_id, ref)
        assert found is not None
        customer = found.customer
        await safeguards.ensure_customer_may_order(
            session,
            shop.shop_id,
            caller.user_id,
            shop.settings.max_unpaid_orders,
            customer.banned,
            customer.unpaid,
        )
        placing.check_limits([(goods, quantity)])
        try:
            summary = await checkout.start(
                session,
                shop.shop_id,
                caller.user_id,
                caller.group_id,
                DraftSource.BUY,
                [(goods.variant_id, quantity)],
                remark,
                now,
                shop.settings.confirm_timeout,
                goods={goods.variant_id: goods},
                customer=customer,
                draft_waiting=found.draft_waiting,
            )
        except NoAddress:
            # Addresses are never collected in a group. Any earlier summary in this chat
            # stays deleted (committed): the index below forgets it too.
            summary = None
    if summary is None:
        shop.drafts.drop(caller.group_id, caller.user_id)
        return CheckoutStep(NextStep.ADD_ADDRESS_PRIVATELY)
    return _shown(shop, caller, summary)


async def check_out_cart(
    shop: ShopContext, caller: Caller, remark: str = "", now: datetime | None = None
) -> CheckoutStep:
    """/结算: a summary of the cart's available lines (the rest stay in the cart)."""

    async def wanted(session: AsyncSession) -> list[tuple[int, int]]:
        views = await cart.view_cart(session, shop.shop_id, caller.user_id)
        return [(view.variant.id or 0, view.line.quantity) for view in views if view.available]

    return await _start_checkout(shop, caller, DraftSource.CART, wanted, remark, now)


async def _or_discard(
    shop: ShopContext,
    caller: Caller,
    session: AsyncSession,
    draft: CheckoutDraft,
    work: Callable[[], Awaitable[T]],
) -> tuple[T | None, ShopError | None]:
    """Runs `work` in a savepoint. If it fails for a shop reason (stock gone, item delisted,
    price changed since the summary), only its part is undone: the summary is deleted in
    the same transaction (so the customer starts afresh) and the error is returned for the
    caller to raise once the transaction has committed. One write lock per message."""
    try:
        async with session.begin_nested():
            return await work(), None
    except ShopError as error:
        await checkout.discard(session, draft)
        shop.drafts.drop(caller.group_id, caller.user_id)
        return None, error


async def confirm_summary(
    shop: ShopContext, caller: Caller, now: datetime | None = None
) -> OrderPlaced | CheckoutStep:
    """确认: places the order the summary shows and tells staff (one write transaction).
    A summary still waiting for an address whose address came by /地址 添加 is shown
    again with it instead, for the customer to confirm what they now see. Refused with a
    ShopError (stock gone, price changed, ...) once the summary is deleted."""
    now = now or utcnow()
    settings = shop.settings
    # Who hears of the order, from the cache the router keeps (outside the write lock).
    staff_ids = await shop.access.staff_ids()
    async with shop.database.write() as session:
        # The draft, its goods and the customer's facts in one read (on PostgreSQL under
        # the customer's lock, so the unpaid cap and limits count racing orders).
        pending = await placing.pending_in_chat(
            session, shop.shop_id, caller.user_id, caller.group_id, lock=True
        )
        if pending is None or pending.expires_at <= now:
            shop.drafts.drop(caller.group_id, caller.user_id)
            if pending is not None:
                await placing.delete_draft(session, pending.draft_id)
            return CheckoutStep(NextStep.START_AGAIN)
        if pending.awaiting_address:
            draft = await checkout.find(session, shop.shop_id, caller.user_id, caller.group_id)
            if draft is None:  # used by a concurrent message a moment ago
                shop.drafts.drop(caller.group_id, caller.user_id)
                return CheckoutStep(NextStep.START_AGAIN)
            if await addresses.default_address(session, shop.shop_id, caller.user_id) is None:
                return _shown(shop, caller, await checkout.summary_of(session, draft))
            summary, failure = await _or_discard(
                shop,
                caller,
                session,
                draft,
                lambda: checkout.address_given(session, draft, now, settings.confirm_timeout),
            )
            order = None
        else:
            # From here the summary is used up, whatever happens to the order (a flash
            # sale queues on this one write lock: bench/flash_sale.py).
            shop.drafts.drop(caller.group_id, caller.user_id)
            order, failure = await checkout.confirm_pending(
                session, pending, now, settings.unpaid_timeout, settings.max_unpaid_orders
            )
            if order is not None:
                await notices.to_staff(
                    session,
                    shop.shop_id,
                    shop.owners,
                    notices.new_order_for_staff(order),
                    f"order:{order.code}:new",
                    now,
                    staff_ids=staff_ids,
                )
            summary = None
    if failure is not None:
        raise failure
    if summary is not None:
        return _shown(shop, caller, summary)
    assert order is not None
    return OrderPlaced(order)


async def discard_summary(shop: ShopContext, caller: Caller) -> None:
    """取消: drops the caller's summary in this chat, if there is one."""
    shop.drafts.drop(caller.group_id, caller.user_id)
    async with shop.database.write() as session:
        draft = await checkout.find(session, shop.shop_id, caller.user_id, caller.group_id)
        if draft is not None:
            await checkout.discard(session, draft)


async def give_address(
    shop: ShopContext, caller: Caller, address: AddressSnapshot, now: datetime | None = None
) -> CheckoutStep:
    """The address line a summary asked for (private chat only): saved, and the summary
    shown with it. The address is kept even when the goods are gone meanwhile."""
    if caller.in_group:
        return CheckoutStep(NextStep.ADD_ADDRESS_PRIVATELY)
    now = now or utcnow()
    async with shop.database.write() as session:
        draft = await checkout.find(session, shop.shop_id, caller.user_id, None)
        if draft is None or draft.expires_at <= now:
            shop.drafts.drop(caller.group_id, caller.user_id)
            return CheckoutStep(NextStep.START_AGAIN)
        await addresses.add_address(session, shop.shop_id, caller.user_id, address)
        summary, failure = await _or_discard(
            shop,
            caller,
            session,
            draft,
            lambda: checkout.address_given(session, draft, now, shop.settings.confirm_timeout),
        )
    if failure is not None:
        raise failure
    assert summary is not None
    return _shown(shop, caller, summary)


# --- addresses ----------------------------------------------------------------------


@dataclass(frozen=True)
class AddressAdded:
    address: Address
    number: int  # as /地址 lists it


async def list_addresses(shop: ShopContext, caller: Caller) -> list[Address]:
    async with shop.database.read() as session:
        return await addresses.list_addresses(session, shop.shop_id, caller.user_id)


async def add_address(
    shop: ShopContext, caller: Caller, address: AddressSnapshot
) -> AddressAdded | None:
    """Saves an address (the first becomes the default). None in a group: addresses are
    only collected privately."""
    if caller.in_group:
        return None
    async with shop.database.write() as session:
        saved, number = await addresses.add_address(session, shop.shop_id, caller.user_id, address)
    return AddressAdded(saved, number)


async def set_default_address(shop: ShopContext, caller: Caller, number: int) -> Address:
    async with shop.database.write() as session:
        return await addresses.set_default(session, shop.shop_id, caller.user_id, number)


async def delete_address(shop: ShopContext, caller: Caller, number: int) -> Address:
    """Deletes one (orders keep their copy); the oldest left becomes the default."""
    async with shop.database.write() as session:
        return await addresses.delete_address(session, shop.shop_id, caller.user_id, number)


# --- my orders ----------------------------------------------------------------------


@dataclass(frozen=True)
class MyOrders:
    rows: list[tuple[ShopOrder, list[OrderLine]]]  # newest first, each with its lines
    total: int  # orders matching, over all pages
    page: int


@dataclass(frozen=True)
class OrderView:
    detail: OrderDetail  # the order, its lines, events and requests
    tracking: TrackingView | None  # None: not shipped

    @property
    def order(self) -> ShopOrder:
        return self.detail.order


@dataclass(frozen=True)
class PaymentInstructions:
    """How to pay, with the shop's manual provider: its payment text and QR image (staff
    confirm the money with /收款)."""

    order: ShopOrder
    text: str  # the shop's payment text ("" when the owner has not set one)
    qr_image: bytes | None

    @property
    def payable(self) -> bool:
        return self.order.status == OrderStatus.PENDING_PAYMENT.value


async def my_orders(
    shop: ShopContext, caller: Caller, status: OrderStatus | None = None, page: int = 1
) -> MyOrders:
    """The caller's own orders (staff included: theirs only; /订单列表 lists everyone's)."""
    async with shop.database.read() as session:
        rows, total = await orders.list_orders(
            session, shop.shop_id, customer_id=caller.user_id, status=status, page=page
        )
        with_lines = [(order, await orders.order_lines(session, order.id or 0)) for order in rows]
    return MyOrders(with_lines, total, page)


async def order_detail(shop: ShopContext, caller: Caller, code: str) -> OrderView:
    """One order with its record and tracking; a customer asking about someone else's gets
    OrderNotFound, exactly as for a code that does not exist."""
    async with shop.database.read() as session:
        order = await orders.get_order(session, shop.shop_id, code, customer_id=caller.own_only)
        detail = await orders.order_detail(session, order)
        tracking = await shipping.tracking_view(session, order)
    return OrderView(detail, tracking)


async def payment_instructions(shop: ShopContext, caller: Caller, code: str) -> PaymentInstructions:
    """/付款: the amount and how to pay; for an order that cannot be paid (any more), the
    order only (`payable` False), without the payment text or image."""
    async with shop.database.read() as session:
        order = await orders.get_order(session, shop.shop_id, code, customer_id=caller.own_only)
        seller = await shop_row.get_shop(session, shop.shop_id)
    if order.status != OrderStatus.PENDING_PAYMENT.value:
        return PaymentInstructions(order, "", None)
    image = load_image(seller.payment_qr_path, shop.data_dir) if seller.payment_qr_path else None
    return PaymentInstructions(order, seller.payment_text, image)


async def pay_order(
    shop: ShopContext,
    caller: Caller,
    code: str,
    pay_type: PayType | None = None,
    now: datetime | None = None,
) -> PaymentInstructions | PaymentLink:
    """/付款 <订单号> [方式]: how to pay the caller's own order (staff: any order).
    PAYMENT_PROVIDER=manual: the shop's instructions (`pay_type` plays no part).
    epay: a payment link and QR code at the gateway for `pay_type` (None: the first of
    EPAY_TYPES), reused while the total is unchanged. Either way an order that cannot be
    paid (any more) comes back as PaymentInstructions with `payable` False."""
    await refuse_if_banned(shop, caller)
    if shop.settings.payment_provider is not PaymentProvider.EPAY:
        return await payment_instructions(shop, caller, code)
    gateway = shop.payment_gateway
    if gateway is None:
        raise PaymentGatewayError("", "PAYMENT_PROVIDER=epay but no gateway is configured")
    try:
        return await start_payment(shop, caller, code, pay_type, gateway, now)
    except (AlreadyPaid, InvalidTransition):
        # Paid, cancelled or closed (perhaps while the gateway was asked): shown the way
        # the manual provider shows it.
        async with shop.database.read() as session:
            order = await orders.get_order(session, shop.shop_id, code, customer_id=caller.own_only)
        if order.status == OrderStatus.PENDING_PAYMENT.value:
            raise  # still unpaid: its total kept changing while the gateway was asked
        return PaymentInstructions(order, "", None)


# --- changing, cancelling and reviewing an order --------------------------------------


@dataclass(frozen=True)
class NewAddress:
    number: int  # of the caller's saved addresses


@dataclass(frozen=True)
class NewQuantity:
    ref: VariantRef
    quantity: int  # 0 removes the line


@dataclass(frozen=True)
class NewRemark:
    remark: str


Amendment = NewAddress | NewQuantity | NewRemark


@dataclass(frozen=True)
class Amended:
    order: ShopOrder
    mode: Mode  # DIRECT: done; REQUEST: staff were asked (a paid order)
    # A quantity change: the line and its quantity before.
    line: OrderLine | None = None
    old_quantity: int | None = None


@dataclass(frozen=True)
class CancelOutcome:
    order: ShopOrder
    mode: Mode  # DIRECT: cancelled, stock released; REQUEST: staff were asked (paid)


async def _request_to_staff(
    shop: ShopContext,
    session: AsyncSession,
    order: ShopOrder,
    kind: RequestKind,
    reason: str,
    now: datetime,
) -> None:
    await notices.to_staff(
        session,
        shop.shop_id,
        shop.owners,
        notices.request_for_staff(order, kind, reason),
        f"order:{order.code}:request:{kind}:{now.timestamp()}",
        now,
    )


async def amend_order(
    shop: ShopContext,
    caller: Caller,
    code: str,
    change: Amendment,
    now: datetime | None = None,
) -> Amended:
    """/修改 of the caller's own order: unpaid, at once; paid (address, remark), a request
    staff decide (they are told); quantities only while unpaid. A quantity change voids
    the order's live payment attempts in the same transaction: money for one of them no
    longer pays the order (staff are told), and /付款 makes a new one for the new total."""
    now = now or utcnow()
    who = caller.actor
    async with shop.database.write() as session:
        await safeguards.ensure_not_banned(session, shop.shop_id, caller.user_id)
        order = await orders.get_order(session, shop.shop_id, code, customer_id=caller.user_id)
        match change:
            case NewAddress(number=number):
                address = await addresses.get_by_number(
                    session, shop.shop_id, caller.user_id, number
                )
                mode = await orders.amend_address(
                    session, order, AddressSnapshot.of(address), who, now
                )
                if mode is Mode.REQUEST:
                    await _request_to_staff(shop, session, order, RequestKind.ADDRESS, "", now)
                return Amended(order, mode)
            case NewQuantity(ref=ref, quantity=quantity):
                line, old = await orders.amend_quantity(session, order, ref, quantity, who, now)
                if old != quantity:
                    await payment_attempts.void_live_attempts(session, order.id or 0, now)
                return Amended(order, Mode.DIRECT, line, old)
            case NewRemark(remark=remark):
                mode = await orders.amend_remark(session, order, remark, who, now)
                if mode is Mode.REQUEST:
                    await _request_to_staff(shop, session, order, RequestKind.REMARK, "", now)
                return Amended(order, mode)


async def cancel_order(
    shop: ShopContext, caller: Caller, code: str, reason: str = "", now: datetime | None = None
) -> CancelOutcome:
    """/取消 of the caller's own order: unpaid, cancelled at once (stock released); paid, a
    request staff decide (they are told; approved means a full refund)."""
    now = now or utcnow()
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, code, customer_id=caller.user_id)
        mode = await orders.cancel(session, order, caller.actor, reason, now)
        if mode is Mode.REQUEST:
            await _request_to_staff(shop, session, order, RequestKind.CANCEL, reason, now)
    return CancelOutcome(order, mode)


@dataclass(frozen=True)
class Reviewed:
    order: ShopOrder
    review: Review


async def review_order(
    shop: ShopContext,
    caller: Caller,
    code: str,
    rating: int,
    text: str = "",
    now: datetime | None = None,
) -> Reviewed:
    """/评价: once per completed order of the caller's own."""
    now = now or utcnow()
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, code, customer_id=caller.user_id)
        review = await reviews.add_review(session, order, caller.user_id, rating, text, now)
    return Reviewed(order, review)
