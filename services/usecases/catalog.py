"""Browsing the catalog: the item pages, the categories, search, and one item's detail."""

from __future__ import annotations

from dataclasses import dataclass

from .. import catalog, reports, reviews
from ..actors import Caller
from ..catalog import ItemDetail, ItemPage, ItemSummary
from ..context import ShopContext
from ..item_facts import ItemFacts
from ..media import load_image
from ..reports import TogetherItem
from ..reviews import ItemRating


@dataclass(frozen=True)
class ItemView:
    """One item as /详情 shows it: the item with its variants, its rating, and the stored
    picture's bytes (None without a picture, or when the file went missing)."""

    detail: ItemDetail
    rating: ItemRating
    image: bytes | None
    # Up to three on-shelf items often in the same sold orders (never this one).
    together: tuple[TogetherItem, ...] = ()


async def list_items(shop: ShopContext, category: str | None = None, page: int = 1) -> ItemPage:
    """One page of on-shelf items, of one category or of all."""
    async with shop.database.read() as session:
        return await catalog.list_items(session, shop.shop_id, category, page)


async def list_categories(shop: ShopContext) -> list[tuple[str, int]]:
    """Every category with its number of on-shelf items, by name."""
    async with shop.database.read() as session:
        return await catalog.list_categories(session, shop.shop_id)


async def search_items(shop: ShopContext, query: str) -> list[ItemSummary]:
    """On-shelf items whose name or description contains every word of `query`."""
    async with shop.database.read() as session:
        return await catalog.search_items(session, shop.shop_id, query)


async def item_detail(shop: ShopContext, caller: Caller, item_id: int) -> ItemView:
    """An item with its variants, rating and picture; staff also see delisted items.
    The rating and bought-together come from `shop.item_facts` while fresh (no write
    committed in this process since, and at most FACTS_TTL_SECONDS old): then /详情 is
    one statement."""
    writes = shop.database.writes_committed  # before reading: a write meanwhile is seen
    facts = shop.item_facts.get(item_id, writes)
    async with shop.database.read() as session:
        detail = await catalog.item_detail(
            session, shop.shop_id, item_id, include_delisted=caller.is_staff
        )
        if facts is None:
            rating = await reviews.item_rating(session, item_id)
            together = await reports.bought_together(session, shop.shop_id, item_id)
            facts = ItemFacts(rating, tuple(together))
            shop.item_facts.put(item_id, writes, facts)
    image_path = detail.item.image_path
    image = load_image(image_path, shop.data_dir) if image_path else None
    return ItemView(detail, facts.rating, image, facts.together)
