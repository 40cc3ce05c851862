"""Merchant safeguards and the export: /拉黑 /解除拉黑 /黑名单 /限购 /预警 /导出."""

from __future__ import annotations

from plugins._common.context import CommandContext, Reply
from plugins._common.registry import command
from services.reports import EXPORT_PERIODS
from services.staff import Role
from services.usecases import reports, safeguards

from . import render_safeguards as render

AREA = "店铺管理"
EXPORT_AREA = "订单管理"


@command(
    "拉黑",
    aliases=("ban",),
    role=Role.STAFF,
    usage="拉黑 <QQ号> [原因]",
    example="拉黑 123456789 恶意占库存",
    summary="禁止某人下单、付款和申请售后（仍可浏览）",
    area=AREA,
)
async def ban(ctx: CommandContext) -> Reply:
    user_id = ctx.args.qq()
    reason = ctx.args.rest("原因", required=False)
    outcome = await safeguards.ban_customer(ctx.shop, ctx.caller, user_id, reason)
    return Reply(render.banned(outcome, in_group=ctx.in_group))


@command(
    "解除拉黑",
    aliases=("unban",),
    role=Role.STAFF,
    usage="解除拉黑 <QQ号>",
    example="解除拉黑 123456789",
    summary="把某人移出黑名单",
    area=AREA,
)
async def unban(ctx: CommandContext) -> Reply:
    user_id = ctx.args.qq()
    ctx.args.end()
    lifted = await safeguards.unban_customer(ctx.shop, ctx.caller, user_id)
    return Reply(render.unbanned(lifted, ctx.shop.settings.timezone, in_group=ctx.in_group))


@command(
    "黑名单",
    aliases=("bans",),
    role=Role.STAFF,
    usage="黑名单",
    example="黑名单",
    summary="被拉黑的 QQ 号、时间和原因",
    area=AREA,
)
async def ban_list(ctx: CommandContext) -> Reply:
    ctx.args.end()
    bans = await safeguards.list_bans(ctx.shop)
    return Reply(render.ban_list(bans, ctx.shop.settings.timezone, in_group=ctx.in_group))


@command(
    "限购",
    aliases=("limit",),
    role=Role.STAFF,
    usage="限购 <规格编号> <数量|0>",
    example="限购 1-2 2",
    summary="每位顾客最多买几件（未取消的订单合计），0 取消限购",
    area=AREA,
    details=("不带参数：查看已设置的限购和每人未付款订单上限",),
)
async def purchase_limit(ctx: CommandContext) -> Reply:
    if not ctx.args.has_more():
        return Reply(render.limits_overview(await safeguards.safeguards_overview(ctx.shop)))
    ref = ctx.args.variant_ref()
    limit = ctx.args.quantity(allow_zero=True)
    ctx.args.end()
    view = await safeguards.set_purchase_limit(ctx.shop, ref, limit)
    return Reply(render.limit_set(view))


@command(
    "预警",
    aliases=("alert",),
    role=Role.STAFF,
    usage="预警 <规格编号> <数量|0>",
    example="预警 1-2 5",
    summary="库存降到这个数或以下时提醒店员一次，0 取消",
    area=AREA,
    details=("不带参数：查看预警线和库存不足的规格",),
)
async def low_stock_alert(ctx: CommandContext) -> Reply:
    if not ctx.args.has_more():
        return Reply(render.alerts_overview(await safeguards.safeguards_overview(ctx.shop)))
    ref = ctx.args.variant_ref()
    threshold = ctx.args.quantity(allow_zero=True)
    ctx.args.end()
    view = await safeguards.set_low_stock_alert(ctx.shop, ref, threshold)
    return Reply(render.alert_set(view, ctx.shop.settings.low_stock_threshold))


@command(
    "导出",
    aliases=("export",),
    role=Role.STAFF,
    usage="导出 [今日|7天|30天|全部]",
    example="导出 7天",
    summary="把订单导出成表格文件（CSV，Excel/WPS 可打开），仅私聊",
    area=EXPORT_AREA,
)
async def export_orders(ctx: CommandContext) -> Reply:
    # Words to themselves: choice() takes a None value for an unknown word (全部 is None).
    word = (
        ctx.args.choice("时间范围", {w: w for w in EXPORT_PERIODS})
        if ctx.args.has_more()
        else "今日"
    )
    ctx.args.end()
    days = EXPORT_PERIODS[word]
    export = await reports.export_orders(ctx.shop, ctx.caller, days)
    if export.orders == 0:
        return Reply(render.nothing_to_export(days))
    if ctx.send_file is not None and await ctx.send_file(export.filename, export.content):
        return Reply(render.export_sent(export))
    return Reply(render.export_saved(export))
