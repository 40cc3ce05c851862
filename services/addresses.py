"""Customers' saved addresses. Numbered 1, 2, … in the order they were added."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import Address

from .errors import AddressNotFound, InvalidValue, TooManyAddresses
from .limits import (
    FIELD_ADDRESS,
    FIELD_PHONE,
    FIELD_RECEIVER,
    MAX_ADDRESS_DETAIL,
    MAX_ADDRESSES,
    MAX_RECEIVER_NAME,
    check_text,
)

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")


@dataclass(frozen=True)
class AddressSnapshot:
    name: str
    phone: str
    detail: str

    @classmethod
    def of(cls, address: Address) -> AddressSnapshot:
        return cls(address.name, address.phone, address.detail)


def validate(name: str, phone: str, detail: str) -> AddressSnapshot:
    name = check_text(FIELD_RECEIVER, name, MAX_RECEIVER_NAME)
    phone = phone.strip().replace(" ", "").removeprefix("+86")
    if not (_MOBILE.match(phone) or _LANDLINE.match(phone)):
        raise InvalidValue(FIELD_PHONE, "format")
    detail = check_text(FIELD_ADDRESS, detail, MAX_ADDRESS_DETAIL)
    if len(detail) < 5:
        raise InvalidValue(FIELD_ADDRESS, "too_short", 5)
    return AddressSnapshot(name, phone, detail)


async def list_addresses(session: AsyncSession, shop_id: int, user_id: int) -> list[Address]:
    rows = await session.execute(
        select(Address)
        .where(Address.shop_id == shop_id, Address.user_id == user_id)
        .order_by(Address.id)  # type: ignore[arg-type]
    )
    return list(rows.scalars())


async def add_address(
    session: AsyncSession, shop_id: int, user_id: int, snapshot: AddressSnapshot
) -> tuple[Address, int]:
    """Saves an address (the first becomes the default); returns it and its number."""
    existing = await list_addresses(session, shop_id, user_id)
    if len(existing) >= MAX_ADDRESSES:
        raise TooManyAddresses(MAX_ADDRESSES)
    address = Address(
        shop_id=shop_id,
        user_id=user_id,
        name=snapshot.name,
        phone=snapshot.phone,
        detail=snapshot.detail,
        is_default=not existing,
    )
    session.add(address)
    await session.flush()
    return address, len(existing) + 1


async def get_by_number(session: AsyncSession, shop_id: int, user_id: int, number: int) -> Address:
    addresses = await list_addresses(session, shop_id, user_id)
    if not 1 <= number <= len(addresses):
        raise AddressNotFound(number, len(addresses))
    return addresses[number - 1]


async def default_address(session: AsyncSession, shop_id: int, user_id: int) -> Address | None:
    addresses = await list_addresses(session, shop_id, user_id)
    return next((a for a in addresses if a.is_default), addresses[0] if addresses else None)


async def set_default(session: AsyncSession, shop_id: int, user_id: int, number: int) -> Address:
    address = await get_by_number(session, shop_id, user_id, number)
    await session.execute(
        update(Address)
        .where(Address.shop_id == shop_id, Address.user_id == user_id)  # type: ignore[arg-type]
        .values(is_default=False)
    )
    address.is_default = True
    await session.flush()
    return address


async def delete_address(session: AsyncSession, shop_id: int, user_id: int, number: int) -> Address:
    """Deletes one; if it was the default, the oldest remaining one becomes the default."""
    address = await get_by_number(session, shop_id, user_id, number)
    await session.delete(address)
    await session.flush()
    if address.is_default:
        remaining = await list_addresses(session, shop_id, user_id)
        if remaining:
            remaining[0].is_default = True
            await session.flush()
    return address
