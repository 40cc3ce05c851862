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


# --- ordering helpers (tests/plugins/test_ordering.py, test_order_admin.py, test_clock_outbox.py)

HOME = ("张三", "13800001111", "浙江省杭州市西湖区文三路 1 号")
OFFICE = ("李四", "13900002222", "江苏省南京市鼓楼区中山路 8 号")


async def save_address(shop: Any, user_id: int, address: tuple[str, str, str] = HOME) -> None:
    from services.addresses import add_address, validate

    async with shop.database.write() as session:
        await add_address(session, shop.shop_id, user_id, validate(*address))


async def variant_id_of(shop: Any, item_id: int, position: int = 1) -> int:
    from sqlalchemy import select

    from models.tables import Variant

    async with shop.database.read() as session:
        found = await session.execute(
            select(Variant.id).where(Variant.item_id == item_id, Variant.position == position)
        )
        return int(found.scalar_one())


async def stock_of(shop: Any, item_id: int, position: int = 1) -> int:
    from sqlalchemy import select

    from models.tables import Variant

    async with shop.database.read() as session:
        found = await session.execute(
            select(Variant.stock).where(Variant.item_id == item_id, Variant.position == position)
        )
        return int(found.scalar_one())


async def set_stock(shop: Any, item_id: int, position: int, stock: int) -> None:
    from sqlalchemy import update

    from models.tables import Variant

    async with shop.database.write() as session:
        await session.execute(
            update(Variant)
            .where(Variant.item_id == item_id, Variant.position == position)  # type: ignore[arg-type]
            .values(stock=stock)
        )


async def delist(shop: Any, item_id: int) -> None:
    from services.catalog import set_listed

    async with shop.database.write() as session:
        await set_listed(session, shop.shop_id, item_id, False)


async def seed_order(
    shop: Any,
    user_id: int,
    lines: tuple[tuple[int, int, int], ...] = ((2, 1, 1),),
    *,
    group_id: int | None = None,
    address: tuple[str, str, str] = HOME,
    remark: str = "",
    at: Any = None,
) -> str:
    """An unpaid order placed through the service: lines are (item, position, quantity).
    Returns its code."""
    from models.types import utcnow
    from services.addresses import validate
    from services.orders import place_order

    wanted = [(await variant_id_of(shop, item, position), q) for item, position, q in lines]
    now = at or utcnow()
    async with shop.database.write() as session:
        order = await place_order(
            session,
            shop.shop_id,
            user_id,
            group_id,
            wanted,
            validate(*address),
            remark,
            now,
            shop.settings.unpaid_timeout,
        )
        return order.code


async def pay_order(shop: Any, code: str, by: int = OWNER_ID) -> None:
    from models.types import utcnow
    from services.orders import Actor, get_order, record_payment

    async with shop.database.write() as session:
        order = await get_order(session, shop.shop_id, code)
        await record_payment(
            session,
            order,
            "manual",
            f"manual:{code}",
            order.total_fen,
            Actor("owner", by),
            utcnow(),
        )


async def set_order_fields(shop: Any, code: str, **values: Any) -> None:
    """Writes columns of one order directly (e.g. status="shipped", expires_at=...)."""
    from sqlalchemy import update

    from models.tables import ShopOrder

    async with shop.database.write() as session:
        await session.execute(update(ShopOrder).where(ShopOrder.code == code).values(**values))  # type: ignore[arg-type]


async def get_order_row(shop: Any, code: str) -> Any:
    from sqlalchemy import select

    from models.tables import ShopOrder

    async with shop.database.read() as session:
        return (await session.execute(select(ShopOrder).where(ShopOrder.code == code))).scalar_one()


async def orders_of(shop: Any, user_id: int | None = None) -> list[Any]:
    """Orders (of one customer, or all), oldest first."""
    from sqlalchemy import select

    from models.tables import ShopOrder

    query = select(ShopOrder).order_by(ShopOrder.id)  # type: ignore[arg-type]
    if user_id is not None:
        query = query.where(ShopOrder.user_id == user_id)
    async with shop.database.read() as session:
        return list((await session.execute(query)).scalars())


async def lines_of(shop: Any, code: str) -> list[tuple[int, int, int]]:
    """(item, position, quantity) of an order's lines."""
    from sqlalchemy import select

    from models.tables import OrderLine, ShopOrder

    async with shop.database.read() as session:
        rows = await session.execute(
            select(OrderLine.item_id, OrderLine.position, OrderLine.quantity)
            .join(ShopOrder, ShopOrder.id == OrderLine.order_id)
            .where(ShopOrder.code == code)
            .order_by(OrderLine.id)  # type: ignore[arg-type]
        )
        return [(int(i), int(p), int(q)) for i, p, q in rows]


async def rows_of(shop: Any, model: Any) -> list[Any]:
    """Every row of a table, by id."""
    from sqlalchemy import select

    async with shop.database.read() as session:
        return list((await session.execute(select(model).order_by(model.id))).scalars())


async def outbox_rows(shop: Any) -> list[Any]:
    from models.tables import OutboxMessage

    return await rows_of(shop, OutboxMessage)


async def drafts_of(shop: Any) -> list[Any]:
    from models.tables import CheckoutDraft

    return await rows_of(shop, CheckoutDraft)


def outbox_texts(rows: list[Any]) -> list[str]:
    """The joined text segments of outbox rows."""
    import json

    return [
        "".join(s["data"].get("text", "") for s in json.loads(row.segments) if s["type"] == "text")
        for row in rows
    ]


SILENT = "silent"  # the router takes the message but sends nothing


