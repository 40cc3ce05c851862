"""The shop row itself (one default shop for now; catalog rows carry shop_id already)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import DEFAULT_SHOP_ID, Shop


async def ensure_shop(session: AsyncSession, name: str, shop_id: int = DEFAULT_SHOP_ID) -> Shop:
    shop = await session.get(Shop, shop_id)
    if shop is None:
        shop = Shop(id=shop_id, name=name)
        session.add(shop)
    elif shop.name != name:
        shop.name = name
    await session.flush()
    return shop
