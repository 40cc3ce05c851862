"""/商品 /分类 /搜索 /详情 in private chats and groups."""

from __future__ import annotations

from typing import Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OWNER_ID
from tests.fake import Says, group, private, v11_bot
from tests.plugins.helpers import create_items, enable_group, seed_demo

CHATS = ["private", "group"]


def make(chat: str, text: str, user_id: int = CUSTOMER_ID) -> Any:
    return private(text, user_id) if chat == "private" else group(text, user_id, GROUP_ID)


async def ask(app: App, event: Any, *fragments: str, **kwargs: Any) -> None:
    async with app.test_matcher() as ctx:
        bot = v11_bot(ctx)
        ctx.receive_event(bot, event)
        ctx.should_call_send(event, Says(event, *fragments, **kwargs))


@pytest.fixture
async def demo_shop(shop: Any) -> Any:
    await seed_demo(shop)
    await enable_group(shop)
    return shop


async def test_items_on_empty_shop(app: App, shop: Any) -> None:
    await ask(app, private("/商品", CUSTOMER_ID), "还没有在售商品")


@pytest.mark.parametrize("chat", CHATS)
async def test_items_lists_on_shelf_items_with_lowest_price_and_sold_out(
    app: App, demo_shop: Any, chat: str
) -> None:
    await ask(
        app,
        make(chat, "/商品"),
        "在售商品（第 1/1 页，共 6 件）",
        "1. 云南小粒咖啡豆  ¥59.00起",
        "2. 冷萃咖啡液  ¥39.90",
        "4. 玻璃分享壶  ¥68.00  售罄",
        "/详情 <商品编号>",
    )


@pytest.mark.parametrize("chat", CHATS)
async def test_items_english_alias_and_category_filter(app: App, demo_shop: Any, chat: str) -> None:
    await ask(
        app, make(chat, "/items 器具"), "测试小店 · 器具", "3. 手冲滤杯套装", absent=("咖啡豆",)
    )


async def test_items_pages_of_ten(app: App, shop: Any) -> None:
    await create_items(shop, 23)
    await ask(
        app,
        private("/商品", CUSTOMER_ID),
        "第 1/3 页，共 23 件",
        "10. 商品10",
        "/商品 2 看下一页",
        absent=("11. ",),
    )
    await ask(app, private("/商品 3", CUSTOMER_ID), "第 3/3 页", "23. 商品23", absent=("下一页",))
    await ask(app, private("/商品 9", CUSTOMER_ID), "只有 3 页商品")


async def test_items_category_page_hint_keeps_category(app: App, shop: Any) -> None:
    await create_items(shop, 12, category="零食")
    await ask(app, private("/商品 零食", CUSTOMER_ID), "第 1/2 页", "/商品 零食 2 看下一页")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            "/商品 不存在的分类",
            ("没有叫“不存在的分类”的分类", "用法：/商品 [分类] [页码]，例如 /商品 咖啡 2"),
        ),
        ("/商品 咖啡 abc", ("页码应是正整数", "用法：/商品")),
        ("/商品 0", ("页码应是正整数",)),
        ("/商品 咖啡 1 多余", ("多余的内容：多余",)),
    ],
)
async def test_items_errors_say_what_to_type(
    app: App, demo_shop: Any, text: str, fragments: tuple[str, ...]
) -> None:
    await ask(app, group(text, CUSTOMER_ID, GROUP_ID), *fragments)


@pytest.mark.parametrize("chat", CHATS)
async def test_categories_with_counts(app: App, demo_shop: Any, chat: str) -> None:
    await ask(
        app, make(chat, "/分类"), "商品分类：", "咖啡（3 件）", "器具（2 件）", "周边（1 件）"
    )


async def test_categories_empty_and_extra_args(app: App, shop: Any) -> None:
    await ask(app, private("/categories", CUSTOMER_ID), "还没有商品分类")
    await ask(app, private("/分类 咖啡", CUSTOMER_ID), "多余的内容", "用法：/分类")


