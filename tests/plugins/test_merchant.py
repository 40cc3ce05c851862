"""Catalog editing by the owner: /新品 /规格 /改价 /库存 /上架 /下架 /描述 /设分类 /无理由,
in a private chat and in an enabled group; what customers may not do; literal user text."""

from __future__ import annotations

import http.server
import struct
import threading
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OWNER_ID
from tests.fake import Says, group, private, v11_bot

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime

NO_PERMISSION = "无权限：这是店主/店员命令。发 /帮助 查看你可用的命令。"
NEW_USAGE = '用法：/新品 <名称> <价格> <库存> [分类]，例如 /新品 "iPhone 15 Pro" 5999 10 手机'
VARIANT_USAGE = '用法：/规格 <商品编号> <规格名> <价格> <库存>，例如 /规格 2 "大号 黑色" 69 20'
PRICE_USAGE = "用法：/改价 <规格编号> <价格>，例如 /改价 1-2 99.9"
STOCK_USAGE = "用法：/库存 <规格编号> <+N|-N|N>，例如 /库存 1-2 +20"
DESCRIBE_USAGE = "用法：/描述 <商品编号> <文字>（可附一张图片），例如 /描述 1 中度烘焙，坚果风味"
CATEGORY_USAGE = "用法：/设分类 <商品编号> <分类>，例如 /设分类 3 器具"
NO_REASON_USAGE = "用法：/无理由 <商品编号> <开|关>，例如 /无理由 2 关"

CHATS = ("private", "group")


# --- helpers -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_flood_limit(shop: ShopRuntime) -> None:
    """Some tests send more than the per-user flood limit (8 in 10 s) on purpose."""
    from plugins._common.runtime import FloodGuard

    shop.flood = FloodGuard(10_000, 10.0)


@pytest.fixture(params=CHATS)
async def chat(request: pytest.FixtureRequest, shop: ShopRuntime) -> str:
    """Where the conversation happens; the group is enabled beforehand."""
    if request.param == "group":
        from services import groups

        async with shop.database.write() as session:
            await groups.set_group_enabled(session, shop.shop_id, GROUP_ID, True, OWNER_ID)
        shop.access.invalidate()
    return request.param


def say(chat: str, text: str, user_id: int = OWNER_ID, images: tuple[str, ...] = ()) -> Any:
    if chat == "private":
        return private(text, user_id, images=images)
    return group(text, user_id, GROUP_ID, images=images)


async def exchange(app: App, *steps: tuple[Any, Says | None]) -> None:
    """Each event in order; `None` means the router must ignore it (no reply at all)."""
    async with app.test_matcher() as ctx:
        bot = v11_bot(ctx)
        for event, expected in steps:
            ctx.receive_event(bot, event)
            if expected is None:
                ctx.should_not_pass_rule()
            else:
                ctx.should_call_send(event, expected)


async def ask(app: App, event: Any, *fragments: str, **kwargs: Any) -> None:
    await exchange(app, (event, Says(event, *fragments, **kwargs)))


async def seed_item(
    shop: ShopRuntime,
    name: str = "冷萃咖啡",
    price_fen: int = 3990,
    stock: int = 50,
    category: str | None = None,
) -> int:
    from services import catalog

    async with shop.database.write() as session:
        item, _ = await catalog.create_item(session, shop.shop_id, name, price_fen, stock, category)
    assert item.id is not None
    return item.id


async def seed_variant(
    shop: ShopRuntime, item_id: int, name: str, price_fen: int, stock: int
) -> None:
    from services import catalog

    async with shop.database.write() as session:
        await catalog.add_variant(session, shop.shop_id, item_id, name, price_fen, stock)


async def detail(shop: ShopRuntime, item_id: int):
    from services import catalog

    async with shop.database.read() as session:
        return await catalog.item_detail(session, shop.shop_id, item_id, include_delisted=True)


async def item_count(shop: ShopRuntime) -> int:
    from sqlalchemy import func, select

    from models.tables import Item

    async with shop.database.read() as session:
        return (await session.execute(select(func.count()).select_from(Item))).scalar_one()


async def snapshot(shop: ShopRuntime) -> dict[str, list[dict[str, Any]]]:
    """Every row a merchant command can touch, to prove that nothing changed."""
    from sqlalchemy import select

    from models.tables import Category, Item, ShopGroup, Staff, Variant

    rows: dict[str, list[dict[str, Any]]] = {}
    async with shop.database.read() as session:
        for model in (Item, Variant, Category, Staff, ShopGroup):
            result = await session.execute(select(model).order_by(model.id))  # type: ignore[arg-type]
            rows[model.__name__] = [row.model_dump() for row in result.scalars()]
    return rows


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
    """Serves /cat.png (a PNG), /note.txt (not an image); anything else is 404."""
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
    files = {"/cat.png": ("image/png", PNG), "/note.txt": ("text/plain", b"hello, not a picture")}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            found = files.get(self.path)
            if found is None:
                self.send_error(404)
                return
            kind, body = found
            self.send_response(200)
            self.send_header("Content-Type", kind)
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


