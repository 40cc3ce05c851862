"""Groups where the shop answers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import ShopGroup
from models.types import utcnow


async def enabled_group_ids(session: AsyncSession, shop_id: int) -> set[int]:
    rows = await session.execute(
        select(ShopGroup.group_id).where(
            ShopGroup.shop_id == shop_id,
            ShopGroup.enabled.is_(True),  # type: ignore[attr-defined]
        )
    )
    return set(rows.scalars())


async def set_group_enabled(
    session: AsyncSession, shop_id: int, group_id: int, enabled: bool, changed_by: int
) -> bool:
    """Returns whether the state changed (enabling an enabled group is not an error)."""
    row = (
        await session.execute(
            select(ShopGroup).where(ShopGroup.shop_id == shop_id, ShopGroup.group_id == group_id)
        )
    ).scalar_one_or_none()
    if row is None:
        if not enabled:
            return False
        session.add(
            ShopGroup(shop_id=shop_id, group_id=group_id, enabled=True, changed_by=changed_by)
        )
        await session.flush()
        return True
    if row.enabled == enabled:
        return False
    row.enabled = enabled
    row.changed_by = changed_by
    row.changed_at = utcnow()
    await session.flush()
    return True


async def group_disabled(session: AsyncSession, shop_id: int, group_id: int) -> bool:
    """Whether the shop was switched off in this group (/停用本群). A group without a row
    was never switched on, so no order or ticket can have come from it through chat;
    only an explicit "off" counts."""
    enabled = (
        await session.execute(
            select(ShopGroup.enabled).where(
                ShopGroup.shop_id == shop_id, ShopGroup.group_id == group_id
            )
        )
    ).scalar_one_or_none()
    return enabled is False
