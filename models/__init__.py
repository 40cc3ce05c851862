"""Tables, the async engine and sessions, and migrations."""

from .db import Database
from .tables import DEFAULT_SHOP_ID, Category, Item, Shop, ShopGroup, Staff, Variant

__all__ = [
    "DEFAULT_SHOP_ID",
    "Category",
    "Database",
    "Item",
    "Shop",
    "ShopGroup",
    "Staff",
    "Variant",
]
