"""The shop's tables. Money is integer fen, QQ numbers are BIGINT, times are aware UTC."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    UniqueConstraint,
    text,
)
from sqlalchemy import Enum as SqlEnum
from sqlmodel import Field, SQLModel

from .types import UTCDateTime, utcnow

DEFAULT_SHOP_ID = 1


def _created_at() -> datetime:
    return utcnow()


class Shop(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=60)
    # /设置收款: shown by /付款. The QR image is a path under DATA_DIR.
    payment_text: str = Field(default="", max_length=500)
    payment_qr_path: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class Staff(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("shop_id", "user_id", name="uq_staff_shop_user"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    user_id: int = Field(sa_type=BigInteger)
    added_by: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class ShopGroup(SQLModel, table=True):
    """A QQ group and whether the shop answers there."""

    __tablename__ = "shop_group"
    __table_args__ = (UniqueConstraint("shop_id", "group_id", name="uq_shop_group"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    group_id: int = Field(sa_type=BigInteger)
    enabled: bool = True
    changed_by: int = Field(sa_type=BigInteger)
    changed_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class Category(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("shop_id", "name", name="uq_category_shop_name"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    name: str = Field(max_length=20)


class Item(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    name: str = Field(max_length=60)
    description: str = Field(default="", max_length=1000)
    # Path relative to the data directory; QQ image URLs expire, so we keep the bytes.
    image_path: str | None = Field(default=None, max_length=200)
    category_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("category.id", ondelete="SET NULL"), index=True),
    )
    listed: bool = True
    no_reason_return: bool = True
    # Sold as card keys (卡密, services/card_keys.py): no address, no shipping, and each
    # variant's stock is its count of unused keys.
    virtual: bool = False
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class Variant(SQLModel, table=True):
    """One sellable variant (规格) of an item; `position` makes the `12-2` numbering stable."""

    __table_args__ = (
        UniqueConstraint("item_id", "position", name="uq_variant_item_position"),
        CheckConstraint("stock >= 0", name="ck_variant_stock_nonnegative"),
        CheckConstraint("price_fen > 0", name="ck_variant_price_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    position: int
    name: str = Field(max_length=30)
    price_fen: int
    stock: int
    sold: int = 0
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


# --- ordering ---------------------------------------------------------------------------


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class RequestKind(StrEnum):
    ADDRESS = "address"
    REMARK = "remark"
    CANCEL = "cancel"


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    # Made moot by something else: the order was refunded or cancelled meanwhile.
    SUPERSEDED = "superseded"


class Address(SQLModel, table=True):
    """A customer's saved delivery address. Orders copy it; deleting it changes no order."""

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id")
    user_id: int = Field(sa_type=BigInteger, index=True)
    name: str = Field(max_length=20)
    phone: str = Field(max_length=20)
    detail: str = Field(max_length=120)
    is_default: bool = False
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class CartLine(SQLModel, table=True):
    __tablename__ = "cart_line"
    __table_args__ = (
        UniqueConstraint("shop_id", "user_id", "variant_id", name="uq_cart_user_variant"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id")
    user_id: int = Field(sa_type=BigInteger, index=True)
    variant_id: int = Field(foreign_key="variant.id")
    quantity: int
    added_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class ShopOrder(SQLModel, table=True):
    """An order. `code` is what customers type; ids never leave the database."""

    __tablename__ = "shop_order"
    __table_args__ = (
        CheckConstraint("total_fen >= 0", name="ck_order_total_nonnegative"),
        CheckConstraint("refunded_fen <= paid_fen", name="ck_order_refund_cap"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    user_id: int = Field(sa_type=BigInteger, index=True)
    # Where it was placed: notices about it go back there (private, or the group).
    group_id: int | None = Field(default=None, sa_type=BigInteger)
    status: str = Field(max_length=20, index=True)
    total_fen: int
    paid_fen: int = 0
    refunded_fen: int = 0
    receiver_name: str = Field(max_length=20)
    receiver_phone: str = Field(max_length=20)
    receiver_address: str = Field(max_length=120)
    remark: str = Field(default="", max_length=200)
    # Card keys, no address (the receiver fields are empty), never shipped: completed
    # when its keys are handed out with the payment.
    virtual: bool = False
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OrderLine(SQLModel, table=True):
    """Name and price copied at ordering time: later catalog edits do not touch orders."""

    __tablename__ = "order_line"
    __table_args__ = (CheckConstraint("quantity > 0", name="ck_order_line_quantity_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    variant_id: int = Field(foreign_key="variant.id")
    item_id: int
    position: int
    item_name: str = Field(max_length=60)
    variant_name: str = Field(max_length=30)
    unit_price_fen: int
    quantity: int


class OrderEvent(SQLModel, table=True):
    """Every change of an order: who, when, from -> to, what, why."""

    __tablename__ = "order_event"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)
    actor: str = Field(max_length=10)  # customer | staff | owner | system
    actor_id: int | None = Field(default=None, sa_type=BigInteger)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    action: str = Field(max_length=30)
    detail: str = Field(default="", max_length=300)
    reason: str = Field(default="", max_length=200)


class OrderRequest(SQLModel, table=True):
    """A change or cancellation of a paid order, waiting for staff (/审核)."""

    __tablename__ = "order_request"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    kind: str = Field(max_length=10)
    status: str = Field(default=RequestStatus.PENDING, max_length=10, index=True)
    # New values for address (name/phone/detail joined by tabs) or remark.
    payload: str = Field(default="", max_length=300)
    reason: str = Field(default="", max_length=200)
    requested_by: int = Field(sa_type=BigInteger)
    requested_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)
    decided_by: int | None = Field(default=None, sa_type=BigInteger)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decision_reason: str = Field(default="", max_length=200)


class Payment(SQLModel, table=True):
    """A recorded payment. (provider, reference) is unique: recording twice changes nothing."""

    __table_args__ = (UniqueConstraint("provider", "reference", name="uq_payment_reference"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    provider: str = Field(max_length=20)
    reference: str = Field(max_length=64)
    amount_fen: int
    recorded_by: int | None = Field(default=None, sa_type=BigInteger)
    at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class PayType(StrEnum):
    """The payment methods of an EPay gateway (its `type` field)."""

    ALIPAY = "alipay"
    WXPAY = "wxpay"
    QQPAY = "qqpay"


class AttemptState(StrEnum):
    LIVE = "live"  # may still be paid; reconciliation asks the gateway about it
    PAID = "paid"
    VOIDED = "voided"  # the order's total changed: money for it is a mismatch
    EXPIRED = "expired"  # past the unpaid timeout plus the grace: no longer asked about


class PaymentAttempt(SQLModel, table=True):
    """One payment created at the EPay gateway for an order (/付款). `out_trade_no` is the
    order code plus a counter, new for each attempt."""

    __tablename__ = "payment_attempt"

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id")
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    out_trade_no: str = Field(max_length=64, unique=True)
    type: str = Field(max_length=10)  # PayType
    amount_fen: int
    pay_url: str = ""  # what the customer opens (payurl or urlscheme)
    qr_text: str = ""  # what the QR code encodes (qrcode, else the link)
    state: str = Field(default=AttemptState.LIVE, max_length=10)  # AttemptState
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)
    checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Live attempts only: when reconciliation next asks the gateway.
    next_check_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    trade_no: str | None = Field(default=None, max_length=64)  # the gateway's number for it


class Refund(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    amount_fen: int
    reason: str = Field(default="", max_length=200)
    by: int | None = Field(default=None, sa_type=BigInteger)
    at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class DraftSource(StrEnum):
    BUY = "buy"  # /下单: the variant typed; the cart is left alone
    CART = "cart"  # /结算: the cart's available lines, which leave the cart on 确认


class CheckoutDraft(SQLModel, table=True):
    """An order summary awaiting 确认 (or an address) in one chat from one user. Kept in
    the database so a restart does not forget what the customer was about to confirm."""

    __tablename__ = "checkout_draft"
    __table_args__ = (
        # One draft per chat and user. A private chat is group_id NULL, and a plain UNIQUE
        # (shop_id, group_id, user_id) would let any number of NULL rows coexist (SQLite and
        # PostgreSQL both count NULLs as distinct; NULLS NOT DISTINCT is PostgreSQL 15+
        # only). Indexing coalesce(group_id, 0) makes every private chat the same key on
        # both: expression indexes exist in SQLite (3.9+) and PostgreSQL, and no QQ group
        # is numbered 0 (the draft index in services/context.py keys the same way).
        Index(
            "uq_draft_chat_user",
            "shop_id",
            text("coalesce(group_id, 0)"),
            "user_id",
            unique=True,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id")
    group_id: int | None = Field(default=None, sa_type=BigInteger)  # None: a private chat
    user_id: int = Field(sa_type=BigInteger)
    source: DraftSource = Field(
        sa_type=SqlEnum(
            DraftSource,
            native_enum=False,
            create_constraint=False,
            length=10,
            values_callable=lambda members: [member.value for member in members],
        )
    )
    remark: str = Field(default="", max_length=200)
    awaiting_address: bool = False
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class CheckoutDraftLine(SQLModel, table=True):
    """One line of an order summary, at the unit price the customer was shown: 确认
    refuses if the price moved since. Goes with its draft (ON DELETE CASCADE)."""

    __tablename__ = "checkout_draft_line"
    __table_args__ = (CheckConstraint("quantity > 0", name="ck_draft_line_quantity_positive"),)

    draft_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("checkout_draft.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        )
    )
    position: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    variant_id: int = Field(foreign_key="variant.id")
    quantity: int
    unit_price_fen: int


class OutboxMessage(SQLModel, table=True):
    """A message the bot sends on its own initiative. Sent by the dispatcher, paced, at
    most once; kept until sent so a restart or a lost connection only delays it."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    target_type: str = Field(max_length=10)  # private | group
    target_id: int = Field(sa_type=BigInteger)
    # JSON list of OneBot segments ({"type": "text", "data": {"text": ...}}, ...)
    segments: str
    dedupe_key: str = Field(max_length=120, unique=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime, index=True)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    failed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class AccountReach(SQLModel, table=True):
    """A QQ account (a OneBot connection) can reach this target: it is in the group, or
    the customer talked to it (`last_seen_at`: latest sighting, refreshed at most every
    few minutes). The outbox sends a row through an account that can reach its target."""

    __tablename__ = "account_reach"
    __table_args__ = (Index("ix_account_reach_target", "target_type", "target_id"),)

    account_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    target_type: str = Field(primary_key=True, max_length=10)  # outbox.TargetKind
    target_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    last_seen_at: datetime = Field(sa_type=UTCDateTime)


class AccountPresence(SQLModel, table=True):
    """A QQ account connected to some bot process, heartbeated by that process: another
    process sends a row meant for an account that stopped heartbeating."""

    __tablename__ = "account_presence"

    account_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    last_seen_at: datetime = Field(sa_type=UTCDateTime)


# --- shipping ---------------------------------------------------------------------------


class Shipment(SQLModel, table=True):
    """The parcel of an order: carrier, number, and when it is next due for a poll."""

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", unique=True)
    carrier_code: str = Field(max_length=30)
    carrier_name: str = Field(max_length=20)
    number: str = Field(max_length=40)
    state: str = Field(default="", max_length=20)
    shipped_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Polling: only shipments in transit are due; each at most every TRACKING_POLL_MINUTES.
    in_transit: bool = Field(default=True, index=True)
    next_poll_at: datetime = Field(sa_type=UTCDateTime, index=True)
    poll_failures: int = 0
    last_error: str = Field(default="", max_length=300)


class TrackingEventRow(SQLModel, table=True):
    """One tracking event of a shipment, stored once (unique per shipment and key)."""

    __tablename__ = "tracking_event"
    __table_args__ = (UniqueConstraint("shipment_id", "key", name="uq_tracking_event_key"),)

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: int = Field(foreign_key="shipment.id", index=True)
    key: str = Field(max_length=120)
    at: datetime = Field(sa_type=UTCDateTime)
    text: str = Field(max_length=300)
    state: str = Field(default="", max_length=20)
    source: str = Field(max_length=20)  # manual | kuaidi100
    recorded_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


# --- reviews ----------------------------------------------------------------------------


class Review(SQLModel, table=True):
    """One review per completed order, by its customer; counts for every item in it."""

    __table_args__ = (CheckConstraint("rating BETWEEN 1 AND 5", name="ck_review_rating"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id")
    order_id: int = Field(foreign_key="shop_order.id", unique=True)
    user_id: int = Field(sa_type=BigInteger)
    rating: int
    text: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


# --- after-sales ------------------------------------------------------------------------


class TicketKind(StrEnum):
    REFUND = "refund"  # 退款 (refund only)
    RETURN = "return"  # 退货 (return and refund)
    EXCHANGE = "exchange"  # 换货
    COMPLAINT = "complaint"  # 投诉


class TicketStatus(StrEnum):
    OPEN = "open"
    APPROVED = "approved"
    AWAITING_RETURN = "awaiting_return"
    RETURN_SHIPPED = "return_shipped"
    REFUNDED = "refunded"
    CLOSED = "closed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Ticket(SQLModel, table=True):
    """An after-sales ticket. `code` is what people type; one open ticket per order and kind."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    user_id: int = Field(sa_type=BigInteger, index=True)
    group_id: int | None = Field(default=None, sa_type=BigInteger)
    kind: str = Field(max_length=10)
    status: str = Field(max_length=20, index=True)
    reason: str = Field(max_length=200)
    refund_fen: int = 0
    return_carrier: str = Field(default="", max_length=20)
    return_number: str = Field(default="", max_length=40)
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TicketMessage(SQLModel, table=True):
    __tablename__ = "ticket_message"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    author: str = Field(max_length=10)  # customer | staff | owner | system
    author_id: int | None = Field(default=None, sa_type=BigInteger)
    text: str = Field(default="", max_length=500)
    # JSON list of image paths under DATA_DIR (QQ image URLs expire; the bytes are kept).
    images: str = Field(default="[]", max_length=2000)
    at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class TicketEvent(SQLModel, table=True):
    __tablename__ = "ticket_event"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)
    actor: str = Field(max_length=10)
    actor_id: int | None = Field(default=None, sa_type=BigInteger)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    action: str = Field(max_length=30)
    reason: str = Field(default="", max_length=200)


# --- virtual goods (card keys) ----------------------------------------------------------


class CardKey(SQLModel, table=True):
    """One card key (卡密) of a virtual variant, unused until a paid order takes it
    (`order_id`). The variant's `stock` is its unused keys less the units unpaid orders
    hold (services/card_keys.py keeps that invariant), so ordering reserves keys with
    the same conditional UPDATE as physical goods."""

    __tablename__ = "card_key"
    __table_args__ = (
        UniqueConstraint("variant_id", "key_hash", name="uq_card_key_variant_hash"),
        Index("ix_card_key_variant_order", "variant_id", "order_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id")
    variant_id: int = Field(foreign_key="variant.id")
    # The key: a Fernet token when `sealed` (CARD_KEY_SECRET was set), else the plain text.
    secret: str
    sealed: bool = False
    # A digest of the key: duplicates are found without reading any key back.
    key_hash: str = Field(max_length=64)
    order_id: int | None = Field(default=None, foreign_key="shop_order.id", index=True)
    imported_by: int = Field(sa_type=BigInteger)
    imported_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)
    sold_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CardDelivery(SQLModel, table=True):
    """An order's keys were handed out. One row per order (unique): a replayed notify
    or two racing payments can never give one order a second set."""

    __tablename__ = "card_delivery"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", unique=True)
    key_count: int
    delivered_at: datetime = Field(sa_type=UTCDateTime)


# --- safeguards and reports (services/safeguards.py, services/reports.py) ---------------


class Ban(SQLModel, table=True):
    """A QQ number that may browse but not order, pay or open tickets (/拉黑). Deleted by
    /解除拉黑; the ban_event rows keep the history."""

    __table_args__ = (UniqueConstraint("shop_id", "user_id", name="uq_ban_shop_user"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id")
    user_id: int = Field(sa_type=BigInteger)
    reason: str = Field(default="", max_length=200)
    banned_by: int = Field(sa_type=BigInteger)
    banned_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class BanEvent(SQLModel, table=True):
    """Every ban and unban: who, when, why."""

    __tablename__ = "ban_event"

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id")
    user_id: int = Field(sa_type=BigInteger, index=True)
    action: str = Field(max_length=10)  # banned | unbanned
    actor: str = Field(max_length=10)  # staff | owner
    actor_id: int | None = Field(default=None, sa_type=BigInteger)
    reason: str = Field(default="", max_length=200)
    at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class VariantGuard(SQLModel, table=True):
    """A variant's safeguards: the units one customer may buy (/限购) and its own
    low-stock threshold (/预警), plus the low-stock alert state, which exists for the
    shop-wide LOW_STOCK_THRESHOLD too. `low_stock_alerted`: staff were told of the
    current crossing; it re-arms once stock is above the threshold again.
    `low_stock_alerts` counts crossings (each notice's dedupe key)."""

    __tablename__ = "variant_guard"

    variant_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("variant.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        )
    )
    shop_id: int = Field(foreign_key="shop.id")
    purchase_limit: int | None = None
    low_stock_threshold: int | None = None
    low_stock_alerted: bool = False
    low_stock_alerts: int = 0
    updated_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


# "Bought together" (/详情) starts from the orders holding one item.
Index("ix_order_line_item_id", OrderLine.__table__.c.item_id)  # type: ignore[attr-defined]


# --- clocks -----------------------------------------------------------------------------


class ClockLease(SQLModel, table=True):
    """Which bot process runs the shop's clocks. Several processes (several QQ accounts)
    may share one database; the clocks must run in one of them at a time, and another
    takes over when the holder stops renewing."""

    __tablename__ = "clock_lease"

    name: str = Field(primary_key=True, max_length=40)
    holder: str = Field(max_length=120)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    acquired_at: datetime = Field(sa_type=UTCDateTime)
