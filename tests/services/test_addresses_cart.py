"""services.addresses and services.cart on a real migrated SQLite database."""

from __future__ import annotations

import pytest

from models.db import Database
from models.tables import DEFAULT_SHOP_ID
from services import addresses, cart, catalog
from services.addresses import AddressSnapshot
from services.catalog import StockChange, VariantRef
from services.errors import (
    AddressNotFound,
    CartFull,
    InvalidValue,
    ItemNotFound,
    NotInCart,
    TooManyAddresses,
    VariantNotFound,
    VariantRequired,
)
from services.limits import (
    FIELD_ADDRESS,
    FIELD_PHONE,
    FIELD_QUANTITY,
    FIELD_RECEIVER,
    MAX_ADDRESS_DETAIL,
    MAX_ADDRESSES,
    MAX_CART_LINES,
    MAX_QUANTITY,
    MAX_RECEIVER_NAME,
)

SHOP = DEFAULT_SHOP_ID
CUSTOMER_ID = 30003
OTHER_CUSTOMER_ID = 30004
DETAIL = "浙江省杭州市西湖区文三路 100 号"


# --- validate ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("13812345678", "13812345678"),
        ("19912345678", "19912345678"),
        ("+8613812345678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        (" 13812345678 ", "13812345678"),
        ("010-12345678", "010-12345678"),
        ("0571-8888666", "0571-8888666"),
        ("021-1234567", "021-1234567"),
        ("01012345678", "01012345678"),
    ],
)
def test_validate_accepts_mobiles_and_landlines(typed: str, stored: str) -> None:
    snapshot = addresses.validate(" 张三 ", typed, f"  {DETAIL}  ")
    assert snapshot == AddressSnapshot("张三", stored, DETAIL)


