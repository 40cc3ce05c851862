"""Typed domain errors. They carry data, not prose: each chat plugin renders them in
Chinese in one place (plugins/_common/errors.py)."""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass
class MediaUnavailable(ShopError):
    reason: str  # "download" | "too_large" | "not_image"


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

    status: str
    action: str


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
