"""Running the shop: catalog editing, staff, and where the shop answers."""

from __future__ import annotations

from plugins._common.context import CommandContext, Reply
from plugins._common.registry import Scope, command, plugin_metadata
from services.staff import Role
from services.usecases import catalog_admin

from . import card_keys as _card_keys  # noqa: F401  (registers /虚拟 and /卡密)
from . import orders as _orders  # noqa: F401  (registers the order commands)
from . import render
from . import safeguards as _safeguards  # noqa: F401  (/拉黑 /限购 /预警 /导出 …)

AREA = "店铺管理"
_ON_OFF = {"开": True, "关": False, "on": True, "off": False}
_STAFF_ACTIONS = {"添加": "add", "删除": "remove", "add": "add", "remove": "remove"}


@command(
    "新品",
    aliases=("new",),
    role=Role.STAFF,
    usage="新品 <名称> <价格> <库存> [分类]",
    example="新品 冷萃咖啡 39.9 50 咖啡",
    summary="新建商品（一个规格，直接上架）",
    area=AREA,
)
async def new_item(ctx: CommandContext) -> Reply:
    name = ctx.args.word("商品名称")
    price = ctx.args.price()
    stock = ctx.args.stock()
    category = ctx.args.optional_word()
    ctx.args.end()
    created = await catalog_admin.create_item(ctx.shop, name, price, stock, category)
    return Reply(render.item_created(created.item, created.variant, created.category))


@command(
    "规格",
    aliases=("variant",),
    role=Role.STAFF,
    usage="规格 <商品编号> <规格名> <价格> <库存>",
    example="规格 2 24杯装 69 20",
    summary="给商品添加规格",
    area=AREA,
)
async def add_variant(ctx: CommandContext) -> Reply:
    item_id = ctx.args.item_id()
    name = ctx.args.word("规格名")
    price = ctx.args.price()
    stock = ctx.args.stock()
    ctx.args.end()
    added = await catalog_admin.add_variant(ctx.shop, item_id, name, price, stock)
    return Reply(render.variant_added(added.item, added.variant))


@command(
    "改价",
    aliases=("price",),
    role=Role.STAFF,
    usage="改价 <规格编号> <价格>",
    example="改价 1-2 99.9",
    summary="修改规格价格（已下的订单不受影响）",
    area=AREA,
)
async def change_price(ctx: CommandContext) -> Reply:
    ref = ctx.args.variant_ref()
    price = ctx.args.price()
    ctx.args.end()
    result = await catalog_admin.set_price(ctx.shop, ref, price)
    return Reply(render.price_changed(result.item, result.variant, result.old_price_fen))


@command(
    "库存",
    aliases=("stock",),
    role=Role.STAFF,
    usage="库存 <规格编号> <+N|-N|N>",
    example="库存 1-2 +20",
    summary="增加、减少或设定库存",
    area=AREA,
)
async def change_stock(ctx: CommandContext) -> Reply:
    ref = ctx.args.variant_ref()
    change = ctx.args.stock_change()
    ctx.args.end()
    result = await catalog_admin.change_stock(ctx.shop, ref, change)
    return Reply(render.stock_changed(result.item, result.variant, result.change, result.old_stock))


async def _set_listed(ctx: CommandContext, listed: bool) -> Reply:
    item_id = ctx.args.item_id()
    ctx.args.end()
    result = await catalog_admin.set_listed(ctx.shop, item_id, listed)
    return Reply(render.shelf_changed(result.item, result.changed))


@command(
    "上架",
    aliases=("list",),
    role=Role.STAFF,
    usage="上架 <商品编号>",
    example="上架 4",
    summary="上架商品",
    area=AREA,
)
async def list_item(ctx: CommandContext) -> Reply:
    return await _set_listed(ctx, True)


@command(
    "下架",
    aliases=("delist",),
    role=Role.STAFF,
    usage="下架 <商品编号>",
    example="下架 4",
    summary="下架商品（已有订单不受影响）",
    area=AREA,
)
async def delist_item(ctx: CommandContext) -> Reply:
    return await _set_listed(ctx, False)


