"""Bounds on everything a user can type: one place, used by parsers and services alike."""

MAX_PRICE_FEN = 1_000_000 * 100  # a million yuan: anything above is a typo
MIN_PRICE_FEN = 1
MAX_STOCK = 1_000_000
MAX_ITEM_NAME = 60
MAX_VARIANT_NAME = 30
MAX_CATEGORY_NAME = 20
MAX_DESCRIPTION = 1000
MAX_ANNOUNCEMENT = 500
MAX_SEARCH_QUERY = 30
MAX_SEARCH_WORDS = 5
MAX_VARIANTS_PER_ITEM = 50
MAX_PAGE = 10_000
PAGE_SIZE = 10
SEARCH_LIMIT = 10
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_QQ = 10**12  # QQ numbers have at most 11 digits today

# `InvalidValue.field` values.
FIELD_ITEM_NAME = "item_name"
FIELD_VARIANT_NAME = "variant_name"
FIELD_CATEGORY = "category"
FIELD_DESCRIPTION = "description"
FIELD_ANNOUNCEMENT = "announcement"
FIELD_PRICE = "price"
FIELD_STOCK = "stock"
FIELD_SEARCH = "search"
FIELD_PAGE = "page"
FIELD_QQ = "qq"


def check_text(field: str, value: str, max_len: int) -> str:
    from .errors import InvalidValue

    value = value.strip()
    if not value:
        raise InvalidValue(field, "empty")
    if len(value) > max_len:
        raise InvalidValue(field, "too_long", max_len)
    return value


def check_price(price_fen: int) -> int:
    from .errors import InvalidValue

    if price_fen < MIN_PRICE_FEN:
        raise InvalidValue(FIELD_PRICE, "too_small", MIN_PRICE_FEN)
    if price_fen > MAX_PRICE_FEN:
        raise InvalidValue(FIELD_PRICE, "too_large", MAX_PRICE_FEN)
    return price_fen


def check_stock(stock: int) -> int:
    from .errors import InvalidValue

    if stock < 0:
        raise InvalidValue(FIELD_STOCK, "too_small", 0)
    if stock > MAX_STOCK:
        raise InvalidValue(FIELD_STOCK, "too_large", MAX_STOCK)
    return stock


# --- ordering --------------------------------------------------------------------------
MAX_QUANTITY = 999
MAX_CART_LINES = 30
MAX_RECEIVER_NAME = 20
MAX_ADDRESS_DETAIL = 120
MAX_ADDRESSES = 10
MAX_REMARK = 200
MAX_REASON = 200
ORDER_PAGE_SIZE = 10

FIELD_QUANTITY = "quantity"
FIELD_RECEIVER = "receiver"
FIELD_PHONE = "phone"
FIELD_ADDRESS = "address"
FIELD_REMARK = "remark"
FIELD_REASON = "reason"
FIELD_AMOUNT = "amount"
FIELD_PAYMENT_TEXT = "payment_text"
MAX_PAYMENT_TEXT = 500


def check_quantity(quantity: int, *, allow_zero: bool = False) -> int:
    from .errors import InvalidValue

    if quantity < (0 if allow_zero else 1):
        raise InvalidValue(FIELD_QUANTITY, "too_small", 0 if allow_zero else 1)
    if quantity > MAX_QUANTITY:
        raise InvalidValue(FIELD_QUANTITY, "too_large", MAX_QUANTITY)
    return quantity


# --- echoing what a user typed -----------------------------------------------------------
# A refusal may name the word it refuses, never more than this much of it: a 100 KB
# argument must not come back whole (in a group, to everyone).
QUOTE_LIMIT = 20


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """At most `limit` characters of `text`, on one line, with … when cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """What a user typed, echoed back in quotation marks: “12x”, “很长很长…”."""
    return f"“{clip(text, limit)}”"
