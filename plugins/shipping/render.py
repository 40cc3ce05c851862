"""Every reply text of the shipping plugin."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from models.tables import ShopOrder
from plugins._common.views import local_time, shown_in
from services.order_rules import status_name
from services.shipping import TrackingView
from services.tracking import state_name


def shipped(order: ShopOrder, carrier: str, number: str) -> str:
    return f"已发货：订单号：{order.code}，{carrier} {number}。已通知顾客，物流会自动跟踪。"


def tracking(
    order: ShopOrder, view: TrackingView | None, zone: ZoneInfo, *, in_group: bool = False
) -> str:
    if view is None:
        return f"订单号：{order.code} {status_name(order.status)}，还没有发货。"
    shipment = view.shipment
    lines = [
        f"订单号：{order.code} {status_name(order.status)}",
        f"{shipment.carrier_name} {shipment.number}",
    ]
    if shipment.state:
        lines.append(f"当前：{state_name(shipment.state)}")
    if not view.events:
        lines.append("暂无物流信息，揽收后会自动更新。")
    for event in reversed(view.events[-10:]):
        lines.append(f"{local_time(event.at, zone)} {shown_in(event.text, in_group=in_group)}")
    return "\n".join(lines)


def event_added(order: ShopOrder, text: str, signed: bool) -> str:
    if signed:
        return f"订单号：{order.code} 已标记签收，已通知顾客。"
    return f"订单号：{order.code} 已添加物流：{text}。已通知顾客。"


def received(order: ShopOrder) -> str:
    return f"订单号：{order.code} 已确认收货，订单完成。感谢惠顾！"


def announced(groups: int) -> str:
    if groups == 0:
        return "还没有启用店铺的群，公告没有发出。先在群里发 /启用本群。"
    return f"公告已排队，将按节奏发到 {groups} 个群（每条间隔几秒，保护账号）。"
