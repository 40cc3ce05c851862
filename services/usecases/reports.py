"""What the merchant reads from the books: the order export (/导出), best sellers (/热销)
and the owners' daily report (a clock). Items bought together show on /详情
(services/usecases/catalog.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from models.tables import OutboxMessage
from models.types import utcnow

from .. import notices, reports
from .. import shop as shop_row
from ..actors import Caller
from ..context import ShopContext
from ..reports import BEST_SELLER_DAYS, BestSeller, DailyReport, ExportPrivateOnly

EXPORT_DIR = "exports"  # under DATA_DIR


@dataclass(frozen=True)
class OrderExport:
    filename: str
    content: bytes  # the CSV, UTF-8 with BOM
    orders: int
    days: int | None  # the period (None: all orders)
    saved_as: Path  # the copy kept under DATA_DIR/exports/, for when sending fails


def _save(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


async def export_orders(
    shop: ShopContext, caller: Caller, days: int | None, now: datetime | None = None
) -> OrderExport:
    """The orders placed in the last `days` days (from local midnight; None: all) as a
    CSV for a spreadsheet, private chats only. A copy is kept under DATA_DIR/exports/
    (the chat door sends the file; where it cannot, it points there)."""
    if caller.in_group:
        raise ExportPrivateOnly()
    now = now or utcnow()
    zone = shop.settings.timezone
    async with shop.database.read() as session:
        rows = await reports.export_rows(
            session, shop.shop_id, reports.export_since(days, now, zone)
        )
    content = reports.export_csv(rows, zone)
    filename = reports.export_filename(days, now, zone)
    path = shop.data_dir / EXPORT_DIR / filename
    await asyncio.to_thread(_save, path, content)
    return OrderExport(filename, content, len(rows), days, path)


@dataclass(frozen=True)
class BestSellers:
    rows: list[BestSeller]
    category: str | None
    days: int


async def best_sellers(
    shop: ShopContext, category: str | None = None, now: datetime | None = None
) -> BestSellers:
    """/热销: on-shelf items by units sold in the last 30 days (of one category)."""
    now = now or utcnow()
    async with shop.database.read() as session:
        rows = await reports.best_sellers(session, shop.shop_id, now, category)
    return BestSellers(rows, category, BEST_SELLER_DAYS)


async def send_daily_report(shop: ShopContext, now: datetime | None = None) -> DailyReport | None:
    """The clock's daily report: once DAILY_REPORT_TIME (shop time) has passed, the
    owners get the 24 hours up to it, privately. Exactly once per day: the outbox's
    dedupe keys `report:<date>` hold across restarts and processes (and the clock lease
    runs it in one process). A report missed while the bot was down goes out late, for
    the latest report time only; none is made for a time before the shop existed.
    Returns the report queued now, or None."""
    now = now or utcnow()
    at = shop.settings.daily_report_at
    if at is None or not shop.owners:
        return None
    zone = shop.settings.timezone
    until = reports.report_moment(now, zone, at)
    key = f"report:{until.astimezone(zone).date().isoformat()}"
    async with shop.database.write() as session:
        if (await shop_row.get_shop(session, shop.shop_id)).created_at > until:
            return None
        queued = (
            await session.execute(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.dedupe_key.in_(notices.owner_keys(key, shop.owners)))  # type: ignore[attr-defined]
            )
        ).scalar_one()
        if queued >= len(shop.owners):
            return None  # the usual case on every tick after the report: one cheap query
        report = await reports.daily_report(session, shop.shop_id, until, zone)
        await notices.to_owners(session, shop.owners, notices.daily_report(report, zone), key, now)
    return report
