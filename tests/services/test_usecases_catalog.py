"""The catalog, staff and group use cases (services.usecases.catalog and .catalog_admin)
on a real temp SQLite shop: what each returns, what rows it leaves, that none of them
queues a notice, and its main refusal."""

from __future__ import annotations

import http.server
import struct
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from models.tables import Category, Item, OutboxMessage, ShopGroup, Staff, Variant
from services.actors import Caller
from services.catalog import StockChange, VariantRef
from services.context import ShopContext
from services.errors import (
    AlreadyStaff,
    InvalidValue,
    ItemNotFound,
    MediaUnavailable,
    NotStaff,
    OwnerIsNotStaff,
    StockTooLow,
    VariantNotFound,
)
from services.staff import Role
from services.usecases import catalog, catalog_admin
from tests.conftest import CUSTOMER_ID, GROUP_ID, OWNER_ID, STAFF_ID

OWNER = Caller(OWNER_ID, None, Role.OWNER)
OWNER_IN_GROUP = Caller(OWNER_ID, GROUP_ID, Role.OWNER)
STAFF = Caller(STAFF_ID, None, Role.STAFF)
CUSTOMER = Caller(CUSTOMER_ID, None, Role.CUSTOMER)


# --- helpers -------------------------------------------------------------------------


async def outbox_count(shop: ShopContext) -> int:
    async with shop.database.read() as session:
        return (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()


async def rows_of(shop: ShopContext, model: Any) -> list[Any]:
    async with shop.database.read() as session:
        return list((await session.execute(select(model).order_by(model.id))).scalars())


async def new_item(
    shop: ShopContext, name: str = "冷萃咖啡", category: str | None = None
) -> catalog_admin.NewItem:
    return await catalog_admin.create_item(shop, name, 3990, 50, category)


def tiny_png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return (
            struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = tiny_png()


class ImageServer:
    def __init__(self, base: str, hits: list[str]) -> None:
        self.base = base
        self.hits = hits

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"


@pytest.fixture
def image_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ImageServer]:
    """A local HTTP server: /cat.png is a PNG, /note.txt is not an image, the rest 404."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    hits: list[str] = []
    files = {"/cat.png": PNG, "/note.txt": b"hello, not a picture"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield ImageServer(f"http://{host}:{port}", hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- browsing ------------------------------------------------------------------------


async def test_list_items_pages_and_filters_by_category(shop_context: ShopContext) -> None:
    await new_item(shop_context, "冷萃咖啡", "咖啡")
    await new_item(shop_context, "乌龙茶", "茶")
    everything = await catalog.list_items(shop_context)
    assert [item.name for item in everything.items] == ["冷萃咖啡", "乌龙茶"]
    assert (everything.page, everything.pages, everything.total) == (1, 1, 2)
    tea = await catalog.list_items(shop_context, "茶", 1)
    assert [item.name for item in tea.items] == ["乌龙茶"] and tea.category == "茶"
    assert await outbox_count(shop_context) == 0


async def test_list_items_refuses_an_unknown_category(shop_context: ShopContext) -> None:
    with pytest.raises(InvalidValue) as refused:
        await catalog.list_items(shop_context, "不存在", 1)
    assert refused.value.reason == "unknown"


async def test_list_categories_counts_on_shelf_items(shop_context: ShopContext) -> None:
    first = await new_item(shop_context, "冷萃咖啡", "咖啡")
    await new_item(shop_context, "挂耳咖啡", "咖啡")
    await new_item(shop_context, "乌龙茶", "茶")
    await catalog_admin.set_listed(shop_context, first.item.id or 0, False)
    assert await catalog.list_categories(shop_context) == [("咖啡", 1), ("茶", 1)]


async def test_search_items(shop_context: ShopContext) -> None:
    await new_item(shop_context, "冷萃咖啡")
    await new_item(shop_context, "乌龙茶")
    found = await catalog.search_items(shop_context, "咖啡")
    assert [item.name for item in found] == ["冷萃咖啡"]
    with pytest.raises(InvalidValue):
        await catalog.search_items(shop_context, "   ")


async def test_item_detail_hides_delisted_items_from_customers(
    shop_context: ShopContext,
) -> None:
    created = await new_item(shop_context, "冷萃咖啡", "咖啡")
    item_id = created.item.id or 0
    view = await catalog.item_detail(shop_context, CUSTOMER, item_id)
    assert view.detail.item.name == "冷萃咖啡" and view.detail.category == "咖啡"
    assert [v.price_fen for v in view.detail.variants] == [3990]
    assert view.rating.count == 0 and view.image is None

    await catalog_admin.set_listed(shop_context, item_id, False)
    with pytest.raises(ItemNotFound):
        await catalog.item_detail(shop_context, CUSTOMER, item_id)
    staff_view = await catalog.item_detail(shop_context, STAFF, item_id)
    assert staff_view.detail.item.listed is False


async def test_item_detail_carries_the_stored_image(
    shop_context: ShopContext, image_server: ImageServer
) -> None:
    created = await new_item(shop_context)
    item_id = created.item.id or 0
    await catalog_admin.describe_item(shop_context, item_id, None, image_server.url("cat.png"))
    view = await catalog.item_detail(shop_context, CUSTOMER, item_id)
    assert view.image == PNG


# --- catalog editing -----------------------------------------------------------------


async def test_create_item(shop_context: ShopContext) -> None:
    created = await catalog_admin.create_item(shop_context, "冷萃咖啡", 3990, 50, "咖啡")
    assert created.item.id == 1 and created.item.listed is True and created.category == "咖啡"
    assert (created.variant.position, created.variant.price_fen, created.variant.stock) == (
        1,
        3990,
        50,
    )
    assert [c.name for c in await rows_of(shop_context, Category)] == ["咖啡"]
    assert len(await rows_of(shop_context, Variant)) == 1
    assert await outbox_count(shop_context) == 0


async def test_create_item_refuses_a_zero_price_and_writes_nothing(
    shop_context: ShopContext,
) -> None:
    with pytest.raises(InvalidValue):
        await catalog_admin.create_item(shop_context, "冷萃咖啡", 0, 50, "咖啡")
    assert await rows_of(shop_context, Item) == []
    assert await rows_of(shop_context, Category) == []


async def test_add_variant(shop_context: ShopContext) -> None:
    created = await new_item(shop_context)
    item_id = created.item.id or 0
    added = await catalog_admin.add_variant(shop_context, item_id, "500g", 10900, 20)
    assert added.item.id == item_id and added.variant.position == 2
    variants = await rows_of(shop_context, Variant)
    assert [(v.name, v.price_fen, v.stock) for v in variants] == [
        ("默认", 3990, 50),
        ("500g", 10900, 20),
    ]
    assert await outbox_count(shop_context) == 0
    with pytest.raises(InvalidValue):  # the same name twice
        await catalog_admin.add_variant(shop_context, item_id, "500g", 9900, 5)
    with pytest.raises(ItemNotFound):
        await catalog_admin.add_variant(shop_context, 99, "1kg", 9900, 5)


async def test_set_price(shop_context: ShopContext) -> None:
    created = await new_item(shop_context)
    item_id = created.item.id or 0
    changed = await catalog_admin.set_price(shop_context, VariantRef(item_id), 4590)
    assert (changed.old_price_fen, changed.variant.price_fen) == (3990, 4590)
    assert [v.price_fen for v in await rows_of(shop_context, Variant)] == [4590]
    assert await outbox_count(shop_context) == 0
    with pytest.raises(VariantNotFound):
        await catalog_admin.set_price(shop_context, VariantRef(item_id, 2), 100)


async def test_change_stock(shop_context: ShopContext) -> None:
    created = await new_item(shop_context)
    ref = VariantRef(created.item.id or 0, 1)
    added = await catalog_admin.change_stock(shop_context, ref, StockChange("add", 20))
    assert (added.old_stock, added.variant.stock, added.change.mode) == (50, 70, "add")
    assert [v.stock for v in await rows_of(shop_context, Variant)] == [70]
    assert await outbox_count(shop_context) == 0
    with pytest.raises(StockTooLow):
        await catalog_admin.change_stock(shop_context, ref, StockChange("sub", 71))
    assert [v.stock for v in await rows_of(shop_context, Variant)] == [70]


async def test_set_listed_and_list_delisted(shop_context: ShopContext) -> None:
    created = await new_item(shop_context)
    item_id = created.item.id or 0
    off = await catalog_admin.set_listed(shop_context, item_id, False)
    assert off.changed is True and off.item.listed is False
    again = await catalog_admin.set_listed(shop_context, item_id, False)
    assert again.changed is False
    delisted = await catalog_admin.list_delisted(shop_context, 1)
    assert [item.id for item in delisted.items] == [item_id]
    assert [item.listed for item in await rows_of(shop_context, Item)] == [False]
    assert await outbox_count(shop_context) == 0
    with pytest.raises(ItemNotFound):
        await catalog_admin.set_listed(shop_context, 99, True)
    with pytest.raises(InvalidValue):
        await catalog_admin.list_delisted(shop_context, 0)


async def test_describe_item_with_text_and_image(
    shop_context: ShopContext, image_server: ImageServer
) -> None:
    created = await new_item(shop_context)
    item_id = created.item.id or 0
    result = await catalog_admin.describe_item(
        shop_context, item_id, "中度烘焙", image_server.url("cat.png")
    )
    assert result.text_changed is True and result.image_saved is True
    (item,) = await rows_of(shop_context, Item)
    assert item.description == "中度烘焙"
    assert item.image_path is not None and item.image_path.startswith("media/")
    assert (shop_context.data_dir / item.image_path).read_bytes() == PNG
    assert await outbox_count(shop_context) == 0

    image_only = await catalog_admin.describe_item(
        shop_context, item_id, None, image_server.url("cat.png")
    )
    assert image_only.text_changed is False and image_only.image_saved is True
    assert (await rows_of(shop_context, Item))[0].description == "中度烘焙"


async def test_describe_item_refused_text_downloads_nothing(
    shop_context: ShopContext, image_server: ImageServer
) -> None:
    created = await new_item(shop_context)
    with pytest.raises(InvalidValue):
        await catalog_admin.describe_item(
            shop_context, created.item.id or 0, "好" * 1001, image_server.url("cat.png")
        )
    with pytest.raises(ItemNotFound):
        await catalog_admin.describe_item(shop_context, 99, "好喝", image_server.url("cat.png"))
    assert image_server.hits == []
    assert not (shop_context.data_dir / "media").exists()
    (item,) = await rows_of(shop_context, Item)
    assert item.description == "" and item.image_path is None


async def test_describe_item_bad_image_changes_nothing(
    shop_context: ShopContext, image_server: ImageServer
) -> None:
    created = await new_item(shop_context)
    with pytest.raises(MediaUnavailable):
        await catalog_admin.describe_item(
            shop_context, created.item.id or 0, "好喝", image_server.url("note.txt")
        )
    (item,) = await rows_of(shop_context, Item)
    assert item.description == "" and item.image_path is None


async def test_set_category(shop_context: ShopContext) -> None:
    created = await new_item(shop_context)
    item = await catalog_admin.set_category(shop_context, created.item.id or 0, "咖啡")
    (category,) = await rows_of(shop_context, Category)
    assert category.name == "咖啡" and item.category_id == category.id
    assert await outbox_count(shop_context) == 0
    with pytest.raises(InvalidValue):  # all digits would read as a page number
        await catalog_admin.set_category(shop_context, created.item.id or 0, "2024")


async def test_set_no_reason_return(shop_context: ShopContext) -> None:
    created = await new_item(shop_context)
    item = await catalog_admin.set_no_reason_return(shop_context, created.item.id or 0, False)
    assert item.no_reason_return is False
    assert [i.no_reason_return for i in await rows_of(shop_context, Item)] == [False]
    assert await outbox_count(shop_context) == 0
    with pytest.raises(ItemNotFound):
        await catalog_admin.set_no_reason_return(shop_context, 99, False)


# --- staff and groups ----------------------------------------------------------------


async def test_add_staff_takes_effect_at_once(shop_context: ShopContext) -> None:
    # Read once so the access cache is warm: the use case must invalidate it.
    assert await shop_context.access.role(STAFF_ID) is Role.CUSTOMER
    row = await catalog_admin.add_staff(shop_context, OWNER, STAFF_ID)
    assert (row.user_id, row.added_by) == (STAFF_ID, OWNER_ID)
    assert [s.user_id for s in await rows_of(shop_context, Staff)] == [STAFF_ID]
    assert await shop_context.access.role(STAFF_ID) is Role.STAFF
    assert await outbox_count(shop_context) == 0

    roster = await catalog_admin.list_staff(shop_context)
    assert [s.user_id for s in roster.staff] == [STAFF_ID]
    assert roster.owners == frozenset({OWNER_ID})


async def test_add_staff_refusals(shop_context: ShopContext) -> None:
    await catalog_admin.add_staff(shop_context, OWNER, STAFF_ID)
    with pytest.raises(AlreadyStaff):
        await catalog_admin.add_staff(shop_context, OWNER, STAFF_ID)
    with pytest.raises(OwnerIsNotStaff):
        await catalog_admin.add_staff(shop_context, OWNER, OWNER_ID)
    assert [s.user_id for s in await rows_of(shop_context, Staff)] == [STAFF_ID]


async def test_remove_staff_takes_effect_at_once(shop_context: ShopContext) -> None:
    await catalog_admin.add_staff(shop_context, OWNER, STAFF_ID)
    assert await shop_context.access.role(STAFF_ID) is Role.STAFF
    await catalog_admin.remove_staff(shop_context, STAFF_ID)
    assert await rows_of(shop_context, Staff) == []
    assert await shop_context.access.role(STAFF_ID) is Role.CUSTOMER
    assert await outbox_count(shop_context) == 0
    with pytest.raises(NotStaff):
        await catalog_admin.remove_staff(shop_context, STAFF_ID)


async def test_set_group_enabled_takes_effect_at_once(shop_context: ShopContext) -> None:
    assert await shop_context.access.group_enabled(GROUP_ID) is False
    assert await catalog_admin.set_group_enabled(shop_context, OWNER_IN_GROUP, True) is True
    assert await shop_context.access.group_enabled(GROUP_ID) is True
    assert await catalog_admin.set_group_enabled(shop_context, OWNER_IN_GROUP, True) is False
    (group,) = await rows_of(shop_context, ShopGroup)
    assert (group.group_id, group.enabled, group.changed_by) == (GROUP_ID, True, OWNER_ID)

    assert await catalog_admin.set_group_enabled(shop_context, OWNER_IN_GROUP, False) is True
    assert await shop_context.access.group_enabled(GROUP_ID) is False
    assert await outbox_count(shop_context) == 0


async def test_set_group_enabled_needs_a_group(shop_context: ShopContext) -> None:
    with pytest.raises(ValueError):
        await catalog_admin.set_group_enabled(shop_context, OWNER, True)
    assert await rows_of(shop_context, ShopGroup) == []
