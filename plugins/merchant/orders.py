"""Merchant order commands: /订单列表 /收款 /对账 /审核 /退款 /设置收款."""

from __future__ import annotations

from models.tables import OrderStatus
from plugins._common.args import is_integer_word
from plugins._common.context import CommandContext, Reply
from plugins._common.registry import command
from services import stats
from services.order_rules import STATUS_BY_NAME
from services.staff import Role
from services.usecases import order_admin, payments

from . import render, render_requests

AREA = "订单管理"
_DECISIONS = {"同意": True, "拒绝": False, "approve": True, "reject": False}
_REQUEST_KINDS = {word: kind for kind, word in render_requests.KIND_WORDS.items()}


@command(
    "订单列表",
    aliases=("allorders",),
    role=Role.STAFF,
    usage="订单列表 [状态] [页码]",
    example="订单列表 待发货",
    summary="全部订单，最新在前",
    area=AREA,
    details=("状态：待付款、待发货、已发货、已签收、已完成、已取消、已退款",),
)
async def all_orders(ctx: CommandContext) -> Reply:
    status: OrderStatus | None = None
    if ctx.args.has_more() and not is_integer_word(ctx.args.peek()):
        status = ctx.args.choice("状态", STATUS_BY_NAME)
    page = ctx.args.page() if ctx.args.has_more() else 1
    ctx.args.end()
    listing = await order_admin.list_orders(ctx.shop, ctx.caller, status=status, page=page)
    return Reply(render.order_list(listing, ctx.shop.settings.timezone))


@command(
    "收款",
    aliases=("paid",),
    role=Role.STAFF,
    usage="收款 <订单号>",
    example="收款 2K7QH9M3XA",
    summary="确认收到未付款订单的货款",
    area=AREA,
)
async def record_payment(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    ctx.args.end()
    # Staff confirm by hand that the order's full total arrived.
    outcome = await payments.record_payment(
        ctx.shop,
        ctx.actor,
        code,
        provider=payments.MANUAL,
        reference=payments.manual_reference(code),
        amount_fen=None,
    )
    return Reply(render.payment_recorded(outcome))


@command(
    "对账",
    aliases=("reconcile",),
    role=Role.STAFF,
    usage="对账 [订单号]",
    example="对账 2K7QH9M3XA",
    summary="立即向支付平台查询在线付款（漏掉的到账通知），并记录已到账的",
    area=AREA,
)
async def reconcile(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code() if ctx.args.has_more() else None
    ctx.args.end()
    result = await order_admin.reconcile_payments(ctx.shop, ctx.caller, code)
    return Reply(render.reconciled(result, ctx.shop.settings.epay_reconcile_minutes))


@command(
    "审核",
    aliases=("review-change",),
    role=Role.STAFF,
    usage="审核 <订单号> <同意|拒绝> [地址|备注|取消] [原因]",
    example="审核 2K7QH9M3XA 同意 地址",
    summary="处理顾客对已付款订单的改地址、改备注、取消申请",
    area=AREA,
    details=(
        "写了地址、备注或取消，只处理这一项申请；不写则处理这个订单全部待审核的申请。",
        "原因写在最后；原因的第一个词恰好是地址、备注或取消时，请先写上申请类型。",
    ),
)
async def decide(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    approve = ctx.args.choice("决定", _DECISIONS)
    # Only the exact word right after the decision names a kind; anything else, even a
    # reason starting with 地址不对, is the reason.
    kind = _REQUEST_KINDS.get(ctx.args.peek() or "")
    if kind is not None:
        ctx.args.word("申请类型")
    reason = ctx.args.rest("原因", required=False)
    decided = await order_admin.decide_requests(
        ctx.shop, ctx.caller, code, approve=approve, kind=kind, reason=reason
    )
    return Reply(render_requests.requests_decided(decided, in_group=ctx.in_group))


@command(
    "退款",
    aliases=("refund",),
    role=Role.STAFF,
    usage="退款 <订单号> [金额] [原因]",
    example="退款 2K7QH9M3XA 10 少发一件",
    summary="全额或部分退款（不超过已付减已退）",
    area=AREA,
)
async def refund(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    # An amount if the next word is one; otherwise it starts the reason and everything
    # still refundable is refunded.
    amount = ctx.args.optional_amount()
    reason = ctx.args.rest("原因", required=False)
    outcome = await order_admin.refund(ctx.shop, ctx.caller, code, amount_fen=amount, reason=reason)
    return Reply(render.refund_done(outcome))


@command(
    "设置收款",
    aliases=("payinfo",),
    role=Role.STAFF,
    usage="设置收款 <文字>（可附收款码图片）",
    example="设置收款 微信转账 wxid_shop，备注订单号",
    summary="设置 /付款 显示的付款说明和收款码",
    area=AREA,
)
async def set_payinfo(ctx: CommandContext) -> Reply:
    text = ctx.args.rest("付款说明", required=not ctx.image_urls)
    info = await order_admin.set_payment_info(
        ctx.shop, ctx.caller, text=text, image_url=ctx.image_urls[0] if ctx.image_urls else None
    )
    return Reply(render.payinfo_set(info))


_PERIOD_WORDS = {
    **{label: label for label in stats.PERIODS},
    "today": "今日",
    "7d": "7天",
    "30d": "30天",
}


@command(
    "统计",
    aliases=("stats",),
    role=Role.STAFF,
    usage="统计 [今日|7天|30天]",
    example="统计 7天",
    summary="订单数、收入、退款、热销商品、待处理",
    area=AREA,
)
async def show_stats(ctx: CommandContext) -> Reply:
    label = ctx.args.choice("时间范围", _PERIOD_WORDS) if ctx.args.has_more() else "今日"
    ctx.args.end()
    result = await order_admin.shop_stats(ctx.shop, ctx.caller, label)
    return Reply(render.stats(result, ctx.shop.settings.timezone))
