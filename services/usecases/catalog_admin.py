"""Running the shop: editing the catalog, the staff list, and the groups the shop answers in.

None of these queues a notice. Staff and group changes invalidate the cached access
control (`shop.access`) once committed, so the next message sees them. Deleting from the
catalog takes two steps (`ask_deletion`, then `confirm_deletion` by the same person in the
same chat before the confirmation timeout); what waits in between lives in
`shop.deletions`, in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.tables import Item, Staff, Variant
from models.types import utcnow

from .. import catalog, groups, staff
from ..actors import Caller
from ..catalog import DeletionPlan, ItemPage, StockChange, VariantRef
from ..context import PendingDeletion, ShopContext
from ..errors import DeletionLapse, DeletionNotPending
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
class Renamed:
    item: Item
    variant: Variant | None  # None: the item itself was renamed
    old_name: str

    @property
    def new_name(self) -> str:
        return self.item.name if self.variant is None else self.variant.name

    @property
    def changed(self) -> bool:
        return self.new_name != self.old_name


@dataclass(frozen=True)
class DeletionAsked:
    plan: DeletionPlan
    expires_at: datetime


@dataclass(frozen=True)
class Deleted:
    plan: DeletionPlan
    stale_summaries: int  # timed-out order summaries that held it, deleted with it


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


async def rename(shop: ShopContext, ref: VariantRef, name: str) -> Renamed:
    """An item's (`12`) or a variant's (`12-2`) new name (/改名). Orders keep the names
    they were placed under: their lines hold a copy (OrderLine.item_name, variant_name)."""
    async with shop.database.write() as session:
        if ref.position is None:
            item, old_name = await catalog.rename_item(session, shop.shop_id, ref.item_id, name)
            return Renamed(item, None, old_name)
        item, variant, old_name = await catalog.rename_variant(session, shop.shop_id, ref, name)
        return Renamed(item, variant, old_name)


async def ask_deletion(
    shop: ShopContext, caller: Caller, ref: VariantRef, now: datetime | None = None
) -> DeletionAsked:
    """/删除: what deleting an item (`12`) or a variant (`12-2`) would remove, or the
    reason it may not (catalog.plan_deletion). Nothing changes yet: the deletion waits
    for the caller's 确认删除 in this chat until the confirmation timeout, replacing any
    earlier one of theirs here."""
    now = now or utcnow()
    async with shop.database.read() as session:
        plan = await catalog.plan_deletion(session, shop.shop_id, ref, now)
    expires_at = now + shop.settings.confirm_timeout
    shop.deletions.put(
        caller.group_id,
        caller.user_id,
        PendingDeletion(ref.item_id, ref.position, plan.variant_ids, expires_at),
    )
    return DeletionAsked(plan, expires_at)


def pending_deletion(shop: ShopContext, caller: Caller) -> VariantRef | None:
    """What the caller's /删除 in this chat waits to delete, if anything."""
    pending = shop.deletions.get(caller.group_id, caller.user_id)
    return None if pending is None else VariantRef(pending.item_id, pending.position)


def cancel_deletion(shop: ShopContext, caller: Caller) -> VariantRef | None:
    """取消: forgets the caller's waiting /删除 in this chat; returns what it was."""
    pending = shop.deletions.pop(caller.group_id, caller.user_id)
    return None if pending is None else VariantRef(pending.item_id, pending.position)


async def confirm_deletion(
    shop: ShopContext, caller: Caller, now: datetime | None = None
) -> Deleted:
    """确认删除: deletes what the caller's /删除 in this chat showed, checking again in
    the deleting transaction (an order may have come in since: then DeleteBlocked, and
    nothing is deleted). Refused with DeletionNotPending when nothing waits, it timed
    out, or the variants changed since the summary. The waiting deletion is used up
    either way: a refused one is asked for again with /删除."""
    now = now or utcnow()
    pending = shop.deletions.pop(caller.group_id, caller.user_id)
    if pending is None:
        raise DeletionNotPending(DeletionLapse.NONE)
    ref = VariantRef(pending.item_id, pending.position)
    if pending.expires_at <= now:
        raise DeletionNotPending(DeletionLapse.EXPIRED, str(ref))
    async with shop.database.write() as session:
        plan = await catalog.plan_deletion(session, shop.shop_id, ref, now)
        if plan.variant_ids != pending.variant_ids:
            raise DeletionNotPending(DeletionLapse.CHANGED, str(ref))
        stale = await catalog.delete_planned(session, plan)
    for group_id, user_id in stale:
        shop.drafts.drop(group_id, user_id)
    return Deleted(plan, len(stale))


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
