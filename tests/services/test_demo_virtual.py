"""The demo shop's virtual item: a newcomer can buy it in a group with no saved
address, pay, and get a sample key privately, with no staff action."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from models.tables import CardKey, Item, OrderStatus, OutboxMessage, Variant
from services.actors import Actor, Caller
from services.catalog import VariantRef
from services.context import close_shop, open_shop
from services.demo import DEMO_CARD_KEYS, DEMO_VIRTUAL_ITEM
from services.staff import Role
from services.usecases import buying, payments
from tests.conftest import CUSTOMER_ID, GROUP_ID, OWNER_ID


async def test_the_demo_sells_a_virtual_item_end_to_end(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    demo = settings.model_copy(update={"shop_demo": True})
    shop = await open_shop(demo, frozenset({OWNER_ID}))
    try:
        async with shop.database.read() as session:
            item = (
                await session.execute(select(Item).where(Item.name == DEMO_VIRTUAL_ITEM[0]))
            ).scalar_one()
            variant = (
                await session.execute(select(Variant).where(Variant.item_id == item.id))
            ).scalar_one()
            keys = (await session.execute(select(CardKey))).scalars().all()
        assert item.virtual and variant.stock == len(DEMO_CARD_KEYS) == len(keys)

        buyer = Caller(CUSTOMER_ID, GROUP_ID, Role.CUSTOMER)  # no saved address
        step = await buying.buy_now(shop, buyer, VariantRef(item.id or 0, 1), 1)
        assert step.next_step is buying.NextStep.CONFIRM
        placed = await buying.confirm_summary(shop, buyer)
        assert isinstance(placed, buying.OrderPlaced)
        code = placed.order.code
        paid = await payments.record_payment(
            shop, Actor.system(), code, provider="epay", reference=f"T{code}", amount_fen=None
        )
        assert paid.order.status == OrderStatus.COMPLETED

        async with shop.database.read() as session:
            rows = (
                (
                    await session.execute(
                        select(OutboxMessage).where(
                            OutboxMessage.dedupe_key.like(f"order:{code}:%")
                        )
                    )
                )
                .scalars()
                .all()
            )
        private = [r for r in rows if r.target_type == "private" and r.target_id == CUSTOMER_ID]
        group = [r for r in rows if r.target_type == "group" and r.target_id == GROUP_ID]
        assert private and group
        # The group hears only that the keys went privately; no key travels there.
        assert not any("DEMO-VIP" in r.segments for r in group)
        assert "私聊" in json.dumps([json.loads(r.segments) for r in group], ensure_ascii=False)
    finally:
        await close_shop(shop)

    # A second start of the demo adds nothing more.
    shop = await open_shop(demo, frozenset({OWNER_ID}))
    try:
        async with shop.database.read() as session:
            items = (
                (await session.execute(select(Item).where(Item.name == DEMO_VIRTUAL_ITEM[0])))
                .scalars()
                .all()
            )
        assert len(items) == 1
    finally:
        await close_shop(shop)