# --- /新品 ---------------------------------------------------------------------------


async def test_new_item_without_category(app: App, shop: ShopRuntime, chat: str) -> None:
    event = say(chat, "/新品 冷萃咖啡 39.9 50")
    await ask(
        app,
        event,
        "已上架新品：冷萃咖啡",
        "商品编号：1",
        "价格 ¥39.90，库存 50",
        "/规格 1",
        "/描述 1",
        absent=("分类",),
    )
    found = await detail(shop, 1)
    assert found.item.name == "冷萃咖啡"
    assert found.item.listed is True
    assert found.category is None
    assert [(v.position, v.price_fen, v.stock) for v in found.variants] == [(1, 3990, 50)]


async def test_new_item_with_category_and_next_id(app: App, shop: ShopRuntime, chat: str) -> None:
    first = say(chat, "/新品 冷萃咖啡 39.9 50 咖啡")
    second = say(chat, "/新品 挂耳咖啡 29.90 100 咖啡")
    await exchange(
        app,
        (first, Says(first, "商品编号：1", "¥39.90", "分类：咖啡")),
        (second, Says(second, "商品编号：2", "¥29.90", "库存 100", "分类：咖啡")),
    )
    assert (await detail(shop, 1)).category == "咖啡"
    assert (await detail(shop, 2)).category == "咖啡"

    from services import catalog

    async with shop.database.read() as session:
        assert await catalog.list_categories(session, shop.shop_id) == [("咖啡", 2)]


async def test_new_item_is_visible_to_customers(app: App, shop: ShopRuntime, chat: str) -> None:
    create = say(chat, "/新品 冷萃咖啡 39.9 50 咖啡")
    browse = say(chat, "/商品", CUSTOMER_ID)
    look = say(chat, "/详情 1", CUSTOMER_ID)
    await exchange(
        app,
        (create, Says(create, "商品编号：1")),
        (browse, Says(browse, "1. 冷萃咖啡  ¥39.90")),
        (look, Says(look, "【1】冷萃咖啡", "1-1 默认 ¥39.90 库存 50", "分类：咖啡")),
    )


async def test_new_item_english_alias(app: App, shop: ShopRuntime, chat: str) -> None:
    await ask(app, say(chat, "/new 冷萃咖啡 39.9 50 咖啡"), "已上架新品：冷萃咖啡", "商品编号：1")
    assert (await detail(shop, 1)).category == "咖啡"


async def test_new_item_without_prefix_in_private_chat(app: App, shop: ShopRuntime) -> None:
    await ask(app, private("新品 冷萃咖啡 39.9 50", OWNER_ID), "商品编号：1")
    assert await item_count(shop) == 1


