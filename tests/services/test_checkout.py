"""services.checkout: the order summary a customer confirms, on a real SQLite database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models.db import Database
from models.tables import DEFAULT_SHOP_ID, CheckoutDraft, ShopOrder
from models.types import utcnow
from services import addresses, cart, catalog, checkout, orders
from services.addresses import AddressSnapshot
from services.catalog import StockChange, VariantRef
from services.codes import looks_like_code
from services.errors import (
    CartEmpty,
    DraftExpired,
    InvalidValue,
    ItemUnavailable,
    NoAddress,
    OutOfStock,
)

SHOP = DEFAULT_SHOP_ID
CUSTOMER_ID = 30003
OTHER_CUSTOMER_ID = 30004
GROUP_ID = 555000
OTHER_GROUP_ID = 666000
WINDOW = timedelta(minutes=5)
TIMEOUT = timedelta(minutes=30)
HOME = AddressSnapshot("张三", "13812345678", "浙江省杭州市西湖区文三路 100 号")


async def _variant(
    db: Database, name: str = "咖啡豆", price: int = 5900, stock: int = 10
) -> tuple[int, int]:
    async with db.write() as s:
        item, variant = await catalog.create_item(s, SHOP, name, price, stock)
        assert item.id is not None and variant.id is not None
        return item.id, variant.id


async def _address(db: Database, user: int = CUSTOMER_ID, snapshot: AddressSnapshot = HOME) -> None:
    async with db.write() as s:
        await addresses.add_address(s, SHOP, user, snapshot)


async def _start(
    db: Database,
    wanted: list[tuple[int, int]],
    *,
    user: int = CUSTOMER_ID,
    group: int | None = None,
    source: str = "buy",
    remark: str = "",
    now=None,
) -> checkout.Summary:
    async with db.write() as s:
        return await checkout.start(
            s, SHOP, user, group, source, wanted, remark, now or utcnow(), WINDOW
        )


async def _confirm(db: Database, draft: CheckoutDraft, now=None) -> ShopOrder:
    async with db.write() as s:
        return await checkout.confirm(s, draft, now or utcnow(), TIMEOUT)


async def _drafts(db: Database) -> list[CheckoutDraft]:
    async with db.read() as s:
        return list((await s.execute(select(CheckoutDraft).order_by(CheckoutDraft.id))).scalars())


async def _order_count(db: Database) -> int:
    async with db.read() as s:
        return int((await s.execute(select(func.count()).select_from(ShopOrder))).scalar_one())


async def _stock(db: Database, item_id: int) -> int:
    async with db.read() as s:
        _, variant = await catalog.resolve_variant(
            s, SHOP, VariantRef(item_id), include_delisted=True
        )
        return variant.stock


# --- start -------------------------------------------------------------------------------


async def test_start_with_a_default_address(db: Database) -> None:
    item_id, variant_id = await _variant(db, "云南咖啡豆", 5900, 10)
    await _address(db)
    now = utcnow()
    summary = await _start(db, [(variant_id, 2)], remark=" 尽快 ", now=now)
    assert summary.address == HOME
    assert [
        (line.item.name, line.variant.id, line.quantity, line.subtotal_fen)
        for line in summary.lines
    ] == [("云南咖啡豆", variant_id, 2, 11800)]
    assert summary.total_fen == 11800
    draft = summary.draft
    assert draft.id is not None
    assert (draft.chat_key, draft.user_id, draft.source, draft.remark) == (
        "p",
        CUSTOMER_ID,
        "buy",
        "尽快",
    )
    assert draft.awaiting_address is False
    assert draft.expires_at == now + WINDOW
    stored = await _drafts(db)
    # variant:quantity:unit price shown (确认 refuses if the price moved since)
    assert [(d.id, d.lines) for d in stored] == [(draft.id, f"{variant_id}:2:5900")]
    # Nothing is reserved before 确认.
    assert await _stock(db, item_id) == 10
    assert await _order_count(db) == 0


async def test_start_in_a_group_uses_the_group_key(db: Database) -> None:
    _, variant_id = await _variant(db)
    await _address(db)
    summary = await _start(db, [(variant_id, 1)], group=GROUP_ID)
    assert summary.draft.chat_key == f"g:{GROUP_ID}"
    assert summary.address == HOME
    async with db.read() as s:
        found = await checkout.find(s, SHOP, CUSTOMER_ID, GROUP_ID)
        assert found is not None and found.id == summary.draft.id
        assert await checkout.find(s, SHOP, CUSTOMER_ID, None) is None
        assert await checkout.find(s, SHOP, CUSTOMER_ID, OTHER_GROUP_ID) is None
        assert await checkout.find(s, SHOP, OTHER_CUSTOMER_ID, GROUP_ID) is None


async def test_start_in_a_group_without_address_keeps_no_draft(db: Database) -> None:
    _, variant_id = await _variant(db)
    with pytest.raises(NoAddress):
        await _start(db, [(variant_id, 1)], group=GROUP_ID)
    assert await _drafts(db) == []


async def test_start_privately_without_address_waits_for_one(db: Database) -> None:
    _, variant_id = await _variant(db)
    start = utcnow()
    summary = await _start(db, [(variant_id, 1)], now=start)
    assert summary.address is None
    assert summary.draft.awaiting_address is True
    assert [d.awaiting_address for d in await _drafts(db)] == [True]

    later = start + timedelta(minutes=2)
    async with db.write() as s:
        snapshot = addresses.validate("李四", "+86 139 1234 5678", "北京市朝阳区建国路 88 号")
        await addresses.add_address(s, SHOP, CUSTOMER_ID, snapshot)
        draft = await checkout.find(s, SHOP, CUSTOMER_ID, None)
        assert draft is not None
        summary = await checkout.address_given(s, draft, later, WINDOW)
    assert summary.address == AddressSnapshot("李四", "13912345678", "北京市朝阳区建国路 88 号")
    assert summary.draft.awaiting_address is False
    assert summary.draft.expires_at == later + WINDOW  # a fresh window to confirm
    assert summary.total_fen == 5900
    stored = await _drafts(db)
    assert [(d.awaiting_address, d.expires_at) for d in stored] == [(False, later + WINDOW)]

    order = await _confirm(db, stored[0], now=later + timedelta(minutes=1))
    assert order.receiver_name == "李四"
    assert order.receiver_phone == "13912345678"


async def test_start_checks_availability(db: Database) -> None:
    item_id, variant_id = await _variant(db, "稀缺", stock=2)
    await _address(db)
    with pytest.raises(OutOfStock) as caught:
        await _start(db, [(variant_id, 3)])
    assert (caught.value.name, caught.value.requested, caught.value.available) == ("稀缺", 3, 2)
    async with db.write() as s:
        await catalog.set_listed(s, SHOP, item_id, False)
    with pytest.raises(ItemUnavailable):
        await _start(db, [(variant_id, 1)])
    with pytest.raises(CartEmpty):
        await _start(db, [])
    with pytest.raises(InvalidValue):
        await _start(db, [(variant_id, 1)], remark="字" * 201)
    assert await _drafts(db) == []


async def test_start_replaces_the_same_chats_draft_only(db: Database) -> None:
    _, a = await _variant(db, "甲")
    _, b = await _variant(db, "乙")
    await _address(db)
    await _address(db, OTHER_CUSTOMER_ID)
    private_first = await _start(db, [(a, 1)])
    in_group = await _start(db, [(a, 2)], group=GROUP_ID)
    in_other_group = await _start(db, [(a, 3)], group=OTHER_GROUP_ID)
    someone_else = await _start(db, [(a, 4)], user=OTHER_CUSTOMER_ID)
    private_second = await _start(db, [(b, 5)])

    drafts = {(d.chat_key, d.user_id): d for d in await _drafts(db)}
    assert len(drafts) == 4
    assert drafts[("p", CUSTOMER_ID)].id == private_second.draft.id
    assert drafts[("p", CUSTOMER_ID)].lines.startswith(f"{b}:5:")
    assert drafts[(f"g:{GROUP_ID}", CUSTOMER_ID)].id == in_group.draft.id
    assert drafts[(f"g:{OTHER_GROUP_ID}", CUSTOMER_ID)].id == in_other_group.draft.id
    assert drafts[("p", OTHER_CUSTOMER_ID)].id == someone_else.draft.id
    # The replaced draft can no longer be confirmed.
    with pytest.raises(DraftExpired):
        await _confirm(db, private_first.draft)
    assert await _order_count(db) == 0


# --- confirm -----------------------------------------------------------------------------


async def test_confirm_creates_the_order_and_deletes_the_draft(db: Database) -> None:
    item_id, variant_id = await _variant(db, stock=10)
    await _address(db)
    summary = await _start(db, [(variant_id, 3)], remark="周末送", group=GROUP_ID)
    now = utcnow()
    order = await _confirm(db, summary.draft, now=now)
    assert looks_like_code(order.code)
    assert order.status == "pending_payment"
    assert order.total_fen == summary.total_fen == 3 * 5900
    assert (order.user_id, order.group_id) == (CUSTOMER_ID, GROUP_ID)
    assert order.remark == "周末送"
    assert (order.receiver_name, order.receiver_phone, order.receiver_address) == (
        HOME.name,
        HOME.phone,
        HOME.detail,
    )
    assert order.expires_at == now + TIMEOUT
    assert await _drafts(db) == []
    assert await _stock(db, item_id) == 7
    async with db.read() as s:
        found = await orders.get_order(s, SHOP, order.code, customer_id=CUSTOMER_ID)
        assert found.id == order.id


async def test_confirm_from_the_cart_removes_the_ordered_lines(db: Database) -> None:
    a_item, a = await _variant(db, "甲", stock=10)
    b_item, b = await _variant(db, "乙", stock=10)
    c_item, _ = await _variant(db, "丙", stock=10)
    await _address(db)
    async with db.write() as s:
        for item_id, quantity in ((a_item, 2), (b_item, 1), (c_item, 4)):
            await cart.add_to_cart(s, SHOP, CUSTOMER_ID, VariantRef(item_id), quantity)
        await cart.add_to_cart(s, SHOP, OTHER_CUSTOMER_ID, VariantRef(a_item), 1)
    # 丙 is left out (say it was unavailable when the summary was made).
    summary = await _start(db, [(a, 2), (b, 1)], source="cart")
    await _confirm(db, summary.draft)
    async with db.read() as s:
        left = await cart.view_cart(s, SHOP, CUSTOMER_ID)
        theirs = await cart.view_cart(s, SHOP, OTHER_CUSTOMER_ID)
    assert [(v.item.name, v.line.quantity) for v in left] == [("丙", 4)]
    assert [v.item.name for v in theirs] == ["甲"]


async def test_confirm_of_a_direct_buy_leaves_the_cart_alone(db: Database) -> None:
    item_id, variant_id = await _variant(db)
    await _address(db)
    async with db.write() as s:
        await cart.add_to_cart(s, SHOP, CUSTOMER_ID, VariantRef(item_id), 2)
    summary = await _start(db, [(variant_id, 1)], source="buy")
    await _confirm(db, summary.draft)
    async with db.read() as s:
        assert [v.line.quantity for v in await cart.view_cart(s, SHOP, CUSTOMER_ID)] == [2]


async def test_confirming_twice_creates_one_order(db: Database) -> None:
    item_id, variant_id = await _variant(db, stock=10)
    await _address(db)
    summary = await _start(db, [(variant_id, 2)])
    await _confirm(db, summary.draft)
    with pytest.raises(DraftExpired):
        await _confirm(db, summary.draft)
    assert await _order_count(db) == 1
    assert await _stock(db, item_id) == 8


async def test_concurrent_confirms_create_one_order(db: Database) -> None:
    item_id, variant_id = await _variant(db, stock=10)
    await _address(db)
    summary = await _start(db, [(variant_id, 2)])
    results = await asyncio.gather(
        *(_confirm(db, summary.draft) for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(r, ShopOrder) for r in results) == 1
    assert sum(isinstance(r, DraftExpired) for r in results) == 4
    assert await _order_count(db) == 1
    assert await _stock(db, item_id) == 8


async def test_confirm_after_the_window(db: Database) -> None:
    item_id, variant_id = await _variant(db, stock=10)
    await _address(db)
    start = utcnow()
    summary = await _start(db, [(variant_id, 1)], now=start)
    with pytest.raises(DraftExpired):
        await _confirm(db, summary.draft, now=start + WINDOW)
    with pytest.raises(DraftExpired):
        await _confirm(db, summary.draft, now=start + WINDOW + timedelta(hours=1))
    assert await _order_count(db) == 0
    assert await _stock(db, item_id) == 10
    # Just inside the window it still works.
    summary = await _start(db, [(variant_id, 1)], now=start)
    await _confirm(db, summary.draft, now=start + WINDOW - timedelta(seconds=1))
    assert await _order_count(db) == 1


async def test_confirm_when_stock_ran_out_meanwhile_keeps_nothing(db: Database) -> None:
    item_id, variant_id = await _variant(db, stock=3)
    await _address(db)
    summary = await _start(db, [(variant_id, 3)])
    async with db.write() as s:
        await catalog.change_stock(s, SHOP, VariantRef(item_id), StockChange("sub", 1))
    with pytest.raises(OutOfStock):
        await _confirm(db, summary.draft)
    assert await _order_count(db) == 0
    assert await _stock(db, item_id) == 2


async def test_confirm_while_still_awaiting_an_address(db: Database) -> None:
    _, variant_id = await _variant(db)
    summary = await _start(db, [(variant_id, 1)])
    with pytest.raises(NoAddress):
        await _confirm(db, summary.draft)
    assert await _order_count(db) == 0


async def test_discard(db: Database) -> None:
    _, variant_id = await _variant(db)
    await _address(db)
    await _start(db, [(variant_id, 1)])
    async with db.write() as s:
        draft = await checkout.find(s, SHOP, CUSTOMER_ID, None)
        assert draft is not None
        await checkout.discard(s, draft)
    assert await _drafts(db) == []


async def test_summary_of_reflects_the_current_default_address(db: Database) -> None:
    _, variant_id = await _variant(db)
    await _address(db)
    other = AddressSnapshot("王五", "13700000000", "上海市浦东新区世纪大道 100 号")
    await _address(db, snapshot=other)
    summary = await _start(db, [(variant_id, 2)])
    async with db.write() as s:
        await addresses.set_default(s, SHOP, CUSTOMER_ID, 2)
    async with db.read() as s:
        again = await checkout.summary_of(s, summary.draft)
    assert again.address == other
    assert [(line.variant.id, line.quantity) for line in again.lines] == [(variant_id, 2)]


# --- live_drafts / purge_expired -----------------------------------------------------------


async def test_live_drafts_and_purge_expired(db: Database) -> None:
    _, variant_id = await _variant(db)
    await _address(db)
    await _address(db, OTHER_CUSTOMER_ID)
    t0 = utcnow()
    await _start(db, [(variant_id, 1)], now=t0)
    await _start(db, [(variant_id, 1)], group=GROUP_ID, now=t0 + timedelta(minutes=3))
    await _start(
        db,
        [(variant_id, 1)],
        user=OTHER_CUSTOMER_ID,
        group=GROUP_ID,
        now=t0 + timedelta(minutes=10),
    )

    async with db.read() as s:
        keys = await checkout.live_drafts(s, t0 + timedelta(minutes=1))
    assert keys == {
        (None, CUSTOMER_ID): (t0 + WINDOW, False),
        (GROUP_ID, CUSTOMER_ID): (t0 + timedelta(minutes=3) + WINDOW, False),
        (GROUP_ID, OTHER_CUSTOMER_ID): (t0 + timedelta(minutes=10) + WINDOW, False),
    }
    async with db.read() as s:
        keys = await checkout.live_drafts(s, t0 + WINDOW)  # expiring exactly now is not live
    assert set(keys) == {(GROUP_ID, CUSTOMER_ID), (GROUP_ID, OTHER_CUSTOMER_ID)}

    async with db.write() as s:
        assert await checkout.purge_expired(s, t0 + timedelta(minutes=8)) == 2
    assert [(d.chat_key, d.user_id) for d in await _drafts(db)] == [
        (f"g:{GROUP_ID}", OTHER_CUSTOMER_ID)
    ]
    async with db.write() as s:
        assert await checkout.purge_expired(s, t0 + timedelta(minutes=8)) == 0
        assert await checkout.purge_expired(s, t0 + timedelta(days=1)) == 1
    assert await _drafts(db) == []


def test_chat_key() -> None:
    assert checkout.chat_key(None) == "p"
    assert checkout.chat_key(GROUP_ID) == f"g:{GROUP_ID}"