@pytest.mark.parametrize(
    "phone",
    [
        "",
        "12812345678",  # 12x is no mobile prefix
        "10812345678",
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "23812345678",
        "1381234567a",
        "138-1234-5678",
        "+8512345678901",
        "12345",
        "010-123456",  # landline too short
        "110",
    ],
)
def test_validate_rejects_bad_phones(phone: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        addresses.validate("张三", phone, DETAIL)
    assert caught.value.field == FIELD_PHONE
    assert caught.value.reason == "format"


@pytest.mark.parametrize("name", ["", "   "])
def test_validate_rejects_an_empty_name(name: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        addresses.validate(name, "13812345678", DETAIL)
    assert (caught.value.field, caught.value.reason) == (FIELD_RECEIVER, "empty")


def test_validate_rejects_a_long_name() -> None:
    addresses.validate("名" * MAX_RECEIVER_NAME, "13812345678", DETAIL)
    with pytest.raises(InvalidValue) as caught:
        addresses.validate("名" * (MAX_RECEIVER_NAME + 1), "13812345678", DETAIL)
    assert (caught.value.field, caught.value.reason) == (FIELD_RECEIVER, "too_long")


@pytest.mark.parametrize("detail", ["杭州", "文三路1", "  一二三四  "])
def test_validate_rejects_a_too_short_detail(detail: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        addresses.validate("张三", "13812345678", detail)
    assert (caught.value.field, caught.value.reason, caught.value.limit) == (
        FIELD_ADDRESS,
        "too_short",
        5,
    )


def test_validate_detail_bounds() -> None:
    assert addresses.validate("张三", "13812345678", "杭州西湖区").detail == "杭州西湖区"
    addresses.validate("张三", "13812345678", "址" * MAX_ADDRESS_DETAIL)
    with pytest.raises(InvalidValue) as caught:
        addresses.validate("张三", "13812345678", "址" * (MAX_ADDRESS_DETAIL + 1))
    assert (caught.value.field, caught.value.reason) == (FIELD_ADDRESS, "too_long")
    with pytest.raises(InvalidValue) as empty:
        addresses.validate("张三", "13812345678", "   ")
    assert (empty.value.field, empty.value.reason) == (FIELD_ADDRESS, "empty")


# --- saved addresses ---------------------------------------------------------------------


def _snap(n: int) -> AddressSnapshot:
    return AddressSnapshot(f"收件人{n}", f"1381234{n:04d}", f"浙江省杭州市西湖区文三路 {n} 号")


async def _add(db: Database, n: int, user: int = CUSTOMER_ID) -> int:
    async with db.write() as s:
        _, number = await addresses.add_address(s, SHOP, user, _snap(n))
        return number


async def _listing(db: Database, user: int = CUSTOMER_ID) -> list[tuple[str, bool]]:
    async with db.read() as s:
        return [(a.name, a.is_default) for a in await addresses.list_addresses(s, SHOP, user)]


async def test_first_address_is_default_and_numbering(db: Database) -> None:
    assert await _add(db, 1) == 1
    assert await _add(db, 2) == 2
    assert await _add(db, 3) == 3
    assert await _listing(db) == [("收件人1", True), ("收件人2", False), ("收件人3", False)]
    async with db.read() as s:
        default = await addresses.default_address(s, SHOP, CUSTOMER_ID)
        assert default is not None and default.name == "收件人1"
        second = await addresses.get_by_number(s, SHOP, CUSTOMER_ID, 2)
        assert second.name == "收件人2"
        assert AddressSnapshot.of(second) == _snap(2)


async def test_addresses_are_per_customer(db: Database) -> None:
    await _add(db, 1)
    assert await _add(db, 2, user=OTHER_CUSTOMER_ID) == 1  # their own numbering
    assert await _listing(db, OTHER_CUSTOMER_ID) == [("收件人2", True)]
    async with db.read() as s:
        assert await addresses.default_address(s, SHOP, 99999) is None
        with pytest.raises(AddressNotFound) as caught:
            await addresses.get_by_number(s, SHOP, OTHER_CUSTOMER_ID, 2)
    assert (caught.value.number, caught.value.count) == (2, 1)


async def test_set_default(db: Database) -> None:
    for n in (1, 2, 3):
        await _add(db, n)
    async with db.write() as s:
        chosen = await addresses.set_default(s, SHOP, CUSTOMER_ID, 3)
        assert chosen.name == "收件人3"
    assert await _listing(db) == [("收件人1", False), ("收件人2", False), ("收件人3", True)]
    async with db.write() as s:
        await addresses.set_default(s, SHOP, CUSTOMER_ID, 2)
    assert await _listing(db) == [("收件人1", False), ("收件人2", True), ("收件人3", False)]
    async with db.read() as s:
        default = await addresses.default_address(s, SHOP, CUSTOMER_ID)
        assert default is not None and default.name == "收件人2"


async def test_set_default_does_not_touch_other_customers(db: Database) -> None:
    await _add(db, 1)
    await _add(db, 2)
    await _add(db, 9, user=OTHER_CUSTOMER_ID)
    async with db.write() as s:
        await addresses.set_default(s, SHOP, CUSTOMER_ID, 2)
    assert await _listing(db, OTHER_CUSTOMER_ID) == [("收件人9", True)]


async def test_delete_non_default_keeps_default_and_renumbers(db: Database) -> None:
    for n in (1, 2, 3):
        await _add(db, n)
    async with db.write() as s:
        removed = await addresses.delete_address(s, SHOP, CUSTOMER_ID, 2)
        assert removed.name == "收件人2"
    assert await _listing(db) == [("收件人1", True), ("收件人3", False)]
    async with db.read() as s:
        assert (await addresses.get_by_number(s, SHOP, CUSTOMER_ID, 2)).name == "收件人3"


async def test_deleting_the_default_promotes_the_oldest_remaining(db: Database) -> None:
    for n in (1, 2, 3, 4):
        await _add(db, n)
    async with db.write() as s:
        await addresses.set_default(s, SHOP, CUSTOMER_ID, 3)
    async with db.write() as s:
        await addresses.delete_address(s, SHOP, CUSTOMER_ID, 3)
    assert await _listing(db) == [("收件人1", True), ("收件人2", False), ("收件人4", False)]
    async with db.write() as s:
        await addresses.delete_address(s, SHOP, CUSTOMER_ID, 1)
    assert await _listing(db) == [("收件人2", True), ("收件人4", False)]


async def test_deleting_the_last_address_leaves_none(db: Database) -> None:
    await _add(db, 1)
    async with db.write() as s:
        await addresses.delete_address(s, SHOP, CUSTOMER_ID, 1)
    assert await _listing(db) == []
    # The next one is the default again.
    await _add(db, 2)
    assert await _listing(db) == [("收件人2", True)]


async def test_max_addresses(db: Database) -> None:
    for n in range(1, MAX_ADDRESSES + 1):
        assert await _add(db, n) == n
    with pytest.raises(TooManyAddresses) as caught:
        await _add(db, 99)
    assert caught.value.limit == MAX_ADDRESSES
    assert len(await _listing(db)) == MAX_ADDRESSES
    # Deleting one makes room.
    async with db.write() as s:
        await addresses.delete_address(s, SHOP, CUSTOMER_ID, 5)
    assert await _add(db, 99) == MAX_ADDRESSES


@pytest.mark.parametrize("number", [0, -1, 3, 100])
async def test_address_not_found(db: Database, number: int) -> None:
    await _add(db, 1)
    await _add(db, 2)
    for action in (addresses.get_by_number, addresses.set_default, addresses.delete_address):
        with pytest.raises(AddressNotFound) as caught:
            async with db.write() as s:
                await action(s, SHOP, CUSTOMER_ID, number)
        assert (caught.value.number, caught.value.count) == (number, 2)
    assert await _listing(db) == [("收件人1", True), ("收件人2", False)]


async def test_address_not_found_when_there_are_none(db: Database) -> None:
    with pytest.raises(AddressNotFound) as caught:
        async with db.read() as s:
            await addresses.get_by_number(s, SHOP, CUSTOMER_ID, 1)
    assert (caught.value.number, caught.value.count) == (1, 0)


# --- cart --------------------------------------------------------------------------------


async def _item(db: Database, name: str = "咖啡豆", price: int = 5900, stock: int = 10) -> int:
    async with db.write() as s:
        item, _ = await catalog.create_item(s, SHOP, name, price, stock)
        assert item.id is not None
        return item.id


async def _cart_add(
    db: Database, ref: VariantRef, quantity: int = 1, user: int = CUSTOMER_ID
) -> int:
    async with db.write() as s:
        _, _, total = await cart.add_to_cart(s, SHOP, user, ref, quantity)
        return total


async def _view(db: Database, user: int = CUSTOMER_ID) -> list[cart.CartView]:
    async with db.read() as s:
        return await cart.view_cart(s, SHOP, user)


async def test_add_merges_quantities(db: Database) -> None:
    item_id = await _item(db)
    assert await _cart_add(db, VariantRef(item_id), 2) == 2
    assert await _cart_add(db, VariantRef(item_id, 1), 3) == 5
    view = await _view(db)
    assert len(view) == 1
    line = view[0]
    assert line.line.quantity == 5
    assert line.ref == VariantRef(item_id, 1)
    assert line.subtotal_fen == 5 * 5900
    assert line.available


async def test_add_caps_at_max_quantity(db: Database) -> None:
    item_id = await _item(db, stock=5000)
    assert await _cart_add(db, VariantRef(item_id), 600) == 600
    assert await _cart_add(db, VariantRef(item_id), 600) == MAX_QUANTITY
    assert await _cart_add(db, VariantRef(item_id), 1) == MAX_QUANTITY
    assert (await _view(db))[0].line.quantity == MAX_QUANTITY == 999


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1])
async def test_add_rejects_bad_quantities(db: Database, quantity: int) -> None:
    item_id = await _item(db)
    with pytest.raises(InvalidValue) as caught:
        await _cart_add(db, VariantRef(item_id), quantity)
    assert caught.value.field == FIELD_QUANTITY
    assert await _view(db) == []


async def test_add_resolves_variants(db: Database) -> None:
    item_id = await _item(db)
    async with db.write() as s:
        await catalog.add_variant(s, SHOP, item_id, "500g", 10900, 5)
    with pytest.raises(VariantRequired):
        await _cart_add(db, VariantRef(item_id))
    with pytest.raises(VariantNotFound):
        await _cart_add(db, VariantRef(item_id, 3))
    with pytest.raises(ItemNotFound):
        await _cart_add(db, VariantRef(item_id + 100))
    await _cart_add(db, VariantRef(item_id, 2), 1)
    await _cart_add(db, VariantRef(item_id, 1), 1)
    view = await _view(db)
    assert [(v.variant.name, v.line.quantity) for v in view] == [("500g", 1), ("默认", 1)]


async def test_delisted_items_cannot_be_added(db: Database) -> None:
    item_id = await _item(db)
    async with db.write() as s:
        await catalog.set_listed(s, SHOP, item_id, False)
    with pytest.raises(ItemNotFound):
        await _cart_add(db, VariantRef(item_id))


async def test_view_shows_what_is_no_longer_available(db: Database) -> None:
    gone = await _item(db, "下架商品", stock=10)
    scarce = await _item(db, "稀缺商品", stock=5)
    fine = await _item(db, "正常商品", stock=5)
    await _cart_add(db, VariantRef(gone), 1)
    await _cart_add(db, VariantRef(scarce), 3)
    await _cart_add(db, VariantRef(fine), 5)
    async with db.write() as s:
        await catalog.set_listed(s, SHOP, gone, False)
        await catalog.change_stock(s, SHOP, VariantRef(scarce), StockChange("set", 2))
    view = await _view(db)
    assert [(v.item.name, v.available) for v in view] == [
        ("下架商品", False),
        ("稀缺商品", False),
        ("正常商品", True),  # exactly enough is enough
    ]
    # The cart itself is untouched: the customer decides.
    assert [v.line.quantity for v in view] == [1, 3, 5]


async def test_carts_are_per_customer(db: Database) -> None:
    item_id = await _item(db)
    await _cart_add(db, VariantRef(item_id), 2)
    await _cart_add(db, VariantRef(item_id), 7, user=OTHER_CUSTOMER_ID)
    assert [v.line.quantity for v in await _view(db)] == [2]
    assert [v.line.quantity for v in await _view(db, OTHER_CUSTOMER_ID)] == [7]


async def test_remove_by_ref(db: Database) -> None:
    a = await _item(db, "甲")
    b = await _item(db, "乙")
    async with db.write() as s:
        await catalog.add_variant(s, SHOP, b, "大杯", 1000, 5)
    await _cart_add(db, VariantRef(a), 1)
    await _cart_add(db, VariantRef(b, 2), 1)
    async with db.write() as s:
        removed = await cart.remove_from_cart(s, SHOP, CUSTOMER_ID, VariantRef(b, 2))
        assert (removed.item.name, removed.variant.name) == ("乙", "大杯")
    assert [v.item.name for v in await _view(db)] == ["甲"]
    for ref in (VariantRef(b, 2), VariantRef(b), VariantRef(a, 2)):
        with pytest.raises(NotInCart) as caught:
            async with db.write() as s:
                await cart.remove_from_cart(s, SHOP, CUSTOMER_ID, ref)
        assert caught.value.ref == str(ref)
    async with db.write() as s:
        await cart.remove_from_cart(s, SHOP, CUSTOMER_ID, VariantRef(a))
    assert await _view(db) == []


async def test_remove_does_not_touch_another_customers_cart(db: Database) -> None:
    item_id = await _item(db)
    await _cart_add(db, VariantRef(item_id), 1, user=OTHER_CUSTOMER_ID)
    with pytest.raises(NotInCart):
        async with db.write() as s:
            await cart.remove_from_cart(s, SHOP, CUSTOMER_ID, VariantRef(item_id))
    assert len(await _view(db, OTHER_CUSTOMER_ID)) == 1


async def test_clear(db: Database) -> None:
    for name in ("甲", "乙", "丙"):
        await _cart_add(db, VariantRef(await _item(db, name)), 1)
    await _cart_add(db, VariantRef(await _item(db, "丁")), 1, user=OTHER_CUSTOMER_ID)
    async with db.write() as s:
        assert await cart.clear_cart(s, SHOP, CUSTOMER_ID) == 3
    assert await _view(db) == []
    assert len(await _view(db, OTHER_CUSTOMER_ID)) == 1
    async with db.write() as s:
        assert await cart.clear_cart(s, SHOP, CUSTOMER_ID) == 0


async def test_cart_full_at_max_lines(db: Database) -> None:
    async with db.write() as s:
        item, _ = await catalog.create_item(s, SHOP, "多规格", 100, 100)
        assert item.id is not None
        item_id = item.id
        for n in range(2, MAX_CART_LINES + 2):
            await catalog.add_variant(s, SHOP, item_id, f"规格{n}", 100, 100)
    for position in range(1, MAX_CART_LINES + 1):
        await _cart_add(db, VariantRef(item_id, position), 1)
    assert len(await _view(db)) == MAX_CART_LINES == 30
    with pytest.raises(CartFull) as caught:
        await _cart_add(db, VariantRef(item_id, MAX_CART_LINES + 1), 1)
    assert caught.value.limit == MAX_CART_LINES
    assert len(await _view(db)) == MAX_CART_LINES
    # A line already there can still grow.
    assert await _cart_add(db, VariantRef(item_id, 1), 4) == 5
    # Removing one makes room again.
    async with db.write() as s:
        await cart.remove_from_cart(s, SHOP, CUSTOMER_ID, VariantRef(item_id, 2))
    await _cart_add(db, VariantRef(item_id, MAX_CART_LINES + 1), 1)
    assert len(await _view(db)) == MAX_CART_LINES


async def test_remove_variants_after_checkout(db: Database) -> None:
    a = await _item(db, "甲")
    b = await _item(db, "乙")
    await _cart_add(db, VariantRef(a), 1)
    await _cart_add(db, VariantRef(b), 1)
    view = await _view(db)
    ordered = {view[0].variant.id or 0}
    async with db.write() as s:
        await cart.remove_variants(s, SHOP, CUSTOMER_ID, ordered)
        await cart.remove_variants(s, SHOP, CUSTOMER_ID, set())
    assert [v.item.name for v in await _view(db)] == ["乙"]
