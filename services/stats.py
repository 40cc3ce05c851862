"""/统计: orders, paid revenue, refunds, best sellers and open requests over a window
that starts at a local midnight in the shop's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import (
    OrderLine,
    OrderRequest,
    OrderStatus,
    Refund,
    RequestStatus,
    ShopOrder,
    Ticket,
)

from .aftersales import TERMINAL as TICKET_TERMINAL

PERIODS = {"今日": 1, "今天": 1, "7天": 7, "30天": 30}


@dataclass(frozen=True)
class ShopStats:
    label: str
    since: datetime
    orders: int
    paid_orders: int
    revenue_fen: int
    refunds_fen: int
    best_sellers: list[tuple[str, int]]
    to_ship: int
    pending_requests: int
    open_tickets: int = 0


def window_start(now: datetime, days: int, zone: ZoneInfo) -> datetime:
    """Local midnight `days - 1` days ago (今日 = since today's local midnight)."""
    local_midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    return (local_midnight - timedelta(days=days - 1)).astimezone(now.tzinfo)


async def shop_stats(
    session: AsyncSession, shop_id: int, label: str, now: datetime, zone: ZoneInfo
) -> ShopStats:
    since = window_start(now, PERIODS[label], zone)
    in_shop = ShopOrder.shop_id == shop_id
    orders = (
        await session.execute(
            select(func.count())
            .select_from(ShopOrder)
            .where(in_shop, ShopOrder.created_at >= since)
        )
    ).scalar_one()
    paid_orders, revenue = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(ShopOrder.paid_fen), 0)).where(
                in_shop, ShopOrder.paid_at >= since
            )  # type: ignore[operator]
        )
    ).one()
    refunds = (
        await session.execute(
            select(func.coalesce(func.sum(Refund.amount_fen), 0))
            .join(ShopOrder, ShopOrder.id == Refund.order_id)
            .where(in_shop, Refund.at >= since)
        )
    ).scalar_one()
    best = (
        await session.execute(
            select(OrderLine.item_name, func.sum(OrderLine.quantity).label("sold"))
            .join(ShopOrder, ShopOrder.id == OrderLine.order_id)
            .where(
                in_shop, ShopOrder.paid_at >= since, ShopOrder.status != OrderStatus.REFUNDED.value
            )  # type: ignore[operator]
            .group_by(OrderLine.item_name)
            .order_by(func.sum(OrderLine.quantity).desc())
            .limit(5)
        )
    ).all()
    to_ship = (
        await session.execute(
            select(func.count())
            .select_from(ShopOrder)
            .where(in_shop, ShopOrder.status == OrderStatus.PAID.value)
        )
    ).scalar_one()
    pending = (
        await session.execute(
            select(func.count())
            .select_from(OrderRequest)
            .join(ShopOrder, ShopOrder.id == OrderRequest.order_id)
            .where(in_shop, OrderRequest.status == RequestStatus.PENDING.value)
        )
    ).scalar_one()
    open_tickets = (
        await session.execute(
            select(func.count())
            .select_from(Ticket)
            .where(
                Ticket.shop_id == shop_id, Ticket.status.not_in([s.value for s in TICKET_TERMINAL])
            )  # type: ignore[attr-defined]
        )
    ).scalar_one()
    return ShopStats(
        label,
        since,
        int(orders),
        int(paid_orders),
        int(revenue),
        int(refunds),
        [(name, int(sold)) for name, sold in best],
        int(to_ship),
        int(pending),
        int(open_tickets),
    )
