"""Catalog: categories, items, variants, prices, stock, shelf state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import for_writing
from models.tables import (
    CardKey,
    CartLine,
    Category,
    CheckoutDraft,
    CheckoutDraftLine,
    Item,
    OrderLine,
    Variant,
    VariantGuard,
)
from models.types import utcnow

from . import safeguards
from .errors import (
    DeleteBlock,
    DeleteBlocked,
    InvalidValue,
    ItemNotFound,
    KeyStockOnly,
    StockTooLow,
    TooManyVariants,
    VariantNotFound,
    VariantRequired,
)
from .limits import (
    FIELD_CATEGORY,
    FIELD_DESCRIPTION,
    FIELD_ITEM_NAME,
    FIELD_PAGE,
    FIELD_SEARCH,
    FIELD_VARIANT_NAME,
    MAX_CATEGORY_NAME,
    MAX_DESCRIPTION,
    MAX_ITEM_NAME,
    MAX_PAGE,
    MAX_SEARCH_QUERY,
    MAX_SEARCH_WORDS,
    MAX_STOCK,
    MAX_VARIANT_NAME,
    MAX_VARIANTS_PER_ITEM,
    PAGE_SIZE,
    SEARCH_LIMIT,
    check_price,
    check_stock,
    check_text,
)

DEFAULT_VARIANT_NAME = "默认"


def line_name(item_name: str, variant_name: str) -> str:
    """How an item and its variant are named on an order line: the item alone when it
    has only the default variant, else 商品（规格）."""
    return item_name if variant_name == DEFAULT_VARIANT_NAME else f"{item_name}（{variant_name}）"


@dataclass(frozen=True)
class VariantRef:
    """`12-2` -> (12, 2); `12` -> (12, None), which means `12-1` for single-variant items."""

    item_id: int
    position: int | None = None

    def __str__(self) -> str:
        return str(self.item_id) if self.position is None else f"{self.item_id}-{self.position}"


@dataclass(frozen=True)
class ItemSummary:
    id: int
    name: str
    min_price_fen: int
    stock: int
    variant_count: int

    @property
    def sold_out(self) -> bool:
        return self.stock <= 0


@dataclass(frozen=True)
class ItemPage:
    items: list[ItemSummary]
    page: int
    pages: int
    total: int
    category: str | None


@dataclass(frozen=True)
class ItemDetail:
    item: Item
    category: str | None
    variants: list[Variant]

    @property
    def sold(self) -> int:
        return sum(v.sold for v in self.variants)

    def ref(self, variant: Variant) -> VariantRef:
        return VariantRef(self.item.id or 0, variant.position)


StockMode = Literal["add", "sub", "set"]


@dataclass(frozen=True)
class StockChange:
    mode: StockMode
    amount: int


# --- queries -------------------------------------------------------------------------


# Built once: constructing a select costs more CPU than SQLite spends running it, and
# /商品 is the most frequent command. `total` (a window count over the grouped rows)
# saves the separate COUNT query.
_SUMMARY_COLUMNS = (
    Item.id,
    Item.name,
    func.min(Variant.price_fen),
    func.sum(Variant.stock),
    func.count(Variant.id),
)
_LISTED = Item.listed.is_(True)  # type: ignore[attr-defined]
_SUMMARY = (
    select(*_SUMMARY_COLUMNS)
    .join(Variant, Variant.item_id == Item.id)
    .where(Item.shop_id == bindparam("shop_id"), _LISTED)
    .group_by(Item.id, Item.name)
    .order_by(Item.id)
)


def _page_of(shelf: ColumnElement[bool]) -> Select[Any]:
    return (
        select(*_SUMMARY_COLUMNS, func.count().over().label("total"))
        .join(Variant, Variant.item_id == Item.id)
        .where(Item.shop_id == bindparam("shop_id"), shelf)
        .group_by(Item.id, Item.name)
        .order_by(Item.id)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


_DELISTED = Item.listed.is_(False)  # type: ignore[attr-defined]
_PAGE_ALL = _page_of(_LISTED)
_PAGE_DELISTED = _page_of(_DELISTED)
_PAGE_IN_CATEGORY = _PAGE_ALL.where(Item.category_id == bindparam("category_id"))
_COUNT_ALL = (
    select(func.count()).select_from(Item).where(Item.shop_id == bindparam("shop_id"), _LISTED)
)
_COUNT_IN_CATEGORY = _COUNT_ALL.where(Item.category_id == bindparam("category_id"))
_COUNT_DELISTED = (
    select(func.count()).select_from(Item).where(Item.shop_id == bindparam("shop_id"), _DELISTED)
)


def _summaries(rows: object) -> list[ItemSummary]:
    return [
        ItemSummary(row[0], row[1], int(row[2]), int(row[3] or 0), int(row[4]))
        for row in rows  # type: ignore[attr-defined]
    ]


async def find_category(session: AsyncSession, shop_id: int, name: str) -> Category | None:
    result = await session.execute(
        select(Category).where(Category.shop_id == shop_id, Category.name == name.strip())
    )
    return result.scalar_one_or_none()


async def list_items(
    session: AsyncSession, shop_id: int, category: str | None = None, page: int = 1
) -> ItemPage:
    _check_page(page)
    params: dict[str, object] = {
        "shop_id": shop_id,
        "limit": PAGE_SIZE,
        "offset": (page - 1) * PAGE_SIZE,
    }
    if category is not None:
        found = await find_category(session, shop_id, category)
        if found is None:
            raise InvalidValue(FIELD_CATEGORY, "unknown", category)
        params["category_id"] = found.id
    if category is None:
        return await _page(session, _PAGE_ALL, _COUNT_ALL, params, page, None)
    return await _page(session, _PAGE_IN_CATEGORY, _COUNT_IN_CATEGORY, params, page, category)


async def list_delisted(session: AsyncSession, shop_id: int, page: int = 1) -> ItemPage:
    """Items taken off the shelf, for staff to find and put back (/上架)."""
    _check_page(page)
    params: dict[str, object] = {
        "shop_id": shop_id,
        "limit": PAGE_SIZE,
        "offset": (page - 1) * PAGE_SIZE,
    }
    return await _page(session, _PAGE_DELISTED, _COUNT_DELISTED, params, page, None)


def _check_page(page: int) -> None:
    if page < 1 or page > MAX_PAGE:
        raise InvalidValue(FIELD_PAGE, "too_small" if page < 1 else "too_large", MAX_PAGE)


async def _page(
    session: AsyncSession,
    statement: Select[Any],
    count: Select[Any],
    params: dict[str, object],
    page: int,
    category: str | None,
) -> ItemPage:
    rows = (await session.execute(statement, params)).all()
    if rows:
        total = int(rows[0][5])
    else:  # past the last page: the window count has no row to ride on
        total = (await session.execute(count, params)).scalar_one()
    pages = max(1, -(-total // PAGE_SIZE))
    return ItemPage(_summaries(rows), page, pages, total, category)


async def list_categories(session: AsyncSession, shop_id: int) -> list[tuple[str, int]]:
    """Every category with the number of on-shelf items in it, by name."""
    rows = await session.execute(
        select(Category.name, func.count(Item.id))
        .outerjoin(Item, and_(Item.category_id == Category.id, _LISTED))
        .where(Category.shop_id == shop_id)
        .group_by(Category.id, Category.name)
        .order_by(Category.name)
    )
    return [(name, count) for name, count in rows]


def _like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_items(session: AsyncSession, shop_id: int, query: str) -> list[ItemSummary]:
    """On-shelf items whose name or description contains every word (substring match,
    so Chinese without word breaks works)."""
    query = check_text(FIELD_SEARCH, query, MAX_SEARCH_QUERY)
    words = query.split()[:MAX_SEARCH_WORDS]
    statement = _SUMMARY
    for word in words:
        pattern = _like_pattern(word)
        statement = statement.where(
            or_(
                Item.name.ilike(pattern, escape="\\"),  # type: ignore[attr-defined]
                Item.description.ilike(pattern, escape="\\"),  # type: ignore[attr-defined]
            )
        )
    rows = await session.execute(statement.limit(SEARCH_LIMIT), {"shop_id": shop_id})
    return _summaries(rows)


async def get_item(
    session: AsyncSession, shop_id: int, item_id: int, *, include_delisted: bool = False
) -> Item:
    item = await session.get(Item, item_id)
    if item is None or item.shop_id != shop_id or (not item.listed and not include_delisted):
        raise ItemNotFound(item_id)
    return item


async def _variants_of(session: AsyncSession, item_id: int) -> list[Variant]:
    rows = await session.execute(
        select(Variant).where(Variant.item_id == item_id).order_by(Variant.position)
    )
    return list(rows.scalars())


# The item, its category's name and its variants in one statement (a row per variant;
# an item without variants gives one row with NULL variant columns). Core on the
# connection, objects built from the row as the ORM builds loaded ones: /详情 is the
# second most frequent command and ORM loading cost more than SQLite's work (issue 16).
_ITEM_COLUMNS = tuple(Item.__table__.c)  # type: ignore[attr-defined]
_VARIANT_COLUMNS = tuple(Variant.__table__.c)  # type: ignore[attr-defined]
_ITEM_PAGE = (
    select(*_ITEM_COLUMNS, Category.name, *_VARIANT_COLUMNS)
    .select_from(Item)
    .outerjoin(Category, Category.id == Item.category_id)
    .outerjoin(Variant, Variant.item_id == Item.id)  # type: ignore[arg-type]
    .where(Item.id == bindparam("item_id"), Item.shop_id == bindparam("shop_id"))
    .order_by(Variant.position)
)
_ITEM_KEYS = tuple(column.key for column in _ITEM_COLUMNS)
_VARIANT_KEYS = tuple(column.key for column in _VARIANT_COLUMNS)
_CATEGORY_AT = len(_ITEM_KEYS)
_VARIANT_AT = _CATEGORY_AT + 1


_Model = TypeVar("_Model")


def _loaded(model: type[_Model], values: dict[str, Any]) -> _Model:
    """An instance as the ORM builds one it loaded (no __init__, see placing.built)."""
    instance: _Model = model.__mapper__.class_manager.new_instance()  # type: ignore[attr-defined]
    instance.__dict__.update(values)
    return instance


async def item_detail(
    session: AsyncSession, shop_id: int, item_id: int, *, include_delisted: bool = False
) -> ItemDetail:
    connection = await session.connection()
    rows = (await connection.execute(_ITEM_PAGE, {"item_id": item_id, "shop_id": shop_id})).all()
    if not rows:
        raise ItemNotFound(item_id)
    item = _loaded(Item, dict(zip(_ITEM_KEYS, rows[0], strict=False)))
    if not item.listed and not include_delisted:
        raise ItemNotFound(item_id)
    variants = [
        _loaded(Variant, dict(zip(_VARIANT_KEYS, row[_VARIANT_AT:], strict=True)))
        for row in rows
        if row[_VARIANT_AT] is not None
    ]
    return ItemDetail(item, rows[0][_CATEGORY_AT], variants)


async def resolve_variant(
    session: AsyncSession, shop_id: int, ref: VariantRef, *, include_delisted: bool = False
) -> tuple[Item, Variant]:
    item = await get_item(session, shop_id, ref.item_id, include_delisted=include_delisted)
    variants = await _variants_of(session, ref.item_id)
    if ref.position is None:
        if len(variants) != 1:
            raise VariantRequired(ref.item_id, len(variants))
        return item, variants[0]
    for variant in variants:
        if variant.position == ref.position:
            return item, variant
    raise VariantNotFound(ref.item_id, ref.position, len(variants))


# --- changes (call inside Database.write()) ------------------------------------------


async def ensure_category(session: AsyncSession, shop_id: int, name: str) -> Category:
    name = check_text(FIELD_CATEGORY, name, MAX_CATEGORY_NAME)
    if name.isdigit():
        # `/商品 2024` reads 2024 as a page number, so such a category could not be browsed.
        raise InvalidValue(FIELD_CATEGORY, "digits")
    existing = await find_category(session, shop_id, name)
    if existing is not None:
        return existing
    category = Category(shop_id=shop_id, name=name)
    session.add(category)
    await session.flush()
    return category


async def create_item(
    session: AsyncSession,
    shop_id: int,
    name: str,
    price_fen: int,
    stock: int,
    category: str | None = None,
) -> tuple[Item, Variant]:
    """A new on-shelf item with a single variant."""
    name = check_text(FIELD_ITEM_NAME, name, MAX_ITEM_NAME)
    check_price(price_fen)
    check_stock(stock)
    category_row = await ensure_category(session, shop_id, category) if category else None
    item = Item(shop_id=shop_id, name=name, category_id=category_row.id if category_row else None)
    session.add(item)
    await session.flush()
    assert item.id is not None
    variant = Variant(
        shop_id=shop_id,
        item_id=item.id,
        position=1,
        name=DEFAULT_VARIANT_NAME,
        price_fen=price_fen,
        stock=stock,
    )
    session.add(variant)
    await session.flush()
    return item, variant


async def add_variant(
    session: AsyncSession, shop_id: int, item_id: int, name: str, price_fen: int, stock: int
) -> Variant:
    name = check_text(FIELD_VARIANT_NAME, name, MAX_VARIANT_NAME)
    check_price(price_fen)
    check_stock(stock)
    item = await get_item(session, shop_id, item_id, include_delisted=True)
    if item.virtual and stock:
        # Card keys: the stock is the keys imported into the new variant (/卡密 导入).
        raise KeyStockOnly(str(item_id))
    variants = await _variants_of(session, item_id)
    if len(variants) >= MAX_VARIANTS_PER_ITEM:
        raise TooManyVariants(MAX_VARIANTS_PER_ITEM)
    if any(v.name == name for v in variants):
        raise InvalidValue(FIELD_VARIANT_NAME, "duplicate", name)
    variant = Variant(
        shop_id=shop_id,
        item_id=item_id,
        position=max((v.position for v in variants), default=0) + 1,
        name=name,
        price_fen=price_fen,
        stock=stock,
    )
    session.add(variant)
    await _touch(session, item_id)
    await session.flush()
    return variant


async def set_price(
    session: AsyncSession, shop_id: int, ref: VariantRef, price_fen: int
) -> tuple[Item, Variant, int]:
    """Returns the item, the variant with its new price, and the old price.
    Existing orders keep the price copied onto their lines."""
    check_price(price_fen)
    item, variant = await resolve_variant(session, shop_id, ref, include_delisted=True)
    old_price = variant.price_fen
    variant.price_fen = price_fen
    await _touch(session, item.id or 0)
    await session.flush()
    return item, variant, old_price


async def change_stock(
    session: AsyncSession, shop_id: int, ref: VariantRef, change: StockChange
) -> tuple[Item, Variant, int]:
    """Applies +N / -N / =N atomically in SQL (orders may be reserving the same row at
    the same moment) and returns the item, the variant with its new stock and the old stock."""
    check_stock(change.amount)
    item, variant = await resolve_variant(session, shop_id, ref, include_delisted=True)
    if item.virtual:
        # Its stock is its unused keys (services/card_keys.py): only keys change it.
        raise KeyStockOnly(str(VariantRef(item.id or 0, variant.position)))
    column = Variant.__table__.c  # type: ignore[attr-defined]
    statement = update(Variant).where(column.id == variant.id)
    if change.mode == "add":
        statement = statement.where(column.stock + change.amount <= MAX_STOCK).values(
            stock=column.stock + change.amount
        )
    elif change.mode == "sub":
        statement = statement.where(column.stock >= change.amount).values(
            stock=column.stock - change.amount
        )
    else:
        statement = statement.values(stock=change.amount)
    statement = statement.returning(column.stock)
    read_stock = variant.stock  # before the UPDATE expires the ORM object
    new_stock = (await session.execute(statement)).scalar_one_or_none()
    if new_stock is None:
        current = (
            await session.execute(select(column.stock).where(column.id == variant.id))
        ).scalar_one()
        if change.mode == "sub":
            raise StockTooLow(current, change.amount)
        raise InvalidValue("stock", "too_large", MAX_STOCK)
    # Derived from the atomic result, not the earlier read, which a concurrent order may
    # have made stale (PostgreSQL has no write lock of ours).
    old_stock = {"add": new_stock - change.amount, "sub": new_stock + change.amount}.get(
        change.mode, read_stock
    )
    await safeguards.after_stock_change(session, variant.id or 0, utcnow())
    await session.refresh(variant)
    await _touch(session, item.id or 0)
    return item, variant, old_stock


async def set_listed(
    session: AsyncSession, shop_id: int, item_id: int, listed: bool
) -> tuple[Item, bool]:
    """Returns the item and whether anything changed."""
    item = await get_item(session, shop_id, item_id, include_delisted=True)
    changed = item.listed != listed
    item.listed = listed
    item.updated_at = utcnow()
    await session.flush()
    return item, changed


async def set_description(
    session: AsyncSession,
    shop_id: int,
    item_id: int,
    text: str | None,
    image_path: str | None = None,
) -> Item:
    """`text=None` keeps the description (an image alone was sent)."""
    item = await get_item(session, shop_id, item_id, include_delisted=True)
    if text is not None:
        item.description = check_text(FIELD_DESCRIPTION, text, MAX_DESCRIPTION)
    if image_path is not None:
        item.image_path = image_path
    item.updated_at = utcnow()
    await session.flush()
    return item


async def set_category(session: AsyncSession, shop_id: int, item_id: int, category: str) -> Item:
    item = await get_item(session, shop_id, item_id, include_delisted=True)
    category_row = await ensure_category(session, shop_id, category)
    item.category_id = category_row.id
    item.updated_at = utcnow()
    await session.flush()
    return item


async def set_no_reason_return(
    session: AsyncSession, shop_id: int, item_id: int, allowed: bool
) -> Item:
    item = await get_item(session, shop_id, item_id, include_delisted=True)
    item.no_reason_return = allowed
    item.updated_at = utcnow()
    await session.flush()
    return item


# --- renaming and deleting (/改名 /删除) ----------------------------------------------


async def rename_item(
    session: AsyncSession, shop_id: int, item_id: int, name: str
) -> tuple[Item, str]:
    """Returns the item with its new name and the old name. Orders keep the name they
    were placed under: their lines hold a copy."""
    name = check_text(FIELD_ITEM_NAME, name, MAX_ITEM_NAME)
    item = await get_item(session, shop_id, item_id, include_delisted=True)
    old_name = item.name
    item.name = name
    item.updated_at = utcnow()
    await session.flush()
    return item, old_name


async def rename_variant(
    session: AsyncSession, shop_id: int, ref: VariantRef, name: str
) -> tuple[Item, Variant, str]:
    """Returns the item, the variant with its new name and the old name; two variants of
    one item never share a name (customers tell them apart by it)."""
    name = check_text(FIELD_VARIANT_NAME, name, MAX_VARIANT_NAME)
    item, variant = await resolve_variant(session, shop_id, ref, include_delisted=True)
    old_name = variant.name
    if name != old_name and any(v.name == name for v in await _variants_of(session, item.id or 0)):
        raise InvalidValue(FIELD_VARIANT_NAME, "duplicate", name)
    variant.name = name
    await _touch(session, item.id or 0)
    await session.flush()
    return item, variant, old_name


@dataclass(frozen=True)
class DeletionPlan:
    """What /删除 removes: an item with every variant (`12`), or one variant (`12-2`),
    with the customers' cart lines and the safeguard settings (/限购 /预警) of them."""

    ref: VariantRef
    item: Item
    variants: list[Variant]
    cart_lines: int
    guards: int

    @property
    def whole_item(self) -> bool:
        return self.ref.position is None

    @property
    def variant_ids(self) -> frozenset[int]:
        return frozenset(v.id or 0 for v in self.variants)