@pytest.mark.parametrize("chat", CHATS)
async def test_search_matches_name_and_description_in_chinese(
    app: App, demo_shop: Any, chat: str
) -> None:
    await ask(
        app,
        make(chat, "/搜索 咖啡"),
        "搜索“咖啡”找到",
        "云南小粒咖啡豆",
        "冷萃咖啡液",
        absent=("帆布托特包",),
    )
    await ask(app, make(chat, "/search 坚果"), "云南小粒咖啡豆", absent=("冷萃",))
    await ask(app, make(chat, "/搜索 咖啡 坚果"), "找到 1 件", "云南小粒咖啡豆")


async def test_search_no_result_missing_and_too_long(app: App, demo_shop: Any) -> None:
    await ask(app, private("/搜索 榴莲", CUSTOMER_ID), "没有找到包含“榴莲”的在售商品")
    await ask(
        app, private("/搜索", CUSTOMER_ID), "缺少关键词", "用法：/搜索 <关键词>，例如 /搜索 咖啡豆"
    )
    await ask(app, private("/搜索 " + "长" * 31, CUSTOMER_ID), "搜索关键词最多 30 个字")


async def test_search_wildcards_are_literal(app: App, demo_shop: Any) -> None:
    await ask(app, private("/搜索 %", CUSTOMER_ID), "没有找到包含“%”的在售商品")


@pytest.mark.parametrize("chat", CHATS)
async def test_detail_shows_variants_prices_stock_and_policy(
    app: App, demo_shop: Any, chat: str
) -> None:
    await ask(
        app,
        make(chat, "/详情 5"),
        "【5】挂耳咖啡",
        "分类：咖啡",
        "10 片装",
        "5-1 默认 ¥29.90 库存 100",
        "5-2 20片装 ¥55.90 库存 40",
        "5-3 40片装 ¥99.90 库存 3",
        "已售 0 件 · 暂无评价",
        "支持七天无理由退货",
        "下单：/下单 5-1 [数量]",
    )


async def test_detail_sold_out_variant(app: App, demo_shop: Any) -> None:
    await ask(app, private("/item 4", CUSTOMER_ID), "4-1 默认 ¥68.00 售罄")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("/详情", ("缺少商品编号", "用法：/详情 <商品编号>，例如 /详情 1")),
        ("/详情 abc", ("商品编号应是 1 到 9 位数字",)),
        ("/详情 99", ("没有编号为 99 的在售商品",)),
        ("/详情 0", ("商品编号应是 1 到 9 位数字",)),
    ],
)
async def test_detail_errors(
    app: App, demo_shop: Any, text: str, fragments: tuple[str, ...]
) -> None:
    await ask(app, group(text, CUSTOMER_ID, GROUP_ID), *fragments)


async def test_detail_full_width_digits(app: App, demo_shop: Any) -> None:
    await ask(app, private("／详情 ５", CUSTOMER_ID), "【5】挂耳咖啡")


async def test_delisted_item_hidden_from_customers_but_shown_to_owner(
    app: App, demo_shop: Any
) -> None:
    from services.catalog import set_listed

    async with demo_shop.database.write() as session:
        await set_listed(session, demo_shop.shop_id, 2, False)
    await ask(app, private("/详情 2", CUSTOMER_ID), "没有编号为 2 的在售商品")
    await ask(app, private("/商品", CUSTOMER_ID), "共 5 件", absent=("冷萃咖啡液",))
    await ask(app, private("/详情 2", OWNER_ID), "【2】冷萃咖啡液（已下架）", absent=("下单：",))


async def test_detail_sends_stored_image(app: App, demo_shop: Any) -> None:
    from services.catalog import set_description
    from services.media import store_image

    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    path = store_image(png, demo_shop.shop.data_dir)
    async with demo_shop.database.write() as session:
        await set_description(session, demo_shop.shop_id, 1, None, path)
    await ask(app, group("/详情 1", CUSTOMER_ID, GROUP_ID), "【1】云南小粒咖啡豆", image=True)


async def test_user_text_is_echoed_literally_never_as_cq_code(app: App, demo_shop: Any) -> None:
    await ask(
        app, group("/搜索 [CQ:at,qq=all]", CUSTOMER_ID, GROUP_ID), "没有找到包含“[CQ:at,qq=all]”"
    )
