"""Shop set-up shortcuts for matcher tests (through services, on the test's database)."""

from __future__ import annotations

from typing import Any

from tests.conftest import GROUP_ID, OWNER_ID


async def enable_group(shop: Any, group_id: int = GROUP_ID) -> None:
    from services.groups import set_group_enabled

    async with shop.database.write() as session:
        await set_group_enabled(session, shop.shop_id, group_id, True, OWNER_ID)
    shop.access.invalidate()


async def add_staff(shop: Any, user_id: int) -> None:
    from services.staff import add_staff as add

    async with shop.database.write() as session:
        await add(session, shop.shop_id, user_id, OWNER_ID, shop.access.owners)
    shop.access.invalidate()


async def seed_demo(shop: Any) -> None:
    from services.demo import seed_demo_catalog

    async with shop.database.write() as session:
        await seed_demo_catalog(session, shop.shop_id)


async def create_items(shop: Any, count: int, category: str | None = None) -> None:
    from services.catalog import create_item

    async with shop.database.write() as session:
        for n in range(count):
            await create_item(session, shop.shop_id, f"商品{n + 1}", 100 * (n + 1), 5, category)
