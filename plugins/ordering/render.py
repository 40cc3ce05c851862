"""Every reply text of the cart and ordering plugin."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from models.tables import Address, OrderEvent, OrderLine, OrderRequest, ShopOrder
from plugins._common.views import ACTOR_NAMES, address_text, courier_line, local_time, shown_in
from services.addresses import AddressSnapshot
from services.cart import CartView
from services.catalog import VariantRef, line_name
from services.checkout import Summary
from services.epay import PAY_TYPE_NAMES
from services.money import format_fen
from services.order_rules import REQUEST_NAMES, Mode, status_name
from services.shipping import TrackingView
from services.usecases.card_keys import OrderKeys
from services.usecases.epay import PaymentLink

CONFIRM_PROMPT = '回复"确认"提交订单，回复"取消"放弃'
VIRTUAL_DELIVERY = "虚拟商品（卡密）：无需收货地址，付款后卡密自动私聊发给你"
ADDRESS_FORMAT = "<姓名> <手机号> <详细地址>"

_ACTORS = ACTOR_NAMES
_ACTIONS = {
    "created": "下单",
    "paid": "确认收款",
    "paid_late": "超时取消后收到付款，订单恢复",
    "quantity_changed": "修改数量",
    "address_changed": "修改地址",
    "remark_changed": "修改备注",
    "cancelled": "取消订单",
    "expired": "超时未付款，自动取消",
    "address_requested": "申请修改地址",
    "remark_requested": "申请修改备注",
    "cancel_requested": "申请取消",
    "address_rejected": "拒绝修改地址",
    "remark_rejected": "拒绝修改备注",
    "cancel_rejected": "拒绝取消",
    "cancel_approved": "同意取消并退款",
    "refunded": "退款，订单关闭",
    "partial_refund": "部分退款",
    "shipped": "发货",
    "delivered": "签收",
    "completed": "确认收货，订单完成",
    "auto_completed": "自动确认收货，订单完成",
    "keys_delivered": "卡密已私聊发送，订单完成",
    "restocked": "退回商品入库",
}


def _address(address: AddressSnapshot | Address, in_group: bool) -> str:
    return address_text(address.name, address.phone, address.detail, in_group=in_group)


# --- cart ---------------------------------------------------------------------------


def added_to_cart(ref: VariantRef, name: str, variant_name: str, quantity: int) -> str:
    return f"已加入购物车：{ref} {line_name(name, variant_name)}，现有 {quantity} 件。发 /购物车 查看，/结算 下单。"


def cart(views: list[CartView]) -> str:
    if not views:
        return "购物车是空的。发 /商品 逛逛，/加购 <规格编号> [数量] 加入购物车。"
    lines = ["购物车："]
    total = 0
    unavailable = []
    for view in views:
        name = line_name(view.item.name, view.variant.name)
        line = f"{view.ref} {name} {format_fen(view.variant.price_fen)} × {view.line.quantity}"
        if not view.item.listed:
            line += "（已下架）"
            unavailable.append(view)
        elif view.variant.stock < view.line.quantity:
            line += f"（库存仅 {view.variant.stock}）" if view.variant.stock else "（已售罄）"
            unavailable.append(view)
        else:
            total += view.subtotal_fen
        lines.append(line)
    lines.append(f"可结算小计：{format_fen(total)}")
    if unavailable:
        lines.append("标注的商品暂时无法购买，结算时会跳过；可用 /移出 <规格编号> 移除。")
    lines.append("发 /结算 [备注] 下单")
    return "\n".join(lines)


def removed_from_cart(view: CartView) -> str:
    return f"已从购物车移出：{view.ref} {line_name(view.item.name, view.variant.name)}"


def cart_cleared(count: int) -> str:
    return f"已清空购物车（{count} 项）。" if count else "购物车本来就是空的。"


# --- confirmation -------------------------------------------------------------------


def summary(result: Summary, *, in_group: bool, timeout_minutes: int) -> str:
    lines = ["请确认订单："]
    for line in result.lines:
        ref = VariantRef(line.item.id or 0, line.variant.position)
        name = line_name(line.item.name, line.variant.name)
        lines.append(
            f"{ref} {name} {format_fen(line.variant.price_fen)} × {line.quantity} = {format_fen(line.subtotal_fen)}"
        )
    lines.append(f"合计：{format_fen(result.total_fen)}")
    if result.virtual:
        lines.append(VIRTUAL_DELIVERY)
    elif result.address is not None:
        lines.append(f"收货：{_address(result.address, in_group)}")
    if result.draft.remark:
        lines.append(f"备注：{shown_in(result.draft.remark, in_group=in_group)}")
    lines.append(f"{CONFIRM_PROMPT}（{timeout_minutes} 分钟内有效）")
    return "\n".join(lines)


def ask_address(result: Summary) -> str:
    return (
        f"合计 {format_fen(result.total_fen)}。你还没有收货地址，请直接回复一行：{ADDRESS_FORMAT}\n"
        "例如：张三 13800001111 浙江省杭州市西湖区文三路 1 号（回复“取消”放弃）"
    )


def address_in_private_first() -> str:
    return (
        f"你还没有收货地址。为保护隐私，请先私聊我添加：/地址 添加 {ADDRESS_FORMAT}，再回群里下单。"
    )


def order_created_text(order: ShopOrder, zone: ZoneInfo) -> str:
    assert order.expires_at is not None
    return (
        f"下单成功！订单号：{order.code}\n"
        f"应付：{format_fen(order.total_fen)}，请在 {local_time(order.expires_at, zone)} 前付款，超时自动取消。\n"
        f"付款方式：发 /付款 {order.code}"
    )


def discarded() -> str:
    return "已放弃本次下单。"


def draft_expired() -> str:
    return "订单确认已超时，请重新发 /下单 或 /结算。"


# --- addresses ----------------------------------------------------------------------


def address_list(addresses: list[Address], *, in_group: bool) -> str:
    if not addresses:
        return f"还没有收货地址。私聊我发送：/地址 添加 {ADDRESS_FORMAT}"
    lines = ["收货地址："]
    for number, address in enumerate(addresses, start=1):
        mark = "（默认）" if address.is_default else ""
        lines.append(f"{number}. {_address(address, in_group)}{mark}")
    lines.append("设为默认：/地址 默认 <序号>；删除：/地址 删除 <序号>")
    return "\n".join(lines)


def address_added(address: Address, number: int) -> str:
    mark = "，已设为默认地址" if address.is_default else ""
    return f"已保存地址 {number}：{_address(address, False)}{mark}。"


def address_default(address: Address, number: int, in_group: bool) -> str:
    return f"已把地址 {number}（{_address(address, in_group)}）设为默认。"


def address_deleted(number: int) -> str:
    return f"已删除地址 {number}。已下的订单不受影响。"


def address_private_only() -> str:
    return "为保护隐私，地址请私聊我添加。"


# --- orders -------------------------------------------------------------------------


def _items_brief(lines: list[OrderLine]) -> str:
    """`咖啡豆`, `咖啡豆×2` (one line of 2), `咖啡豆等3件` (several lines, 3 units in all)."""
    if not lines:
        return ""
    first = line_name(lines[0].item_name, lines[0].variant_name)
    count = sum(line.quantity for line in lines)
    if len(lines) > 1:
        return f"{first}等{count}件"
    return f"{first}×{count}" if count > 1 else first


def order_list(
    rows: list[tuple[ShopOrder, list[OrderLine]]],
    total: int,
    page: int,
    zone: ZoneInfo,
    *,
    title: str,
    hint: str,
) -> str:
    if not rows:
        return f"{title}：没有订单。" if page == 1 else f"{title}：第 {page} 页没有订单。"
    lines = [f"{title}（共 {total} 个）："]
    for order, order_lines in rows:
        lines.append(
            f"订单号：{order.code} {status_name(order.status)} {format_fen(order.total_fen)} "
            f"{local_time(order.created_at, zone)} {_items_brief(order_lines)}"
        )
    lines.append(hint)
    return "\n".join(lines)


def order_detail(
    order: ShopOrder,
    lines: list[OrderLine],
    events: list[OrderEvent],
    pending: list[OrderRequest],
    zone: ZoneInfo,
    *,
    in_group: bool,
    tracking: TrackingView | None = None,
) -> str:
    out = [f"订单号：{order.code}", f"状态：{status_name(order.status)}"]
    for line in lines:
        out.append(
            f"{line.item_id}-{line.position} {line_name(line.item_name, line.variant_name)} "
            f"{format_fen(line.unit_price_fen)} × {line.quantity}"
        )
    money = f"合计：{format_fen(order.total_fen)}"
    if order.paid_fen:
        money += f"，已付 {format_fen(order.paid_fen)}"
    if order.refunded_fen:
        money += f"，已退 {format_fen(order.refunded_fen)}"
    out.append(money)
    if order.virtual:
        out.append(f"收货：无需地址（虚拟商品，卡密私聊发送，私聊发 /提货 {order.code} 查看）")
    else:
        out.append(
            f"收货：{address_text(order.receiver_name, order.receiver_phone, order.receiver_address, in_group=in_group)}"
        )
    if order.remark:
        out.append(f"备注：{shown_in(order.remark, in_group=in_group)}")
    for request in pending:
        reason = f"（{shown_in(request.reason, in_group=in_group)}）" if request.reason else ""
        out.append(f"待店家审核：{REQUEST_NAMES[request.kind]}{reason}")
    if tracking is not None:
        last = tracking.events[-1] if tracking.events else None
        latest = f"，最新：{courier_line(last.text, last.state, in_group=in_group)}" if last else ""
        out.append(
            f"物流：{tracking.shipment.carrier_name} {tracking.shipment.number}{latest}（/物流 {order.code}）"
        )
    if order.status == "pending_payment" and order.expires_at is not None:
        out.append(f"请在 {local_time(order.expires_at, zone)} 前付款：/付款 {order.code}")
    out.append("记录：")
    for event in events:
        text = f"{local_time(event.at, zone)} {_ACTIONS.get(event.action, event.action)}（{_ACTORS.get(event.actor, event.actor)}）"
        if event.reason:
            text += f" 原因：{shown_in(event.reason, in_group=in_group)}"
        out.append(text)
    return "\n".join(out)


def payment_instructions(order: ShopOrder, text: str) -> str:
    body = text or "店主还没有设置付款方式，请联系店主。"
    return f"订单号：{order.code}\n应付：{format_fen(order.total_fen)}\n{body}\n付款后店主确认收款即可发货。"


def payment_link(link: PaymentLink, zone: ZoneInfo) -> str:
    method = PAY_TYPE_NAMES[link.pay_type]
    lines = [
        f"订单号：{link.order_code}",
        f"应付：{format_fen(link.amount_fen)}（{method}）",
        f"付款链接：{link.pay_url}",
    ]
    if link.expires_at is not None:
        lines.append(f"请在 {local_time(link.expires_at, zone)} 前付款，超时自动取消。")
    lines.append(f"用{method}扫描二维码或打开链接付款；到账后会自动通知你，无需等店主确认。")
    return "\n".join(lines)


def not_payable(order: ShopOrder) -> str:
    if order.paid_fen:
        return f"订单号：{order.code} 已付款，无需再付。"
    return f"订单号：{order.code} {status_name(order.status)}，不能付款。需要的话请重新下单。"


def amended(order: ShopOrder, what: str, mode: Mode) -> str:
    if mode is Mode.REQUEST:
        return f"订单号：{order.code} 已付款，{what}申请已提交，等待店家审核。"
    return f"订单号：{order.code} 已{what}。当前合计 {format_fen(order.total_fen)}。"


def quantity_changed(order: ShopOrder, line: OrderLine, old: int, new: int) -> str:
    name = line_name(line.item_name, line.variant_name)
    change = f"已移除 {name}" if new == 0 else f"{name} 数量 {old} → {new}"
    return f"订单号：{order.code} {change}，合计 {format_fen(order.total_fen)}。"


def cancelled(order: ShopOrder, mode: Mode) -> str:
    if mode is Mode.REQUEST:
        return f"订单号：{order.code} 已付款，取消申请已提交，店家同意后全额退款。"
    return f"订单号：{order.code} 已取消，库存已释放。"


def reviewed(order: ShopOrder, rating: int) -> str:
    return f"谢谢评价！订单号：{order.code} {'★' * rating}{'☆' * (5 - rating)}"


# --- card keys (/提货) ------------------------------------------------------------------


def order_keys(result: OrderKeys) -> str:
    """Private chats only (the use case refuses groups): the buyer's keys in full;
    staff looking at a customer's order see them masked."""
    order = result.order
    if result.masked:
        out = [f"订单号：{order.code}（顾客 {order.user_id}）的卡密（已打码）："]
    else:
        out = [f"订单号：{order.code} 的卡密（请妥善保存，不要发到群里）："]
    if result.pages > 1:
        out[0] += f"（第 {result.page}/{result.pages} 页）"
    for line in result.lines:
        out.append(f"【{line.name}】")
        out.extend(line.keys)
    if result.page < result.pages:
        out.append(f"下一页：/提货 {order.code} {result.page + 1}")
    return "\n".join(out)
