"""The shop row itself (one default shop for now; catalog rows carry shop_id already)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import DEFAULT_SHOP_ID, Shop

from .errors import InvalidValue
from .limits import FIELD_PAYMENT_TEXT, MAX_PAYMENT_TEXT


async def ensure_shop(session: AsyncSession, name: str, shop_id: int = DEFAULT_SHOP_ID) -> Shop:
    shop = await session.get(Shop, shop_id)
    if shop is None:
        shop = Shop(id=shop_id, name=name)
        session.add(shop)
    elif shop.name != name:
        shop.name = name
    await session.flush()
    return shop


async def get_shop(session: AsyncSession, shop_id: int = DEFAULT_SHOP_ID) -> Shop:
    shop = await session.get(Shop, shop_id)
    if shop is None:
        raise LookupError(f"shop {shop_id} missing; start-up creates it")
    return shop


async def set_payment_info(
    session: AsyncSession, shop_id: int, text: str, qr_path: str | None
) -> Shop:
    """`/设置收款`: instructions shown by /付款 (empty text keeps the old ones); a new QR
    image replaces the old one."""
    text = text.strip()
    if len(text) > MAX_PAYMENT_TEXT:
        raise InvalidValue(FIELD_PAYMENT_TEXT, "too_long", MAX_PAYMENT_TEXT)
    shop = await get_shop(session, shop_id)
    if text:
        shop.payment_text = text
    if qr_path is not None:
        shop.payment_qr_path = qr_path
    await session.flush()
    return shop
