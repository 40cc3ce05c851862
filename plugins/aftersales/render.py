"""Every reply text of the after-sales plugin."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from models.tables import Ticket, TicketKind, TicketStatus
from plugins._common.views import ACTOR_NAMES, local_time, shown_in
from services.aftersales import KIND_NAMES, STATUS_NAMES, Restock, TicketDetail, images_of
from services.money import format_fen
from services.usecases.tickets import TicketDecision

_ACTORS = ACTOR_NAMES
_ACTIONS = {
    "opened": "提交",
    "approved": "同意",
    "rejected": "拒绝",
    "withdrawn": "撤销",
    "awaiting_return": "等待退货",
    "return_shipped": "寄回",
    "refunded": "退款",
    "closed": "完成",
    "return_expired": "超时未寄回，关闭",
    "restocked": "退回商品入库",
}


def _kind(ticket: Ticket) -> str:
    return KIND_NAMES[TicketKind(ticket.kind)]


def _status(ticket: Ticket) -> str:
    return STATUS_NAMES[TicketStatus(ticket.status)]


def opened(ticket: Ticket, order_code: str, images: int) -> str:
    evidence = f"，已保存 {images} 张图片" if images else ""
    return (
        f"已提交{_kind(ticket)}申请{evidence}。\n工单号：{ticket.code}\n订单号：{order_code}\n"
        f"店家处理后会通知你；补充说明：/留言 {ticket.code} <内容>"
    )


def ticket_list(rows: list[tuple[Ticket, str]], zone: ZoneInfo, *, staff: bool) -> str:
    if not rows:
        return (
            "没有售后工单。"
            if staff
            else "你还没有售后工单。申请：/售后 <订单号> <退款|退货|换货|投诉> <原因>"
        )
    lines = ["售后工单（待处理的在前）：" if staff else "你的售后工单："]
    for ticket, order_code in rows:
        who = f" 顾客 {ticket.user_id}" if staff else ""
        lines.append(
            f"工单号：{ticket.code} {_kind(ticket)} {_status(ticket)} 订单 {order_code}{who} {local_time(ticket.created_at, zone)}"
        )
    lines.append("发 /工单 <工单号> 查看详情")
    return "\n".join(lines)


def detail(view: TicketDetail, zone: ZoneInfo, *, in_group: bool = False) -> str:
    def shown(text: str) -> str:
        return shown_in(text, in_group=in_group)

    ticket = view.ticket
    lines = [
        f"工单号：{ticket.code}",
        f"{_kind(ticket)} · {_status(ticket)} · 订单号：{view.order_code}",
    ]
    if ticket.refund_fen:
        lines.append(f"退款金额：{format_fen(ticket.refund_fen)}")
    if ticket.return_number:
        lines.append(f"退货物流：{ticket.return_carrier} {ticket.return_number}")
    lines.append("留言：")
    pictures_total = 0
    for message in view.messages:
        images = images_of(message)
        pictures_total += len(images)
        pictures = f" [图片 {len(images)} 张]" if images else ""
        lines.append(
            f"{local_time(message.at, zone)} {_ACTORS.get(message.author, message.author)}：{shown(message.text)}{pictures}"
        )
    if pictures_total and in_group:
        lines.append(f"图片不在群里显示，请私聊我发 /工单 {ticket.code} 查看。")
    lines.append("记录：")
    for event in view.events:
        reason = f" {shown(event.reason)}" if event.reason and event.action != "opened" else ""
        lines.append(
            f"{local_time(event.at, zone)} {_ACTIONS.get(event.action, event.action)}（{_ACTORS.get(event.actor, event.actor)}）{reason}"
        )
    return "\n".join(lines)


def message_added(ticket: Ticket, staff: bool) -> str:
    return f"已发送给{'顾客' if staff else '店家'}。工单号：{ticket.code}"


def withdrawn(ticket: Ticket) -> str:
    return f"已撤销工单号：{ticket.code}。"


def return_recorded(ticket: Ticket) -> str:
    return f"已记录退货物流 {ticket.return_carrier} {ticket.return_number}。工单号：{ticket.code} 店家收到后处理。"


def approved(ticket: Ticket, amount: int, refunded: bool) -> str:
    if refunded:
        return f"已同意并退款 {format_fen(amount)}。工单号：{ticket.code}"
    if TicketStatus(ticket.status) is TicketStatus.AWAITING_RETURN:
        money = f"，收到退货后退款 {format_fen(amount)}" if amount else ""
        return f"已同意，等待顾客寄回{money}。工单号：{ticket.code}"
    return f"已同意。工单号：{ticket.code}，处理完请 /完成 {ticket.code}"


def rejected(ticket: Ticket) -> str:
    return f"已拒绝。工单号：{ticket.code}"


def _completion(ticket: Ticket, amount: int, refunded: bool) -> str:
    if refunded and amount == 0:
        return f"工单号：{ticket.code} 已完成（订单此前已全额退款，无需再退）。"
    if refunded:
        return f"已完成并退款 {format_fen(amount)}。工单号：{ticket.code}"
    return f"工单号：{ticket.code} 已完成。"


def _restocked(restock: Restock) -> list[str]:
    lines = ["已放回库存："]
    lines += [f"{line.name} ×{line.quantity}（现库存 {line.stock}）" for line in restock.lines]
    if restock.skipped:
        lines.append(f"未入库（现为卡密商品，库存即卡密数）：{'、'.join(restock.skipped)}")
    lines.append("只退回了部分商品的，请用 /库存 调整。")
    return lines


def completed(decision: TicketDecision) -> str:
    ticket = decision.ticket
    if not decision.completed:  # a 退货 completed earlier, restocked now
        lines = [f"工单号：{ticket.code} 退回的商品已入库。"]
    else:
        lines = [_completion(ticket, decision.amount_fen, decision.refunded)]
    if decision.restock is not None:
        lines += _restocked(decision.restock)
    elif decision.restock_offered:
        lines.append(f"库存未变；如需把退回的商品放回库存，请发 /完成 {ticket.code} 入库")
    return "\n".join(lines)
