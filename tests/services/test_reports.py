"""Reports (services/reports.py, services/usecases/reports.py) on a real temp shop: the
order export as a spreadsheet opens it, best sellers, items bought together, and the
owners' daily report, once per day whoever runs the clock."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from config import ShopSettings
from models.tables import CardKey, OutboxMessage, Shop, TicketKind
from services import reports as report_domain
from services.actors import Caller
from services.context import ShopContext, close_shop, open_shop
from services.errors import InvalidValue
from services.item_facts import FACTS_TTL_SECONDS, ItemFactsCache
from services.reports import EXPORT_HEADER, ExportPrivateOnly, report_moment, spreadsheet_text
from services.staff import Role
from services.tracking import normalise_carrier
from services.usecases import catalog, fulfilment, order_admin, payments, reports, tickets
from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID
from tests.plugins.helpers import (
    add_staff,
    delist,
    get_order_row,
    outbox_rows,
    save_address,
    seed_demo,
    seed_order,
    variant_id_of,
)

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)  # 21:30 in the shop, past DAILY_REPORT_TIME
STAFF = Caller(STAFF_ID, None, Role.STAFF)
STAFF_IN_GROUP = Caller(STAFF_ID, GROUP_ID, Role.STAFF)
CUSTOMER = Caller(CUSTOMER_ID, None, Role.CUSTOMER)
OWNER = Caller(OWNER_ID, None, Role.OWNER)
BOM = b"\xef\xbb\xbf"


@pytest.fixture
def settings(settings: ShopSettings, request: pytest.FixtureRequest) -> ShopSettings:
    changes = getattr(request, "param", None) or {}
    return settings.model_copy(update=changes)


@pytest.fixture
async def shop(shop_context: ShopContext) -> ShopContext:
    await seed_demo(shop_context)
    await add_staff(shop_context, STAFF_ID)
    await save_address(shop_context, CUSTOMER_ID)
    await save_address(shop_context, OTHER_CUSTOMER_ID)
    await set_created(shop_context, datetime(2026, 2, 1, tzinfo=UTC))
    return shop_context


async def set_created(shop: ShopContext, at: datetime) -> None:
    async with shop.database.write() as session:
        await session.execute(update(Shop).values(created_at=at))


async def order_at(
    shop: ShopContext,
    at: datetime,
    lines: tuple[tuple[int, int, int], ...] = ((2, 1, 1),),
    *,
    user_id: int = CUSTOMER_ID,
    paid_at: datetime | None = None,
) -> str:
    """An order placed at `at` (lines: item, position, quantity), paid at `paid_at`."""
    code = await seed_order(shop, user_id, lines, at=at)
    if paid_at is not None:
        await payments.record_payment(
            shop,
            OWNER.actor,
            code,
            provider=payments.MANUAL,
            reference=payments.manual_reference(code),
            amount_fen=None,
            now=paid_at,
        )
    return code


def parsed(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def text_of(row: OutboxMessage) -> str:
    return "".join(s["data"]["text"] for s in json.loads(row.segments) if s["type"] == "text")


# --- /导出 ------------------------------------------------------------------------------


async def test_export_is_a_csv_excel_opens_with_chinese_intact(shop: ShopContext) -> None:
    shipped = await order_at(
        shop,
        NOW - timedelta(hours=1),
        ((1, 2, 2), (2, 1, 1)),
        paid_at=NOW - timedelta(minutes=50),
    )
    await fulfilment.ship_order(
        shop,
        OWNER,
        shipped,
        normalise_carrier("顺丰"),
        "SF1234567890",
        NOW - timedelta(minutes=30),
    )
    await order_admin.refund(
        shop, OWNER, shipped, amount_fen=1000, reason="少发", now=NOW - timedelta(minutes=20)
    )
    older = await order_at(shop, NOW - timedelta(days=2))
    unpaid = await order_at(shop, NOW - timedelta(minutes=10), user_id=OTHER_CUSTOMER_ID)
    # A card key sold with an order: its text must never reach an export.
    async with shop.database.write() as session:
        order = await get_order_row(shop, shipped)
        session.add(
            CardKey(
                shop_id=shop.shop_id,
                variant_id=await variant_id_of(shop, 2),
                secret="CARD-SECRET-7Q2W",
                key_hash="0" * 64,
                order_id=order.id,
                imported_by=OWNER_ID,
            )
        )

    export = await reports.export_orders(shop, STAFF, 1, now=NOW)
    assert export.content.startswith(BOM)
    assert b"\r\n" in export.content  # rows end the way Excel writes them
    assert b"CARD-SECRET" not in export.content
    assert export.filename == "订单导出-今日-20260302-213000.csv"
    assert (export.orders, export.days) == (2, 1)
    rows = parsed(export.content)
    assert rows[0] == list(EXPORT_HEADER)
    assert rows[1:] == [
        [
            shipped,
            "2026-03-02 20:30:00",
            "已发货",
            str(CUSTOMER_ID),
            "云南小粒咖啡豆（500g） ×2 @109.00；冷萃咖啡液 ×1 @39.90",
            "3",
            "257.90",
            "257.90",
            "10.00",
            "2026-03-02 20:40:00",
            "顺丰",
            "SF1234567890",
        ],
        [
            unpaid,
            "2026-03-02 21:20:00",
            "待付款",
            str(OTHER_CUSTOMER_ID),
            "冷萃咖啡液 ×1 @39.90",
            "1",
            "39.90",
            "0.00",
            "0.00",
            "",
            "",
            "",
        ],
    ]
    # The copy kept for a chat that cannot take files.
    assert export.saved_as == Path(shop.settings.data_dir) / "exports" / export.filename
    assert export.saved_as.read_bytes() == export.content
    week = await reports.export_orders(shop, STAFF, 7, now=NOW)
    assert [row[0] for row in parsed(week.content)[1:]] == [older, shipped, unpaid]
    everything = await reports.export_orders(shop, OWNER, None, now=NOW)
    assert everything.filename == "订单导出-全部-20260302-213000.csv"
    assert everything.orders == 3


async def test_export_is_refused_in_a_group(shop: ShopContext) -> None:
    await order_at(shop, NOW - timedelta(hours=1))
    with pytest.raises(ExportPrivateOnly):
        await reports.export_orders(shop, STAFF_IN_GROUP, None, now=NOW)
    assert not (Path(shop.settings.data_dir) / "exports").exists()


async def test_an_empty_period_exports_only_the_header(shop: ShopContext) -> None:
    export = await reports.export_orders(shop, STAFF, 1, now=NOW)
    assert export.orders == 0
    assert parsed(export.content) == [list(EXPORT_HEADER)]


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("冷萃咖啡液 ×1 @39.90", "冷萃咖啡液 ×1 @39.90"),
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),  # never a formula
        ("+86 138", "'+86 138"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("773012345678901", "\t773012345678901"),  # 15 digits: 7.73E+14 otherwise
        ("0123456", "\t0123456"),  # a leading zero would go
        ("2345678E22", "\t2345678E22"),  # an order code Excel would read as 2.3E+28
        ("10001", "10001"),  # a QQ number is shown in full as a number
        ("SF1234567890", "SF1234567890"),
    ],
)
def test_spreadsheet_text_keeps_cells_as_typed(cell: str, shown: str) -> None:
    assert spreadsheet_text(cell) == shown


# --- /热销 ------------------------------------------------------------------------------


async def test_best_sellers_count_sold_orders_of_the_last_30_days(shop: ShopContext) -> None:
    day = timedelta(days=1)
    await order_at(shop, NOW - 3 * day, ((2, 1, 3),), paid_at=NOW - 3 * day)
    await order_at(shop, NOW - 2 * day, ((2, 1, 2), (1, 1, 1)), paid_at=NOW - 2 * day)
    await order_at(shop, NOW - day, ((1, 2, 3), (5, 1, 1)), paid_at=NOW - day)
    await order_at(shop, NOW - day, ((6, 1, 10),))  # unpaid: not sold
    await order_at(shop, NOW - 40 * day, ((6, 1, 9),), paid_at=NOW - 40 * day)  # too old
    refunded = await order_at(shop, NOW - day, ((3, 1, 5),), paid_at=NOW - day)
    await order_admin.refund(shop, OWNER, refunded, now=NOW - day)
    result = await reports.best_sellers(shop, now=NOW)
    assert (result.category, result.days) == (None, 30)
    assert [(r.item_id, r.name, r.sold) for r in result.rows] == [
        (2, "冷萃咖啡液", 5),
        (1, "云南小粒咖啡豆", 4),
        (5, "挂耳咖啡", 1),
    ]
    first = result.rows[1]
    assert (first.min_price_fen, first.variant_count) == (5900, 2)
    coffee = await reports.best_sellers(shop, "咖啡", now=NOW)
    assert [r.item_id for r in coffee.rows] == [2, 1, 5]
    assert (await reports.best_sellers(shop, "器具", now=NOW)).rows == []
    await delist(shop, 5)
    assert [r.item_id for r in (await reports.best_sellers(shop, now=NOW)).rows] == [2, 1]
    with pytest.raises(InvalidValue):
        await reports.best_sellers(shop, "不存在", now=NOW)


async def test_best_sellers_show_ten_lines(shop: ShopContext) -> None:
    from services import catalog as catalog_domain

    async with shop.database.write() as session:
        for n in range(12):
            await catalog_domain.create_item(session, shop.shop_id, f"新品{n}", 100, 50)
    for item_id in range(7, 19):
        await order_at(shop, NOW - timedelta(hours=2), ((item_id, 1, item_id),), paid_at=NOW)
    rows = (await reports.best_sellers(shop, now=NOW)).rows
    assert [r.item_id for r in rows] == list(range(18, 8, -1))


# --- bought together (/详情) -----------------------------------------------------------


async def test_bought_together_from_sold_orders_never_itself_nor_delisted(
    shop: ShopContext,
) -> None:
    paid = NOW - timedelta(hours=1)
    await order_at(shop, paid, ((1, 1, 1), (2, 1, 1)), paid_at=paid)
    await order_at(shop, paid, ((1, 2, 1), (2, 1, 1), (3, 1, 1)), paid_at=paid)
    await order_at(shop, paid, ((1, 1, 1), (6, 1, 2)), paid_at=paid)
    await order_at(shop, paid, ((5, 1, 1), (6, 1, 1)), paid_at=paid)  # without item 1
    await order_at(shop, paid, ((1, 1, 1), (5, 2, 1)))  # unpaid: not counted
    await order_at(shop, paid, ((1, 1, 2),), paid_at=paid)  # alone
    view = await catalog.item_detail(shop, CUSTOMER, 1)
    assert [(t.item_id, t.name, t.orders) for t in view.together] == [
        (2, "冷萃咖啡液", 2),
        (3, "手冲滤杯套装", 1),
        (6, "帆布托特包", 1),
    ]
    await delist(shop, 3)
    view = await catalog.item_detail(shop, CUSTOMER, 1)
    assert [t.item_id for t in view.together] == [2, 6]
    assert (await catalog.item_detail(shop, CUSTOMER, 4)).together == ()


async def test_bought_together_another_process_changed_shows_after_the_ttl(
    shop: ShopContext,
) -> None:
    """/详情 remembers the bought-together list (services/item_facts.py): a change by
    another process on the same database shows once FACTS_TTL_SECONDS passed; a write in
    this process shows at once."""
    clock = [1000.0]
    shop.item_facts = ItemFactsCache(clock=lambda: clock[0])
    paid = NOW - timedelta(hours=1)
    await order_at(shop, paid, ((1, 1, 1), (2, 1, 1)), paid_at=paid)
    await order_at(shop, paid, ((1, 1, 1), (3, 1, 1)), paid_at=paid)
    assert [t.item_id for t in (await catalog.item_detail(shop, CUSTOMER, 1)).together] == [2, 3]
    other_process = await open_shop(shop.settings, shop.owners)
    try:
        await delist(other_process, 2)
    finally:
        await close_shop(other_process)
    clock[0] += FACTS_TTL_SECONDS - 1
    assert [t.item_id for t in (await catalog.item_detail(shop, CUSTOMER, 1)).together] == [2, 3]
    clock[0] += 1
    assert [t.item_id for t in (await catalog.item_detail(shop, CUSTOMER, 1)).together] == [3]
    # This process's own write: at once, well within the TTL.
    await delist(shop, 3)
    assert (await catalog.item_detail(shop, CUSTOMER, 1)).together == ()


# --- the daily report -----------------------------------------------------------------


async def test_report_moment_is_the_latest_report_time_passed() -> None:
    at = time(21, 0)
    assert report_moment(NOW, ZONE, at) == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    before = datetime(2026, 3, 2, 12, 59, tzinfo=UTC)  # 20:59 in the shop
    assert report_moment(before, ZONE, at) == datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
    just = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    assert report_moment(just, ZONE, at) == just
    early = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)  # 01:00 on 03-02 in the shop
    assert report_moment(early, ZONE, time(0, 30)) == datetime(2026, 3, 1, 16, 30, tzinfo=UTC)


async def test_the_daily_report_goes_to_the_owners_once(shop: ShopContext) -> None:
    window_start = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)  # 03-01 21:00 in the shop
    # Placed in the window before, paid in this one.
    await order_at(
        shop, window_start - timedelta(minutes=5), paid_at=window_start + timedelta(minutes=1)
    )
    sold = await order_at(
        shop,
        window_start + timedelta(hours=5),
        ((1, 2, 1),),
        paid_at=window_start + timedelta(hours=6),
    )
    await order_at(shop, window_start + timedelta(hours=7), user_id=OTHER_CUSTOMER_ID)
    await order_admin.refund(
        shop, OWNER, sold, amount_fen=900, reason="补差价", now=window_start + timedelta(hours=8)
    )
    await tickets.open_ticket(
        shop,
        CUSTOMER,
        sold,
        TicketKind.COMPLAINT,
        "包装破了",
        now=window_start + timedelta(hours=9),
    )
    await order_at(shop, NOW - timedelta(minutes=10))  # after 21:00: tomorrow's report

    report = await reports.send_daily_report(shop, NOW)
    assert report is not None
    assert (report.day.isoformat(), report.since, report.until) == (
        "2026-03-02",
        window_start,
        window_start + timedelta(days=1),
    )
    assert (report.orders, report.paid_orders, report.revenue_fen) == (2, 2, 3990 + 10900)
    assert (report.refunds, report.refunded_fen) == (1, 900)
    assert (report.new_tickets, report.open_tickets) == (1, 1)
    assert [(v.item_id, v.position, v.stock) for v in report.low_stock] == [(4, 1, 0)]
    [row] = [r for r in await outbox_rows(shop) if r.dedupe_key.startswith("report:")]
    assert (row.target_type, row.target_id, row.dedupe_key) == (
        "private",
        OWNER_ID,
        f"report:2026-03-02:owner:{OWNER_ID}",
    )
    assert text_of(row) == "\n".join(
        [
            "【日报】2026-03-02（03-01 21:00 至 03-02 21:00）",
            "新订单 2 个",
            "收款 2 笔，共 ¥148.90",
            "退款 1 笔，共 ¥9.00",
            "售后工单：新开 1 个，未结束 1 个",
            "库存不足（1 个规格）：",
            "  4-1 玻璃分享壶 已售罄",
            "导出订单明细：私聊发送 /导出 今日",
        ]
    )
    # Once: the same tick again, a later one, a restart or another process find it sent.
    assert await reports.send_daily_report(shop, NOW) is None
    assert await reports.send_daily_report(shop, NOW + timedelta(hours=20)) is None
    other_process = await open_shop(shop.settings, shop.owners)
    try:
        assert await reports.send_daily_report(other_process, NOW + timedelta(hours=1)) is None
    finally:
        await close_shop(other_process)
    assert len([r for r in await outbox_rows(shop) if r.dedupe_key.startswith("report:")]) == 1
    # The next day's comes after the next 21:00.
    tomorrow = await reports.send_daily_report(shop, NOW + timedelta(days=1))
    assert tomorrow is not None and tomorrow.day.isoformat() == "2026-03-03"
    assert tomorrow.orders == 1


async def test_a_missed_report_goes_out_late_for_the_latest_day_only(shop: ShopContext) -> None:
    # Down from before 21:00 until the next morning: yesterday's report, once.
    morning = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # 09:00 on 03-03 in the shop
    report = await reports.send_daily_report(shop, morning)
    assert report is not None and report.day.isoformat() == "2026-03-02"
    assert await reports.send_daily_report(shop, morning + timedelta(hours=1)) is None


async def test_no_report_for_a_time_before_the_shop_existed(shop: ShopContext) -> None:
    await set_created(shop, NOW - timedelta(minutes=5))  # opened at 21:25
    assert await reports.send_daily_report(shop, NOW) is None
    assert await outbox_rows(shop) == []


@pytest.mark.parametrize("settings", [{"daily_report_time": ""}], indirect=True)
async def test_an_empty_daily_report_time_turns_it_off(shop: ShopContext) -> None:
    assert shop.settings.daily_report_at is None
    assert await reports.send_daily_report(shop, NOW) is None
    assert await outbox_rows(shop) == []


async def test_daily_report_domain_counts_nothing_in_an_empty_shop(db) -> None:  # type: ignore[no-untyped-def]
    async with db.read() as session:
        report = await report_domain.daily_report(session, 1, NOW, ZONE)
    assert (report.orders, report.revenue_fen, report.low_stock) == (0, 0, [])