async def test_new_item_without_prefix_in_group_is_ignored(app: App, shop: ShopRuntime) -> None:
    from services import groups

    async with shop.database.write() as session:
        await groups.set_group_enabled(session, shop.shop_id, GROUP_ID, True, OWNER_ID)
    shop.access.invalidate()
    await exchange(app, (group("新品 冷萃咖啡 39.9 50", OWNER_ID, GROUP_ID), None))
    assert await item_count(shop) == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("冷萃咖啡 0.01 0", ("商品编号：1", "价格 ¥0.01，库存 0")),
        ("冷萃咖啡 1000000 1000000", ("价格 ¥1000000.00，库存 1000000",)),
        ("冷萃咖啡 ¥59 1", ("价格 ¥59.00",)),
        ("冷萃咖啡 59元 1", ("价格 ¥59.00",)),
        ("冷萃咖啡 59.90 1", ("价格 ¥59.90",)),
        ("冷萃咖啡 ３９．９ ５０", ("价格 ¥39.90，库存 50",)),
        ("咖" * 60 + " 10 5", ("商品编号：1",)),
    ],
    ids=["min", "max", "yuan-sign", "yuan-suffix", "two-decimals", "full-width", "name-60"],
)
async def test_new_item_boundaries_accepted(
    app: App, shop: ShopRuntime, chat: str, args: str, expected: tuple[str, ...]
) -> None:
    await ask(app, say(chat, f"/新品 {args}"), *expected)
    assert await item_count(shop) == 1


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ("", "缺少商品名称。"),
        ("冷萃咖啡", "缺少价格。"),
        ("冷萃咖啡 39.9", "缺少库存。"),
        ("冷萃咖啡 abc 50", "价格应是以元为单位的数字，最多两位小数（如 59.9），而不是“abc”。"),
        ("冷萃咖啡 -5 50", "价格应是以元为单位的数字，最多两位小数（如 59.9），而不是“-5”。"),
        ("冷萃咖啡 39.999 50", "而不是“39.999”"),
        ("冷萃咖啡 0 50", "价格至少 0.01 元。"),
        ("冷萃咖啡 0.00 50", "价格至少 0.01 元。"),
        ("冷萃咖啡 99999999 50", "价格不能超过 ¥1000000.00，请检查是否多打了数字。"),
        ("冷萃咖啡 1000000.01 50", "价格不能超过 ¥1000000.00"),
        ("冷萃咖啡 39.9 1000001", "库存不能超过 1000000。"),
        ("冷萃咖啡 39.9 -1", "库存应是 0 到 1000000 的整数，而不是“-1”。"),
        ("冷萃咖啡 39.9 1.5", "库存应是 0 到 1000000 的整数，而不是“1.5”。"),
        ("咖" * 61 + " 39.9 50", "商品名称最多 60 个字。"),
        ("冷萃咖啡 39.9 50 咖啡 多余 的话", "多余的内容：多余 的话"),
        ("冷萃咖啡 39.9 50 " + "类" * 21, "分类名最多 20 个字。"),
    ],
    ids=[
        "no-args",
        "no-price",
        "no-stock",
        "price-abc",
        "price-negative",
        "price-3-decimals",
        "price-zero",
        "price-zero-decimals",
        "price-huge",
        "price-over-max",
        "stock-over-max",
        "stock-negative",
        "stock-fraction",
        "name-61",
        "extra-words",
        "category-21",
    ],
)
async def test_new_item_rejects_bad_input(
    app: App, shop: ShopRuntime, chat: str, args: str, reason: str
) -> None:
    await ask(app, say(chat, f"/新品 {args}".rstrip()), reason, NEW_USAGE)
    rows = await snapshot(shop)
    assert rows["Item"] == [] and rows["Variant"] == [] and rows["Category"] == []


