"""A small sample shop, so a new user sees something at once (SHOP_DEMO=true): six items
and payment instructions with a QR code, so the whole tour (/下单 … /付款 … /收款) works."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import segno
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import Item

from . import card_keys, catalog
from . import shop as shop_row
from .card_keys import KeyVault
from .media import store_image

# What /付款 shows in the demo (a real shop sets its own with /设置收款).
DEMO_PAYMENT_TEXT = (
    "演示店铺，不会真的收款。真实店铺在这里写收款方式（店主发 /设置收款 设置），"
    "如：微信转账 wxid_xxx，备注订单号。演示里输入 :user 10001 切换为店主，发 /收款 <订单号>。"
)
# The demo QR code holds a sentence, not a payment link: scanning it pays nobody.
DEMO_QR_TEXT = "演示小店收款码（仅供演示，不能付款）"

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


def demo_qr_png() -> bytes:
    """The demo's payment QR code as PNG (made with segno, like the EPay payment codes)."""
    buffer = io.BytesIO()
    segno.make(DEMO_QR_TEXT, error="m").save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()


async def seed_demo_payment(session: AsyncSession, shop_id: int, data_dir: Path) -> bool:
    """Sets the demo's payment instructions and QR code when the shop has none yet (a
    shop that ran /设置收款 keeps its own); returns whether they were set."""
    seller = await shop_row.get_shop(session, shop_id)
    if seller.payment_text or seller.payment_qr_path:
        return False
    qr_path = store_image(demo_qr_png(), data_dir)
    await shop_row.set_payment_info(session, shop_id, DEMO_PAYMENT_TEXT, qr_path)
    return True


# A virtual item, so the demo shows card keys end to end: ordered in a group with no
# address, paid, the key sent privately. Its keys are samples that unlock nothing.
DEMO_VIRTUAL_ITEM = ("视频会员月卡", 1990, "虚拟", "购买后卡密私聊自动发送，无需收货地址。")
DEMO_CARD_KEYS = [f"DEMO-VIP-{n:04d}-SAMPLE" for n in range(1, 11)]


async def seed_demo_virtual_item(
    session: AsyncSession, shop_id: int, vault: KeyVault, now: datetime
) -> bool:
    """Adds the demo's virtual item with sample keys unless the shop already has one by
    that name; returns whether it was added."""
    name, price, category, description = DEMO_VIRTUAL_ITEM
    existing = (
        await session.execute(
            select(func.count()).select_from(Item).where(Item.shop_id == shop_id, Item.name == name)
        )
    ).scalar_one()
    if existing:
        return False
    item, variant = await catalog.create_item(session, shop_id, name, price, 0, category)
    assert item.id is not None
    await catalog.set_description(session, shop_id, item.id, description)
    await card_keys.set_virtual(session, item, True)
    await card_keys.import_keys(session, item, variant, DEMO_CARD_KEYS, vault, 0, now)
    return True
