"""services.catalog on a real migrated SQLite database."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from models.tables import DEFAULT_SHOP_ID, Category, Item, Variant
from services import catalog
from services.catalog import StockChange, VariantRef
from services.errors import (
    InvalidValue,
    ItemNotFound,
    StockTooLow,
    TooManyVariants,
    VariantNotFound,
    VariantRequired,
)
from services.limits import (
    MAX_ITEM_NAME,
    MAX_PRICE_FEN,
    MAX_SEARCH_QUERY,
    MAX_STOCK,
    MAX_VARIANTS_PER_ITEM,
    PAGE_SIZE,
)
from services.shop import ensure_shop

SHOP = DEFAULT_SHOP_ID
OTHER_SHOP = 2


async def _create(db, name="商品", price=1000, stock=5, category=None) -> int:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        item, _ = await catalog.create_item(s, SHOP, name, price, stock, category)
        assert item.id is not None
        return item.id


async def _add_variant(db, item_id, name, price=1000, stock=5):  # type: ignore[no-untyped-def]
    async with db.write() as s:
        return await catalog.add_variant(s, SHOP, item_id, name, price, stock)


async def _delist(db, item_id: int) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        await catalog.set_listed(s, SHOP, item_id, False)


async def _variants(db, item_id: int) -> list[Variant]:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        rows = await s.execute(
            select(Variant).where(Variant.item_id == item_id).order_by(Variant.position)
        )
        return list(rows.scalars())


async def _stock(db, item_id: int, position: int = 1) -> int:  # type: ignore[no-untyped-def]
    return next(v.stock for v in await _variants(db, item_id) if v.position == position)


async def _other_shop_item(db) -> int:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        await ensure_shop(s, "别家小店", shop_id=OTHER_SHOP)
        item, _ = await catalog.create_item(s, OTHER_SHOP, "别家咖啡", 900, 3, "咖啡")
        assert item.id is not None
        return item.id


# --- create_item -----------------------------------------------------------------------


async def test_create_item_has_one_default_variant(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        item, variant = await catalog.create_item(s, SHOP, "  云南咖啡豆  ", 5900, 30)
    assert item.id is not None
    assert item.name == "云南咖啡豆"
    assert item.listed is True
    assert item.category_id is None
    assert item.description == ""
    variants = await _variants(db, item.id)
    assert [(v.position, v.name, v.price_fen, v.stock, v.sold) for v in variants] == [
        (1, "默认", 5900, 30, 0)
    ]
    assert variants[0].id == variant.id
    assert variants[0].shop_id == SHOP


async def test_create_item_creates_category_once_and_reuses_it(db) -> None:  # type: ignore[no-untyped-def]
    first = await _create(db, "咖啡豆", category="咖啡")
    second = await _create(db, "挂耳", category=" 咖啡 ")
    third = await _create(db, "滤杯", category="器具")
    async with db.read() as s:
        categories = list((await s.execute(select(Category).order_by(Category.id))).scalars())
        items = {i.id: i for i in (await s.execute(select(Item))).scalars()}
    assert [c.name for c in categories] == ["咖啡", "器具"]
    assert items[first].category_id == categories[0].id
    assert items[second].category_id == categories[0].id
    assert items[third].category_id == categories[1].id


async def test_create_item_name_bounds(db) -> None:  # type: ignore[no-untyped-def]
    longest = "名" * MAX_ITEM_NAME
    item_id = await _create(db, longest)
    async with db.read() as s:
        assert (await catalog.get_item(s, SHOP, item_id)).name == longest
    for name, reason in [("名" * (MAX_ITEM_NAME + 1), "too_long"), ("", "empty"), ("   ", "empty")]:
        async with db.write() as s:
            with pytest.raises(InvalidValue) as caught:
                await catalog.create_item(s, SHOP, name, 100, 1)
        assert (caught.value.field, caught.value.reason) == ("item_name", reason)
    async with db.read() as s:
        assert len(list((await s.execute(select(Item))).scalars())) == 1


@pytest.mark.parametrize(
    ("price", "stock", "field", "reason"),
    [
        (0, 1, "price", "too_small"),
        (-100, 1, "price", "too_small"),
        (MAX_PRICE_FEN + 1, 1, "price", "too_large"),
        (100, -1, "stock", "too_small"),
        (100, MAX_STOCK + 1, "stock", "too_large"),
    ],
)
async def test_create_item_rejects_out_of_bounds(db, price, stock, field, reason) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        with pytest.raises(InvalidValue) as caught:
            await catalog.create_item(s, SHOP, "商品", price, stock)
    assert (caught.value.field, caught.value.reason) == (field, reason)
    async with db.read() as s:
        assert (await s.execute(select(Item))).first() is None


async def test_create_item_accepts_the_bounds(db) -> None:  # type: ignore[no-untyped-def]
    low = await _create(db, "最便宜", price=1, stock=0)
    high = await _create(db, "最贵", price=MAX_PRICE_FEN, stock=MAX_STOCK)
    assert [(v.price_fen, v.stock) for v in await _variants(db, low)] == [(1, 0)]
    assert [(v.price_fen, v.stock) for v in await _variants(db, high)] == [
        (MAX_PRICE_FEN, MAX_STOCK)
    ]


# --- add_variant -----------------------------------------------------------------------


async def test_add_variant_numbers_positions(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, "挂耳咖啡", 2990, 100)
    second = await _add_variant(db, item_id, "20片装", 5590, 40)
    third = await _add_variant(db, item_id, "40片装", 9990, 3)
    assert (second.position, third.position) == (2, 3)
    variants = await _variants(db, item_id)
    assert [(v.position, v.name, v.price_fen, v.stock) for v in variants] == [
        (1, "默认", 2990, 100),
        (2, "20片装", 5590, 40),
        (3, "40片装", 9990, 3),
    ]


async def test_add_variant_rejects_duplicate_name(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db)
    await _add_variant(db, item_id, "大杯")
    async with db.write() as s:
        with pytest.raises(InvalidValue) as caught:
            await catalog.add_variant(s, SHOP, item_id, " 大杯 ", 100, 1)
    assert (caught.value.field, caught.value.reason, caught.value.limit) == (
        "variant_name",
        "duplicate",
        "大杯",
    )
    async with db.write() as s:
        with pytest.raises(InvalidValue):
            await catalog.add_variant(s, SHOP, item_id, "默认", 100, 1)
    assert len(await _variants(db, item_id)) == 2


async def test_add_variant_to_missing_item(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        with pytest.raises(ItemNotFound) as caught:
            await catalog.add_variant(s, SHOP, 999, "大杯", 100, 1)
    assert caught.value.item_id == 999


async def test_add_variant_to_other_shops_item_is_not_found(db) -> None:  # type: ignore[no-untyped-def]
    other = await _other_shop_item(db)
    async with db.write() as s:
        with pytest.raises(ItemNotFound):
            await catalog.add_variant(s, SHOP, other, "大杯", 100, 1)


async def test_add_variant_to_delisted_item(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db)
    await _delist(db, item_id)
    variant = await _add_variant(db, item_id, "大杯", 1500, 2)
    assert variant.position == 2
    assert [v.name for v in await _variants(db, item_id)] == ["默认", "大杯"]


async def test_add_variant_validates_values(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db)
    cases = [
        ("", 100, 1, "variant_name", "empty"),
        ("规" * 31, 100, 1, "variant_name", "too_long"),
        ("大杯", 0, 1, "price", "too_small"),
        ("大杯", 100, MAX_STOCK + 1, "stock", "too_large"),
    ]
    for name, price, stock, field, reason in cases:
        async with db.write() as s:
            with pytest.raises(InvalidValue) as caught:
                await catalog.add_variant(s, SHOP, item_id, name, price, stock)
        assert (caught.value.field, caught.value.reason) == (field, reason)
    assert len(await _variants(db, item_id)) == 1


async def test_add_variant_limit(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db)
    async with db.write() as s:
        for n in range(2, MAX_VARIANTS_PER_ITEM + 1):
            await catalog.add_variant(s, SHOP, item_id, f"规格{n}", 100, 1)
    variants = await _variants(db, item_id)
    assert len(variants) == MAX_VARIANTS_PER_ITEM
    assert variants[-1].position == MAX_VARIANTS_PER_ITEM
    async with db.write() as s:
        with pytest.raises(TooManyVariants) as caught:
            await catalog.add_variant(s, SHOP, item_id, "再多一个", 100, 1)
    assert caught.value.limit == MAX_VARIANTS_PER_ITEM
    assert len(await _variants(db, item_id)) == MAX_VARIANTS_PER_ITEM


# --- list_items ------------------------------------------------------------------------


async def test_list_items_empty_shop(db) -> None:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        page = await catalog.list_items(s, SHOP)
    assert (page.items, page.page, page.pages, page.total, page.category) == ([], 1, 1, 0, None)


async def test_list_items_pages_of_ten(db) -> None:  # type: ignore[no-untyped-def]
    assert PAGE_SIZE == 10
    async with db.write() as s:
        ids = []
        for n in range(1, 24):
            item, _ = await catalog.create_item(s, SHOP, f"商品{n:02d}", 100 * n, n)
            ids.append(item.id)
    async with db.read() as s:
        pages = [await catalog.list_items(s, SHOP, page=p) for p in (1, 2, 3)]
    assert [len(p.items) for p in pages] == [10, 10, 3]
    assert all((p.total, p.pages) == (23, 3) for p in pages)
    assert [p.page for p in pages] == [1, 2, 3]
    assert [i.id for p in pages for i in p.items] == ids
    assert [i.name for i in pages[2].items] == ["商品21", "商品22", "商品23"]
    assert pages[1].items[0].min_price_fen == 1100
    assert pages[1].items[0].stock == 11
    async with db.read() as s:
        beyond = await catalog.list_items(s, SHOP, page=4)
    # the catalog plugin relies on this to answer "只有 3 页"
    assert (beyond.items, beyond.page, beyond.pages, beyond.total) == ([], 4, 3, 23)


async def test_list_items_exactly_one_page(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        for n in range(PAGE_SIZE):
            await catalog.create_item(s, SHOP, f"商品{n}", 100, 1)
    async with db.read() as s:
        page = await catalog.list_items(s, SHOP)
    assert (len(page.items), page.total, page.pages) == (10, 10, 1)


async def test_list_items_hides_delisted_and_other_shops(db) -> None:  # type: ignore[no-untyped-def]
    shown = await _create(db, "在售")
    hidden = await _create(db, "下架")
    await _delist(db, hidden)
    await _other_shop_item(db)
    async with db.read() as s:
        page = await catalog.list_items(s, SHOP)
    assert [i.id for i in page.items] == [shown]
    assert page.total == 1


async def test_list_delisted_is_the_other_half(db) -> None:  # type: ignore[no-untyped-def]
    shown = await _create(db, "在售")
    hidden = [await _create(db, f"下架{n}") for n in range(3)]
    for item_id in hidden:
        await _delist(db, item_id)
    await _other_shop_item(db)
    async with db.read() as s:
        page = await catalog.list_delisted(s, SHOP)
        with pytest.raises(InvalidValue):
            await catalog.list_delisted(s, SHOP, 0)
    assert [i.id for i in page.items] == hidden
    assert shown not in [i.id for i in page.items]
    assert (page.total, page.pages, page.category) == (3, 1, None)


async def test_list_items_summarises_variants(db) -> None:  # type: ignore[no-untyped-def]
    multi = await _create(db, "挂耳咖啡", 2990, 0)
    await _add_variant(db, multi, "20片装", 1990, 4)
    await _add_variant(db, multi, "40片装", 9990, 3)
    empty = await _create(db, "玻璃壶", 6800, 0)
    await _add_variant(db, empty, "大号", 7800, 0)
    async with db.read() as s:
        page = await catalog.list_items(s, SHOP)
    by_id = {i.id: i for i in page.items}
    assert (by_id[multi].min_price_fen, by_id[multi].variant_count, by_id[multi].stock) == (
        1990,
        3,
        7,
    )
    assert by_id[multi].sold_out is False
    assert (by_id[empty].min_price_fen, by_id[empty].variant_count, by_id[empty].stock) == (
        6800,
        2,
        0,
    )
    assert by_id[empty].sold_out is True
    assert by_id[multi].name == "挂耳咖啡"


async def test_list_items_by_category(db) -> None:  # type: ignore[no-untyped-def]
    bean = await _create(db, "咖啡豆", category="咖啡")
    await _create(db, "滤杯", category="器具")
    drip = await _create(db, "挂耳", category="咖啡")
    await _create(db, "托特包")
    delisted = await _create(db, "冷萃", category="咖啡")
    await _delist(db, delisted)
    async with db.read() as s:
        page = await catalog.list_items(s, SHOP, category="咖啡")
    assert [i.id for i in page.items] == [bean, drip]
    assert (page.total, page.pages, page.category) == (2, 1, "咖啡")


async def test_list_items_category_pages(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        for n in range(12):
            await catalog.create_item(s, SHOP, f"咖啡{n}", 100, 1, "咖啡")
            await catalog.create_item(s, SHOP, f"器具{n}", 100, 1, "器具")
    async with db.read() as s:
        second = await catalog.list_items(s, SHOP, category="器具", page=2)
    assert (second.total, second.pages) == (12, 2)
    assert [i.name for i in second.items] == ["器具10", "器具11"]


async def test_list_items_unknown_category(db) -> None:  # type: ignore[no-untyped-def]
    await _create(db, "咖啡豆", category="咖啡")
    async with db.read() as s:
        with pytest.raises(InvalidValue) as caught:
            await catalog.list_items(s, SHOP, category="茶叶")
    assert (caught.value.field, caught.value.reason, caught.value.limit) == (
        "category",
        "unknown",
        "茶叶",
    )


async def test_list_items_other_shops_category_is_unknown(db) -> None:  # type: ignore[no-untyped-def]
    await _other_shop_item(db)  # category 咖啡 in shop 2
    async with db.read() as s:
        with pytest.raises(InvalidValue) as caught:
            await catalog.list_items(s, SHOP, category="咖啡")
    assert caught.value.reason == "unknown"


@pytest.mark.parametrize(
    ("page", "reason"), [(0, "too_small"), (-1, "too_small"), (10_001, "too_large")]
)
async def test_list_items_rejects_bad_page(db, page, reason) -> None:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        with pytest.raises(InvalidValue) as caught:
            await catalog.list_items(s, SHOP, page=page)
    assert (caught.value.field, caught.value.reason) == ("page", reason)


# --- list_categories -------------------------------------------------------------------


async def test_list_categories_counts_listed_items(db) -> None:  # type: ignore[no-untyped-def]
    await _create(db, "咖啡豆", category="咖啡")
    await _create(db, "挂耳", category="咖啡")
    hidden = await _create(db, "冷萃", category="咖啡")
    await _delist(db, hidden)
    only_delisted = await _create(db, "滤杯", category="器具")
    await _delist(db, only_delisted)
    await _create(db, "没有分类")
    async with db.write() as s:
        await catalog.ensure_category(s, SHOP, "周边")
    await _other_shop_item(db)
    async with db.read() as s:
        categories = await catalog.list_categories(s, SHOP)
    # ordered by name (code point order: 周 U+5468 < 咖 U+5496 < 器 U+5668)
    assert categories == [("周边", 0), ("咖啡", 2), ("器具", 0)]


async def test_list_categories_empty(db) -> None:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        assert await catalog.list_categories(s, SHOP) == []


# --- search_items ----------------------------------------------------------------------


async def _set_description(db, item_id: int, text: str) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        await catalog.set_description(s, SHOP, item_id, text)


async def test_search_matches_name_or_description_substring(db) -> None:  # type: ignore[no-untyped-def]
    beans = await _create(db, "云南小粒咖啡豆")
    await _set_description(db, beans, "中度烘焙，坚果与可可风味。")
    cold = await _create(db, "冷萃咖啡液")
    dripper = await _create(db, "手冲滤杯套装")
    await _set_description(db, dripper, "陶瓷滤杯，适合咖啡入门。")
    await _create(db, "帆布托特包")
    async with db.read() as s:
        assert [i.id for i in await catalog.search_items(s, SHOP, "咖啡")] == [beans, cold, dripper]
        assert [i.id for i in await catalog.search_items(s, SHOP, "坚果")] == [beans]
        assert [i.id for i in await catalog.search_items(s, SHOP, "小粒")] == [beans]
        assert await catalog.search_items(s, SHOP, "茶叶") == []


async def test_search_words_are_anded(db) -> None:  # type: ignore[no-untyped-def]
    beans = await _create(db, "云南咖啡豆")
    await _set_description(db, beans, "中度烘焙")
    await _create(db, "云南普洱茶")
    await _create(db, "巴西咖啡豆")
    async with db.read() as s:
        assert [i.id for i in await catalog.search_items(s, SHOP, "云南 咖啡")] == [beans]
        # a word may match the name while another matches the description
        assert [i.id for i in await catalog.search_items(s, SHOP, "云南　烘焙")] == [beans]
        assert await catalog.search_items(s, SHOP, "云南 咖啡 红茶") == []


async def test_search_wildcards_are_literal(db) -> None:  # type: ignore[no-untyped-def]
    percent = await _create(db, "100%阿拉比卡")
    underscore = await _create(db, "A_B 套装")
    await _create(db, "AXB 套装")
    await _create(db, "普通咖啡")
    backslash = await _create(db, "C\\D 特调")
    async with db.read() as s:
        assert [i.id for i in await catalog.search_items(s, SHOP, "%")] == [percent]
        assert [i.id for i in await catalog.search_items(s, SHOP, "_")] == [underscore]
        assert [i.id for i in await catalog.search_items(s, SHOP, "A_B")] == [underscore]
        assert [i.id for i in await catalog.search_items(s, SHOP, "\\")] == [backslash]
        assert [i.id for i in await catalog.search_items(s, SHOP, "0%")] == [percent]


async def test_search_skips_delisted_and_other_shops(db) -> None:  # type: ignore[no-untyped-def]
    shown = await _create(db, "咖啡豆")
    hidden = await _create(db, "咖啡液")
    await _delist(db, hidden)
    await _other_shop_item(db)  # 别家咖啡
    async with db.read() as s:
        assert [i.id for i in await catalog.search_items(s, SHOP, "咖啡")] == [shown]


async def test_search_returns_summaries(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, "挂耳咖啡", 2990, 10)
    await _add_variant(db, item_id, "20片装", 1990, 5)
    async with db.read() as s:
        [found] = await catalog.search_items(s, SHOP, "挂耳")
    assert (found.id, found.name, found.min_price_fen, found.stock, found.variant_count) == (
        item_id,
        "挂耳咖啡",
        1990,
        15,
        2,
    )


@pytest.mark.parametrize(
    ("query", "reason"),
    [("", "empty"), ("   ", "empty"), ("咖" * (MAX_SEARCH_QUERY + 1), "too_long")],
)
async def test_search_rejects_bad_query(db, query, reason) -> None:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        with pytest.raises(InvalidValue) as caught:
            await catalog.search_items(s, SHOP, query)
    assert (caught.value.field, caught.value.reason) == ("search", reason)


async def test_search_accepts_longest_query(db) -> None:  # type: ignore[no-untyped-def]
    name = "咖" * MAX_SEARCH_QUERY
    item_id = await _create(db, name)
    async with db.read() as s:
        assert [i.id for i in await catalog.search_items(s, SHOP, name)] == [item_id]


# --- get_item / item_detail ------------------------------------------------------------


async def test_item_detail(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, "挂耳咖啡", 2990, 10, category="咖啡")
    await _add_variant(db, item_id, "20片装", 5590, 4)
    await _set_description(db, item_id, "10 片装")
    async with db.read() as s:
        detail = await catalog.item_detail(s, SHOP, item_id)
    assert detail.item.id == item_id
    assert detail.item.description == "10 片装"
    assert detail.category == "咖啡"
    assert [(v.position, v.name) for v in detail.variants] == [(1, "默认"), (2, "20片装")]
    assert detail.sold == 0
    assert str(detail.ref(detail.variants[1])) == f"{item_id}-2"


async def test_item_detail_without_category(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, "托特包")
    async with db.read() as s:
        assert (await catalog.item_detail(s, SHOP, item_id)).category is None


async def test_delisted_item_hidden_unless_asked(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, "下架商品")
    await _delist(db, item_id)
    async with db.read() as s:
        with pytest.raises(ItemNotFound) as caught:
            await catalog.get_item(s, SHOP, item_id)
        assert caught.value.item_id == item_id
        with pytest.raises(ItemNotFound):
            await catalog.item_detail(s, SHOP, item_id)
        assert (await catalog.get_item(s, SHOP, item_id, include_delisted=True)).listed is False
        detail = await catalog.item_detail(s, SHOP, item_id, include_delisted=True)
        assert detail.item.name == "下架商品"


async def test_other_shops_item_hidden(db) -> None:  # type: ignore[no-untyped-def]
    other = await _other_shop_item(db)
    async with db.read() as s:
        with pytest.raises(ItemNotFound):
            await catalog.get_item(s, SHOP, other, include_delisted=True)
        with pytest.raises(ItemNotFound):
            await catalog.item_detail(s, SHOP, other, include_delisted=True)
        assert (await catalog.get_item(s, OTHER_SHOP, other)).name == "别家咖啡"


async def test_missing_item(db) -> None:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        with pytest.raises(ItemNotFound) as caught:
            await catalog.get_item(s, SHOP, 12345, include_delisted=True)
    assert caught.value.item_id == 12345


# --- resolve_variant -------------------------------------------------------------------


async def test_resolve_bare_id_means_the_only_variant(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, "托特包", 4500, 20)
    async with db.read() as s:
        item, variant = await catalog.resolve_variant(s, SHOP, VariantRef(item_id))
        _, same = await catalog.resolve_variant(s, SHOP, VariantRef(item_id, 1))
    assert item.id == item_id
    assert (variant.position, variant.price_fen) == (1, 4500)
    assert same.id == variant.id


async def test_resolve_bare_id_of_multi_variant_item(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db)
    await _add_variant(db, item_id, "大杯")
    await _add_variant(db, item_id, "超大杯")
    async with db.read() as s:
        with pytest.raises(VariantRequired) as caught:
            await catalog.resolve_variant(s, SHOP, VariantRef(item_id))
        assert (caught.value.item_id, caught.value.variant_count) == (item_id, 3)
        _, variant = await catalog.resolve_variant(s, SHOP, VariantRef(item_id, 3))
    assert variant.name == "超大杯"


@pytest.mark.parametrize("position", [0, 3, 99])
async def test_resolve_position_out_of_range(db, position) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db)
    await _add_variant(db, item_id, "大杯")
    async with db.read() as s:
        with pytest.raises(VariantNotFound) as caught:
            await catalog.resolve_variant(s, SHOP, VariantRef(item_id, position))
    assert (caught.value.item_id, caught.value.position, caught.value.variant_count) == (
        item_id,
        position,
        2,
    )


async def test_resolve_delisted(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db)
    await _delist(db, item_id)
    async with db.read() as s:
        with pytest.raises(ItemNotFound):
            await catalog.resolve_variant(s, SHOP, VariantRef(item_id, 1))
        _, variant = await catalog.resolve_variant(
            s, SHOP, VariantRef(item_id, 1), include_delisted=True
        )
    assert variant.position == 1


def test_variant_ref_str() -> None:
    assert str(VariantRef(12)) == "12"
    assert str(VariantRef(12, 2)) == "12-2"


# --- set_price -------------------------------------------------------------------------


async def test_set_price_returns_old_price(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, price=5900)
    await _add_variant(db, item_id, "500g", 10900)
    async with db.write() as s:
        item, variant, old = await catalog.set_price(s, SHOP, VariantRef(item_id, 2), 9900)
    assert (item.id, variant.position, variant.price_fen, old) == (item_id, 2, 9900, 10900)
    assert [v.price_fen for v in await _variants(db, item_id)] == [5900, 9900]


async def test_set_price_touches_item(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db)
    async with db.read() as s:
        before = (await catalog.get_item(s, SHOP, item_id)).updated_at
    async with db.write() as s:
        await catalog.set_price(s, SHOP, VariantRef(item_id), 1234)
    async with db.read() as s:
        after = (await catalog.get_item(s, SHOP, item_id)).updated_at
    assert after > before


async def test_set_price_rejects_bad_price_and_keeps_old(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, price=5900)
    for price, reason in [(0, "too_small"), (MAX_PRICE_FEN + 1, "too_large")]:
        async with db.write() as s:
            with pytest.raises(InvalidValue) as caught:
                await catalog.set_price(s, SHOP, VariantRef(item_id), price)
        assert caught.value.reason == reason
    assert [v.price_fen for v in await _variants(db, item_id)] == [5900]


async def test_set_price_on_delisted_item(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, price=5900)
    await _delist(db, item_id)
    async with db.write() as s:
        _, _, old = await catalog.set_price(s, SHOP, VariantRef(item_id), 100)
    assert old == 5900
    assert [v.price_fen for v in await _variants(db, item_id)] == [100]


# --- change_stock ----------------------------------------------------------------------


async def test_change_stock_add_sub_set(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, stock=10)
    ref = VariantRef(item_id)
    async with db.write() as s:
        _, variant, old = await catalog.change_stock(s, SHOP, ref, StockChange("add", 5))
    assert (old, variant.stock) == (10, 15)
    async with db.write() as s:
        _, variant, old = await catalog.change_stock(s, SHOP, ref, StockChange("sub", 15))
    assert (old, variant.stock) == (15, 0)
    async with db.write() as s:
        _, variant, old = await catalog.change_stock(s, SHOP, ref, StockChange("set", 42))
    assert (old, variant.stock) == (0, 42)
    assert await _stock(db, item_id) == 42


async def test_change_stock_of_second_variant_only(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, stock=10)
    await _add_variant(db, item_id, "大杯", stock=3)
    async with db.write() as s:
        await catalog.change_stock(s, SHOP, VariantRef(item_id, 2), StockChange("add", 4))
    assert [v.stock for v in await _variants(db, item_id)] == [10, 7]


async def test_change_stock_sub_below_zero(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, stock=3)
    async with db.write() as s:
        with pytest.raises(StockTooLow) as caught:
            await catalog.change_stock(s, SHOP, VariantRef(item_id), StockChange("sub", 4))
    assert (caught.value.current, caught.value.requested) == (3, 4)
    assert await _stock(db, item_id) == 3


async def test_change_stock_add_beyond_max(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, stock=MAX_STOCK - 1)
    async with db.write() as s:
        with pytest.raises(InvalidValue) as caught:
            await catalog.change_stock(s, SHOP, VariantRef(item_id), StockChange("add", 2))
    assert (caught.value.field, caught.value.reason, caught.value.limit) == (
        "stock",
        "too_large",
        MAX_STOCK,
    )
    assert await _stock(db, item_id) == MAX_STOCK - 1
    async with db.write() as s:
        _, variant, _ = await catalog.change_stock(
            s, SHOP, VariantRef(item_id), StockChange("add", 1)
        )
    assert variant.stock == MAX_STOCK


@pytest.mark.parametrize("mode", ["add", "sub", "set"])
async def test_change_stock_amount_bounds(db, mode) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, stock=5)
    for amount, reason in [(-1, "too_small"), (MAX_STOCK + 1, "too_large")]:
        async with db.write() as s:
            with pytest.raises(InvalidValue) as caught:
                await catalog.change_stock(s, SHOP, VariantRef(item_id), StockChange(mode, amount))
        assert (caught.value.field, caught.value.reason) == ("stock", reason)
    assert await _stock(db, item_id) == 5


async def test_change_stock_errors_for_unknown_refs(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db)
    await _add_variant(db, item_id, "大杯")
    async with db.write() as s:
        with pytest.raises(VariantRequired):
            await catalog.change_stock(s, SHOP, VariantRef(item_id), StockChange("add", 1))
        with pytest.raises(VariantNotFound):
            await catalog.change_stock(s, SHOP, VariantRef(item_id, 3), StockChange("add", 1))
        with pytest.raises(ItemNotFound):
            await catalog.change_stock(s, SHOP, VariantRef(item_id + 1), StockChange("add", 1))


async def test_change_stock_concurrent_subtractions(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, stock=10)
    ref = VariantRef(item_id)

    async def take_one() -> tuple[int, int] | None:
        try:
            async with db.write() as s:
                _, variant, old = await catalog.change_stock(s, SHOP, ref, StockChange("sub", 1))
                return old, variant.stock
        except StockTooLow as error:
            assert (error.current, error.requested) == (0, 1)
            return None

    results = await asyncio.gather(*(take_one() for _ in range(50)))
    done = [r for r in results if r is not None]
    assert len(done) == 10
    assert results.count(None) == 40
    # each success saw the stock its predecessor left: 10->9, 9->8, ... 1->0
    assert sorted(done) == [(n, n - 1) for n in range(1, 11)]
    assert await _stock(db, item_id) == 0


# --- shelf, description, category, returns ---------------------------------------------


async def test_set_listed_reports_change(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db)
    steps = [(False, True, False), (False, False, False), (True, True, True), (True, False, True)]
    for listed, expected_changed, expected_listed in steps:
        async with db.write() as s:
            item, changed = await catalog.set_listed(s, SHOP, item_id, listed)
        assert (changed, item.listed) == (expected_changed, expected_listed)
        async with db.read() as s:
            stored = await catalog.get_item(s, SHOP, item_id, include_delisted=True)
        assert stored.listed is expected_listed


async def test_set_listed_missing_item(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        with pytest.raises(ItemNotFound):
            await catalog.set_listed(s, SHOP, 77, True)


async def test_set_description_text_and_image(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db)
    async with db.write() as s:
        item = await catalog.set_description(s, SHOP, item_id, "  中度烘焙  ")
    assert (item.description, item.image_path) == ("中度烘焙", None)
    async with db.write() as s:
        await catalog.set_description(s, SHOP, item_id, None, "media/abc.png")
    async with db.read() as s:
        stored = await catalog.get_item(s, SHOP, item_id)
    assert (stored.description, stored.image_path) == ("中度烘焙", "media/abc.png")
    async with db.write() as s:
        await catalog.set_description(s, SHOP, item_id, "新的描述")
    async with db.read() as s:
        stored = await catalog.get_item(s, SHOP, item_id)
    assert (stored.description, stored.image_path) == ("新的描述", "media/abc.png")


async def test_set_description_bounds(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db)
    await _set_description(db, item_id, "原描述")
    for text, reason in [("描" * 1001, "too_long"), ("  ", "empty")]:
        async with db.write() as s:
            with pytest.raises(InvalidValue) as caught:
                await catalog.set_description(s, SHOP, item_id, text)
        assert (caught.value.field, caught.value.reason) == ("description", reason)
    longest = "描" * 1000
    await _set_description(db, item_id, longest)
    async with db.read() as s:
        assert (await catalog.get_item(s, SHOP, item_id)).description == longest


async def test_set_category_creates_and_moves(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, category="咖啡")
    async with db.write() as s:
        item = await catalog.set_category(s, SHOP, item_id, "器具")
        new_category_id = item.category_id
    async with db.read() as s:
        detail = await catalog.item_detail(s, SHOP, item_id)
        categories = await catalog.list_categories(s, SHOP)
    assert detail.category == "器具"
    assert detail.item.category_id == new_category_id
    assert categories == [("咖啡", 0), ("器具", 1)]
    async with db.write() as s:
        with pytest.raises(InvalidValue) as caught:
            await catalog.set_category(s, SHOP, item_id, "类" * 21)
    assert (caught.value.field, caught.value.reason) == ("category", "too_long")


async def test_set_category_reuses_existing(db) -> None:  # type: ignore[no-untyped-def]
    first = await _create(db, category="咖啡")
    second = await _create(db)
    async with db.write() as s:
        await catalog.set_category(s, SHOP, second, "咖啡")
    async with db.read() as s:
        a = await catalog.get_item(s, SHOP, first)
        b = await catalog.get_item(s, SHOP, second)
        count = len(list((await s.execute(select(Category))).scalars()))
    assert a.category_id == b.category_id
    assert count == 1


async def test_set_no_reason_return(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db)
    async with db.read() as s:
        assert (await catalog.get_item(s, SHOP, item_id)).no_reason_return is True
    async with db.write() as s:
        item = await catalog.set_no_reason_return(s, SHOP, item_id, False)
    assert item.no_reason_return is False
    async with db.read() as s:
        assert (await catalog.get_item(s, SHOP, item_id)).no_reason_return is False
    async with db.write() as s:
        await catalog.set_no_reason_return(s, SHOP, item_id, True)
    async with db.read() as s:
        assert (await catalog.get_item(s, SHOP, item_id)).no_reason_return is True


async def test_write_rolls_back_on_error(db) -> None:  # type: ignore[no-untyped-def]
    item_id = await _create(db, price=500)
    with pytest.raises(ItemNotFound):
        async with db.write() as s:
            await catalog.set_price(s, SHOP, VariantRef(item_id), 700)
            await catalog.set_price(s, SHOP, VariantRef(item_id + 1), 700)
    assert [v.price_fen for v in await _variants(db, item_id)] == [500]
