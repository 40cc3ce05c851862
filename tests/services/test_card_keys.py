"""Card keys (services/card_keys.py) at the session level: parsing an import, masking,
keys at rest, import with duplicates, clearing, the stock invariant through ordering,
the virtual flag's refusals, delivery exactly once, and a refund not restocking."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from models.tables import CardDelivery, CardKey, Item, OrderEvent, OrderStatus, Variant
from services import card_keys, catalog, checkout, orders, shipping
from services.actors import Actor
from services.addresses import AddressSnapshot
from services.card_keys import KeyVault, mask, parse_keys
from services.catalog import StockChange, VariantRef
from services.context import ShopContext
from services.errors import (
    AlreadyPaid,
    CardKeysProblem,
    CardKeysRejected,
    CardKeysShort,
    CardKeysUnreadable,
    KeyStockOnly,
    MixedVirtualOrder,
    NoAddress,
    NotForVirtualOrder,
    NotVirtual,
    VirtualOrderAction,
    VirtualSwitchBlock,
    VirtualSwitchBlocked,
)
from services.tracking import normalise_carrier
from tests.conftest import CUSTOMER_ID, GROUP_ID, OWNER_ID

NOW = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
UNPAID = timedelta(minutes=30)
HOME = AddressSnapshot("张三", "13812345678", "浙江省杭州市西湖区文三路 100 号")
OWNER = Actor("owner", OWNER_ID)
PLAIN = KeyVault(None)
SEALED = KeyVault("a long random test secret, kept out of the database")
_names = itertools.count(1)


# --- helpers -------------------------------------------------------------------------------


async def _virtual_item(shop: ShopContext, price: int = 1000) -> tuple[Item, Variant]:
    async with shop.database.write() as session:
        item, variant = await catalog.create_item(
            session, shop.shop_id, f"会员卡{next(_names)}", price, 0
        )
        assert await card_keys.set_virtual(session, item, True)
        return item, variant


async def _import(
    shop: ShopContext, item: Item, variant: Variant, keys: list[str], vault: KeyVault = PLAIN
) -> card_keys.KeyImport:
    async with shop.database.write() as session:
        item = await session.get(Item, item.id)  # type: ignore[assignment]
        variant = await session.get(Variant, variant.id)  # type: ignore[assignment]
        assert item is not None and variant is not None
        return await card_keys.import_keys(session, item, variant, keys, vault, OWNER_ID, NOW)


async def _place(
    shop: ShopContext, variant: Variant, quantity: int = 1, *, user: int = CUSTOMER_ID
) -> str:
    async with shop.database.write() as session:
        order = await orders.place_order(
            session,
            shop.shop_id,
            user,
            None,
            [(variant.id or 0, quantity)],
            None,
            "",
            NOW,
            UNPAID,
        )
        return order.code


async def _pay(shop: ShopContext, code: str) -> int:
    """Records the payment and delivers (as the payment use case does); the keys taken."""
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, code)
        await orders.record_payment(
            session, order, "manual", f"manual:{code}", order.total_fen, OWNER, NOW
        )
        return await card_keys.deliver(session, order, NOW)


async def _counts(shop: ShopContext, variant: Variant) -> tuple[int, int, int]:
    """(stock, unused keys, sold keys)."""
    async with shop.database.read() as session:
        stock = (
            await session.execute(select(Variant.stock).where(Variant.id == variant.id))
        ).scalar_one()
        unused = (
            await session.execute(
                select(func.count())
                .select_from(CardKey)
                .where(CardKey.variant_id == variant.id, CardKey.order_id.is_(None))  # type: ignore[union-attr]
            )
        ).scalar_one()
        sold = (
            await session.execute(
                select(func.count())
                .select_from(CardKey)
                .where(CardKey.variant_id == variant.id, CardKey.order_id.is_not(None))  # type: ignore[union-attr]
            )
        ).scalar_one()
    return int(stock), int(unused), int(sold)


async def _held(shop: ShopContext, variant: Variant) -> int:
    """Units of the variant that unpaid orders hold."""
    async with shop.database.read() as session:
        from models.tables import OrderLine, ShopOrder

        held = (
            await session.execute(
                select(func.coalesce(func.sum(OrderLine.quantity), 0))
                .join(ShopOrder, ShopOrder.id == OrderLine.order_id)
                .where(
                    OrderLine.variant_id == variant.id,
                    ShopOrder.status == OrderStatus.PENDING_PAYMENT.value,
                )
            )
        ).scalar_one()
    return int(held)


async def _assert_invariant(shop: ShopContext, variant: Variant) -> None:
    stock, unused, _ = await _counts(shop, variant)
    assert stock == unused - await _held(shop, variant)
    assert stock >= 0


# --- parsing and masking -------------------------------------------------------------------


def test_parse_keys_takes_one_key_per_line_and_ignores_blank_lines() -> None:
    assert parse_keys("  AAAA-1111 \n\n\tBBBB 2222\n   \nCCCC\n") == [
        "AAAA-1111",
        "BBBB 2222",
        "CCCC",
    ]


def test_parse_keys_refusals() -> None:
    with pytest.raises(CardKeysRejected) as empty:
        parse_keys(" \n \n")
    assert empty.value.problem is CardKeysProblem.EMPTY
    assert len(parse_keys("\n".join(f"K{n}" for n in range(500)))) == 500
    with pytest.raises(CardKeysRejected) as many:
        parse_keys("\n".join(f"K{n}" for n in range(501)))
    assert many.value.problem is CardKeysProblem.TOO_MANY
    assert parse_keys("x" * 500) == ["x" * 500]
    with pytest.raises(CardKeysRejected) as long:
        parse_keys("ok\n\n" + "y" * 501)
    assert (long.value.problem, long.value.line) == (CardKeysProblem.TOO_LONG, 2)


def test_mask_shows_first_and_last_two_characters_only() -> None:
    assert mask("ABCD-1234-WXYZ") == "AB****YZ"
    assert mask("ABCDEFGH") == "AB****GH"
    assert mask("ABCDE") == "A****E"
    assert mask("ABCD") == "****"


# --- keys at rest ----------------------------------------------------------------------------


def test_sealed_keys_are_fernet_tokens_and_digests_are_keyed() -> None:
    stored, sealed = SEALED.seal("GIFT-0001")
    assert sealed and "GIFT-0001" not in stored
    row = CardKey(shop_id=1, variant_id=1, secret=stored, sealed=True, key_hash="", imported_by=1)
    assert SEALED.reveal(row) == "GIFT-0001"
    assert SEALED.digest("GIFT-0001") != PLAIN.digest("GIFT-0001")
    assert PLAIN.digest("GIFT-0001") in SEALED.digests("GIFT-0001")
    with pytest.raises(CardKeysUnreadable):
        KeyVault("another secret").reveal(row)
    with pytest.raises(CardKeysUnreadable):
        PLAIN.reveal(row)
    assert PLAIN.seal("GIFT-0001") == ("GIFT-0001", False)


async def test_with_a_secret_the_database_holds_no_key(shop_context: ShopContext) -> None:
    item, variant = await _virtual_item(shop_context)
    await _import(shop_context, item, variant, ["SECRET-KEY-0001", "SECRET-KEY-0002"], SEALED)
    async with shop_context.database.read() as session:
        raw = (await session.execute(text("SELECT secret, key_hash FROM card_key"))).all()
        rows = list((await session.execute(select(CardKey).order_by(CardKey.id))).scalars())  # type: ignore[arg-type]
    assert len(raw) == 2
    for secret, key_hash in raw:
        assert "SECRET-KEY" not in secret and "SECRET-KEY" not in key_hash
    assert [SEALED.reveal(row) for row in rows] == ["SECRET-KEY-0001", "SECRET-KEY-0002"]
    # Duplicates are still found: by keyed digest.
    again = await _import(
        shop_context, item, variant, ["SECRET-KEY-0002", "SECRET-KEY-0003"], SEALED
    )
    assert (again.imported, again.duplicates, again.stock) == (1, 1, 3)


async def test_keys_imported_plain_are_duplicates_after_the_secret_is_set(
    shop_context: ShopContext,
) -> None:
    item, variant = await _virtual_item(shop_context)
    await _import(shop_context, item, variant, ["OLD-1"], PLAIN)
    result = await _import(shop_context, item, variant, ["OLD-1", "NEW-1"], SEALED)
    assert (result.imported, result.duplicates, result.stock) == (1, 1, 2)


# --- import, counts, clear -------------------------------------------------------------------


async def test_import_skips_and_counts_duplicates(shop_context: ShopContext) -> None:
    item, variant = await _virtual_item(shop_context)
    first = await _import(shop_context, item, variant, ["A1", "A2", "A1", "A3"])
    assert (first.imported, first.duplicates, first.stock) == (3, 1, 3)
    second = await _import(shop_context, item, variant, ["A3", "A4"])
    assert (second.imported, second.duplicates, second.stock) == (1, 1, 4)
    # The same key in another variant is not a duplicate.
    other_item, other_variant = await _virtual_item(shop_context)
    third = await _import(shop_context, other_item, other_variant, ["A1"])
    assert (third.imported, third.duplicates, third.stock) == (1, 0, 1)
    await _assert_invariant(shop_context, variant)


async def test_import_refuses_an_item_that_is_not_virtual(shop_context: ShopContext) -> None:
    async with shop_context.database.write() as session:
        item, variant = await catalog.create_item(session, shop_context.shop_id, "咖啡", 100, 5)
        with pytest.raises(NotVirtual):
            await card_keys.import_keys(session, item, variant, ["K"], PLAIN, OWNER_ID, NOW)


async def test_key_counts_show_masked_samples(shop_context: ShopContext) -> None:
    item, variant = await _virtual_item(shop_context)
    await _import(shop_context, item, variant, ["ABCD-0001-WXYZ", "EFGH-0002-STUV", "IJKL-3", "M4"])
    code = await _place(shop_context, variant, 1)
    await _pay(shop_context, code)
    await _place(shop_context, variant, 1)
    async with shop_context.database.read() as session:
        counts = await card_keys.key_counts(session, item, variant, PLAIN)
    assert (counts.on_sale, counts.held, counts.sold) == (2, 1, 1)
    assert counts.samples == ["EF****UV", "I****3", "****"]


async def test_clear_removes_only_keys_on_sale(shop_context: ShopContext) -> None:
    item, variant = await _virtual_item(shop_context)
    await _import(shop_context, item, variant, [f"K{n}" for n in range(6)])
    paid = await _place(shop_context, variant, 2)
    await _pay(shop_context, paid)
    await _place(shop_context, variant, 1)  # unpaid: holds one key
    async with shop_context.database.write() as session:
        cleared = await card_keys.clear_unused(session, item, variant)
    assert (cleared.removed, cleared.held) == (3, 1)
    assert await _counts(shop_context, variant) == (0, 1, 2)
    await _assert_invariant(shop_context, variant)


# --- the stock invariant through ordering ----------------------------------------------------


async def test_orders_reserve_and_release_keys_like_stock(shop_context: ShopContext) -> None:
    item, variant = await _virtual_item(shop_context)
    await _import(shop_context, item, variant, ["K1", "K2", "K3"])
    code = await _place(shop_context, variant, 2)
    assert await _counts(shop_context, variant) == (1, 3, 0)
    await _assert_invariant(shop_context, variant)
    async with shop_context.database.write() as session:
        with pytest.raises(Exception) as short:
            await orders.place_order(
                session, shop_context.shop_id, CUSTOMER_ID, None, [(variant.id or 0, 2)], None,
                "", NOW, UNPAID,
            )  # fmt: skip
    assert type(short.value).__name__ == "OutOfStock"
    async with shop_context.database.write() as session:
        order = await orders.get_order(session, shop_context.shop_id, code)
        await orders.cancel(session, order, Actor("customer", CUSTOMER_ID), "", NOW)
    assert await _counts(shop_context, variant) == (3, 3, 0)
    await _assert_invariant(shop_context, variant)


async def test_virtual_orders_take_no_address_and_are_never_mixed(
    shop_context: ShopContext,
) -> None:
    item, variant = await _virtual_item(shop_context)
    await _import(shop_context, item, variant, ["K1", "K2"])
    async with shop_context.database.write() as session:
        _, goods = await catalog.create_item(session, shop_context.shop_id, "咖啡豆", 100, 5)
        order = await orders.place_order(
            session, shop_context.shop_id, CUSTOMER_ID, GROUP_ID, [(variant.id or 0, 1)], HOME,
            "", NOW, UNPAID,
        )  # fmt: skip
        assert order.virtual
        assert (order.receiver_name, order.receiver_phone, order.receiver_address) == ("", "", "")
        with pytest.raises(MixedVirtualOrder):
            await orders.place_order(
                session, shop_context.shop_id, CUSTOMER_ID, None,
                [(variant.id or 0, 1), (goods.id or 0, 1)], HOME, "", NOW, UNPAID,
            )  # fmt: skip
        with pytest.raises(NoAddress):
            await orders.place_order(
                session, shop_context.shop_id, CUSTOMER_ID, None, [(goods.id or 0, 1)], None,
                "", NOW, UNPAID,
            )  # fmt: skip
        with pytest.raises(NotForVirtualOrder) as address:
            await orders.amend_address(session, order, HOME, Actor("customer", CUSTOMER_ID), NOW)
        assert address.value.action is VirtualOrderAction.ADDRESS


async def test_a_group_summary_of_card_keys_needs_no_address(shop_context: ShopContext) -> None:
    item, variant = await _virtual_item(shop_context)
    await _import(shop_context, item, variant, ["K1"])
    async with shop_context.database.write() as session:
        summary = await checkout.start(
            session, shop_context.shop_id, CUSTOMER_ID, GROUP_ID, checkout.DraftSource.BUY,
            [(variant.id or 0, 1)], "", NOW, timedelta(minutes=5),
        )  # fmt: skip
        assert summary.virtual and not summary.needs_address
        assert not summary.draft.awaiting_address
        order = await checkout.confirm(session, summary.draft, NOW, UNPAID)
    assert order.virtual and order.status == OrderStatus.PENDING_PAYMENT.value


# --- the virtual flag ------------------------------------------------------------------------


async def test_switching_to_virtual_needs_no_stock_and_no_open_orders(
    shop_context: ShopContext,
) -> None:
    async with shop_context.database.write() as session:
        item, variant = await catalog.create_item(session, shop_context.shop_id, "会员", 100, 2)
    async with shop_context.database.write() as session:
        item = await session.get(Item, item.id)  # type: ignore[assignment]
        with pytest.raises(VirtualSwitchBlocked) as stocked:
            await card_keys.set_virtual(session, item, True)
    assert (stocked.value.why, stocked.value.count) == (VirtualSwitchBlock.PHYSICAL_STOCK, 2)
    async with shop_context.database.write() as session:
        order = await orders.place_order(
            session, shop_context.shop_id, CUSTOMER_ID, None, [(variant.id or 0, 2)], HOME, "",
            NOW, UNPAID,
        )  # fmt: skip
    async with shop_context.database.write() as session:
        item = await session.get(Item, item.id)  # type: ignore[assignment]
        with pytest.raises(VirtualSwitchBlocked) as busy:
            await card_keys.set_virtual(session, item, True)
    assert (busy.value.why, busy.value.count, busy.value.orders) == (
        VirtualSwitchBlock.OPEN_ORDERS,
        1,
        (order.code,),
    )
    async with shop_context.database.write() as session:
        order = await orders.get_order(session, shop_context.shop_id, order.code)
        await orders.cancel(session, order, OWNER, "", NOW)
        await catalog.change_stock(
            session, shop_context.shop_id, VariantRef(item.id or 0), StockChange("set", 0)
        )
        item = await session.get(Item, item.id)  # type: ignore[assignment]
        assert await card_keys.set_virtual(session, item, True)
        assert not await card_keys.set_virtual(session, item, True)


async def test_switching_back_needs_the_keys_cleared(shop_context: ShopContext) -> None:
    item, variant = await _virtual_item(shop_context)
    await _import(shop_context, item, variant, ["K1", "K2"])
    async with shop_context.database.write() as session:
        item = await session.get(Item, item.id)  # type: ignore[assignment]
        with pytest.raises(VirtualSwitchBlocked) as left:
            await card_keys.set_virtual(session, item, False)
        assert (left.value.why, left.value.count) == (VirtualSwitchBlock.UNUSED_KEYS, 2)
        await card_keys.clear_unused(session, item, variant)
        assert await card_keys.set_virtual(session, item, False)


async def test_stock_of_a_virtual_item_changes_only_with_keys(shop_context: ShopContext) -> None:
    item, _ = await _virtual_item(shop_context)
    async with shop_context.database.write() as session:
        with pytest.raises(KeyStockOnly):
            await catalog.change_stock(
                session, shop_context.shop_id, VariantRef(item.id or 0), StockChange("add", 5)
            )
        with pytest.raises(KeyStockOnly):
            await catalog.add_variant(session, shop_context.shop_id, item.id or 0, "年卡", 9900, 3)
        added = await catalog.add_variant(
            session, shop_context.shop_id, item.id or 0, "年卡", 9900, 0
        )
    assert added.stock == 0


# --- delivery ----------------------------------------------------------------------------------


async def test_delivery_takes_the_keys_once_and_completes_the_order(
    shop_context: ShopContext,
) -> None:
    item, variant = await _virtual_item(shop_context)
    await _import(shop_context, item, variant, ["K1", "K2", "K3"])
    code = await _place(shop_context, variant, 2)
    assert await _pay(shop_context, code) == 2
    async with shop_context.database.write() as session:
        order = await orders.get_order(session, shop_context.shop_id, code)
        assert order.status == OrderStatus.COMPLETED.value and order.closed_at == NOW
        with pytest.raises(AlreadyPaid):  # a second delivery of the order: refused
            await card_keys.deliver(session, order, NOW)
        keys = await card_keys.order_keys(session, order, PLAIN)
        events = list(
            (
                await session.execute(
                    select(OrderEvent.action, OrderEvent.actor).where(
                        OrderEvent.order_id == order.id
                    )
                )
            ).all()
        )
        deliveries = (
            await session.execute(select(func.count()).select_from(CardDelivery))
        ).scalar_one()
    assert [(line.name, line.keys) for line in keys] == [(item.name, ["K1", "K2"])]
    assert ("keys_delivered", "system") in [tuple(event) for event in events]
    assert deliveries == 1
    assert await _counts(shop_context, variant) == (1, 1, 2)
    await _assert_invariant(shop_context, variant)


async def test_delivery_refuses_when_keys_went_missing(shop_context: ShopContext) -> None:
    item, variant = await _virtual_item(shop_context)
    await _import(shop_context, item, variant, ["K1"])
    code = await _place(shop_context, variant, 1)
    async with shop_context.database.write() as session:  # tampering behind the shop's back
        await session.execute(text("DELETE FROM card_key"))
    with pytest.raises(CardKeysShort) as short:
        await _pay(shop_context, code)
    assert (short.value.code, short.value.missing) == (code, 1)
    async with shop_context.database.read() as session:
        order = await orders.get_order(session, shop_context.shop_id, code)
    assert order.status == OrderStatus.PENDING_PAYMENT.value  # the payment rolled back


async def test_virtual_orders_are_never_shipped(shop_context: ShopContext) -> None:
    item, variant = await _virtual_item(shop_context)
    await _import(shop_context, item, variant, ["K1"])
    code = await _place(shop_context, variant, 1)
    async with shop_context.database.write() as session:
        order = await orders.get_order(session, shop_context.shop_id, code)
        with pytest.raises(NotForVirtualOrder) as ship:
            await shipping.ship(session, order, normalise_carrier("顺丰"), "SF123456", OWNER, NOW)
    assert ship.value.action is VirtualOrderAction.SHIP


async def test_a_refund_does_not_put_revealed_keys_back(shop_context: ShopContext) -> None:
    item, variant = await _virtual_item(shop_context)
    await _import(shop_context, item, variant, ["K1", "K2"])
    code = await _place(shop_context, variant, 1)
    await _pay(shop_context, code)
    async with shop_context.database.write() as session:
        order = await orders.get_order(session, shop_context.shop_id, code)
        _, fully = await orders.refund(session, order, None, "不想要了", OWNER, NOW)
        assert fully and order.status == OrderStatus.REFUNDED.value
        keys = await card_keys.order_keys(session, order, PLAIN)
    assert [line.keys for line in keys] == [["K1"]]  # still the order's
    assert await _counts(shop_context, variant) == (1, 1, 1)
    await _assert_invariant(shop_context, variant)


def test_paginate_keeps_every_key_in_order_within_the_budget() -> None:
    lines = [
        card_keys.LineKeys("月卡", ["a" * 6, "b" * 6, "c" * 6]),
        card_keys.LineKeys("年卡", ["d" * 6]),
    ]
    pages = card_keys.paginate(lines, budget=14)
    assert [[(line.name, line.keys) for line in page] for page in pages] == [
        [("月卡", ["a" * 6, "b" * 6])],
        [("月卡", ["c" * 6]), ("年卡", ["d" * 6])],
    ]
    assert card_keys.paginate([card_keys.LineKeys("月卡", ["x" * 50])], budget=10) == [
        [card_keys.LineKeys("月卡", ["x" * 50])]
    ]
    assert card_keys.paginate([]) == []


async def test_a_failed_import_reports_no_key(shop_context: ShopContext) -> None:
    """SQLAlchemy puts a failed statement's parameters in its message, and the chat door
    logs unexpected errors: an import the database refuses must not carry the keys."""
    if not shop_context.database.is_sqlite:
        pytest.skip("the refusal is staged with a SQLite trigger")
    item, variant = await _virtual_item(shop_context)
    async with shop_context.database.write() as session:
        await session.execute(
            text(
                "CREATE TRIGGER refuse_keys BEFORE INSERT ON card_key "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    with pytest.raises(card_keys.CardKeysImportFailed) as failed:
        await _import(shop_context, item, variant, ["LEAK-CHECK-0001"])
    assert "LEAK-CHECK" not in str(failed.value)
    assert failed.value.__suppress_context__ and failed.value.__cause__ is None
