"""/评价 and /统计, and ratings on /详情: services on the test database, commands over nonebug."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID
from tests.fake import Says, group, private
from tests.plugins.helpers import (
    converse,
    enable_group,
    pay_order,
    seed_demo,
    seed_order,
    set_order_fields,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def _no_flood_limit(shop: Any) -> None:
    shop.flood = type(shop.flood)(10_000, 10)


@pytest.fixture
async def completed(shop: Any) -> str:
    await seed_demo(shop)
    await enable_group(shop)
    code = await seed_order(shop, CUSTOMER_ID, ((2, 1, 2),))
    await pay_order(shop, code)
    await set_order_fields(shop, code, status="completed")
    return code


def say(chat: str, text: str, user: int = CUSTOMER_ID) -> Any:
    return private(text, user) if chat == "private" else group(text, user, GROUP_ID)


@pytest.mark.parametrize("chat", ["private", "group"])
async def test_review_once_per_completed_order_shows_on_detail(
    app: App, shop: Any, completed: str, chat: str
) -> None:
    first = say(chat, f"/评价 {completed} 4 很香")
    again = say(chat, f"/review {completed} 5")
    detail = say(chat, "/详情 2")
    await converse(
        app,
        (first, Says(first, "谢谢评价", "★★★★☆")),
        (again, Says(again, "已经评价过了")),
        (detail, Says(detail, "评分 4.0/5（1 条评价）", "★★★★ 很香")),
    )


async def test_a_phone_in_a_review_is_masked_on_group_detail(
    app: App, shop: Any, completed: str
) -> None:
    review = private(f"/评价 {completed} 5 好喝，回购找我 13912345678", CUSTOMER_ID)
    in_group = group("/详情 2", OTHER_CUSTOMER_ID, GROUP_ID)
    in_private = private("/详情 2", OTHER_CUSTOMER_ID)
    await converse(
        app,
        (review, Says(review, "谢谢评价")),
        (in_group, Says(in_group, "★★★★★ 好喝，回购找我 139****5678", absent=("13912345678",))),
        (in_private, Says(in_private, "★★★★★ 好喝，回购找我 13912345678")),
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("/评价 {code} 0", "评分应是 1 到 5 的数字"),
        ("/评价 {code} 6 太棒", "评分应是 1 到 5 的数字"),
        ("/评价 {code} 五", "评分应是 1 到 5 的数字"),
        ("/评价 {code}", "缺少评分"),
        ("/评价 {code} 5 " + "长" * 201, "评价内容最多 200 个字"),
    ],
)
async def test_review_input_errors(
    app: App, shop: Any, completed: str, text: str, fragment: str
) -> None:
    event = private(text.format(code=completed), CUSTOMER_ID)
    await converse(app, (event, Says(event, fragment, "用法：/评价 <订单号> <1-5> [内容]")))


async def test_review_only_own_and_only_completed(app: App, shop: Any, completed: str) -> None:
    unpaid = await seed_order(shop, CUSTOMER_ID)
    other = private(f"/评价 {completed} 1 差", OTHER_CUSTOMER_ID)
    early = private(f"/评价 {unpaid} 5", CUSTOMER_ID)
    await converse(
        app,
        (other, Says(other, f"没有找到订单 {completed}")),
        (early, Says(early, "订单完成后才能评价", "/确认收货")),
    )


async def test_rating_averages_over_orders_containing_the_item(shop: Any, completed: str) -> None:
    from models.types import utcnow
    from services import orders, reviews

    second = await seed_order(shop, OTHER_CUSTOMER_ID, ((2, 1, 1),))
    await pay_order(shop, second)
    await set_order_fields(shop, second, status="completed")
    async with shop.database.write() as session:
        for code, user, rating in ((completed, CUSTOMER_ID, 5), (second, OTHER_CUSTOMER_ID, 2)):
            order = await orders.get_order(session, shop.shop_id, code)
            await reviews.add_review(session, order, user, rating, "", utcnow())
    async with shop.database.read() as session:
        rating = await reviews.item_rating(session, 2)
        untouched = await reviews.item_rating(session, 3)
    assert (rating.average, rating.count, rating.latest) == (3.5, 2, [])
    assert (untouched.average, untouched.count) == (None, 0)


async def test_stats_window_starts_at_local_midnight() -> None:
    from services.stats import window_start

    now = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
    assert window_start(now, 1, SHANGHAI) == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    assert window_start(now, 7, SHANGHAI) == datetime(2026, 11, 16, 16, 0, tzinfo=UTC)
    late = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # already 01:00 on the 24th locally
    assert window_start(late, 1, SHANGHAI) == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


async def test_stats_counts_revenue_refunds_and_best_sellers(shop: Any) -> None:
    from models.types import utcnow
    from services import orders, stats
    from services.orders import Actor

    await seed_demo(shop)
    paid = await seed_order(shop, CUSTOMER_ID, ((2, 1, 3),))  # 3 × 39.90
    await pay_order(shop, paid)
    refunded = await seed_order(shop, CUSTOMER_ID, ((6, 1, 1),))  # 45.00
    await pay_order(shop, refunded)
    await seed_order(shop, OTHER_CUSTOMER_ID, ((1, 1, 1),))  # unpaid
    old = await seed_order(shop, OTHER_CUSTOMER_ID, ((3, 1, 1),))
    await pay_order(shop, old)
    long_ago = utcnow() - timedelta(days=40)
    await set_order_fields(shop, old, created_at=long_ago, paid_at=long_ago)
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, refunded)
        await orders.refund(session, order, None, "缺货", Actor("owner", OWNER_ID), utcnow())
    async with shop.database.read() as session:
        today = await stats.shop_stats(session, shop.shop_id, "今日", utcnow(), SHANGHAI)
        month = await stats.shop_stats(session, shop.shop_id, "30天", utcnow(), SHANGHAI)
    assert (today.orders, today.paid_orders, today.revenue_fen, today.refunds_fen) == (
        3,
        2,
        11970 + 4500,
        4500,
    )
    assert today.best_sellers == [("冷萃咖啡液", 3)]  # the refunded order does not count
    assert today.to_ship == 2  # a backlog, not a window: the old paid order still waits
    assert month.orders == 3  # the 40-day-old order is outside every window
    assert today.open_tickets == 0


async def test_stats_count_open_tickets_only(shop: Any) -> None:
    from datetime import timedelta as days

    from models.tables import TicketKind
    from models.types import utcnow
    from services import aftersales, orders, stats
    from services.orders import Actor

    await seed_demo(shop)
    codes = []
    for _ in range(2):
        code = await seed_order(shop, CUSTOMER_ID)
        await pay_order(shop, code)
        codes.append(code)
    windows = aftersales.Windows(days(days=7), days(days=15))
    customer = Actor("customer", CUSTOMER_ID)
    async with shop.database.write() as session:
        tickets = []
        for code in codes:
            order = await orders.get_order(session, shop.shop_id, code)
            tickets.append(
                await aftersales.open_ticket(
                    session,
                    order,
                    TicketKind.COMPLAINT,
                    "慢",
                    [],
                    customer,
                    None,
                    windows,
                    utcnow(),
                )
            )
        await aftersales.withdraw(session, tickets[1], customer, utcnow())
    async with shop.database.read() as session:
        today = await stats.shop_stats(session, shop.shop_id, "今日", utcnow(), SHANGHAI)
    assert today.open_tickets == 1


async def test_stats_command(app: App, shop: Any, completed: str) -> None:
    today = private("/统计", OWNER_ID)
    week = private("/stats 7天", OWNER_ID)
    bad = private("/统计 昨天", OWNER_ID)
    customer = private("/统计", CUSTOMER_ID)
    await converse(
        app,
        (today, Says(today, "今日统计", "付款 1 单，收入 ¥79.80", "热销：冷萃咖啡液 ×2")),
        (week, Says(week, "7天统计")),
        (bad, Says(bad, "时间范围应是", "用法：/统计 [今日|7天|30天]")),
        (customer, Says(customer, "无权限")),
    )
