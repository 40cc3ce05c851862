"""Virtual goods: card keys (卡密), sold one key per unit.

The stock invariant, which keeps keys exact by the same atomic rules as physical goods:
for every variant of a virtual item

    Variant.stock == unused keys (card_key.order_id IS NULL) - units held by unpaid orders

- importing adds keys and stock in one transaction; clearing removes unused keys and
  stock together, never the keys unpaid orders hold;
- placing an order reserves stock with the usual conditional UPDATE
  (orders.reserve_stock), so many buyers racing for the last keys cannot oversell;
  expiry, cancellation and a smaller quantity release it (orders.release_stock);
- the payment takes `quantity` unused keys per line (`deliver`) without touching stock:
  it was reserved when the order was placed;
- a refund leaves the revealed keys with their order: they never go back on the shelf
  (orders.refund restocks only orders still 待发货, and virtual orders complete with
  their payment).

Keys at rest: with CARD_KEY_SECRET, Fernet tokens (the `cryptography` library) and HMAC
digests, so a copied database file hands out no key; without it, plain text and SHA-256
digests. Duplicates are found by digest either way. Keys are shown in full only to their
buyer in a private chat; everything else sees `mask(key)`.

Every function runs inside the caller's transaction and never commits."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import (
    CardDelivery,
    CardKey,
    Item,
    OrderLine,
    OrderStatus,
    ShopOrder,
    Variant,
)

from . import orders
from .actors import Actor
from .catalog import line_name
from .errors import (
    AlreadyPaid,
    CardKeysProblem,
    CardKeysRejected,
    CardKeysShort,
    CardKeysUnreadable,
    InvalidValue,
    NotVirtual,
    VirtualSwitchBlock,
    VirtualSwitchBlocked,
)
from .limits import FIELD_STOCK, MAX_STOCK

S = OrderStatus
MAX_IMPORT_KEYS = 500  # key lines in one /卡密 导入 message
MAX_KEY_LENGTH = 500  # characters of one key
MASKED_SAMPLES = 3  # unused keys shown (masked) by /卡密 <规格编号>
# Characters of keys in one message: a chat message has a length limit (the chat door caps
# replies at 3,000 characters), so many or long keys go in several pages.
KEYS_PAGE_CHARS = 2000
SHOWN_OPEN_ORDERS = 5  # order codes named when open orders block /虚拟
# Orders whose meaning the virtual flag decides: not paid yet, or paid and not shipped.
OPEN_STATUSES = (S.PENDING_PAYMENT.value, S.PAID.value)
# The outbox segment that stands for an order's keys: the dispatcher renders it at send
# time (services/usecases/card_keys.expand_card_keys), so no key is ever written into
# the outbox, not even encrypted.
CARD_KEYS_SEGMENT = "card_keys"
# What the completion on delivery is recorded as (order_rules allows paid -> completed
# for this action only).
DELIVERED_ACTION = "keys_delivered"

_HKDF_INFO_FERNET = b"qq-shop-bot card keys: fernet v1"
_HKDF_INFO_DIGEST = b"qq-shop-bot card keys: digest v1"


def _derive(secret: str, info: bytes) -> bytes:
    """32 bytes for one purpose from CARD_KEY_SECRET (a different key per purpose)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
        secret.encode("utf-8")
    )


