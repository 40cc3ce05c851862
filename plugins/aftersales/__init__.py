"""After-sales: /售后 /工单 /留言 /退货单号 /撤销 for customers; /工单列表 /回复 /同意
/拒绝 /完成 for staff. Messages relay both ways: each side hears the other."""

from __future__ import annotations

from models.tables import TicketKind
from plugins._common.context import CommandContext, Reply
from plugins._common.registry import command, plugin_metadata
from services.aftersales import STATUS_BY_NAME
from services.staff import Role
from services.tracking import check_tracking_number, normalise_carrier
from services.usecases import tickets

from . import render

AREA = "售后"
STAFF_AREA = "售后处理"
_KINDS = {
    "退款": TicketKind.REFUND,
    "退货": TicketKind.RETURN,
    "换货": TicketKind.EXCHANGE,
    "投诉": TicketKind.COMPLAINT,
    "refund": TicketKind.REFUND,
    "return": TicketKind.RETURN,
    "exchange": TicketKind.EXCHANGE,
    "complaint": TicketKind.COMPLAINT,
}
_RESTOCK = {"入库": True, "restock": True}


@command(
    "售后",
    aliases=("aftersale",),
    usage="售后 [<订单号> <退款|退货|换货|投诉> <原因>]（可附图片）",
    example="售后 2K7QH9M3XA 退货 杯子有裂纹",
    summary="申请售后；不带参数查看我的工单",
    area=AREA,
)
async def aftersale(ctx: CommandContext) -> Reply:
    zone = ctx.runtime.settings.timezone
    if not ctx.args.has_more():
        rows = await tickets.my_tickets(ctx.shop, ctx.caller)
        return Reply(render.ticket_list(rows, zone, staff=False))
    code = ctx.args.order_code()
    kind = ctx.args.choice("类型", _KINDS)
    reason = ctx.args.rest("原因")
    opened = await tickets.open_ticket(ctx.shop, ctx.caller, code, kind, reason, ctx.image_urls)
    return Reply(render.opened(opened.ticket, opened.order_code, opened.image_count))


@command(
    "工单",
    aliases=("ticket",),
    usage="工单 <工单号>",
    example="工单 7K2M9QH3XA",
    summary="工单详情、留言和进度",
    area=AREA,
)
async def show_ticket(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code("工单号")
    ctx.args.end()
    view = await tickets.view_ticket(ctx.shop, ctx.caller, code)
    zone = ctx.runtime.settings.timezone
    return Reply(render.detail(view, zone, in_group=ctx.in_group), images=view.images)


@command(
    "留言",
    aliases=("reply",),
    usage="留言 <工单号> <内容>（可附图片）",
    example="留言 7K2M9QH3XA 补充一张照片",
    summary="给店家补充说明",
    area=AREA,
)
async def customer_message(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code("工单号")
    text = ctx.args.rest("内容", required=not ctx.image_urls)
    ticket = await tickets.leave_message(ctx.shop, ctx.caller, code, text, ctx.image_urls)
    return Reply(render.message_added(ticket, staff=False))


@command(
    "退货单号",
    aliases=("return",),
    usage="退货单号 <工单号> <快递公司> <运单号>",
    example="退货单号 7K2M9QH3XA 中通 ZT123456789",
    summary="填写寄回的快递（已同意的退货/换货）",
    area=AREA,
)
async def return_parcel(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code("工单号")
    carrier = normalise_carrier(ctx.args.word("快递公司"))
    number = check_tracking_number(ctx.args.word("运单号"))
    ctx.args.end()
    ticket = await tickets.record_return_parcel(ctx.shop, ctx.caller, code, carrier.name, number)
    return Reply(render.return_recorded(ticket))


@command(
    "撤销",
    aliases=("withdraw",),
    usage="撤销 <工单号>",
    example="撤销 7K2M9QH3XA",
    summary="撤销待处理的工单",
    area=AREA,
)
async def withdraw(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code("工单号")
    ctx.args.end()
    ticket = await tickets.withdraw_ticket(ctx.shop, ctx.caller, code)
    return Reply(render.withdrawn(ticket))


# --- staff ----------------------------------------------------------------------------


@command(
    "工单列表",
    aliases=("tickets",),
    role=Role.STAFF,
    usage="工单列表 [状态]",
    example="工单列表 待处理",
    summary="售后工单，待处理的在前、最早的在前",
    area=STAFF_AREA,
    details=("状态：待处理、已同意、待退货、退货中、已退款、已拒绝、已完成、已撤销",),
)
async def list_tickets(ctx: CommandContext) -> Reply:
    status = ctx.args.choice("状态", STATUS_BY_NAME) if ctx.args.has_more() else None
    ctx.args.end()
    rows = await tickets.list_tickets(ctx.shop, ctx.caller, status)
    return Reply(render.ticket_list(rows, ctx.runtime.settings.timezone, staff=True))


@command(
    "回复",
    aliases=("answer",),
    role=Role.STAFF,
    usage="回复 <工单号> <内容>",
    example="回复 7K2M9QH3XA 已安排补发",
    summary="给顾客回复",
    area=STAFF_AREA,
)
async def staff_reply(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code("工单号")
    text = ctx.args.rest("内容")
    ticket = await tickets.answer_ticket(ctx.shop, ctx.caller, code, text)
    return Reply(render.message_added(ticket, staff=True))


@command(
    "同意",
    aliases=("approve",),
    role=Role.STAFF,
    usage="同意 <工单号> [退款金额]",
    example="同意 7K2M9QH3XA 29.9",
    summary="同意售后（退款立即退；退货收到后 /完成 再退）",
    area=STAFF_AREA,
)
async def approve(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code("工单号")
    amount = ctx.args.optional_amount()
    ctx.args.end()
    decision = await tickets.approve_ticket(ctx.shop, ctx.caller, code, amount)
    return Reply(render.approved(decision.ticket, decision.amount_fen, decision.refunded))


@command(
    "拒绝",
    aliases=("reject",),
    role=Role.STAFF,
    usage="拒绝 <工单号> <原因>",
    example="拒绝 7K2M9QH3XA 已超过无理由期限",
    summary="拒绝售后（须写原因）",
    area=STAFF_AREA,
)
async def reject(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code("工单号")
    reason = ctx.args.rest("原因")
    ticket = await tickets.reject_ticket(ctx.shop, ctx.caller, code, reason)
    return Reply(render.rejected(ticket))


@command(
    "完成",
    aliases=("close",),
    role=Role.STAFF,
    usage="完成 <工单号> [入库]",
    example="完成 7K2M9QH3XA 入库",
    summary="收到退货后退款（加“入库”把退回的商品放回库存）/ 换货补发后完成",
    area=STAFF_AREA,
    details=(
        "退货：不加“入库”只退款，库存不变；加“入库”把订单的全部商品按数量放回库存（每个订单只入库一次）。",
        "已完成的退货也可以补发 /完成 <工单号> 入库。部分退回的，入库后用 /库存 调整。卡密商品不入库。",
    ),
)
async def complete(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code("工单号")
    restock = ctx.args.choice("选项", _RESTOCK) if ctx.args.has_more() else False
    ctx.args.end()
    decision = await tickets.complete_ticket(ctx.shop, ctx.caller, code, restock=restock)
    return Reply(render.completed(decision))


# Last, after every @command above has registered: NoneBot reads it once the module ran.
__plugin_meta__ = plugin_metadata(
    __name__, name="售后", description="退款、退货、换货、投诉工单，双向留言，店家处理"
)
