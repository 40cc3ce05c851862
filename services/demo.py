"""A small sample shop, so a new user sees something at once (SHOP_DEMO=true)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import Item

from . import catalog

# name, price (fen), stock, category, description, extra variants
_DEMO_ITEMS: list[tuple[str, int, int, str, str, list[tuple[str, int, int]]]] = [
    (
        "云南小粒咖啡豆",
        5900,
        30,
        "咖啡",
        "中度烘焙，坚果与可可风味，250g 一袋。",
        [("500g", 10900, 12)],
    ),
    ("冷萃咖啡液", 3990, 50, "咖啡", "12 杯装，冰水或牛奶直接兑。", []),
    ("手冲滤杯套装", 12800, 8, "器具", "陶瓷滤杯 + 100 张滤纸。", []),
    ("玻璃分享壶", 6800, 0, "器具", "耐热玻璃，600ml。", []),
    (
        "挂耳咖啡",
        2990,
        100,
        "咖啡",
        "10 片装，多种风味。",
        [("20片装", 5590, 40), ("40片装", 9990, 3)],
    ),
    ("帆布托特包", 4500, 20, "周边", "店铺原创图案，可装 A4。", []),
]


async def seed_demo_catalog(session: AsyncSession, shop_id: int) -> int:
    """Seeds the sample items when the shop has none; returns how many were added."""
    existing = (
        await session.execute(select(func.count()).select_from(Item).where(Item.shop_id == shop_id))
    ).scalar_one()
    if existing:
        return 0
    for name, price, stock, category, description, extra in _DEMO_ITEMS:
        item, _ = await catalog.create_item(session, shop_id, name, price, stock, category)
        assert item.id is not None
        await catalog.set_description(session, shop_id, item.id, description)
        for variant_name, variant_price, variant_stock in extra:
            await catalog.add_variant(
                session, shop_id, item.id, variant_name, variant_price, variant_stock
            )
    return len(_DEMO_ITEMS)