def _plain_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyVault:
    """How keys are sealed at rest and digested for duplicates (see the module doc)."""

    def __init__(self, secret: str | None) -> None:
        self._fernet = (
            Fernet(base64.urlsafe_b64encode(_derive(secret, _HKDF_INFO_FERNET))) if secret else None
        )
        self._digest_key = _derive(secret, _HKDF_INFO_DIGEST) if secret else None

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def seal(self, key: str) -> tuple[str, bool]:
        """(what to store, whether it is a Fernet token)."""
        if self._fernet is None:
            return key, False
        return self._fernet.encrypt(key.encode("utf-8")).decode("ascii"), True

    def reveal(self, row: CardKey) -> str:
        if not row.sealed:
            return row.secret
        if self._fernet is None:
            raise CardKeysUnreadable()
        try:
            return self._fernet.decrypt(row.secret.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise CardKeysUnreadable() from None

    def digest(self, key: str) -> str:
        """The digest stored with a new key: keyed when there is a secret, so short keys
        (6-digit codes) cannot be guessed back from a copied database."""
        if self._digest_key is None:
            return _plain_digest(key)
        return hmac.new(self._digest_key, key.encode("utf-8"), hashlib.sha256).hexdigest()

    def digests(self, key: str) -> set[str]:
        """Every digest the same key may already be stored under (keys imported before
        the secret was set carry the plain one)."""
        return {self.digest(key), _plain_digest(key)}


def mask(key: str) -> str:
    """`AB****YZ`: the first and last two characters, fewer for short keys, none for very
    short ones (they would be shown almost whole)."""
    if len(key) >= 8:
        return f"{key[:2]}****{key[-2:]}"
    if len(key) >= 5:
        return f"{key[0]}****{key[-1]}"
    return "****"


def parse_keys(text: str) -> list[str]:
    """One key per line, white space around it dropped, blank lines ignored. Refused as
    a whole (CardKeysRejected) when empty, too many or one key too long."""
    keys = [line.strip() for line in text.splitlines()]
    keys = [key for key in keys if key]
    if not keys:
        raise CardKeysRejected(CardKeysProblem.EMPTY, MAX_IMPORT_KEYS)
    if len(keys) > MAX_IMPORT_KEYS:
        raise CardKeysRejected(CardKeysProblem.TOO_MANY, MAX_IMPORT_KEYS)
    for number, key in enumerate(keys, start=1):
        if len(key) > MAX_KEY_LENGTH:
            raise CardKeysRejected(CardKeysProblem.TOO_LONG, MAX_KEY_LENGTH, number)
    return keys


class CardKeysImportFailed(RuntimeError):
    """The database refused an import (locked, gone): a bug or an outage, not the user's
    doing, reported without the keys."""


def _require_virtual(item: Item) -> None:
    if not item.virtual:
        raise NotVirtual(item.id or 0)


_VARIANT = Variant.__table__.c  # type: ignore[attr-defined]
_KEY = CardKey.__table__.c  # type: ignore[attr-defined]


async def _stock(session: AsyncSession, variant_id: int) -> int:
    return int(
        (
            await session.execute(select(_VARIANT.stock).where(_VARIANT.id == variant_id))
        ).scalar_one()
    )


async def _count_keys(session: AsyncSession, variant_id: int, *, sold: bool) -> int:
    condition = _KEY.order_id.is_not(None) if sold else _KEY.order_id.is_(None)
    return int(
        (
            await session.execute(
                select(func.count())
                .select_from(CardKey)
                .where(_KEY.variant_id == variant_id, condition)
            )
        ).scalar_one()
    )


# --- the virtual flag ---------------------------------------------------------------


async def open_orders_of_item(session: AsyncSession, item_id: int) -> tuple[int, tuple[str, ...]]:
    """How many unpaid or paid-not-shipped orders have a line of the item, and a few of
    their codes."""
    condition = (
        select(ShopOrder.code)
        .join(OrderLine, OrderLine.order_id == ShopOrder.id)
        .where(OrderLine.item_id == item_id, ShopOrder.status.in_(OPEN_STATUSES))  # type: ignore[attr-defined]
        .distinct()
    )
    count = (
        await session.execute(select(func.count()).select_from(condition.subquery()))
    ).scalar_one()
    codes = (
        await session.execute(condition.order_by(ShopOrder.code).limit(SHOWN_OPEN_ORDERS))
    ).scalars()
    return int(count), tuple(codes)


async def set_virtual(session: AsyncSession, item: Item, virtual: bool) -> bool:
    """Switches the item to card keys (or back). Refused while open orders would change
    meaning, while goods are in stock (turning on) or unsold keys remain (turning off).
    Returns whether anything changed."""
    if item.virtual == virtual:
        return False
    item_id = item.id or 0
    count, codes = await open_orders_of_item(session, item_id)
    if count:
        raise VirtualSwitchBlocked(item_id, VirtualSwitchBlock.OPEN_ORDERS, count, codes)
    variant_ids = list(
        (await session.execute(select(_VARIANT.id).where(_VARIANT.item_id == item_id))).scalars()
    )
    stock = int(
        (
            await session.execute(
                select(func.coalesce(func.sum(_VARIANT.stock), 0)).where(
                    _VARIANT.item_id == item_id
                )
            )
        ).scalar_one()
    )
    if virtual and stock:
        raise VirtualSwitchBlocked(item_id, VirtualSwitchBlock.PHYSICAL_STOCK, stock)
    if not virtual and stock:
        raise VirtualSwitchBlocked(item_id, VirtualSwitchBlock.UNUSED_KEYS, stock)
    if virtual:
        # No open orders: nothing holds a key, so the stock is every unused key (normally
        # none; keys left from an earlier virtual period count again).
        for variant_id in variant_ids:
            unused = await _count_keys(session, variant_id, sold=False)
            await session.execute(
                update(Variant).where(_VARIANT.id == variant_id).values(stock=unused)
            )
    item.virtual = virtual
    await session.flush()
    return True


# --- key stock ----------------------------------------------------------------------


@dataclass(frozen=True)
class KeyImport:
    imported: int
    duplicates: int  # lines skipped: repeated in the message or already in the variant
    stock: int  # the variant's stock (keys on sale) afterwards


async def import_keys(
    session: AsyncSession,
    item: Item,
    variant: Variant,
    keys: list[str],
    vault: KeyVault,
    imported_by: int,
    now: datetime,
) -> KeyImport:
    """Adds the keys not yet in the variant (by digest) and as much stock, atomically.
    Concurrent imports of the same key: the unique (variant, digest) keeps one."""
    _require_virtual(item)
    variant_id = variant.id or 0
    unique = list(dict.fromkeys(keys))
    candidates = {digest for key in unique for digest in vault.digests(key)}
    known: set[str] = set()
    chunk = sorted(candidates)
    for start in range(0, len(chunk), 500):
        known.update(
            (
                await session.execute(
                    select(_KEY.key_hash).where(
                        _KEY.variant_id == variant_id, _KEY.key_hash.in_(chunk[start : start + 500])
                    )
                )
            ).scalars()
        )
    fresh = [key for key in unique if not vault.digests(key) & known]
    if await _stock(session, variant_id) + len(fresh) > MAX_STOCK:
        raise InvalidValue(FIELD_STOCK, "too_large", MAX_STOCK)
    imported = 0
    if fresh:
        rows = []
        for key in fresh:
            stored, sealed = vault.seal(key)
            rows.append(
                {
                    "shop_id": item.shop_id,
                    "variant_id": variant_id,
                    "secret": stored,
                    "sealed": sealed,
                    "key_hash": vault.digest(key),
                    "order_id": None,
                    "imported_by": imported_by,
                    "imported_at": now,
                    "sold_at": None,
                }
            )
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(CardKey)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["variant_id", "key_hash"])
        )
        try:
            result = await session.execute(statement)
        except DBAPIError as error:
            # SQLAlchemy's message carries the statement's parameters (the keys, plain
            # without a secret) and the chat door logs unexpected errors: drop them.
            raise CardKeysImportFailed(type(error.orig).__name__) from None
        imported = int(result.rowcount or 0)  # type: ignore[attr-defined]
    stock = (
        await session.execute(
            update(Variant)
            .where(_VARIANT.id == variant_id)
            .values(stock=_VARIANT.stock + imported)
            .returning(_VARIANT.stock)
        )
    ).scalar_one()
    return KeyImport(imported, len(keys) - imported, int(stock))


