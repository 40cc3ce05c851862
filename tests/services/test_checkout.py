"""services.checkout: the order summary a customer confirms, on a real SQLite database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from models.db import Database
from models.tables import DEFAULT_SHOP_ID, CheckoutDraft, CheckoutDraftLine, DraftSource, ShopOrder
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
    PriceChanged,
)
from services.shop import ensure_shop

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
    source: DraftSource = DraftSource.BUY,
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


async def _lines(db: Database) -> list[tuple[int, int, int, int, int]]:
    """(draft, position, variant, quantity, unit price shown) of every draft line."""
    async with db.read() as s:
        rows = await s.execute(
            select(CheckoutDraftLine).order_by(
                CheckoutDraftLine.draft_id,  # type: ignore[arg-type]
                CheckoutDraftLine.position,  # type: ignore[arg-type]
            )
        )
        return [
            (r.draft_id, r.position, r.variant_id, r.quantity, r.unit_price_fen)
            for r in rows.scalars()
        ]


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
    assert (draft.group_id, draft.user_id, draft.source, draft.remark) == (
        None,
        CUSTOMER_ID,
        DraftSource.BUY,
        "尽快",
    )
    assert draft.awaiting_address is False
    assert draft.expires_at == now + WINDOW
    stored = await _drafts(db)
    assert [(d.id, d.group_id, d.source) for d in stored] == [(draft.id, None, DraftSource.BUY)]
    assert type(stored[0].source) is DraftSource  # loaded as the enum, not a bare string
    # The unit price shown (确认 refuses if the price moved since).
    assert await _lines(db) == [(draft.id, 1, variant_id, 2, 5900)]
    # Nothing is reserved before 确认.
    assert await _stock(db, item_id) == 10
    assert await _order_count(db) == 0


async def test_start_in_a_group_uses_the_group_key(db: Database) -> None:
    _, variant_id = await _variant(db)
    await _address(db)
    summary = await _start(db, [(variant_id, 1)], group=GROUP_ID)
    assert summary.draft.group_id == GROUP_ID
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

    drafts = {(d.group_id, d.user_id): d for d in await _drafts(db)}
    assert len(drafts) == 4
    assert drafts[(None, CUSTOMER_ID)].id == private_second.draft.id
    assert drafts[(GROUP_ID, CUSTOMER_ID)].id == in_group.draft.id
    assert drafts[(OTHER_GROUP_ID, CUSTOMER_ID)].id == in_other_group.draft.id
    assert drafts[(None, OTHER_CUSTOMER_ID)].id == someone_else.draft.id
    # The replaced draft's lines went with it.
    lines = await _lines(db)
    assert {draft_id for draft_id, *_ in lines} == {d.id for d in drafts.values()}
    assert [line for line in lines if line[0] == private_second.draft.id] == [
        (private_second.draft.id, 1, b, 5, 5900)
    ]
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
    assert await _lines(db) == []  # gone with the draft (ON DELETE CASCADE)
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
    summary = await _start(db, [(a, 2), (b, 1)], source=DraftSource.CART)
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
    summary = await _start(db, [(variant_id, 1)], source=DraftSource.BUY)
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
    assert await _lines(db) == []


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
    assert [(d.group_id, d.user_id) for d in await _drafts(db)] == [(GROUP_ID, OTHER_CUSTOMER_ID)]
    async with db.write() as s:
        assert await checkout.purge_expired(s, t0 + timedelta(minutes=8)) == 0
        assert await checkout.purge_expired(s, t0 + timedelta(days=1)) == 1
    assert await _drafts(db) == []
    assert await _lines(db) == []


async def test_confirm_refuses_a_price_changed_since_the_summary(db: Database) -> None:
    item_id, variant_id = await _variant(db, price=5900)
    await _address(db)
    summary = await _start(db, [(variant_id, 1)])
    async with db.write() as s:
        await catalog.set_price(s, SHOP, VariantRef(item_id), 6900)
    with pytest.raises(PriceChanged) as caught:
        await _confirm(db, summary.draft)
    assert (caught.value.shown_fen, caught.value.current_fen) == (5900, 6900)
    assert await _order_count(db) == 0


# --- the one-draft-per-chat index --------------------------------------------------------


async def test_one_draft_per_chat_and_user_even_in_private(db: Database) -> None:
    """A private chat is group_id NULL; the unique index on coalesce(group_id, 0) still
    refuses a second private draft of the same user, which a plain UNIQUE would not."""
    _, variant_id = await _variant(db)
    await _address(db)
    await _start(db, [(variant_id, 1)])
    await _start(db, [(variant_id, 1)], group=GROUP_ID)
    for group_id in (None, GROUP_ID):
        with pytest.raises(IntegrityError):
            async with db.write() as s:
                s.add(
                    CheckoutDraft(
                        shop_id=SHOP,
                        group_id=group_id,
                        user_id=CUSTOMER_ID,
                        source=DraftSource.BUY,
                        expires_at=utcnow() + WINDOW,
                    )
                )
    assert len(await _drafts(db)) == 2


# --- migration 0007: chat_key and the encoded lines become columns and rows ----------------


async def test_migration_0007_carries_old_drafts_over(settings) -> None:  # type: ignore[no-untyped-def]
    """A database at 0006 with summaries in the old format (chat_key "p" / "g:<id>",
    lines "variant:quantity[:price shown]") finds the same summaries after the upgrade."""
    from alembic import command

    from models.migrate import alembic_config

    database = Database(settings.database_url)
    try:

        def to_0006(connection) -> None:  # type: ignore[no-untyped-def]
            command.upgrade(alembic_config(connection), "0006")

        async with database.engine.begin() as connection:
            await connection.run_sync(to_0006)
        old_rows = [
            # private, one line priced when shown, one from before prices were kept
            (1, "p", CUSTOMER_ID, "cart", "11:2:5900,12:1", 0),
            (2, f"g:{GROUP_ID}", CUSTOMER_ID, "buy", "12:3:4500", 0),
            (3, "p", OTHER_CUSTOMER_ID, "buy", "13:1", 1),
            (4, "p", 30005, "buy", "99:1", 0),  # a variant that no longer exists
        ]
        async with database.engine.begin() as connection:
            for statement in [
                "INSERT INTO shop (id, name, payment_text, created_at) "
                "VALUES (1, '老店', '', '2026-01-01 00:00:00')",
                "INSERT INTO item (id, shop_id, name, description, listed, no_reason_return, "
                "created_at, updated_at) VALUES (1, 1, '咖啡豆', '', TRUE, TRUE, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')",
                "INSERT INTO variant (id, shop_id, item_id, position, name, price_fen, stock, "
                "sold, created_at) VALUES "
                "(11, 1, 1, 1, '250g', 5900, 10, 0, '2026-01-01 00:00:00'), "
                "(12, 1, 1, 2, '500g', 10900, 10, 0, '2026-01-01 00:00:00'), "
                "(13, 1, 1, 3, '1kg', 19900, 10, 0, '2026-01-01 00:00:00')",
            ]:
                await connection.execute(text(statement))
            # Variant 99 is gone: the old schema's foreign keys did not cover the text.
            for draft_id, chat_key, user_id, source, lines, awaiting in old_rows:
                await connection.execute(
                    text(
                        "INSERT INTO checkout_draft (id, shop_id, chat_key, user_id, source, "
                        "lines, remark, awaiting_address, created_at, expires_at) VALUES "
                        "(:id, 1, :chat_key, :user_id, :source, :lines, '周末送', :awaiting, "
                        "'2026-01-01 00:00:00', '2099-01-01 00:00:00')"
                    ),
                    {
                        "id": draft_id,
                        "chat_key": chat_key,
                        "user_id": user_id,
                        "source": source,
                        "lines": lines,
                        "awaiting": bool(awaiting),  # PostgreSQL takes no 0/1 for it
                    },
                )

        await database.migrate()

        drafts = await _drafts(database)
        assert [
            (d.id, d.group_id, d.user_id, d.source, d.remark, d.awaiting_address) for d in drafts
        ] == [
            (1, None, CUSTOMER_ID, DraftSource.CART, "周末送", False),
            (2, GROUP_ID, CUSTOMER_ID, DraftSource.BUY, "周末送", False),
            (3, None, OTHER_CUSTOMER_ID, DraftSource.BUY, "周末送", True),
        ]
        # A missing price is the variant's current one (what the summary showed).
        assert await _lines(database) == [
            (1, 1, 11, 2, 5900),
            (1, 2, 12, 1, 10900),
            (2, 1, 12, 3, 4500),
            (3, 1, 13, 1, 19900),
        ]
        async with database.read() as s:
            private = await checkout.find(s, 1, CUSTOMER_ID, None)
            in_group = await checkout.find(s, 1, CUSTOMER_ID, GROUP_ID)
            assert private is not None and private.id == 1
            assert in_group is not None and in_group.id == 2
            live = await checkout.live_drafts(s, utcnow())
        assert set(live) == {
            (None, CUSTOMER_ID),
            (GROUP_ID, CUSTOMER_ID),
            (None, OTHER_CUSTOMER_ID),
        }
        async with database.engine.connect() as connection:
            columns = {
                column["name"]
                for column in await connection.run_sync(
                    lambda sync: inspect(sync).get_columns("checkout_draft")
                )
            }
        assert "chat_key" not in columns and "lines" not in columns and "group_id" in columns
    finally:
        await database.dispose()


async def test_migration_0007_downgrades_back_to_the_text_columns(settings) -> None:  # type: ignore[no-untyped-def]
    from alembic import command

    from models.migrate import alembic_config

    database = Database(settings.database_url)
    try:
        await database.migrate()
        async with database.write() as s:
            await ensure_shop(s, "店")
        _, variant_id = await _variant(database, price=5900)
        await _address(database)
        await _start(database, [(variant_id, 2)], group=GROUP_ID)

        def to_0006(connection) -> None:  # type: ignore[no-untyped-def]
            command.downgrade(alembic_config(connection), "0006")

        async with database.engine.begin() as connection:
            await connection.run_sync(to_0006)
            rows = (
                await connection.execute(
                    text("SELECT chat_key, user_id, lines FROM checkout_draft")
                )
            ).all()
        assert [tuple(r) for r in rows] == [(f"g:{GROUP_ID}", CUSTOMER_ID, f"{variant_id}:2:5900")]
    finally:
        await database.dispose()
