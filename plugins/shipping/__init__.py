"""Shipping and tracking: /发货 /物流 /物流更新 /确认收货, and /公告."""

from __future__ import annotations

from nonebot.plugin import PluginMetadata

from models.types import utcnow
from plugins._common.context import CommandContext, Reply
from plugins._common.registry import command
from services import notices, orders, shipping
from services.staff import Role
from services.tracking import check_tracking_number, normalise_carrier

from . import render

__plugin_meta__ = PluginMetadata(
    name="发货与物流",
    description="发货、物流查询与更新、确认收货、群公告",
    usage="/发货 /物流 /物流更新 /确认收货 /公告",
)

AREA = "发货与物流"


@command(
    "发货",
    aliases=("ship",),
    role=Role.STAFF,
    usage="发货 <订单号> <快递公司> <运单号>",
    example="发货 2K7QH9M3XA 顺丰 SF1234567890",
    summary="发货，之后自动跟踪物流",
    area=AREA,
)
async def ship(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    carrier = normalise_carrier(ctx.args.word("快递公司"))
    number = check_tracking_number(ctx.args.word("运单号"))
    ctx.args.end()
    now = utcnow()
    async with ctx.runtime.database.write() as session:
        order = await orders.get_order(session, ctx.shop_id, code)
        await shipping.ship(session, order, carrier, number, ctx.actor, now)
    pass  # woken on commit
    return Reply(render.shipped(order, carrier.name, number))


@command(
    "物流",
    aliases=("track",),
    usage="物流 <订单号>",
    example="物流 2K7QH9M3XA",
    summary="快递公司、运单号和物流记录",
    area="下单",
)
async def track(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    ctx.args.end()
    async with ctx.runtime.database.read() as session:
        order = await orders.get_order(session, ctx.shop_id, code, customer_id=ctx.own_only)
        view = await shipping.tracking_view(session, order)
    return Reply(render.tracking(order, view, ctx.runtime.settings.timezone, in_group=ctx.in_group))


@command(
    "物流更新",
    aliases=("trackupdate",),
    role=Role.STAFF,
    usage="物流更新 <订单号> <描述> [签收]",
    example="物流更新 2K7QH9M3XA 已到达杭州转运中心",
    summary="手动添加一条物流记录；末尾写“签收”标记已签收",
    area=AREA,
)
async def track_update(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    text = ctx.args.rest("描述")
    words = text.split()  # any white space, the IME's full-width space included
    signed = words[-1] == "签收"
    if signed and len(words) > 1:
        text = text.rstrip()[: -len("签收")].rstrip()
    now = utcnow()
    async with ctx.runtime.database.write() as session:
        order = await orders.get_order(session, ctx.shop_id, code)
        await shipping.add_manual_event(session, order, text, signed, ctx.actor, now)
    pass  # woken on commit
    return Reply(render.event_added(order, text, signed))


@command(
    "确认收货",
    aliases=("received",),
    usage="确认收货 <订单号>",
    example="确认收货 2K7QH9M3XA",
    summary="收到货后确认，订单完成",
    area="下单",
)
async def confirm_received(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    ctx.args.end()
    async with ctx.runtime.database.write() as session:
        order = await orders.get_order(session, ctx.shop_id, code, customer_id=ctx.user_id)
        await shipping.confirm_received(session, order, ctx.actor, utcnow())
    return Reply(render.received(order))


@command(
    "公告",
    aliases=("announce",),
    role=Role.STAFF,
    usage="公告 <内容>",
    example="公告 今晚 8 点上新，限量 20 份",
    summary="发到每个启用店铺的群（按节奏发送）",
    area=AREA,
)
async def announce(ctx: CommandContext) -> Reply:
    text = ctx.args.rest("内容")
    async with ctx.runtime.database.write() as session:
        count = await notices.announce(
            session, ctx.shop_id, ctx.runtime.settings.shop_name, text, utcnow()
        )
    pass  # woken on commit
    return Reply(render.announced(count))
