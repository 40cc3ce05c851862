"""Typed domain errors. They carry data, not prose: each chat plugin renders them in
Chinese in one place (plugins/_common/errors.py)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from models.tables import OrderStatus, RequestKind, TicketStatus


class ShopError(Exception):
    """Base of every error a user can cause; never a bug."""


@dataclass
class ItemNotFound(ShopError):
    item_id: int


@dataclass
class VariantNotFound(ShopError):
    item_id: int
    position: int
    variant_count: int


@dataclass
class VariantRequired(ShopError):
    """`12` was typed for an item with several variants."""

    item_id: int
    variant_count: int


@dataclass
class InvalidValue(ShopError):
    """A value outside the shop's bounds. `field` names what (see limits.FIELD_*)."""

    field: str
    reason: str  # "too_long" | "too_small" | "too_large" | "empty" | "format"
    limit: int | str | None = None


@dataclass
class StockTooLow(ShopError):
    """A stock decrease would leave a negative stock."""

    current: int
    requested: int


@dataclass
class AlreadyStaff(ShopError):
    user_id: int


@dataclass
class NotStaff(ShopError):
    user_id: int


@dataclass
class OwnerIsNotStaff(ShopError):
    """Owners come from SUPERUSERS; adding them to the staff table would be meaningless."""

    user_id: int


@dataclass
class TooManyVariants(ShopError):
    limit: int


class MediaProblem(StrEnum):
    DOWNLOAD = "download"
    TOO_LARGE = "too_large"
    NOT_IMAGE = "not_image"


@dataclass
class MediaUnavailable(ShopError):
    reason: MediaProblem


# --- ordering ---------------------------------------------------------------------------


@dataclass
class AddressNotFound(ShopError):
    number: int
    count: int


@dataclass
class TooManyAddresses(ShopError):
    limit: int


@dataclass
class CartFull(ShopError):
    limit: int


@dataclass
class CartEmpty(ShopError):
    pass


@dataclass
class NotInCart(ShopError):
    ref: str


@dataclass
class ItemUnavailable(ShopError):
    """Delisted (or gone) since it was put in the cart or summary."""

    name: str


@dataclass
class OutOfStock(ShopError):
    name: str
    requested: int
    available: int


@dataclass
class OrderNotFound(ShopError):
    """Also raised for another customer's order: the two must be indistinguishable."""

    code: str


@dataclass
class InvalidTransition(ShopError):
    """The order's status does not allow this action. `action` names what was tried."""

    status: OrderStatus
    action: str

    def __post_init__(self) -> None:
        self.status = OrderStatus(self.status)


@dataclass
class LineNotInOrder(ShopError):
    ref: str


@dataclass
class LastLine(ShopError):
    """Removing the only line would leave an empty order: cancel instead."""

    code: str


@dataclass
class RequestPending(ShopError):
    kind: str


@dataclass
class NoPendingRequest(ShopError):
    code: str


@dataclass
class NoPendingRequestOfKind(ShopError):
    """/审核 named a kind of request the order has none pending of; `pending` are the
    kinds it does have pending (so staff can pick one)."""

    code: str
    kind: RequestKind
    pending: tuple[RequestKind, ...] = ()


@dataclass
class RefundTooLarge(ShopError):
    requested: int
    refundable: int


@dataclass
class AlreadyPaid(ShopError):
    code: str


@dataclass
class LatePaymentStockGone(ShopError):
    """A payment for an expired order, whose stock has been sold meanwhile."""

    code: str
    name: str
    available: int


@dataclass
class NoAddress(ShopError):
    pass


@dataclass
class DraftExpired(ShopError):
    pass


@dataclass
class PriceChanged(ShopError):
    """The price moved between the summary and 确认: the customer confirms what they saw."""

    shown_fen: int
    current_fen: int


# --- after-sales tickets ----------------------------------------------------------------


@dataclass
class TicketNotFound(ShopError):
    """Also raised for another customer's ticket: the two must be indistinguishable."""

    code: str


class TicketRefusal(StrEnum):
    """Why a ticket cannot be opened."""

    ORDER_STATUS = "order_status"  # not paid yet, or closed
    WINDOW = "window"  # too long after completion
    NO_REASON = "no_reason"  # an item without 七天无理由
    DUPLICATE = "duplicate"  # one open ticket per order and type
    VIRTUAL = "virtual"  # 退货/换货 of card keys already handed out


@dataclass
class TicketNotAllowed(ShopError):
    why: TicketRefusal
    kind: str
    days: int = 0


@dataclass
class InvalidTicketTransition(ShopError):
    """The ticket's status does not allow this action. `action` names what was tried."""

    status: TicketStatus
    action: str

    def __post_init__(self) -> None:
        self.status = TicketStatus(self.status)


