"""Reports over nonebug: /热销 and the "常一起买" line of /详情 in a private chat and in an
enabled group, with their error paths; the owners' daily report through the clock tick,
once however often the tick runs."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OWNER_ID, STAFF_ID
from tests.fake import Says, group, private
from tests.plugins.helpers import (
    add_staff,
    converse,
    delist,
    outbox_rows,
    outbox_texts,
    pay_order,
    seed_demo,
    seed_order,
)

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime

TOP_USAGE = "用法：/热销 [分类]，例如 /热销 咖啡"


@pytest.fixture(autouse=True)
async def _shop_ready(shop: ShopRuntime) -> None:
    from plugins._common.runtime import FloodGuard

    shop.flood = FloodGuard(10_000, 10.0)
    await seed_demo(shop)
    await add_staff(shop, STAFF_ID)


def says(chat: str, text: str, *fragments: str, user_id: int = CUSTOMER_ID, **kw: Any) -> Any:
    event = private(text, user_id) if chat == "private" else group(text, user_id, GROUP_ID)
    return event, Says(event, *fragments, **kw)


async def sold(shop: ShopRuntime, *lines: tuple[int, int, int]) -> str:
    """A paid order of these lines (item, position, quantity)."""
    code = await seed_order(shop, CUSTOMER_ID, lines)
    await pay_order(shop, code)
    return code


async def test_top_lists_best_sellers_of_30_days(app: App, shop: ShopRuntime, chat: str) -> None:
    await sold(shop, (2, 1, 3), (1, 2, 1))
    await sold(shop, (6, 1, 2))
    await seed_order(shop, CUSTOMER_ID, ((3, 1, 8),))  # unpaid: not a sale
    await converse(
        app,
        says(
            chat,
            "/热销",
            exact="\n".join(
                [
                    "近 30 天热销：",
                    "1. 【2】冷萃咖啡液  ¥39.90  售出 3 件",
                    "2. 【6】帆布托特包  ¥45.00  售出 2 件",
                    "3. 【1】云南小粒咖啡豆  ¥59.00起  售出 1 件",
                    "发 /详情 <商品编号> 查看规格和库存",
                ]
            ),
        ),
        says(
            chat,
            "/top 咖啡",
            "近 30 天“咖啡”分类热销：",
            "1. 【2】冷萃咖啡液",
            "2. 【1】云南小粒咖啡豆",
            absent=("帆布托特包",),
        ),
        says(chat, "/热销 器具", exact="近 30 天“器具”分类还没有卖出的商品。发 /商品 逛逛。"),
        says(chat, "/热销 不存在", "没有叫“不存在”的分类，发 /分类 查看全部分类。"),
        says(chat, "/热销 咖啡 2", "多余的内容：2", TOP_USAGE),
    )


async def test_top_in_a_shop_that_sold_nothing(app: App, shop: ShopRuntime, chat: str) -> None:
    await converse(app, says(chat, "/热销", exact="近 30 天还没有卖出的商品。发 /商品 逛逛。"))


async def test_item_detail_ends_with_items_bought_together(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    await sold(shop, (1, 1, 1), (2, 1, 1))
    await sold(shop, (1, 2, 1), (2, 1, 1), (6, 1, 1))
    await sold(shop, (1, 1, 1), (3, 1, 1))
    await delist(shop, 3)
    await converse(
        app,
        says(chat, "/详情 1", "下单：/下单 1-1 [数量]\n常一起买：【2】冷萃咖啡液、【6】帆布托特包"),
        says(chat, "/详情 6", "常一起买：【1】云南小粒咖啡豆、【2】冷萃咖啡液"),
        says(chat, "/详情 5", "下单：/下单 5-1 [数量]", absent=("常一起买",)),
        says(chat, "/详情 99", "没有编号为 99 的在售商品。"),
    )


async def test_the_daily_report_goes_out_once_through_the_clock(shop: ShopRuntime) -> None:
    from sqlalchemy import update

    from models.tables import Shop
    from models.types import utcnow
    from plugins.clocks import tick
    from services.reports import report_moment

    settings = shop.settings
    assert settings.daily_report_at is not None
    async with shop.database.write() as session:  # the shop opened two days ago
        await session.execute(update(Shop).values(created_at=utcnow() - timedelta(days=2)))
    await tick()
    await tick()  # a second tick (or a restart, or another process) sends nothing more
    rows = [r for r in await outbox_rows(shop) if r.dedupe_key.startswith("report:")]
    moment = report_moment(utcnow(), settings.timezone, settings.daily_report_at)
    day = moment.astimezone(settings.timezone).date().isoformat()
    assert [(r.target_type, r.target_id, r.dedupe_key) for r in rows] == [
        ("private", OWNER_ID, f"report:{day}:owner:{OWNER_ID}")
    ]
    [text] = outbox_texts(rows)
    assert text.startswith(f"【日报】{day}（")
    assert "4-1 玻璃分享壶 已售罄" in text
