"""Renaming and deleting catalog entries (services.usecases.catalog_admin: rename,
ask_deletion, confirm_deletion, cancel_deletion) on a real shop database: what each
returns, the rows it leaves, what orders keep, and every refusal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from models.tables import (
    CardKey,
    CartLine,
    CheckoutDraft,
    CheckoutDraftLine,
    Item,
    OrderLine,
    OutboxMessage,
    Variant,
    VariantGuard,
)
from models.types import utcnow
from services.actors import Caller
from services.addresses import validate
from services.catalog import VariantRef
from services.context import ShopContext
from services.errors import (
    DeleteBlock,
    DeleteBlocked,
    DeletionLapse,
    DeletionNotPending,
    InvalidValue,
    ItemNotFound,
    VariantNotFound,
)
from services.staff import Role
from services.usecases import buying, card_keys, catalog_admin, safeguards
from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID

OWNER = Caller(OWNER_ID, None, Role.OWNER)
OWNER_IN_GROUP = Caller(OWNER_ID, GROUP_ID, Role.OWNER)
STAFF = Caller(STAFF_ID, None, Role.STAFF)
CUSTOMER = Caller(CUSTOMER_ID, None, Role.CUSTOMER)
OTHER_CUSTOMER = Caller(OTHER_CUSTOMER_ID, None, Role.CUSTOMER)
HOME = validate("张三", "13800001111", "浙江省杭州市西湖区文三路 1 号")


# --- helpers -------------------------------------------------------------------------


async def count(shop: ShopContext, model: Any, *where: Any) -> int:
    async with shop.database.read() as session:
        statement = select(func.count()).select_from(model)
        if where:
            statement = statement.where(*where)
        return int((await session.execute(statement)).scalar_one())


async def variants_of(shop: ShopContext, item_id: int) -> list[tuple[int, str]]:
    async with shop.database.read() as session:
        rows = await session.execute(
            select(Variant.position, Variant.name)
            .where(Variant.item_id == item_id)  # type: ignore[arg-type]
            .order_by(Variant.position)
        )
        return [(position, name) for position, name in rows]


async def phone_with_cases(shop: ShopContext) -> int:
    """Item 1 `iPhone 15 Pro` with variants 1-1 默认, 1-2 `256G 黑色`, 1-3 `512G`."""
    created = await catalog_admin.create_item(shop, "iPhone 15 Pro", 599900, 10, "手机")
    item_id = created.item.id or 0
    await catalog_admin.add_variant(shop, item_id, "256G 黑色", 699900, 5)
    await catalog_admin.add_variant(shop, item_id, "512G", 799900, 2)
    return item_id


async def place_order(shop: ShopContext, customer: Caller, ref: VariantRef) -> str:
    await buying.add_address(shop, customer, HOME)
    await buying.buy_now(shop, customer, ref, 1)
    placed = await buying.confirm_summary(shop, customer)
    assert isinstance(placed, buying.OrderPlaced)
    return placed.order.code


# --- /改名 ---------------------------------------------------------------------------


async def test_rename_item_keeps_the_name_on_orders(shop_context: ShopContext) -> None:
    item_id = await phone_with_cases(shop_context)
    code = await place_order(shop_context, CUSTOMER, VariantRef(item_id, 2))

    result = await catalog_admin.rename(shop_context, VariantRef(item_id), "iPhone 15 Pro Max")

    assert (result.old_name, result.new_name, result.changed) == (
        "iPhone 15 Pro",
        "iPhone 15 Pro Max",
        True,
    )
    assert result.variant is None
    async with shop_context.database.read() as session:
        assert (await session.get(Item, item_id)).name == "iPhone 15 Pro Max"  # type: ignore[union-attr]
    view = await buying.order_detail(shop_context, CUSTOMER, code)
    assert [(line.item_name, line.variant_name) for line in view.detail.lines] == [
        ("iPhone 15 Pro", "256G 黑色")
    ]
    assert await count(shop_context, OutboxMessage) == 1  # the new order's staff notice only


async def test_rename_variant_keeps_the_name_on_orders(shop_context: ShopContext) -> None:
    item_id = await phone_with_cases(shop_context)
    code = await place_order(shop_context, CUSTOMER, VariantRef(item_id, 2))

    result = await catalog_admin.rename(shop_context, VariantRef(item_id, 2), "  256G   午夜黑 ")

    assert result.variant is not None and result.variant.position == 2
    assert (result.old_name, result.new_name) == ("256G 黑色", "256G   午夜黑")
    assert await variants_of(shop_context, item_id) == [
        (1, "默认"),
        (2, "256G   午夜黑"),
        (3, "512G"),
    ]
    async with shop_context.database.read() as session:
        names = (await session.execute(select(OrderLine.item_name, OrderLine.variant_name))).all()
    assert names == [("iPhone 15 Pro", "256G 黑色")]
    view = await buying.order_detail(shop_context, CUSTOMER, code)
    assert view.detail.lines[0].variant_name == "256G 黑色"


async def test_rename_to_the_same_name_changes_nothing(shop_context: ShopContext) -> None:
    item_id = await phone_with_cases(shop_context)
    result = await catalog_admin.rename(shop_context, VariantRef(item_id, 3), "512G")
    assert result.changed is False
    item_result = await catalog_admin.rename(shop_context, VariantRef(item_id), "iPhone 15 Pro")
    assert item_result.changed is False


async def test_rename_a_delisted_item(shop_context: ShopContext) -> None:
    item_id = await phone_with_cases(shop_context)
    await catalog_admin.set_listed(shop_context, item_id, False)
    result = await catalog_admin.rename(shop_context, VariantRef(item_id), "旧款 iPhone")
    assert result.item.name == "旧款 iPhone" and result.item.listed is False


@pytest.mark.parametrize(
    ("ref", "name", "error", "field", "reason"),
    [
        (VariantRef(1), "", InvalidValue, "item_name", "empty"),
        (VariantRef(1), "   ", InvalidValue, "item_name", "empty"),
        (VariantRef(1), "长" * 61, InvalidValue, "item_name", "too_long"),
        (VariantRef(1, 2), "", InvalidValue, "variant_name", "empty"),
        (VariantRef(1, 2), "规" * 31, InvalidValue, "variant_name", "too_long"),
        (VariantRef(1, 2), "512G", InvalidValue, "variant_name", "duplicate"),
    ],
    ids=["item-empty", "item-blank", "item-61", "variant-empty", "variant-31", "duplicate"],
)
async def test_rename_refusals_change_nothing(
    shop_context: ShopContext,
    ref: VariantRef,
    name: str,
    error: type[Exception],
    field: str,
    reason: str,
) -> None:
    await phone_with_cases(shop_context)
    with pytest.raises(error) as raised:
        await catalog_admin.rename(shop_context, ref, name)
    assert (raised.value.field, raised.value.reason) == (field, reason)  # type: ignore[attr-defined]
    assert await variants_of(shop_context, 1) == [(1, "默认"), (2, "256G 黑色"), (3, "512G")]
    async with shop_context.database.read() as session:
        assert (await session.get(Item, 1)).name == "iPhone 15 Pro"  # type: ignore[union-attr]


async def test_rename_longest_names_accepted(shop_context: ShopContext) -> None:
    await phone_with_cases(shop_context)
    assert (await catalog_admin.rename(shop_context, VariantRef(1), "长" * 60)).changed
    assert (await catalog_admin.rename(shop_context, VariantRef(1, 2), "规" * 30)).changed


async def test_rename_unknown_item_or_variant(shop_context: ShopContext) -> None:
    await phone_with_cases(shop_context)
    with pytest.raises(ItemNotFound):
        await catalog_admin.rename(shop_context, VariantRef(9), "新名字")
    with pytest.raises(ItemNotFound):
        await catalog_admin.rename(shop_context, VariantRef(9, 1), "新名字")
    with pytest.raises(VariantNotFound):
        await catalog_admin.rename(shop_context, VariantRef(1, 4), "新名字")


# --- /删除 then 确认删除 ---------------------------------------------------------------


async def test_ask_deletion_shows_the_plan_and_changes_nothing(shop_context: ShopContext) -> None:
    item_id = await phone_with_cases(shop_context)
    await buying.add_to_cart(shop_context, CUSTOMER, VariantRef(item_id, 2), 1)
    await buying.add_to_cart(shop_context, OTHER_CUSTOMER, VariantRef(item_id, 3), 1)
    await safeguards.set_purchase_limit(shop_context, VariantRef(item_id, 2), 2)
    now = utcnow()

    asked = await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id), now)

    plan = asked.plan
    assert plan.whole_item and plan.item.name == "iPhone 15 Pro"
    assert [v.position for v in plan.variants] == [1, 2, 3]
    assert (plan.cart_lines, plan.guards) == (2, 1)
    assert asked.expires_at == now + shop_context.settings.confirm_timeout
    assert catalog_admin.pending_deletion(shop_context, OWNER) == VariantRef(item_id)
    assert catalog_admin.pending_deletion(shop_context, OWNER_IN_GROUP) is None
    assert await count(shop_context, Variant) == 3
    assert await count(shop_context, CartLine) == 2


async def test_confirm_deletes_the_item_its_variants_carts_and_guards(
    shop_context: ShopContext,
) -> None:
    item_id = await phone_with_cases(shop_context)
    other = (await catalog_admin.create_item(shop_context, "冷萃咖啡", 3990, 50)).item.id or 0
    await buying.add_to_cart(shop_context, CUSTOMER, VariantRef(item_id, 2), 1)
    await buying.add_to_cart(shop_context, CUSTOMER, VariantRef(other), 1)
    await safeguards.set_low_stock_alert(shop_context, VariantRef(item_id, 3), 1)
    now = utcnow()
    await catalog_admin.ask_deletion(shop_context, OWNER_IN_GROUP, VariantRef(item_id), now)

    deleted = await catalog_admin.confirm_deletion(
        shop_context, OWNER_IN_GROUP, now + timedelta(seconds=30)
    )

    assert deleted.plan.item.name == "iPhone 15 Pro" and len(deleted.plan.variants) == 3
    assert deleted.stale_summaries == 0
    assert await count(shop_context, Item) == 1
    assert await count(shop_context, Variant) == 1
    assert await count(shop_context, VariantGuard) == 0
    async with shop_context.database.read() as session:
        left = (await session.execute(select(CartLine.variant_id))).scalars().all()
    assert len(left) == 1  # the other item stays in the cart
    assert await count(shop_context, OutboxMessage) == 0
    assert catalog_admin.pending_deletion(shop_context, OWNER_IN_GROUP) is None
    with pytest.raises(ItemNotFound):
        await catalog_admin.rename(shop_context, VariantRef(item_id), "还在吗")


async def test_confirm_deletes_one_variant_and_the_others_keep_their_numbers(
    shop_context: ShopContext,
) -> None:
    item_id = await phone_with_cases(shop_context)
    await catalog_admin.ask_deletion(shop_context, STAFF, VariantRef(item_id, 2))

    deleted = await catalog_admin.confirm_deletion(shop_context, STAFF)

    assert not deleted.plan.whole_item
    assert [v.name for v in deleted.plan.variants] == ["256G 黑色"]
    assert await variants_of(shop_context, item_id) == [(1, "默认"), (3, "512G")]
    # The next variant takes a new number: 1-2 never means something else later.
    added = await catalog_admin.add_variant(shop_context, item_id, "1T", 999900, 1)
    assert added.variant.position == 4
    with pytest.raises(VariantNotFound):
        await catalog_admin.ask_deletion(shop_context, STAFF, VariantRef(item_id, 2))


async def test_the_last_variant_is_refused_the_item_is_deleted_instead(
    shop_context: ShopContext,
) -> None:
    item_id = (await catalog_admin.create_item(shop_context, "冷萃咖啡", 3990, 50)).item.id or 0
    with pytest.raises(DeleteBlocked) as raised:
        await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id, 1))
    assert (raised.value.why, raised.value.ref, raised.value.item_id) == (
        DeleteBlock.LAST_VARIANT,
        f"{item_id}-1",
        item_id,
    )
    assert catalog_admin.pending_deletion(shop_context, OWNER) is None
    await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id))
    await catalog_admin.confirm_deletion(shop_context, OWNER)
    assert await count(shop_context, Item) == 0 and await count(shop_context, Variant) == 0


async def test_an_ordered_item_or_variant_is_refused(shop_context: ShopContext) -> None:
    item_id = await phone_with_cases(shop_context)
    await place_order(shop_context, CUSTOMER, VariantRef(item_id, 2))
    await place_order(shop_context, OTHER_CUSTOMER, VariantRef(item_id, 2))

    for ref in (VariantRef(item_id), VariantRef(item_id, 2)):
        with pytest.raises(DeleteBlocked) as raised:
            await catalog_admin.ask_deletion(shop_context, OWNER, ref)
        assert (raised.value.why, raised.value.count) == (DeleteBlock.ORDERED, 2)
    assert catalog_admin.pending_deletion(shop_context, OWNER) is None
    # A variant nobody ordered may still go.
    await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id, 3))
    await catalog_admin.confirm_deletion(shop_context, OWNER)
    assert await variants_of(shop_context, item_id) == [(1, "默认"), (2, "256G 黑色")]


async def test_an_order_placed_before_the_confirmation_stops_it(shop_context: ShopContext) -> None:
    item_id = await phone_with_cases(shop_context)
    await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id))
    await place_order(shop_context, CUSTOMER, VariantRef(item_id, 1))

    with pytest.raises(DeleteBlocked) as raised:
        await catalog_admin.confirm_deletion(shop_context, OWNER)

    assert raised.value.why is DeleteBlock.ORDERED
    assert await count(shop_context, Variant) == 3
    with pytest.raises(DeletionNotPending):  # used up: /删除 is asked again
        await catalog_admin.confirm_deletion(shop_context, OWNER)


async def test_a_waiting_order_summary_blocks_and_a_timed_out_one_goes(
    shop_context: ShopContext,
) -> None:
    item_id = await phone_with_cases(shop_context)
    now = utcnow()
    await buying.add_address(shop_context, CUSTOMER, HOME)
    await buying.buy_now(shop_context, CUSTOMER, VariantRef(item_id, 2), 1, now=now)
    assert shop_context.drafts.get(None, CUSTOMER_ID) is not None

    with pytest.raises(DeleteBlocked) as raised:
        await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id, 2), now)
    assert (raised.value.why, raised.value.count) == (DeleteBlock.IN_CHECKOUT, 1)
    # Another variant is not in the summary.
    await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id, 3), now)
    catalog_admin.cancel_deletion(shop_context, OWNER)

    later = now + shop_context.settings.confirm_timeout + timedelta(seconds=1)
    await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id, 2), later)
    deleted = await catalog_admin.confirm_deletion(shop_context, OWNER, later)

    assert deleted.stale_summaries == 1
    assert await count(shop_context, CheckoutDraft) == 0
    assert await count(shop_context, CheckoutDraftLine) == 0
    assert shop_context.drafts.get(None, CUSTOMER_ID) is None
    assert await variants_of(shop_context, item_id) == [(1, "默认"), (3, "512G")]


async def test_unsold_card_keys_block_until_cleared(shop_context: ShopContext) -> None:
    item_id = (await catalog_admin.create_item(shop_context, "会员月卡", 1990, 0)).item.id or 0
    await card_keys.set_virtual(shop_context, OWNER, item_id, True)
    await card_keys.import_keys(shop_context, OWNER, VariantRef(item_id), "KEY-0001\nKEY-0002")

    with pytest.raises(DeleteBlocked) as raised:
        await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id))
    assert (raised.value.why, raised.value.count) == (DeleteBlock.UNUSED_KEYS, 2)

    await card_keys.clear_keys(shop_context, OWNER, VariantRef(item_id))
    await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id))
    await catalog_admin.confirm_deletion(shop_context, OWNER)
    assert await count(shop_context, Item) == 0 and await count(shop_context, CardKey) == 0


async def test_confirmation_belongs_to_one_person_in_one_chat(shop_context: ShopContext) -> None:
    item_id = await phone_with_cases(shop_context)
    await catalog_admin.ask_deletion(shop_context, OWNER_IN_GROUP, VariantRef(item_id))

    for someone_else in (OWNER, Caller(STAFF_ID, GROUP_ID, Role.STAFF)):
        with pytest.raises(DeletionNotPending) as raised:
            await catalog_admin.confirm_deletion(shop_context, someone_else)
        assert raised.value.why is DeletionLapse.NONE
    assert await count(shop_context, Variant) == 3
    await catalog_admin.confirm_deletion(shop_context, OWNER_IN_GROUP)
    assert await count(shop_context, Variant) == 0


async def test_a_confirmation_after_the_timeout_deletes_nothing(shop_context: ShopContext) -> None:
    item_id = await phone_with_cases(shop_context)
    now = utcnow()
    await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id, 3), now)

    with pytest.raises(DeletionNotPending) as raised:
        await catalog_admin.confirm_deletion(
            shop_context, OWNER, now + shop_context.settings.confirm_timeout
        )

    assert (raised.value.why, raised.value.ref) == (DeletionLapse.EXPIRED, f"{item_id}-3")
    assert await count(shop_context, Variant) == 3
    assert catalog_admin.pending_deletion(shop_context, OWNER) is None


async def test_variants_changed_since_the_summary_delete_nothing(
    shop_context: ShopContext,
) -> None:
    item_id = await phone_with_cases(shop_context)
    await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id))
    await catalog_admin.add_variant(shop_context, item_id, "1T", 999900, 1)

    with pytest.raises(DeletionNotPending) as raised:
        await catalog_admin.confirm_deletion(shop_context, OWNER)

    assert (raised.value.why, raised.value.ref) == (DeletionLapse.CHANGED, str(item_id))
    assert await count(shop_context, Variant) == 4


async def test_cancel_forgets_the_deletion(shop_context: ShopContext) -> None:
    item_id = await phone_with_cases(shop_context)
    await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id, 2))

    assert catalog_admin.cancel_deletion(shop_context, OWNER) == VariantRef(item_id, 2)
    assert catalog_admin.cancel_deletion(shop_context, OWNER) is None
    with pytest.raises(DeletionNotPending):
        await catalog_admin.confirm_deletion(shop_context, OWNER)
    assert await count(shop_context, Variant) == 3


async def test_a_new_deletion_replaces_the_waiting_one(shop_context: ShopContext) -> None:
    item_id = await phone_with_cases(shop_context)
    await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id, 2))
    await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id, 3))

    deleted = await catalog_admin.confirm_deletion(shop_context, OWNER)

    assert [v.position for v in deleted.plan.variants] == [3]
    assert await variants_of(shop_context, item_id) == [(1, "默认"), (2, "256G 黑色")]


async def test_deleting_unknown_things(shop_context: ShopContext) -> None:
    await phone_with_cases(shop_context)
    with pytest.raises(ItemNotFound):
        await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(9))
    with pytest.raises(VariantNotFound):
        await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(1, 7))
    assert catalog_admin.pending_deletion(shop_context, OWNER) is None


async def test_a_delisted_item_can_be_deleted(shop_context: ShopContext) -> None:
    item_id = await phone_with_cases(shop_context)
    await catalog_admin.set_listed(shop_context, item_id, False)
    asked = await catalog_admin.ask_deletion(shop_context, OWNER, VariantRef(item_id))
    assert asked.plan.item.listed is False
    await catalog_admin.confirm_deletion(shop_context, OWNER)
    assert await count(shop_context, Item) == 0