class RestockRefusal(StrEnum):
    """Why the goods of a ticket's order cannot go back on the shelf (/完成 <工单号> 入库)."""

    NOT_RETURN = "not_return"  # only a 退货 brings goods back
    VIRTUAL = "virtual"  # card keys: a virtual variant's stock is its unused keys
    NOT_SHIPPED = "not_shipped"  # never left the shop: the refund or the order holds the stock
    ALREADY = "already"  # this order's goods went back on the shelf once already


@dataclass
class RestockRefused(ShopError):
    why: RestockRefusal
    code: str  # the ticket


# --- payments (EPay) ------------------------------------------------------------------


@dataclass
class PaymentGatewayError(ShopError):
    """The payment gateway refused (`reason`: its own message, e.g. "商户不存在") or could
    not be reached (`reason` empty). `detail` is for logs only; it never holds the key."""

    reason: str
    detail: str = ""


@dataclass
class PayTypeNotOffered(ShopError):
    """The shop does not offer this payment method (EPAY_TYPES); `offered` are its values,
    in order."""

    pay_type: str
    offered: tuple[str, ...]


# --- virtual goods (card keys) ----------------------------------------------------------


class VirtualSwitchBlock(StrEnum):
    """Why an item cannot be switched to or from card keys now."""

    PHYSICAL_STOCK = "physical_stock"  # turning on: goods still in stock (set 0 first)
    UNUSED_KEYS = "unused_keys"  # turning off: unsold keys left (clear them first)
    OPEN_ORDERS = "open_orders"  # unpaid or paid-not-shipped orders of the item


@dataclass
class VirtualSwitchBlocked(ShopError):
    item_id: int
    why: VirtualSwitchBlock
    count: int = 0  # the stock, the unused keys, or the open orders
    orders: tuple[str, ...] = ()  # a few of the open orders' codes


@dataclass
class NotVirtual(ShopError):
    """Card keys were imported or asked for on an item not sold as card keys."""

    item_id: int


@dataclass
class KeyStockOnly(ShopError):
    """/库存 (or a new variant with stock) on a virtual item: its stock is its keys."""

    ref: str


@dataclass
class MixedVirtualOrder(ShopError):
    """Card keys and physical goods in one order: they are bought separately."""

    pass


class VirtualOrderAction(StrEnum):
    SHIP = "ship"
    ADDRESS = "address"


@dataclass
class NotForVirtualOrder(ShopError):
    """A virtual order has no address and is never shipped."""

    code: str
    action: VirtualOrderAction


@dataclass
class KeysPrivateOnly(ShopError):
    """Card keys are imported and shown in a private chat only. Raised before anything is
    looked up, so a group learns nothing (not even whether an order exists)."""

    pass


class CardKeysProblem(StrEnum):
    EMPTY = "empty"  # no key line after the command
    TOO_MANY = "too_many"  # more lines than one import takes
    TOO_LONG = "too_long"  # one key longer than allowed


@dataclass
class CardKeysRejected(ShopError):
    """An import refused as a whole (nothing imported). `line`: the offending line."""

    problem: CardKeysProblem
    limit: int
    line: int = 0


@dataclass
class NoCardKeys(ShopError):
    """/提货 of an order with no keys: not paid yet, or not virtual goods."""

    code: str


@dataclass
class CardKeysShort(ShopError):
    """Fewer unused keys than a paid order needs: only possible if the stock invariant
    was broken by hand; the payment is not recorded, so it can be retried."""

    code: str
    name: str
    missing: int


@dataclass
class CardKeysUnreadable(ShopError):
    """Stored keys cannot be decrypted: CARD_KEY_SECRET is missing or not the one they
    were imported with."""

    pass


class DeleteBlock(StrEnum):
    """Why an item or a variant cannot be deleted (/删除)."""

    ORDERED = "ordered"  # on an order line: orders keep it (delist it instead)
    IN_CHECKOUT = "in_checkout"  # in an order summary a customer may still confirm
    UNUSED_KEYS = "unused_keys"  # unsold card keys: clear them first (/卡密 清空)
    LAST_VARIANT = "last_variant"  # an item's only variant: delete the item instead


@dataclass
class DeleteBlocked(ShopError):
    ref: str  # what was to be deleted: `12` (an item) or `12-2` (a variant)
    item_id: int
    why: DeleteBlock
    count: int = 0  # the orders, the waiting summaries, or the unsold keys


class DeletionLapse(StrEnum):
    """Why 确认删除 found nothing to delete."""

    NONE = "none"  # no /删除 waits in this chat
    EXPIRED = "expired"  # it waited longer than the confirmation timeout
    CHANGED = "changed"  # variants were added or removed since the summary was shown


@dataclass
class DeletionNotPending(ShopError):
    why: DeletionLapse
    ref: str = ""  # what had been waiting (EXPIRED, CHANGED)