async def _count(session: AsyncSession, statement: Select[Any]) -> int:
    return int((await session.execute(statement)).scalar_one())


async def plan_deletion(
    session: AsyncSession, shop_id: int, ref: VariantRef, now: datetime
) -> DeletionPlan:
    """What deleting `ref` would remove, or DeleteBlocked: it is on an order (orders keep
    what was bought: delist it instead), in an order summary a customer may still confirm,
    holds unsold card keys, or is the item's last variant (delete the item). Inside
    Database.write() on PostgreSQL the variants are locked, so an order placed meanwhile
    either comes first and is seen here, or waits and then finds them gone."""
    item = await get_item(session, shop_id, ref.item_id, include_delisted=True)
    rows = await session.execute(
        for_writing(
            select(Variant).where(Variant.item_id == ref.item_id).order_by(Variant.position),  # type: ignore[arg-type]
            session,
        )
    )
    variants = list(rows.scalars())
    ref_text = str(ref)
    if ref.position is not None:
        chosen = [v for v in variants if v.position == ref.position]
        if not chosen:
            raise VariantNotFound(ref.item_id, ref.position, len(variants))
        if len(variants) == 1:
            raise DeleteBlocked(ref_text, ref.item_id, DeleteBlock.LAST_VARIANT)
        variants = chosen
    ids = [v.id or 0 for v in variants]
    orders = await _count(
        session,
        select(func.count(func.distinct(OrderLine.order_id))).where(
            OrderLine.variant_id.in_(ids)  # type: ignore[attr-defined]
        ),
    )
    if orders:
        raise DeleteBlocked(ref_text, ref.item_id, DeleteBlock.ORDERED, orders)
    waiting = await _count(
        session,
        select(func.count(func.distinct(CheckoutDraft.id)))
        .join(CheckoutDraftLine, CheckoutDraftLine.draft_id == CheckoutDraft.id)  # type: ignore[arg-type]
        .where(
            CheckoutDraftLine.variant_id.in_(ids),  # type: ignore[attr-defined]
            CheckoutDraft.expires_at > now,  # type: ignore[arg-type]
        ),
    )
    if waiting:
        raise DeleteBlocked(ref_text, ref.item_id, DeleteBlock.IN_CHECKOUT, waiting)
    keys = await _count(
        session,
        select(func.count()).select_from(CardKey).where(CardKey.variant_id.in_(ids)),  # type: ignore[attr-defined]
    )
    if keys:
        raise DeleteBlocked(ref_text, ref.item_id, DeleteBlock.UNUSED_KEYS, keys)
    carts = await _count(
        session,
        select(func.count()).select_from(CartLine).where(CartLine.variant_id.in_(ids)),  # type: ignore[attr-defined]
    )
    guards = await _count(
        session,
        select(func.count()).select_from(VariantGuard).where(VariantGuard.variant_id.in_(ids)),  # type: ignore[attr-defined]
    )
    return DeletionPlan(ref, item, variants, carts, guards)


