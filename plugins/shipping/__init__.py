"""Shipping and tracking: /发货 /物流 /物流更新 /确认收货, and /公告."""

from __future__ import annotations

from plugins._common.context import CommandContext, Reply
from plugins._common.registry import command, plugin_metadata
from services.staff import Role
from services.tracking import check_tracking_number, normalise_carrier
from services.usecases import announcements, fulfilment

from . import render

AREA = "发货与物流"


def _tracked(ctx: CommandContext) -> bool:
    """Whether a provider polls parcels (TRACKING_PROVIDER=kuaidi100) or staff type them."""
    return ctx.shop.settings.tracking_provider != "manual"


@command(
    "发货",
    aliases=("ship",),
    role=Role.STAFF,
    usage="发货 <订单号> <快递公司> <运单号>",
    example="发货 2K7QH9M3XA 顺丰 SF1234567890",
    summary="发货并通知顾客（设置快递100后自动跟踪物流）",
    area=AREA,
)
async def ship(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    carrier = normalise_carrier(ctx.args.word("快递公司"))
    number = check_tracking_number(ctx.args.word("运单号"))
    ctx.args.end()
    shipped = await fulfilment.ship_order(ctx.shop, ctx.caller, code, carrier, number)
    return Reply(render.shipped(shipped.order, carrier.name, number, tracked=_tracked(ctx)))


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
    found = await fulfilment.view_tracking(ctx.shop, ctx.caller, code)
    zone = ctx.shop.settings.timezone
    return Reply(
        render.tracking(found.order, found.view, zone, in_group=ctx.in_group, tracked=_tracked(ctx))
    )


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
    updated = await fulfilment.update_tracking(ctx.shop, ctx.caller, code, text, signed)
    return Reply(
        render.event_added(
            updated.order,
            text,
            updated.event.state,
            signed=signed,
            coming_back=updated.coming_back,
            in_group=ctx.in_group,
        )
    )


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
    order = await fulfilment.confirm_receipt(ctx.shop, ctx.caller, code)
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
    announced = await announcements.announce(ctx.shop, ctx.caller, text)
    return Reply(render.announced(announced.groups))


# Last, after every @command above has registered: NoneBot reads it once the module ran.
__plugin_meta__ = plugin_metadata(
    __name__, name="发货与物流", description="发货、物流查询与更新、确认收货、群公告"
)
