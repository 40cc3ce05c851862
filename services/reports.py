"""What the merchant learns from the books: the order export (/导出), the owners' daily
report, the best sellers (/热销) and the items bought together with one (/详情)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import (
    Item,
    OrderLine,
    OrderStatus,
    Payment,
    Refund,
    Shipment,
    ShopOrder,
    Ticket,
    Variant,
)

from .aftersales import TERMINAL as TICKET_TERMINAL
from .catalog import find_category, line_name
from .errors import InvalidValue, ShopError
from .limits import FIELD_CATEGORY
from .money import format_fen
from .order_rules import status_name
from .safeguards import GuardView, low_stock_variants
from .stats import window_start

S = OrderStatus
# Orders whose goods count as sold: paid and not refunded or cancelled.
SOLD = (S.PAID.value, S.SHIPPED.value, S.DELIVERED.value, S.COMPLETED.value)
BEST_SELLER_DAYS = 30
BEST_SELLER_LINES = 10
TOGETHER_ITEMS = 3
REPORT_LOW_STOCK_LINES = 10


# --- /导出 --------------------------------------------------------------------------


@dataclass
class ExportPrivateOnly(ShopError):
    """/导出 in a group: the file carries every customer's orders."""


# /导出's periods: days back from today's local midnight (None: everything), and how
# each reads in the file's name.
EXPORT_PERIODS: dict[str, int | None] = {"今日": 1, "今天": 1, "7天": 7, "30天": 30, "全部": None}
_PERIOD_LABELS: dict[int | None, str] = {1: "今日", 7: "近7天", 30: "近30天", None: "全部"}


EXPORT_HEADER = (
    "订单号",
    "下单时间",
    "状态",
    "顾客QQ",
    "商品明细",
    "件数",
    "订单金额",
    "已付",
    "已退",
    "付款时间",
    "快递公司",
    "运单号",
)

# Cells a spreadsheet would read as a formula (a name starting with "="), or as a number
# that loses its digits or turns into 1.2E+14: long digit strings (tracking numbers),
# leading zeros, and order codes shaped like 2345678E22.
_FORMULA_START = ("=", "+", "-", "@")
_MANGLED_NUMBER = re.compile(r"^(\d{12,}|0\d+|\d+(\.\d+)?[eE][+-]?\d+)$")


def spreadsheet_text(value: str) -> str:
    """A text cell as Excel or WPS must show it: formulas defused with a leading
    apostrophe, number-like identifiers kept as text by a leading tab."""
    if value.startswith(_FORMULA_START):
        return "'" + value
    if _MANGLED_NUMBER.match(value):
        return "\t" + value
    return value


def _yuan(fen: int) -> str:
    """Money as a plain number of yuan (39.90): a spreadsheet can add it up."""
    return f"{fen / 100:.2f}"


@dataclass(frozen=True)
class ExportRow:
    order: ShopOrder
    lines: list[OrderLine]
    shipment: Shipment | None


