"""Every reply text of the shipping plugin."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from models.tables import ShopOrder
from plugins._common.views import courier_line, local_time
from services.order_rules import status_name
from services.shipping import TrackingView
from services.tracking import state_name


def shipped(order: ShopOrder, carrier: str, number: str, *, tracked: bool) -> str:
    """`tracked`: a tracking provider (kuaidi100) polls the parcel; otherwise staff add its
    events by hand, and nothing may promise otherwise."""
    head = f"已发货：订单号：{order.code}，{carrier} {number}。已通知顾客，"
    if tracked:
        return head + "物流会自动跟踪。"
    return head + f"物流动态请用 /物流更新 {order.code} <描述> 记录。"


def tracking(
    order: ShopOrder,
    view: TrackingView | None,
    zone: ZoneInfo,
    *,
    in_group: bool = False,
    tracked: bool = False,
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
        lines.append("暂无物流信息，揽收后会自动更新。" if tracked else "暂无物流信息。")
    for event in reversed(view.events[-10:]):
        shown = courier_line(event.text, event.state, in_group=in_group)
        lines.append(f"{local_time(event.at, zone)} {shown}")
    return "\n".join(lines)


def event_added(
    order: ShopOrder, text: str, state: str, *, signed: bool, coming_back: bool, in_group: bool
) -> str:
    """In a group, the event as the group's /物流 shows it (state and city): what staff
    typed may carry the receiver's name, address or phone."""
    if signed:
        return f"订单号：{order.code} 已标记签收，已通知顾客。"
    shown = courier_line(text, state or None, in_group=in_group)
    reply = f"订单号：{order.code} 已添加物流：{shown}。已通知顾客。"
    if coming_back:
        reply += (
            f"\n包裹在退回，订单不会自动完成：请联系顾客重新发货或 /退款 {order.code}"
            "（其他店主和店员也收到了私聊提醒）。"
        )
    return reply


def received(order: ShopOrder) -> str:
    return f"订单号：{order.code} 已确认收货，订单完成。感谢惠顾！"


def announced(groups: int) -> str:
    if groups == 0:
        return "还没有启用店铺的群，公告没有发出。先在群里发 /启用本群。"
    return f"公告已排队，将按节奏发到 {groups} 个群（每条间隔几秒，保护账号）。"