async def delete_planned(session: AsyncSession, plan: DeletionPlan) -> list[tuple[int | None, int]]:
    """Deletes what `plan` (just made in this transaction) shows. Order summaries that
    hold it have all timed out (live ones block the plan) and go too; returns their
    (group_id, user_id), for the draft index to forget them."""
    ids = list(plan.variant_ids)
    stale = (
        await session.execute(
            select(CheckoutDraft.id, CheckoutDraft.group_id, CheckoutDraft.user_id).where(
                CheckoutDraft.id.in_(  # type: ignore[union-attr]
                    select(CheckoutDraftLine.draft_id).where(
                        CheckoutDraftLine.variant_id.in_(ids)  # type: ignore[attr-defined]
                    )
                )
            )
        )
    ).all()
    if stale:
        draft_ids = [row[0] for row in stale]
        await session.execute(
            delete(CheckoutDraftLine).where(CheckoutDraftLine.draft_id.in_(draft_ids))  # type: ignore[attr-defined]
        )
        await session.execute(delete(CheckoutDraft).where(CheckoutDraft.id.in_(draft_ids)))  # type: ignore[union-attr]
    await session.execute(delete(CartLine).where(CartLine.variant_id.in_(ids)))  # type: ignore[attr-defined]
    await session.execute(delete(VariantGuard).where(VariantGuard.variant_id.in_(ids)))  # type: ignore[attr-defined]
    await session.execute(delete(Variant).where(Variant.id.in_(ids)))  # type: ignore[union-attr]
    item_id = plan.item.id or 0
    if plan.whole_item:
        await session.execute(delete(Item).where(Item.id == item_id))  # type: ignore[arg-type]
    else:
        await _touch(session, item_id)
    return [(group_id, user_id) for _, group_id, user_id in stale]


async def _touch(session: AsyncSession, item_id: int) -> None:
    await session.execute(update(Item).where(Item.id == item_id).values(updated_at=utcnow()))  # type: ignore[arg-type]
