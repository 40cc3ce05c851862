"""Virtual goods (卡密): the item flag, the keys' stock, their delivery with the payment,
and a buyer asking for their keys again. The rules and the stock invariant are in
services/card_keys.py.

Keys are shown in full only in a private chat with their buyer: delivered through the
outbox (rendered at send time, `expand_card_keys`, so no key is stored in an outbox row)
and by /提货. Staff see them masked; a group sees none and learns nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import Item, ShopOrder, Variant
from models.types import utcnow

from .. import card_keys, catalog, notices, orders, outbox, safeguards
from ..actors import Caller
from ..card_keys import KeyCounts, KeyVault, LineKeys
from ..catalog import VariantRef
from ..context import ShopContext
from ..errors import CardKeysUnreadable, InvalidValue, KeysPrivateOnly, NoCardKeys
from ..limits import FIELD_PAGE
from ..outbox import Segment


def vault_of(shop: ShopContext) -> KeyVault:
    """How this shop keeps keys at rest (CARD_KEY_SECRET, or plain without it)."""
    secret = shop.settings.card_key_secret
    return KeyVault(secret.get_secret_value() if secret is not None else None)


# --- the virtual flag (/虚拟) ----------------------------------------------------------


@dataclass(frozen=True)
class VirtualSwitched:
    item: Item
    changed: bool  # False: it already was so


async def set_virtual(
    shop: ShopContext, caller: Caller, item_id: int, virtual: bool
) -> VirtualSwitched:
    """Sells the item as card keys (or as goods again). Refused (VirtualSwitchBlocked)
    while it has goods in stock, unsold keys, or open orders."""
    async with shop.database.write() as session:
        item = await catalog.get_item(session, shop.shop_id, item_id, include_delisted=True)
        changed = await card_keys.set_virtual(session, item, virtual)
    return VirtualSwitched(item, changed)


# --- key stock (/卡密) -----------------------------------------------------------------


@dataclass(frozen=True)
class KeysImported:
    item: Item
    variant: Variant
    imported: int
    duplicates: int  # lines skipped: repeated in the message or already imported
    stock: int  # keys on sale now

    @property
    def ref(self) -> VariantRef:
        return VariantRef(self.item.id or 0, self.variant.position)


async def import_keys(
    shop: ShopContext, caller: Caller, ref: VariantRef, text: str, now: datetime | None = None
) -> KeysImported:
    """/卡密 导入: one key per line of `text` (blank lines ignored, duplicates skipped and
    counted); private chat only, refused before anything is read in a group."""
    if caller.in_group:
        raise KeysPrivateOnly()
    keys = card_keys.parse_keys(text)
    now = now or utcnow()
    async with shop.database.write() as session:
        item, variant = await catalog.resolve_variant(
            session, shop.shop_id, ref, include_delisted=True
        )
        result = await card_keys.import_keys(
            session, item, variant, keys, vault_of(shop), caller.user_id, now
        )
        if result.imported:
            # New keys are a restock: back above the threshold, the low-stock alert
            # re-arms (or, still at or below it, staff hear of it) as for physical goods.
            await safeguards.after_stock_change(session, variant.id or 0, now)
    return KeysImported(item, variant, result.imported, result.duplicates, result.stock)


@dataclass(frozen=True)
class KeyStock:
    item: Item
    variant: Variant
    counts: KeyCounts  # on sale, held by unpaid orders, sold, a few masked samples

    @property
    def ref(self) -> VariantRef:
        return VariantRef(self.item.id or 0, self.variant.position)


async def key_stock(shop: ShopContext, caller: Caller, ref: VariantRef) -> KeyStock:
    """/卡密 <规格编号>: counts and a few keys, masked (safe in any chat)."""
    async with shop.database.read() as session:
        item, variant = await catalog.resolve_variant(
            session, shop.shop_id, ref, include_delisted=True
        )
        counts = await card_keys.key_counts(session, item, variant, vault_of(shop))
    return KeyStock(item, variant, counts)


@dataclass(frozen=True)
class KeysCleared:
    item: Item
    variant: Variant
    removed: int
    held: int  # unused keys kept: unpaid orders hold them

    @property
    def ref(self) -> VariantRef:
        return VariantRef(self.item.id or 0, self.variant.position)


async def clear_keys(shop: ShopContext, caller: Caller, ref: VariantRef) -> KeysCleared:
    """/卡密 清空: removes the unused keys on sale; sold keys and those held stay."""
    async with shop.database.write() as session:
        item, variant = await catalog.resolve_variant(
            session, shop.shop_id, ref, include_delisted=True
        )
        cleared = await card_keys.clear_unused(session, item, variant)
    return KeysCleared(item, variant, cleared.removed, cleared.held)


# --- delivery (inside services/usecases/payments.record_payment) ----------------------


async def deliver_with_payment(
    shop: ShopContext,
    session: AsyncSession,
    order: ShopOrder,
    *,
    notify_staff: bool,
    now: datetime,
) -> int:
    """In the transaction that recorded the payment of a virtual order: takes its keys,
    completes it, and queues the keys to the buyer privately (plus, for an order from a
    group, only a word there that they were sent). Returns how many keys it took."""
    taken = await card_keys.deliver(session, order, now)
    try:
        pages = len(card_keys.paginate(await card_keys.order_keys(session, order, vault_of(shop))))
    except CardKeysUnreadable:
        # CARD_KEY_SECRET changed since the import: the payment still stands; the message
        # fails and is retried when sent, and /提货 works once the secret is put back.
        pages = 1
    await notices.card_keys_to_buyer(session, order, pages, now)
    if order.group_id:
        await notices.to_customer(
            session, order, notices.card_keys_sent_privately(order), "keys_sent", now
        )
    if notify_staff:
        await notices.to_staff(
            session,
            shop.shop_id,
            shop.owners,
            notices.card_keys_paid_for_staff(order),
            f"order:{order.code}:paid",
            now,
        )
    return taken


async def expand_card_keys(shop: ShopContext, segments: list[Segment]) -> list[Segment]:
    """The outbox dispatcher's step before sending: an order's keys segment becomes the
    text with its keys, read (and decrypted) only now. Other segments pass unchanged."""
    if not any(segment.get("type") == card_keys.CARD_KEYS_SEGMENT for segment in segments):
        return segments
    vault = vault_of(shop)
    rendered: list[Segment] = []
    async with shop.database.read() as session:
        for segment in segments:
            if segment.get("type") != card_keys.CARD_KEYS_SEGMENT:
                rendered.append(segment)
                continue
            order = await orders.get_order(session, shop.shop_id, segment["data"]["order"])
            pages = card_keys.paginate(await card_keys.order_keys(session, order, vault)) or [[]]
            number = min(int(segment["data"].get("page", 1)), len(pages))
            body = notices.card_keys_for_buyer(order, pages[number - 1], number, len(pages))
            rendered.append(outbox.text(body))
    return rendered


# --- the buyer's keys again (/提货) -------------------------------------------------------


@dataclass(frozen=True)
class OrderKeys:
    order: ShopOrder
    lines: list[LineKeys]  # the keys of this page, by line
    masked: bool  # staff looking at a customer's order: every key masked
    page: int = 1
    pages: int = 1


async def reveal_keys(shop: ShopContext, caller: Caller, code: str, page: int = 1) -> OrderKeys:
    """/提货: the caller's own order's keys in full, in a private chat only (a page at a
    time when they are many). In a group KeysPrivateOnly, before anything is looked up;
    another customer's order is OrderNotFound, as if it did not exist; staff see a
    customer's keys masked."""
    if caller.in_group:
        raise KeysPrivateOnly()
    vault = vault_of(shop)
    async with shop.database.read() as session:
        order = await orders.get_order(session, shop.shop_id, code, customer_id=caller.own_only)
        lines = await card_keys.order_keys(session, order, vault)
    if not lines:
        raise NoCardKeys(order.code)
    masked = order.user_id != caller.user_id
    if masked:
        lines = [LineKeys(line.name, [card_keys.mask(key) for key in line.keys]) for line in lines]
    pages = card_keys.paginate(lines)
    if page > len(pages):
        raise InvalidValue(FIELD_PAGE, "too_large", len(pages))
    return OrderKeys(order, pages[page - 1], masked, page, len(pages))
