"""Running the shop: editing the catalog, the staff list, and the groups the shop answers in.

None of these queues a notice. Staff and group changes invalidate the cached access
control (`shop.access`) once committed, so the next message sees them."""

from __future__ import annotations

from dataclasses import dataclass

from models.tables import Item, Staff, Variant

from .. import catalog, groups, staff
from ..actors import Caller
from ..catalog import ItemPage, StockChange, VariantRef
from ..context import ShopContext
from ..limits import FIELD_DESCRIPTION, MAX_DESCRIPTION, check_text
from ..media import download_image

# --- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewItem:
    item: Item
    variant: Variant
    category: str | None


@dataclass(frozen=True)
class NewVariant:
    item: Item
    variant: Variant


@dataclass(frozen=True)
class PriceChange:
    item: Item
    variant: Variant
    old_price_fen: int


@dataclass(frozen=True)
class StockUpdate:
    item: Item
    variant: Variant
    change: StockChange
    old_stock: int


@dataclass(frozen=True)
class ShelfChange:
    item: Item
    changed: bool  # False when the item already was in that state


@dataclass(frozen=True)
class DescriptionChange:
    item: Item
    text_changed: bool
    image_saved: bool


@dataclass(frozen=True)
class StaffRoster:
    staff: list[Staff]
    owners: frozenset[int]


# --- the catalog ------------------------------------------------------------------------


async def create_item(
    shop: ShopContext, name: str, price_fen: int, stock: int, category: str | None = None
) -> NewItem:
    """A new on-shelf item with one variant (/新品)."""
    async with shop.database.write() as session:
        item, variant = await catalog.create_item(
            session, shop.shop_id, name, price_fen, stock, category
        )
    return NewItem(item, variant, category)


async def add_variant(
    shop: ShopContext, item_id: int, name: str, price_fen: int, stock: int
) -> NewVariant:
    """Another variant of an item, listed or not (/规格)."""
    async with shop.database.write() as session:
        variant = await catalog.add_variant(session, shop.shop_id, item_id, name, price_fen, stock)
        item = await catalog.get_item(session, shop.shop_id, item_id, include_delisted=True)
    return NewVariant(item, variant)


async def set_price(shop: ShopContext, ref: VariantRef, price_fen: int) -> PriceChange:
    """A variant's new price; orders already placed keep theirs (/改价)."""
    async with shop.database.write() as session:
        item, variant, old_price = await catalog.set_price(session, shop.shop_id, ref, price_fen)
    return PriceChange(item, variant, old_price)


async def change_stock(shop: ShopContext, ref: VariantRef, change: StockChange) -> StockUpdate:
    """Adds to, takes from or sets a variant's stock (/库存)."""
    async with shop.database.write() as session:
        item, variant, old_stock = await catalog.change_stock(session, shop.shop_id, ref, change)
    return StockUpdate(item, variant, change, old_stock)


async def set_listed(shop: ShopContext, item_id: int, listed: bool) -> ShelfChange:
    """Puts an item on the shelf or takes it off (/上架 /下架)."""
    async with shop.database.write() as session:
        item, changed = await catalog.set_listed(session, shop.shop_id, item_id, listed)
    return ShelfChange(item, changed)


async def list_delisted(shop: ShopContext, page: int = 1) -> ItemPage:
    """One page of the items off the shelf (/已下架)."""
    async with shop.database.read() as session:
        return await catalog.list_delisted(session, shop.shop_id, page)


async def describe_item(
    shop: ShopContext, item_id: int, text: str | None, image_url: str | None = None
) -> DescriptionChange:
    """Sets an item's description and/or picture (/描述); `text=None` keeps the text.

    The picture is downloaded only once the text and the item are known to be fine, so a
    refused description leaves no orphan file, and outside the write transaction, so the
    network never holds up other writers."""
    text = check_text(FIELD_DESCRIPTION, text, MAX_DESCRIPTION) if text else None
    async with shop.database.read() as session:
        await catalog.get_item(session, shop.shop_id, item_id, include_delisted=True)
    image_path = await download_image(image_url, shop.data_dir) if image_url else None
    async with shop.database.write() as session:
        item = await catalog.set_description(session, shop.shop_id, item_id, text, image_path)
    return DescriptionChange(
        item, text_changed=text is not None, image_saved=image_path is not None
    )


async def set_category(shop: ShopContext, item_id: int, category: str) -> Item:
    """Files an item under a category, creating the category if new (/设分类)."""
    async with shop.database.write() as session:
        return await catalog.set_category(session, shop.shop_id, item_id, category)


async def set_no_reason_return(shop: ShopContext, item_id: int, allowed: bool) -> Item:
    """Whether an item may be returned within seven days without a reason (/无理由)."""
    async with shop.database.write() as session:
        return await catalog.set_no_reason_return(session, shop.shop_id, item_id, allowed)


# --- staff and groups (who may run the shop, and where it answers) -----------------------


async def list_staff(shop: ShopContext) -> StaffRoster:
    """The owners and the staff (/店员)."""
    async with shop.database.read() as session:
        rows = await staff.list_staff(session, shop.shop_id)
    return StaffRoster(rows, shop.owners)


async def add_staff(shop: ShopContext, caller: Caller, user_id: int) -> Staff:
    """Makes someone staff (/店员 添加); the caller is recorded as who added them."""
    async with shop.database.write() as session:
        row = await staff.add_staff(session, shop.shop_id, user_id, caller.user_id, shop.owners)
    shop.access.invalidate()
    return row


async def remove_staff(shop: ShopContext, user_id: int) -> None:
    """Takes someone off the staff (/店员 删除)."""
    async with shop.database.write() as session:
        await staff.remove_staff(session, shop.shop_id, user_id)
    shop.access.invalidate()


async def set_group_enabled(shop: ShopContext, caller: Caller, enabled: bool) -> bool:
    """Makes the shop answer, or stop answering, in the caller's group (/启用本群
    /停用本群); returns whether anything changed."""
    if caller.group_id is None:
        raise ValueError("set_group_enabled needs a caller in a group")
    async with shop.database.write() as session:
        changed = await groups.set_group_enabled(
            session, shop.shop_id, caller.group_id, enabled, caller.user_id
        )
    shop.access.invalidate()
    return changed
