"""Merchant order commands: /订单列表 /收款 /审核 /退款 /设置收款."""

from __future__ import annotations

from models.tables import OrderStatus
from models.types import utcnow
from plugins._common.args import is_integer_word
from plugins._common.context import CommandContext, Reply
from plugins._common.registry import command
from services import notices, orders, stats
from services.media import download_image
from services.order_rules import STATUS_BY_NAME
from services.shop import set_payment_info
from services.staff import Role

from . import render

AREA = "订单管理"
_DECISIONS = {"同意": True, "拒绝": False, "approve": True, "reject": False}


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
    async with ctx.runtime.database.read() as session:
        rows, total = await orders.list_orders(session, ctx.shop_id, status=status, page=page)
        with_lines = [(order, await orders.order_lines(session, order.id or 0)) for order in rows]
    return Reply(render.order_list(with_lines, total, page, ctx.runtime.settings.timezone, status))


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
    now = utcnow()
    async with ctx.runtime.database.write() as session:
        order = await orders.get_order(session, ctx.shop_id, code)
        revived = (
            order.status == OrderStatus.CANCELLED.value
        )  # record_payment refuses unless it expired
        recorded = await orders.record_payment(
            session, order, "manual", f"manual:{order.code}", order.total_fen, ctx.actor, now
        )
        if recorded:
            await notices.to_customer(
                session, order, notices.payment_received(order, revived=revived), "paid", now
            )
    if recorded:
        pass  # woken on commit
    return Reply(render.payment_recorded(order, recorded, revived=revived))


@command(
    "审核",
    aliases=("review-change",),
    role=Role.STAFF,
    usage="审核 <订单号> <同意|拒绝> [原因]",
    example="审核 2K7QH9M3XA 同意",
    summary="处理顾客对已付款订单的改地址、改备注、取消申请",
    area=AREA,
)
async def decide(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    approve = ctx.args.choice("决定", _DECISIONS)
    reason = ctx.args.rest("原因", required=False)
    now = utcnow()
    async with ctx.runtime.database.write() as session:
        order = await orders.get_order(session, ctx.shop_id, code)
        decided = await orders.decide(session, order, approve, ctx.actor, reason, now)
        for request in decided:
            await notices.to_customer(
                session,
                order,
                notices.request_decided(order, request.kind, approve, reason),
                f"request:{request.id}",
                now,
            )
    pass  # woken on commit
    return Reply(render.requests_decided(order, decided, approve))


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
    now = utcnow()
    async with ctx.runtime.database.write() as session:
        order = await orders.get_order(session, ctx.shop_id, code)
        refunded, fully = await orders.refund(session, order, amount, reason, ctx.actor, now)
        await notices.to_customer(
            session,
            order,
            notices.refunded(order, refunded, fully),
            f"refund:{order.refunded_fen}",
            now,
        )
    pass  # woken on commit
    return Reply(render.refund_done(order, refunded, fully))


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
    image_path = (
        await download_image(ctx.image_urls[0], ctx.shop.data_dir) if ctx.image_urls else None
    )
    async with ctx.runtime.database.write() as session:
        shop = await set_payment_info(session, ctx.shop_id, text, image_path)
    return Reply(render.payinfo_set(shop.payment_text, shop.payment_qr_path is not None))


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
    async with ctx.runtime.database.read() as session:
        result = await stats.shop_stats(
            session, ctx.shop_id, label, utcnow(), ctx.runtime.settings.timezone
        )
    return Reply(render.stats(result, ctx.runtime.settings.timezone))
