"""Who may do what: the owner (SUPERUSERS), staff (a table the owner edits), customers."""

from __future__ import annotations

from collections.abc import Collection
from enum import IntEnum

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import Staff

from .errors import AlreadyStaff, NotStaff, OwnerIsNotStaff


class Role(IntEnum):
    """Ordered: a command allowed to a role is allowed to every higher role."""

    CUSTOMER = 0
    STAFF = 1
    OWNER = 2


def role_of(user_id: int, owners: Collection[int], staff: Collection[int]) -> Role:
    if user_id in owners:
        return Role.OWNER
    if user_id in staff:
        return Role.STAFF
    return Role.CUSTOMER


async def staff_ids(session: AsyncSession, shop_id: int) -> set[int]:
    rows = await session.execute(select(Staff.user_id).where(Staff.shop_id == shop_id))
    return set(rows.scalars())


async def list_staff(session: AsyncSession, shop_id: int) -> list[Staff]:
    rows = await session.execute(
        select(Staff).where(Staff.shop_id == shop_id).order_by(Staff.created_at)
    )
    return list(rows.scalars())


async def add_staff(
    session: AsyncSession, shop_id: int, user_id: int, added_by: int, owners: Collection[int]
) -> Staff:
    if user_id in owners:
        raise OwnerIsNotStaff(user_id)
    if user_id in await staff_ids(session, shop_id):
        raise AlreadyStaff(user_id)
    staff = Staff(shop_id=shop_id, user_id=user_id, added_by=added_by)
    session.add(staff)
    await session.flush()
    return staff


async def remove_staff(session: AsyncSession, shop_id: int, user_id: int) -> None:
    result = await session.execute(
        delete(Staff).where(Staff.shop_id == shop_id, Staff.user_id == user_id)  # type: ignore[arg-type]
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotStaff(user_id)
