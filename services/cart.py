"""The shopping cart: one line per variant, quantities merged."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import CartLine, Item, Variant

from . import catalog
from .catalog import VariantRef
from .errors import CartFull, NotInCart
from .limits import MAX_CART_LINES, MAX_QUANTITY, check_quantity


@dataclass(frozen=True)
class CartView:
    line: CartLine
    item: Item
    variant: Variant

    @property
    def ref(self) -> VariantRef:
        return VariantRef(self.item.id or 0, self.variant.position)

    @property
    def available(self) -> bool:
        return self.item.listed and self.variant.stock >= self.line.quantity

    @property
    def subtotal_fen(self) -> int:
        return self.variant.price_fen * self.line.quantity


async def view_cart(session: AsyncSession, shop_id: int, user_id: int) -> list[CartView]:
    rows = await session.execute(
        select(CartLine, Item, Variant)
        .join(Variant, Variant.id == CartLine.variant_id)
        .join(Item, Item.id == Variant.item_id)
        .where(CartLine.shop_id == shop_id, CartLine.user_id == user_id)
        .order_by(CartLine.id)  # type: ignore[arg-type]
    )
    return [CartView(line, item, variant) for line, item, variant in rows]


async def add_to_cart(
    session: AsyncSession, shop_id: int, user_id: int, ref: VariantRef, quantity: int
) -> tuple[Item, Variant, int]:
    """Adds (merging with a line already there); returns the line's new quantity."""
    check_quantity(quantity)
    item, variant = await catalog.resolve_variant(session, shop_id, ref)
    line = (
        await session.execute(
            select(CartLine).where(
                CartLine.shop_id == shop_id,
                CartLine.user_id == user_id,
                CartLine.variant_id == variant.id,
            )
        )
    ).scalar_one_or_none()
    if line is None:
        count = len(await view_cart(session, shop_id, user_id))
        if count >= MAX_CART_LINES:
            raise CartFull(MAX_CART_LINES)
        line = CartLine(shop_id=shop_id, user_id=user_id, variant_id=variant.id or 0, quantity=0)
        session.add(line)
    line.quantity = min(MAX_QUANTITY, line.quantity + quantity)
    await session.flush()
    return item, variant, line.quantity


async def remove_from_cart(
    session: AsyncSession, shop_id: int, user_id: int, ref: VariantRef
) -> CartView:
    for view in await view_cart(session, shop_id, user_id):
        if view.item.id == ref.item_id and (
            ref.position is None or ref.position == view.variant.position
        ):
            await session.delete(view.line)
            await session.flush()
            return view
    raise NotInCart(str(ref))


async def clear_cart(session: AsyncSession, shop_id: int, user_id: int) -> int:
    result = await session.execute(
        delete(CartLine).where(CartLine.shop_id == shop_id, CartLine.user_id == user_id)  # type: ignore[arg-type]
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def remove_variants(
    session: AsyncSession, shop_id: int, user_id: int, variant_ids: set[int]
) -> None:
    """After checkout: the ordered lines leave the cart, anything unavailable stays."""
    if variant_ids:
        await session.execute(
            delete(CartLine).where(
                CartLine.shop_id == shop_id,  # type: ignore[arg-type]
                CartLine.user_id == user_id,  # type: ignore[arg-type]
                CartLine.variant_id.in_(variant_ids),  # type: ignore[attr-defined]
            )
        )