async def converse(app: Any, *steps: tuple[Any, Any]) -> None:
    """Each event in order, in one matcher context. Expected: a `Says` (the reply), None
    (the router ignores it: the rule does not pass) or SILENT (no reply is sent)."""
    from tests.fake import v11_bot

    async with app.test_matcher() as ctx:
        bot = v11_bot(ctx)
        for event, expected in steps:
            ctx.receive_event(bot, event)
            if expected is None:
                ctx.should_not_pass_rule()
            elif isinstance(expected, str):
                continue
            else:
                ctx.should_call_send(event, expected)


from tests.fake import Says  # noqa: E402


class Grab(Says):
    """A `Says` that also keeps the reply's text (`.text`) for later comparison."""

    text: str = ""

    def __eq__(self, message: object) -> bool:
        matched = super().__eq__(message)
        if matched:
            segments = [s for s in message if s.type == "text"]  # type: ignore[attr-defined]
            self.text = segments[0].data["text"]
        return matched

    __hash__ = object.__hash__


def order_code_in(text: str) -> str:
    import re

    found = re.search(r"订单号：([0-9A-Z]{10})", text)
    assert found is not None, text
    return found.group(1)


def png_bytes() -> bytes:
    """A valid 1x1 PNG."""
    import struct
    import zlib

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


def serve_png() -> Any:
    """A context manager: a local HTTP server whose /qr.png is `png_bytes()`; yields the
    image's URL. Proxy variables must be cleared by the caller (monkeypatch.delenv)."""
    import contextlib
    import http.server
    import threading

    body = png_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/qr.png":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    @contextlib.contextmanager
    def running() -> Any:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        host, port = server.server_address[:2]
        try:
            yield f"http://{host}:{port}/qr.png"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)

    return running()


PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


# --- shipping helpers (tests/plugins/test_shipping_commands.py) ----------------------


async def ship_order(
    shop: Any,
    code: str,
    carrier: str = "顺丰",
    number: str = "SF1234567890",
    *,
    at: Any = None,
    by: int = OWNER_ID,
) -> None:
    """Ships a paid order through the use case (`at`: the shipping time, default now)."""
    from services.actors import Caller
    from services.staff import Role
    from services.tracking import normalise_carrier
    from services.usecases.fulfilment import ship_order as ship

    caller = Caller(by, None, Role.OWNER)
    await ship(shop.shop, caller, code, normalise_carrier(carrier), number, at)


async def add_tracking_event(
    shop: Any, code: str, text: str, *, signed: bool = False, at: Any = None, by: int = OWNER_ID
) -> None:
    """One manual tracking event through the use case (`signed`: the parcel is delivered)."""
    from services.actors import Caller
    from services.staff import Role
    from services.usecases.fulfilment import update_tracking

    caller = Caller(by, None, Role.OWNER)
    await update_tracking(shop.shop, caller, code, text, signed, at)


async def shipment_of_order(shop: Any, code: str) -> Any:
    """The order's Shipment row, or None."""
    from sqlalchemy import select

    from models.tables import Shipment, ShopOrder

    async with shop.database.read() as session:
        found = await session.execute(
            select(Shipment)
            .join(ShopOrder, ShopOrder.id == Shipment.order_id)
            .where(ShopOrder.code == code)
        )
        return found.scalar_one_or_none()


async def tracking_events_of(shop: Any, code: str) -> list[Any]:
    """The order's stored tracking events, oldest first."""
    from sqlalchemy import select

    from models.tables import Shipment, ShopOrder, TrackingEventRow

    async with shop.database.read() as session:
        found = await session.execute(
            select(TrackingEventRow)
            .join(Shipment, Shipment.id == TrackingEventRow.shipment_id)
            .join(ShopOrder, ShopOrder.id == Shipment.order_id)
            .where(ShopOrder.code == code)
            .order_by(TrackingEventRow.at, TrackingEventRow.id)  # type: ignore[arg-type]
        )
        return list(found.scalars())


# --- after-sales helpers (tests/plugins/test_aftersales_commands.py) -----------------


def coloured_png(red: int, green: int, blue: int) -> bytes:
    """A valid 1x1 PNG of one colour: distinct colours give distinct bytes (and files)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return (
            struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes((0, red, green, blue)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def serve_images(bodies: dict[str, bytes]) -> Any:
    """A context manager: a local HTTP server answering GET /<name> with `bodies[name]`
    (image/png); yields {name: url}. Proxy variables must be cleared by the caller."""
    import contextlib
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    @contextlib.contextmanager
    def running() -> Any:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        host, port = server.server_address[:2]
        try:
            yield {name: f"http://{host}:{port}/{name}" for name in bodies}
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)

    return running()


# --- EPay (tests/plugins/test_ordering.py, test_order_admin.py, test_clock_outbox.py) ---


def epay_settings(settings: Any, gateway_url: str, **more: Any) -> Any:
    """`settings` with PAYMENT_PROVIDER=epay on the fake gateway (tools/fake_epay.py)
    serving at `gateway_url`; the shop opened with them has its gateway client."""
    from config import ShopSettings
    from tools.fake_epay import KEY, PID

    return ShopSettings.model_validate(
        {
            **settings.model_dump(),
            "payment_provider": "epay",
            "epay_api_url": gateway_url,
            "epay_pid": PID,
            "epay_key": KEY,
            **more,
        }
    )


async def attempts_of(shop: Any, code: str) -> list[Any]:
    """The payment attempts of an order, oldest first."""
    from sqlalchemy import select

    from models.tables import PaymentAttempt, ShopOrder

    async with shop.database.read() as session:
        rows = await session.execute(
            select(PaymentAttempt)
            .join(ShopOrder, ShopOrder.id == PaymentAttempt.order_id)  # type: ignore[arg-type]
            .where(ShopOrder.code == code)
            .order_by(PaymentAttempt.id)  # type: ignore[arg-type]
        )
        return list(rows.scalars())