@dataclass(frozen=True)
class KeyCounts:
    on_sale: int  # the variant's stock: unused keys no unpaid order holds
    held: int  # unused keys reserved by unpaid orders
    sold: int  # keys handed out with a payment
    samples: list[str]  # a few unused keys, masked


async def key_counts(
    session: AsyncSession, item: Item, variant: Variant, vault: KeyVault
) -> KeyCounts:
    _require_virtual(item)
    variant_id = variant.id or 0
    unused = await _count_keys(session, variant_id, sold=False)
    sold = await _count_keys(session, variant_id, sold=True)
    stock = await _stock(session, variant_id)
    rows = (
        await session.execute(
            select(CardKey)
            .where(_KEY.variant_id == variant_id, _KEY.order_id.is_(None))
            .order_by(_KEY.id)
            .limit(MASKED_SAMPLES)
        )
    ).scalars()
    samples = []
    for row in rows:
        try:
            samples.append(mask(vault.reveal(row)))
        except CardKeysUnreadable:
            samples.append("****")
    return KeyCounts(stock, unused - stock, sold, samples)


@dataclass(frozen=True)
class KeysCleared:
    removed: int
    held: int  # unused keys kept because unpaid orders hold them


async def _delete_unused(session: AsyncSession, variant_id: int, count: int) -> int:
    """Deletes up to `count` unused keys, newest first (delivery takes the oldest)."""
    removed = 0
    while removed < count:
        ids = list(
            (
                await session.execute(
                    select(_KEY.id)
                    .where(_KEY.variant_id == variant_id, _KEY.order_id.is_(None))
                    .order_by(_KEY.id.desc())
                    .limit(count - removed)
                    # PostgreSQL: skip keys a paying order is taking right now.
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        if not ids:
            break
        result = await session.execute(
            delete(CardKey).where(_KEY.id.in_(ids), _KEY.order_id.is_(None))
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            break
        removed += int(result.rowcount)  # type: ignore[attr-defined]
    return removed


async def clear_unused(session: AsyncSession, item: Item, variant: Variant) -> KeysCleared:
    """Removes the keys on sale (unused and not held by an unpaid order) and as much
    stock. Sold keys and keys unpaid orders hold stay."""
    _require_virtual(item)
    variant_id = variant.id or 0
    removed = 0
    for _ in range(5):  # a concurrent order may take stock between the read and the take
        available = await _stock(session, variant_id)
        if available == 0:
            break
        if not await orders.reserve_stock(session, variant_id, available):
            continue
        deleted = await _delete_unused(session, variant_id, available)
        if deleted < available:
            # Fewer unused keys than stock said: give back what is still there.
            await orders.release_stock(session, variant_id, available - deleted)
        removed += deleted
        break
    unused = await _count_keys(session, variant_id, sold=False)
    return KeysCleared(removed, unused - await _stock(session, variant_id))


# --- delivery -----------------------------------------------------------------------


async def _take_keys(
    session: AsyncSession, variant_id: int, order_id: int, quantity: int, now: datetime
) -> int:
    """Assigns up to `quantity` unused keys (oldest first) to the order, each by a
    compare-and-set on `order_id IS NULL`, so no key ever goes to two orders."""
    taken = 0
    while taken < quantity:
        ids = list(
            (
                await session.execute(
                    select(_KEY.id)
                    .where(_KEY.variant_id == variant_id, _KEY.order_id.is_(None))
                    .order_by(_KEY.id)
                    .limit(quantity - taken)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        if not ids:
            break
        for key_id in ids:
            result = await session.execute(
                update(CardKey)
                .where(_KEY.id == key_id, _KEY.order_id.is_(None))
                .values(order_id=order_id, sold_at=now)
            )
            taken += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return taken


async def deliver(session: AsyncSession, order: ShopOrder, now: datetime) -> int:
    """Hands the just-paid virtual order its keys and completes it (with its event);
    returns how many keys it took. Exactly once per order: a second payment that got
    this far finds the delivery row (AlreadyPaid), and one racing it inserts that row
    second and fails on its unique order_id; either way its whole transaction, payment
    included, rolls back. Raises CardKeysShort (rolling back too) if the stock invariant
    was broken by hand and the keys are not all there."""
    order_id = order.id or 0
    done = (
        await session.execute(select(CardDelivery.id).where(CardDelivery.order_id == order_id))
    ).first()
    if done is not None:
        raise AlreadyPaid(order.code)
    marker = CardDelivery(order_id=order_id, key_count=0, delivered_at=now)
    session.add(marker)
    await session.flush()
    total = 0
    for line in await orders.order_lines(session, order_id):
        taken = await _take_keys(session, line.variant_id, order_id, line.quantity, now)
        if taken < line.quantity:
            name = line_name(line.item_name, line.variant_name)
            raise CardKeysShort(order.code, name, line.quantity - taken)
        total += taken
    marker.key_count = total
    orders.move(
        session,
        order,
        S.COMPLETED,
        Actor.system(),
        DELIVERED_ACTION,
        now,
        detail=f"自动发放 {total} 个卡密",
    )
    await session.flush()
    return total


@dataclass(frozen=True)
class LineKeys:
    name: str  # as the order line names it: 商品（规格）
    keys: list[str]


async def order_keys(session: AsyncSession, order: ShopOrder, vault: KeyVault) -> list[LineKeys]:
    """The order's keys in full, by line (empty: none were handed out). For the buyer
    only; anyone else gets them through `mask`."""
    order_id = order.id or 0
    rows = list(
        (
            await session.execute(
                select(CardKey).where(_KEY.order_id == order_id).order_by(_KEY.id)
            )
        ).scalars()
    )
    if not rows:
        return []
    by_variant: dict[int, list[str]] = {}
    for row in rows:
        by_variant.setdefault(row.variant_id, []).append(vault.reveal(row))
    result = []
    for line in await orders.order_lines(session, order_id):
        keys = by_variant.pop(line.variant_id, [])
        if keys:
            result.append(LineKeys(line_name(line.item_name, line.variant_name), keys))
    return result


def paginate(lines: list[LineKeys], budget: int = KEYS_PAGE_CHARS) -> list[list[LineKeys]]:
    """The keys in pages of at most `budget` characters (a page holds at least one key),
    each page grouped by line, in order. No keys: no pages."""
    pages: list[list[LineKeys]] = []
    current: list[LineKeys] = []
    used = 0
    for line in lines:
        for key in line.keys:
            if current and used + len(key) > budget:
                pages.append(current)
                current, used = [], 0
            if not current or current[-1].name != line.name:
                current.append(LineKeys(line.name, []))
            current[-1].keys.append(key)
            used += len(key) + 1
    if current:
        pages.append(current)
    return pages
