"""The shop's tables. Money is integer fen, QQ numbers are BIGINT, times are aware UTC."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import UTCDateTime, utcnow

DEFAULT_SHOP_ID = 1


def _created_at() -> datetime:
    return utcnow()


class Shop(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=60)
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class Staff(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("shop_id", "user_id", name="uq_staff_shop_user"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    user_id: int = Field(sa_type=BigInteger)
    added_by: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class ShopGroup(SQLModel, table=True):
    """A QQ group and whether the shop answers there."""

    __tablename__ = "shop_group"
    __table_args__ = (UniqueConstraint("shop_id", "group_id", name="uq_shop_group"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    group_id: int = Field(sa_type=BigInteger)
    enabled: bool = True
    changed_by: int = Field(sa_type=BigInteger)
    changed_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class Category(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("shop_id", "name", name="uq_category_shop_name"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    name: str = Field(max_length=20)


class Item(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    name: str = Field(max_length=60)
    description: str = Field(default="", max_length=1000)
    # Path relative to the data directory; QQ image URLs expire, so we keep the bytes.
    image_path: str | None = Field(default=None, max_length=200)
    category_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("category.id", ondelete="SET NULL"), index=True),
    )
    listed: bool = True
    no_reason_return: bool = True
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)


class Variant(SQLModel, table=True):
    """One sellable variant (规格) of an item; `position` makes the `12-2` numbering stable."""

    __table_args__ = (
        UniqueConstraint("item_id", "position", name="uq_variant_item_position"),
        CheckConstraint("stock >= 0", name="ck_variant_stock_nonnegative"),
        CheckConstraint("price_fen > 0", name="ck_variant_price_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    position: int
    name: str = Field(max_length=30)
    price_fen: int
    stock: int
    sold: int = 0
    created_at: datetime = Field(default_factory=_created_at, sa_type=UTCDateTime)