async def export_rows(
    session: AsyncSession, shop_id: int, since: datetime | None
) -> list[ExportRow]:
    """Orders placed since `since` (None: all), oldest first, with lines and parcel."""
    conditions = [ShopOrder.shop_id == shop_id]
    if since is not None:
        conditions.append(ShopOrder.created_at >= since)
    found = await session.execute(
        select(ShopOrder, Shipment)
        .outerjoin(Shipment, Shipment.order_id == ShopOrder.id)
        .where(*conditions)
        .order_by(ShopOrder.created_at, ShopOrder.id)  # type: ignore[arg-type]
    )
    orders = [(order, shipment) for order, shipment in found]
    lines: dict[int, list[OrderLine]] = {}
    if orders:
        chosen = select(ShopOrder.id).where(*conditions).scalar_subquery()
        for line in (
            await session.execute(
                select(OrderLine)
                .where(OrderLine.order_id.in_(chosen))  # type: ignore[attr-defined]
                .order_by(OrderLine.id)  # type: ignore[arg-type]
            )
        ).scalars():
            lines.setdefault(line.order_id, []).append(line)
    return [ExportRow(order, lines.get(order.id or 0, []), shipment) for order, shipment in orders]


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def export_csv(rows: Iterable[ExportRow], zone: ZoneInfo) -> bytes:
    """The export as Excel opens it: UTF-8 with a BOM (else Excel reads Chinese as
    GBK), CRLF rows, one row per order. Never any card key."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_HEADER)
    for row in rows:
        order, shipment = row.order, row.shipment
        goods = "；".join(
            f"{line_name(line.item_name, line.variant_name)} ×{line.quantity} "
            f"@{_yuan(line.unit_price_fen)}"
            for line in row.lines
        )
        writer.writerow(
            (
                spreadsheet_text(order.code),
                _local(order.created_at, zone),
                status_name(order.status),
                spreadsheet_text(str(order.user_id)),
                spreadsheet_text(goods),
                sum(line.quantity for line in row.lines),
                _yuan(order.total_fen),
                _yuan(order.paid_fen),
                _yuan(order.refunded_fen),
                _local(order.paid_at, zone),
                spreadsheet_text(shipment.carrier_name) if shipment else "",
                spreadsheet_text(shipment.number) if shipment else "",
            )
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def export_since(days: int | None, now: datetime, zone: ZoneInfo) -> datetime | None:
    return None if days is None else window_start(now, days, zone)


def export_filename(days: int | None, now: datetime, zone: ZoneInfo) -> str:
    stamp = now.astimezone(zone).strftime("%Y%m%d-%H%M%S")
    return f"订单导出-{_PERIOD_LABELS[days]}-{stamp}.csv"


# --- /热销 and /详情 -----------------------------------------------------------------


@dataclass(frozen=True)
class BestSeller:
    item_id: int
    name: str
    sold: int  # units in sold orders paid in the window
    min_price_fen: int
    stock: int
    variant_count: int


async def best_sellers(
    session: AsyncSession,
    shop_id: int,
    now: datetime,
    category: str | None = None,
    *,
    days: int = BEST_SELLER_DAYS,
    limit: int = BEST_SELLER_LINES,
) -> list[BestSeller]:
    """On-shelf items by units sold in orders paid in the last `days` days (refunded and
    cancelled ones do not count), most first; of one category when given."""
    conditions = [
        ShopOrder.shop_id == shop_id,
        ShopOrder.status.in_(SOLD),  # type: ignore[attr-defined]
        ShopOrder.paid_at >= now - timedelta(days=days),  # type: ignore[operator]
        Item.listed.is_(True),  # type: ignore[attr-defined]
    ]
    if category is not None:
        found = await find_category(session, shop_id, category)
        if found is None:
            raise InvalidValue(FIELD_CATEGORY, "unknown", category)
        conditions.append(Item.category_id == found.id)
    sold = func.sum(OrderLine.quantity)
    ranked = (
        select(OrderLine.item_id.label("item_id"), sold.label("sold"))  # type: ignore[attr-defined]
        .join(ShopOrder, ShopOrder.id == OrderLine.order_id)
        .join(Item, Item.id == OrderLine.item_id)
        .where(*conditions)
        .group_by(OrderLine.item_id)
        .order_by(sold.desc(), OrderLine.item_id)
        .limit(limit)
        .subquery()
    )
    rows = await session.execute(
        select(
            Item.id,
            Item.name,
            ranked.c.sold,
            func.min(Variant.price_fen),
            func.sum(Variant.stock),
            func.count(Variant.id),
        )
        .join(ranked, ranked.c.item_id == Item.id)
        .join(Variant, Variant.item_id == Item.id)
        .group_by(Item.id, Item.name, ranked.c.sold)
        .order_by(ranked.c.sold.desc(), Item.id)
    )
    return [
        BestSeller(int(item_id), name, int(units), int(price), int(stock or 0), int(count))
        for item_id, name, units, price, stock, count in rows
    ]


@dataclass(frozen=True)
class TogetherItem:
    item_id: int
    name: str
    orders: int  # sold orders holding both items


# Prebuilt: /详情 runs it every time, and building the select cost more CPU than SQLite
# spends running it (issue 16).
_WITH_ITEM = (
    select(OrderLine.order_id)
    .join(ShopOrder, ShopOrder.id == OrderLine.order_id)
    .where(
        OrderLine.item_id == bindparam("item_id"),
        ShopOrder.shop_id == bindparam("shop_id"),
        ShopOrder.status.in_(SOLD),  # type: ignore[attr-defined]
    )
)
_TOGETHER = func.count(distinct(OrderLine.order_id))
_BOUGHT_TOGETHER = (
    select(Item.id, Item.name, _TOGETHER)
    .join(Item, Item.id == OrderLine.item_id)
    .where(
        OrderLine.order_id.in_(_WITH_ITEM),  # type: ignore[attr-defined]
        OrderLine.item_id != bindparam("item_id"),
        Item.listed.is_(True),  # type: ignore[attr-defined]
    )
    .group_by(Item.id, Item.name)
    .order_by(_TOGETHER.desc(), Item.id)
    .limit(bindparam("limit"))
)


async def bought_together(
    session: AsyncSession, shop_id: int, item_id: int, *, limit: int = TOGETHER_ITEMS
) -> list[TogetherItem]:
    """On-shelf items most often in the same sold orders as `item_id` (never itself)."""
    rows = await session.execute(
        _BOUGHT_TOGETHER, {"item_id": item_id, "shop_id": shop_id, "limit": limit}
    )
    return [TogetherItem(int(found), name, int(count)) for found, name, count in rows]


# --- the daily report ---------------------------------------------------------------


def report_moment(now: datetime, zone: ZoneInfo, at: time) -> datetime:
    """The latest daily-report moment (`at` shop time) at or before `now`, in UTC."""
    local = now.astimezone(zone)
    moment = datetime.combine(local.date(), at, tzinfo=zone)
    if moment > local:
        moment = datetime.combine(local.date() - timedelta(days=1), at, tzinfo=zone)
    return moment.astimezone(now.tzinfo)


@dataclass(frozen=True)
class DailyReport:
    day: date  # the shop-time date of the report
    since: datetime  # the 24 hours it covers: (since, until]
    until: datetime
    orders: int  # placed
    paid_orders: int  # payments recorded
    revenue_fen: int
    refunds: int
    refunded_fen: int
    new_tickets: int
    open_tickets: int  # not finished, at the time of the report
    low_stock: list[GuardView]  # sold out or at/below their threshold, lowest first

    @property
    def revenue(self) -> str:
        return format_fen(self.revenue_fen)


async def daily_report(
    session: AsyncSession, shop_id: int, until: datetime, zone: ZoneInfo
) -> DailyReport:
    """The 24 hours up to `until` (a report moment): each order, payment and refund is
    in exactly one day's report, however late a report goes out."""
    since = until - timedelta(days=1)
    in_shop = ShopOrder.shop_id == shop_id
    orders = (
        await session.execute(
            select(func.count())
            .select_from(ShopOrder)
            .where(in_shop, ShopOrder.created_at > since, ShopOrder.created_at <= until)
        )
    ).scalar_one()
    paid_orders, revenue = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Payment.amount_fen), 0))
            .join(ShopOrder, ShopOrder.id == Payment.order_id)
            .where(in_shop, Payment.at > since, Payment.at <= until)
        )
    ).one()
    refunds, refunded = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Refund.amount_fen), 0))
            .join(ShopOrder, ShopOrder.id == Refund.order_id)
            .where(in_shop, Refund.at > since, Refund.at <= until)
        )
    ).one()
    in_tickets = Ticket.shop_id == shop_id
    new_tickets = (
        await session.execute(
            select(func.count())
            .select_from(Ticket)
            .where(in_tickets, Ticket.created_at > since, Ticket.created_at <= until)
        )
    ).scalar_one()
    open_tickets = (
        await session.execute(
            select(func.count())
            .select_from(Ticket)
            .where(
                in_tickets,
                Ticket.status.not_in([s.value for s in TICKET_TERMINAL]),  # type: ignore[attr-defined]
            )
        )
    ).scalar_one()
    return DailyReport(
        until.astimezone(zone).date(),
        since,
        until,
        int(orders),
        int(paid_orders),
        int(revenue),
        int(refunds),
        int(refunded),
        int(new_tickets),
        int(open_tickets),
        await low_stock_variants(session, shop_id),
    )