@command(
    "已下架",
    aliases=("delisted",),
    role=Role.STAFF,
    usage="已下架 [页码]",
    example="已下架 2",
    summary="已下架的商品，每页 10 件（找回后 /上架）",
    area=AREA,
)
async def list_delisted(ctx: CommandContext) -> Reply:
    page = ctx.args.page() if ctx.args.has_more() else 1
    ctx.args.end()
    return Reply(render.delisted_page(await catalog_admin.list_delisted(ctx.shop, page)))


@command(
    "描述",
    aliases=("describe",),
    role=Role.STAFF,
    usage="描述 <商品编号> <文字>（可附一张图片）",
    example="描述 1 中度烘焙，坚果风味",
    summary="设置商品描述和图片",
    area=AREA,
)
async def describe_item(ctx: CommandContext) -> Reply:
    item_id = ctx.args.item_id()
    text = ctx.args.rest("描述文字", required=not ctx.image_urls)
    image_url = ctx.image_urls[0] if ctx.image_urls else None
    result = await catalog_admin.describe_item(ctx.shop, item_id, text or None, image_url)
    return Reply(
        render.description_set(
            result.item, text_changed=result.text_changed, image_saved=result.image_saved
        )
    )


@command(
    "设分类",
    aliases=("setcat",),
    role=Role.STAFF,
    usage="设分类 <商品编号> <分类>",
    example="设分类 3 器具",
    summary="设置商品分类（没有的分类会新建）",
    area=AREA,
)
async def set_category(ctx: CommandContext) -> Reply:
    item_id = ctx.args.item_id()
    category = ctx.args.word("分类")
    ctx.args.end()
    item = await catalog_admin.set_category(ctx.shop, item_id, category)
    return Reply(render.category_set(item, category))


@command(
    "无理由",
    aliases=("noreason",),
    role=Role.STAFF,
    usage="无理由 <商品编号> <开|关>",
    example="无理由 2 关",
    summary="设置是否支持七天无理由退货",
    area=AREA,
)
async def set_no_reason(ctx: CommandContext) -> Reply:
    item_id = ctx.args.item_id()
    allowed = ctx.args.choice("开关", _ON_OFF)
    ctx.args.end()
    item = await catalog_admin.set_no_reason_return(ctx.shop, item_id, allowed)
    return Reply(render.no_reason_set(item))


@command(
    "店员",
    aliases=("staff",),
    role=Role.OWNER,
    usage="店员 [添加|删除 <QQ号>]",
    example="店员 添加 123456789",
    summary="查看、添加、删除店员（仅店主）",
    area=AREA,
)
async def manage_staff(ctx: CommandContext) -> Reply:
    if not ctx.args.has_more():
        roster = await catalog_admin.list_staff(ctx.shop)
        return Reply(render.staff_list(roster.staff, roster.owners))
    action = ctx.args.choice("操作", _STAFF_ACTIONS)
    user_id = ctx.args.qq()
    ctx.args.end()
    if action == "add":
        await catalog_admin.add_staff(ctx.shop, ctx.caller, user_id)
        return Reply(render.staff_added(user_id))
    await catalog_admin.remove_staff(ctx.shop, user_id)
    return Reply(render.staff_removed(user_id))


async def _set_group(ctx: CommandContext, enabled: bool) -> Reply:
    ctx.args.end()
    # Scope.GROUP_ONLY: the router only calls this from a group.
    changed = await catalog_admin.set_group_enabled(ctx.shop, ctx.caller, enabled)
    return Reply(render.group_enabled(changed) if enabled else render.group_disabled(changed))


@command(
    "启用本群",
    aliases=("enable",),
    role=Role.STAFF,
    usage="启用本群",
    example="启用本群",
    summary="让店铺在本群回应命令",
    area=AREA,
    scope=Scope.GROUP_ONLY,
    group_gate=False,
)
async def enable_group(ctx: CommandContext) -> Reply:
    return await _set_group(ctx, True)


@command(
    "停用本群",
    aliases=("disable",),
    role=Role.STAFF,
    usage="停用本群",
    example="停用本群",
    summary="店铺不再在本群回应",
    area=AREA,
    scope=Scope.GROUP_ONLY,
    group_gate=False,
)
async def disable_group(ctx: CommandContext) -> Reply:
    return await _set_group(ctx, False)


# Last, after every @command above has registered: NoneBot reads it once the module ran.
__plugin_meta__ = plugin_metadata(
    __name__,
    name="店铺管理",
    description="店主和店员的商品、库存、店员与群管理，以及订单、收款、退款与统计",
)