async def test_new_item_same_event_twice_answers_once(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    event = say(chat, "/新品 冷萃咖啡 39.9 50")
    await exchange(app, (event, Says(event, "商品编号：1")), (event, None))
    assert await item_count(shop) == 1


# --- /规格 ---------------------------------------------------------------------------


async def test_add_variant(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    first = say(chat, "/规格 1 500g 109 20")
    second = say(chat, "/variant 1 1kg 199.5 3")
    look = say(chat, "/详情 1", CUSTOMER_ID)
    await exchange(
        app,
        (first, Says(first, "已为“冷萃咖啡”添加规格 1-2 500g：¥109.00，库存 20")),
        (second, Says(second, "1-3 1kg：¥199.50，库存 3")),
        (
            look,
            Says(
                look,
                "1-1 默认 ¥39.90 库存 50",
                "1-2 500g ¥109.00 库存 20",
                "1-3 1kg ¥199.50 库存 3",
            ),
        ),
    )
    variants = (await detail(shop, 1)).variants
    assert [(v.position, v.name, v.price_fen, v.stock) for v in variants] == [
        (1, "默认", 3990, 50),
        (2, "500g", 10900, 20),
        (3, "1kg", 19950, 3),
    ]


async def test_add_variant_unknown_item(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    await ask(app, say(chat, "/规格 9 500g 109 20"), "没有编号为 9 的", absent=("用法",))
    assert len((await detail(shop, 1)).variants) == 1


async def test_add_variant_duplicate_name(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    await seed_variant(shop, 1, "500g", 10900, 20)
    await ask(
        app,
        say(chat, "/规格 1 500g 99 5"),
        "这个商品已有叫“500g”的规格，请换个名字。",
        VARIANT_USAGE,
    )
    variants = (await detail(shop, 1)).variants
    assert [(v.name, v.price_fen, v.stock) for v in variants] == [
        ("默认", 3990, 50),
        ("500g", 10900, 20),
    ]


async def test_add_variant_limit(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    for number in range(2, 51):
        await seed_variant(shop, 1, f"规格{number}", 100, 1)
    await ask(app, say(chat, "/规格 1 第51个 109 20"), exact="一个商品最多 50 个规格。")
    assert len((await detail(shop, 1)).variants) == 50


async def test_add_variant_to_delisted_item_works(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    from services import catalog

    async with shop.database.write() as session:
        await catalog.set_listed(session, shop.shop_id, 1, False)
    await ask(app, say(chat, "/规格 1 500g 109 20"), "1-2 500g")
    assert len((await detail(shop, 1)).variants) == 2


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ("", "缺少商品编号。"),
        ("1", "缺少规格名。"),
        ("1 500g", "缺少价格。"),
        ("1 500g 109", "缺少库存。"),
        ("abc 500g 109 20", "商品编号应是 1 到 9 位数字（如 12），而不是“abc”。"),
        ("1-2 500g 109 20", "商品编号应是 1 到 9 位数字（如 12），而不是“1-2”。"),
        ("1 " + "规" * 31 + " 109 20", "规格名最多 30 个字。"),
        ("1 500g 0 20", "价格至少 0.01 元。"),
        ("1 500g 109 20 多余", "多余的内容：多余"),
    ],
    ids=[
        "no-args",
        "no-name",
        "no-price",
        "no-stock",
        "bad-id",
        "ref-not-id",
        "name-31",
        "price-zero",
        "extra",
    ],
)
async def test_add_variant_rejects_bad_input(
    app: App, shop: ShopRuntime, chat: str, args: str, reason: str
) -> None:
    await seed_item(shop)
    await ask(app, say(chat, f"/规格 {args}".rstrip()), reason, VARIANT_USAGE)
    assert len((await detail(shop, 1)).variants) == 1


# --- /改价 ---------------------------------------------------------------------------


async def seed_twelve_items(shop: ShopRuntime) -> None:
    """Items 1..12; item 12 has two variants."""
    for number in range(1, 13):
        await seed_item(shop, f"商品{number}", 1000 * number, 10)
    await seed_variant(shop, 12, "大杯", 15000, 5)


async def test_change_price(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    first = say(chat, "/改价 1 45")
    second = say(chat, "/price 1-1 45.5")
    await exchange(
        app,
        (first, Says(first, "1-1 冷萃咖啡（默认）价格：¥39.90 → ¥45.00", "已下的订单按原价不变")),
        (second, Says(second, "¥45.00 → ¥45.50")),
    )
    assert (await detail(shop, 1)).variants[0].price_fen == 4550


async def test_change_price_of_second_variant(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_twelve_items(shop)
    await ask(app, say(chat, "/改价 12-2 99.9"), "12-2 商品12（大杯）价格：¥150.00 → ¥99.90")
    assert [v.price_fen for v in (await detail(shop, 12)).variants] == [12000, 9990]


async def test_change_price_full_width(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    await ask(app, say(chat, "/改价 １－１ ５"), "¥39.90 → ¥5.00")
    assert (await detail(shop, 1)).variants[0].price_fen == 500


async def test_change_price_full_width_slash_and_space(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    await seed_item(shop)
    await ask(app, say(chat, "／改价\u3000１\u3000５．５"), "¥39.90 → ¥5.50")
    assert (await detail(shop, 1)).variants[0].price_fen == 550


async def test_change_price_unknown_variant(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_twelve_items(shop)
    before = await snapshot(shop)
    await ask(
        app,
        say(chat, "/改价 12-9 5"),
        "商品 12 没有第 9 个规格（共 2 个）",
        "/详情 12",
        absent=("用法",),
    )
    assert await snapshot(shop) == before


async def test_change_price_unknown_item(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    before = await snapshot(shop)
    await ask(app, say(chat, "/改价 13-1 5"), "没有编号为 13 的")
    assert await snapshot(shop) == before


async def test_change_price_multi_variant_needs_variant_number(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    await seed_twelve_items(shop)
    before = await snapshot(shop)
    await ask(
        app, say(chat, "/改价 12 5"), "商品 12 有 2 个规格，请写明规格编号，如 12-1", "/详情 12"
    )
    assert await snapshot(shop) == before


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ("", "缺少规格编号。"),
        ("1", "缺少价格。"),
        ("1-0 5", "规格编号应像 12 或 12-2（商品编号-第几个规格），而不是“1-0”。"),
        ("abc 5", "而不是“abc”"),
        ("1 0", "价格至少 0.01 元。"),
        ("1 abc", "价格应是以元为单位的数字"),
        ("1 5 6", "多余的内容：6"),
    ],
    ids=["no-args", "no-price", "position-zero", "bad-ref", "price-zero", "price-abc", "extra"],
)
async def test_change_price_rejects_bad_input(
    app: App, shop: ShopRuntime, chat: str, args: str, reason: str
) -> None:
    await seed_item(shop)
    await ask(app, say(chat, f"/改价 {args}".rstrip()), reason, PRICE_USAGE)
    assert (await detail(shop, 1)).variants[0].price_fen == 3990


# --- /库存 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "fragment", "stock"),
    [
        ("+5", "1-1 冷萃咖啡（默认）库存增加 5：50 → 55", 55),
        ("-5", "库存减少 5：50 → 45", 45),
        ("-50", "库存减少 50：50 → 0", 0),
        ("7", "库存设为 7：50 → 7", 7),
        ("0", "库存设为 0：50 → 0", 0),
        ("＋３", "库存增加 3：50 → 53", 53),
        ("+999950", "50 → 1000000", 1_000_000),
    ],
    ids=["add", "sub", "sub-all", "set", "set-zero", "full-width", "add-to-max"],
)
async def test_change_stock(
    app: App, shop: ShopRuntime, chat: str, change: str, fragment: str, stock: int
) -> None:
    await seed_item(shop)
    await ask(app, say(chat, f"/库存 1 {change}"), fragment)
    assert (await detail(shop, 1)).variants[0].stock == stock


async def test_change_stock_sold_out_shows_on_shelf(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    change = say(chat, "/stock 1-1 0")
    browse = say(chat, "/商品", CUSTOMER_ID)
    await exchange(
        app,
        (change, Says(change, "库存设为 0：50 → 0")),
        (browse, Says(browse, "1. 冷萃咖啡  ¥39.90  售罄")),
    )


async def test_change_stock_second_variant(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    await seed_variant(shop, 1, "500g", 10900, 20)
    await ask(app, say(chat, "/库存 1-2 +3"), "1-2 冷萃咖啡（500g）库存增加 3：20 → 23")
    assert [v.stock for v in (await detail(shop, 1)).variants] == [50, 23]


async def test_change_stock_below_zero(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    await ask(app, say(chat, "/库存 1 -51"), exact="库存只有 50，不能减少 51。")
    assert (await detail(shop, 1)).variants[0].stock == 50


async def test_change_stock_above_maximum(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    await ask(app, say(chat, "/库存 1 +999951"), "库存不能超过 1000000。", STOCK_USAGE)
    assert (await detail(shop, 1)).variants[0].stock == 50


async def test_change_stock_multi_variant_needs_variant_number(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    await seed_item(shop)
    await seed_variant(shop, 1, "500g", 10900, 20)
    await ask(app, say(chat, "/库存 1 +3"), "商品 1 有 2 个规格，请写明规格编号，如 1-1")
    assert [v.stock for v in (await detail(shop, 1)).variants] == [50, 20]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ("1 ++3", "库存应写成 +N（增加）、-N（减少）或 N（设为），而不是“++3”。"),
        ("1 +", "而不是“+”"),
        ("1 +-3", "而不是“+-3”"),
        ("1 3.5", "而不是“3.5”"),
        ("1 三", "而不是“三”"),
        ("1 1000001", "库存不能超过 1000000。"),
        ("1", "缺少库存变化。"),
        ("1 +3 多余", "多余的内容：多余"),
    ],
    ids=[
        "double-plus",
        "sign-only",
        "plus-minus",
        "fraction",
        "chinese-number",
        "over-max",
        "missing",
        "extra",
    ],
)
async def test_change_stock_rejects_bad_input(
    app: App, shop: ShopRuntime, chat: str, args: str, reason: str
) -> None:
    await seed_item(shop)
    await ask(app, say(chat, f"/库存 {args}"), reason, STOCK_USAGE)
    assert (await detail(shop, 1)).variants[0].stock == 50


# --- /上架 /下架 ----------------------------------------------------------------------


async def test_delist_hides_item_from_customers(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    await seed_item(shop, "挂耳咖啡", 2990, 100)
    delist = say(chat, "/下架 1")
    browse = say(chat, "/商品", CUSTOMER_ID)
    look = say(chat, "/详情 1", CUSTOMER_ID)
    search = say(chat, "/搜索 冷萃", CUSTOMER_ID)
    staff_look = say(chat, "/详情 1")
    again = say(chat, "/delist 1")
    await exchange(
        app,
        (delist, Says(delist, "已下架“冷萃咖啡”（1）", "已有订单不受影响")),
        (browse, Says(browse, "2. 挂耳咖啡", absent=("冷萃咖啡",))),
        (look, Says(look, "没有编号为 1 的在售商品")),
        (search, Says(search, "没有找到", absent=("1. 冷萃咖啡",))),
        (staff_look, Says(staff_look, "【1】冷萃咖啡（已下架）", absent=("下单：",))),
        (again, Says(again, "“冷萃咖啡”（1）本来就是下架状态。")),
    )
    assert (await detail(shop, 1)).item.listed is False
    assert (await detail(shop, 2)).item.listed is True


async def test_list_again_shows_item(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    steps = [
        say(chat, "/下架 1"),
        say(chat, "/上架 1"),
        say(chat, "/商品", CUSTOMER_ID),
        say(chat, "/list 1"),
    ]
    await exchange(
        app,
        (steps[0], Says(steps[0], "已下架")),
        (steps[1], Says(steps[1], "已上架“冷萃咖啡”（1），顾客现在可以看到并下单。")),
        (steps[2], Says(steps[2], "1. 冷萃咖啡  ¥39.90")),
        (steps[3], Says(steps[3], "“冷萃咖啡”（1）本来就是上架状态。")),
    )
    assert (await detail(shop, 1)).item.listed is True


async def test_delisted_list_lets_staff_find_items_to_put_back(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    empty = say(chat, "/已下架")
    await ask(app, empty, exact="没有已下架的商品。")
    for n in range(12):
        await seed_item(shop, f"旧款{n:02d}", 1000 + n, n % 2)
    for item_id in range(1, 12):
        await ask(app, say(chat, f"/下架 {item_id}"), "已下架")
    first = say(chat, "/已下架")
    second = say(chat, "/delisted 2")
    beyond = say(chat, "/已下架 3")
    bad = say(chat, "/已下架 第二页")
    await exchange(
        app,
        (
            first,
            Says(
                first,
                exact="已下架商品（第 1/2 页，共 11 件）\n"
                + "\n".join(
                    f"{n + 1}. 旧款{n:02d}  ¥{10 + n / 100:.2f}" + ("  售罄" if n % 2 == 0 else "")
                    for n in range(10)
                )
                + "\n发 /上架 <商品编号> 重新上架，/详情 <商品编号> 查看规格和库存；发 /已下架 2 看下一页",
            ),
        ),
        (
            second,
            Says(
                second,
                exact="已下架商品（第 2/2 页，共 11 件）\n11. 旧款10  ¥10.10  售罄\n发 /上架 <商品编号> 重新上架，/详情 <商品编号> 查看规格和库存",
            ),
        ),
        (beyond, Says(beyond, exact="已下架商品只有 2 页。发 /已下架 查看第 1 页。")),
        (bad, Says(bad, "用法：/已下架 [页码]")),
    )
    # The one still on sale is not listed; once put back, an item leaves the list.
    await ask(app, say(chat, "/上架 11"), "已上架")
    await ask(app, say(chat, "/已下架 2"), exact="已下架商品只有 1 页。发 /已下架 查看第 1 页。")


@pytest.mark.parametrize("command", ["上架", "下架"])
async def test_shelf_unknown_item(app: App, shop: ShopRuntime, chat: str, command: str) -> None:
    await seed_item(shop)
    await ask(app, say(chat, f"/{command} 9"), "没有编号为 9 的")
    assert (await detail(shop, 1)).item.listed is True


@pytest.mark.parametrize(
    "text",
    [
        "/下架 999999999999",
        "/规格 999999999999 500g 1 1",
        "/改价 999999999-1 1",
        "/描述 999999999999 x",
    ],
    ids=["delist", "variant", "price", "describe"],
)
async def test_huge_item_number_is_just_not_found(
    app: App, shop: ShopRuntime, chat: str, text: str
) -> None:
    await seed_item(shop)
    number = text.split()[1].split("-")[0]
    # Item ids are 32-bit: longer numbers are refused while parsing, shorter ones just not found.
    expected = f"没有编号为 {number} 的" if len(number) <= 9 else "商品编号应是 1 到 9 位数字"
    await ask(app, say(chat, text), expected, absent=("系统开小差",))


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ("", "缺少商品编号。"),
        ("x", "商品编号应是 1 到 9 位数字（如 12），而不是“x”。"),
        ("1 2", "多余的内容：2"),
    ],
    ids=["missing", "bad", "extra"],
)
async def test_delist_rejects_bad_input(
    app: App, shop: ShopRuntime, chat: str, args: str, reason: str
) -> None:
    await seed_item(shop)
    await ask(
        app, say(chat, f"/下架 {args}".rstrip()), reason, "用法：/下架 <商品编号>，例如 /下架 4"
    )
    assert (await detail(shop, 1)).item.listed is True


# --- /描述 ---------------------------------------------------------------------------


async def test_describe_text(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    describe = say(chat, "/描述 1 中度烘焙，坚果风味  12 杯装")
    look = say(chat, "/详情 1", CUSTOMER_ID)
    await exchange(
        app,
        (describe, Says(describe, exact="已更新“冷萃咖啡”（1）的描述。发 /详情 1 查看效果。")),
        (look, Says(look, "【1】冷萃咖啡", "中度烘焙，坚果风味  12 杯装")),
    )
    item = (await detail(shop, 1)).item
    assert item.description == "中度烘焙，坚果风味  12 杯装"
    assert item.image_path is None


async def test_describe_is_searchable(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    describe = say(chat, "/describe 1 坚果风味")
    search = say(chat, "/搜索 坚果", CUSTOMER_ID)
    await exchange(
        app,
        (describe, Says(describe, "已更新")),
        (search, Says(search, "1. 冷萃咖啡")),
    )


async def test_describe_with_image(
    app: App, shop: ShopRuntime, chat: str, image_server: ImageServer
) -> None:
    await seed_item(shop)
    describe = say(chat, "/描述 1 中度烘焙", images=(image_server.url("cat.png"),))
    look = say(chat, "/详情 1", CUSTOMER_ID)
    await exchange(
        app,
        (
            describe,
            Says(describe, exact="已更新“冷萃咖啡”（1）的描述和图片。发 /详情 1 查看效果。"),
        ),
        (look, Says(look, "【1】冷萃咖啡", "中度烘焙", image=True)),
    )
    item = (await detail(shop, 1)).item
    assert item.description == "中度烘焙"
    assert item.image_path is not None and item.image_path.startswith("media/")
    stored = shop.shop.data_dir / item.image_path
    assert stored.parent == shop.shop.data_dir / "media"
    assert stored.read_bytes() == PNG
    assert image_server.hits == ["/cat.png"]


async def test_describe_image_only_keeps_text(
    app: App, shop: ShopRuntime, chat: str, image_server: ImageServer
) -> None:
    await seed_item(shop)
    text = say(chat, "/描述 1 中度烘焙")
    picture = say(chat, "/描述 1", images=(image_server.url("cat.png"),))
    await exchange(
        app,
        (text, Says(text, "的描述。")),
        (picture, Says(picture, "的图片。")),
    )
    item = (await detail(shop, 1)).item
    assert item.description == "中度烘焙"
    assert item.image_path is not None
    assert (shop.shop.data_dir / item.image_path).is_file()


async def test_describe_without_text_or_image(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    await ask(app, say(chat, "/描述 1"), "缺少描述文字。", DESCRIBE_USAGE)
    item = (await detail(shop, 1)).item
    assert item.description == "" and item.image_path is None


async def test_describe_unknown_item_downloads_nothing(
    app: App, shop: ShopRuntime, chat: str, image_server: ImageServer
) -> None:
    await seed_item(shop)
    await ask(
        app, say(chat, "/描述 9 好喝", images=(image_server.url("cat.png"),)), "没有编号为 9 的"
    )
    assert image_server.hits == []
    assert not (shop.shop.data_dir / "media").exists()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("note.txt", "附件不是图片，请发送 JPG/PNG/GIF 图片。"),
        ("gone.png", "图片下载失败，请稍后重新发送一次。"),
    ],
    ids=["not-image", "404"],
)
async def test_describe_with_bad_image(
    app: App, shop: ShopRuntime, chat: str, image_server: ImageServer, path: str, reason: str
) -> None:
    await seed_item(shop)
    await ask(app, say(chat, "/描述 1 好喝", images=(image_server.url(path),)), reason)
    item = (await detail(shop, 1)).item
    assert item.description == "" and item.image_path is None


async def test_describe_too_long(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    await ask(app, say(chat, "/描述 1 " + "好" * 1001), "描述最多 1000 个字。", DESCRIBE_USAGE)
    assert (await detail(shop, 1)).item.description == ""


async def test_describe_keeps_line_breaks(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    describe = say(chat, "/描述 1 第一行\n第二行")
    look = say(chat, "/详情 1", CUSTOMER_ID)
    await exchange(
        app,
        (describe, Says(describe, "已更新")),
        (look, Says(look, "第一行\n第二行")),
    )
    assert (await detail(shop, 1)).item.description == "第一行\n第二行"


async def test_rejected_description_stores_no_image(
    app: App, shop: ShopRuntime, chat: str, image_server: ImageServer
) -> None:
    await seed_item(shop)
    event = say(chat, "/描述 1 " + "好" * 1001, images=(image_server.url("cat.png"),))
    await ask(app, event, "描述最多 1000 个字。", DESCRIBE_USAGE)
    item = (await detail(shop, 1)).item
    assert item.description == "" and item.image_path is None
    media = shop.shop.data_dir / "media"
    assert not media.exists() or list(media.iterdir()) == []


# --- /设分类 /无理由 ------------------------------------------------------------------


async def test_set_category(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    first = say(chat, "/设分类 1 咖啡")
    browse = say(chat, "/商品 咖啡", CUSTOMER_ID)
    second = say(chat, "/setcat 1 饮品")
    await exchange(
        app,
        (first, Says(first, exact="已把“冷萃咖啡”（1）归入分类“咖啡”。")),
        (browse, Says(browse, "咖啡", "1. 冷萃咖啡")),
        (second, Says(second, "归入分类“饮品”")),
    )
    assert (await detail(shop, 1)).category == "饮品"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ("1", "缺少分类。"),
        ("1 " + "类" * 21, "分类名最多 20 个字。"),
        ("1 咖啡 茶", "多余的内容：茶"),
    ],
    ids=["missing", "too-long", "extra"],
)
async def test_set_category_rejects_bad_input(
    app: App, shop: ShopRuntime, chat: str, args: str, reason: str
) -> None:
    await seed_item(shop)
    await ask(app, say(chat, f"/设分类 {args}"), reason, CATEGORY_USAGE)
    rows = await snapshot(shop)
    assert rows["Category"] == [] and (await detail(shop, 1)).category is None


async def test_set_category_unknown_item(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    await ask(app, say(chat, "/设分类 9 咖啡"), "没有编号为 9 的")
    assert (await snapshot(shop))["Category"] == []


@pytest.mark.parametrize(
    ("value", "allowed"),
    [("关", False), ("off", False), ("OFF", False), ("开", True), ("on", True)],
)
async def test_no_reason_return(
    app: App, shop: ShopRuntime, chat: str, value: str, allowed: bool
) -> None:
    await seed_item(shop)
    from services import catalog

    async with shop.database.write() as session:
        await catalog.set_no_reason_return(session, shop.shop_id, 1, not allowed)
    state = "支持" if allowed else "不支持"
    change = say(chat, f"/无理由 1 {value}")
    look = say(chat, "/详情 1", CUSTOMER_ID)
    await exchange(
        app,
        (change, Says(change, exact=f"“冷萃咖啡”（1）现在{state}七天无理由退货。")),
        (look, Says(look, f"\n{state}七天无理由退货")),
    )
    assert (await detail(shop, 1)).item.no_reason_return is allowed


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ("1 maybe", "开关应是 开、关、on、off 之一，而不是“maybe”。"),
        ("1", "缺少开关。"),
        ("1 开 关", "多余的内容：关"),
    ],
    ids=["maybe", "missing", "extra"],
)
async def test_no_reason_rejects_bad_input(
    app: App, shop: ShopRuntime, chat: str, args: str, reason: str
) -> None:
    await seed_item(shop)
    await ask(app, say(chat, f"/无理由 {args}"), reason, NO_REASON_USAGE)
    assert (await detail(shop, 1)).item.no_reason_return is True


async def test_no_reason_unknown_item(app: App, shop: ShopRuntime, chat: str) -> None:
    await ask(app, say(chat, "/无理由 9 关"), "没有编号为 9 的")


# --- customers may not ---------------------------------------------------------------


CUSTOMER_ATTEMPTS = [
    "/新品 冷萃咖啡 39.9 50 咖啡",
    "/new 冷萃咖啡 39.9 50",
    "/规格 1 500g 109 20",
    "/改价 1 1",
    "/库存 1 +5",
    "/库存 1 0",
    "/上架 1",
    "/下架 1",
    "/已下架",
    "/delisted 2",
    "/描述 1 便宜卖了",
    "/设分类 1 清仓",
    "/无理由 1 关",
    "/店员",
    "/店员 添加 30003",
    "/启用本群",
    "/停用本群",
    "/新品",  # even a malformed command gets only the permission answer
]


@pytest.mark.parametrize("text", CUSTOMER_ATTEMPTS)
async def test_customer_gets_no_permission(
    app: App, shop: ShopRuntime, chat: str, text: str
) -> None:
    await seed_item(shop)
    before = await snapshot(shop)
    await ask(app, say(chat, text, CUSTOMER_ID), exact=NO_PERMISSION)
    assert await snapshot(shop) == before


# --- user text is literal ------------------------------------------------------------


async def test_cq_code_in_item_name_is_literal(app: App, shop: ShopRuntime, chat: str) -> None:
    create = say(chat, "/新品 [CQ:at,qq=all] 10 5")
    look = say(chat, "/详情 1", CUSTOMER_ID)
    await exchange(
        app,
        (create, Says(create, "已上架新品：[CQ:at,qq=all]", "商品编号：1")),
        (look, Says(look, "【1】[CQ:at,qq=all]")),
    )
    assert (await detail(shop, 1)).item.name == "[CQ:at,qq=all]"


async def test_cq_code_in_description_is_literal(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_item(shop)
    text = "[CQ:image,file=http://127.0.0.1/x.png] &#91;好喝&#93;"
    describe = say(chat, f"/描述 1 {text}")
    look = say(chat, "/详情 1", CUSTOMER_ID)
    await exchange(
        app,
        (describe, Says(describe, "已更新")),
        (look, Says(look, text)),  # a single text segment, no image
    )
    item = (await detail(shop, 1)).item
    assert item.description == text and item.image_path is None


async def test_numeric_category_is_refused_with_a_hint(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    # `/商品 2024` reads 2024 as a page number, so an all-digit category could never be browsed.
    await seed_item(shop)
    categorise = say(chat, "/设分类 1 2024")
    create = say(chat, "/新品 乌龙 10 5 2024")
    await exchange(
        app,
        (categorise, Says(categorise, "分类名不能全是数字", "2024新品", "用法：/设分类")),
        (create, Says(create, "分类名不能全是数字", "用法：/新品")),
    )
    assert (await detail(shop, 1)).category is None
