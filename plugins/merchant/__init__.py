"""Running the shop: catalog editing, staff, and where the shop answers."""

from __future__ import annotations

from plugins._common.context import CommandContext, Reply
from plugins._common.errors import render_error
from plugins._common.registry import (
    DialogueMessage,
    Scope,
    command,
    dialogue,
    dialogue_probe,
    plugin_metadata,
)
from services.errors import DeletionLapse, DeletionNotPending
from services.staff import Role
from services.usecases import catalog_admin

from . import card_keys as _card_keys  # noqa: F401  (registers /虚拟 and /卡密)
from . import orders as _orders  # noqa: F401  (registers the order commands)
from . import render
from . import safeguards as _safeguards  # noqa: F401  (/拉黑 /限购 /预警 /导出 …)

AREA = "店铺管理"
_ON_OFF = {"开": True, "关": False, "on": True, "off": False}
_STAFF_ACTIONS = {"添加": "add", "删除": "remove", "add": "add", "remove": "remove"}
# Names with spaces go in quotes (plugins/_common/args.py reads them).
_QUOTING = '名称含空格时用引号括起来，"…"、“…”、「…」都可以，如 "iPhone 15 Pro"'


@command(
    "新品",
    aliases=("new",),
    role=Role.STAFF,
    usage="新品 <名称> <价格> <库存> [分类]",
    example='新品 "iPhone 15 Pro" 5999 10 手机',
    summary="新建商品（一个规格，直接上架）",
    area=AREA,
    details=(_QUOTING,),
)
async def new_item(ctx: CommandContext) -> Reply:
    name = ctx.args.name("商品名称")
    price = ctx.args.price()
    stock = ctx.args.stock()
    category = ctx.args.optional_name("分类")
    ctx.args.end()
    created = await catalog_admin.create_item(ctx.shop, name, price, stock, category)
    return Reply(render.item_created(created.item, created.variant, created.category))


@command(
    "规格",
    aliases=("variant",),
    role=Role.STAFF,
    usage="规格 <商品编号> <规格名> <价格> <库存>",
    example='规格 2 "大号 黑色" 69 20',
    summary="给商品添加规格",
    area=AREA,
    details=(_QUOTING,),
)
async def add_variant(ctx: CommandContext) -> Reply:
    item_id = ctx.args.item_id()
    name = ctx.args.name("规格名")
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
    details=(_QUOTING,),
)
async def set_category(ctx: CommandContext) -> Reply:
    item_id = ctx.args.item_id()
    category = ctx.args.name("分类")
    ctx.args.end()
    item = await catalog_admin.set_category(ctx.shop, item_id, category)
    return Reply(render.category_set(item, category))


@command(
    "改名",
    aliases=("rename",),
    role=Role.STAFF,
    usage="改名 <商品编号|规格编号> <新名称>",
    example='改名 1-2 "500g 礼盒装"',
    summary="修改商品名或规格名（已下的订单保留原名）",
    area=AREA,
    details=(
        "商品编号（如 12）改商品名，规格编号（如 12-2）改规格名",
        "新名称是最后一项，含空格时引号可加可不加",
    ),
)
async def rename(ctx: CommandContext) -> Reply:
    ref = ctx.args.variant_ref()
    name = ctx.args.rest_name("新名称")
    return Reply(render.renamed(await catalog_admin.rename(ctx.shop, ref, name)))


@command(
    "删除",
    aliases=("delete",),
    role=Role.STAFF,
    usage="删除 <商品编号|规格编号>",
    example="删除 5-3",
    summary="删除从没被下单的商品或规格（先确认）",
    area=AREA,
    details=(
        "商品编号（如 12）删除整个商品和它的规格，规格编号（如 12-2）只删这个规格，"
        "其余规格编号不变；商品唯一的规格不能单独删，请删除商品",
        "下过单的不能删除（订单要保留），请用 /下架；顾客购物车里的会一并移出",
        "发出后机器人列出要删除的内容，同一个人在同一个聊天里发“确认删除”才会删除，"
        "发“取消”或别的内容则不删除",
    ),
)
async def delete(ctx: CommandContext) -> Reply:
    ref = ctx.args.variant_ref()
    ctx.args.end()
    asked = await catalog_admin.ask_deletion(ctx.shop, ctx.caller, ref)
    minutes = max(1, round(ctx.shop.settings.confirm_timeout_seconds / 60))
    return Reply(render.deletion_asked(asked, minutes))


# Replies to a waiting /删除. Deleting takes the longer word on purpose; a bare 确认 is
# answered with how to confirm a deletion.
CONFIRM_DELETE_WORDS = frozenset({"确认删除", "确定删除"})
KEEP_WORDS = frozenset({"取消", "放弃", "cancel"})
BARE_CONFIRM_WORDS = frozenset({"确认", "确定", "confirm"})


@dialogue_probe
def _deletion_reply(message: DialogueMessage) -> str | None:
    """确认删除 (or 取消) from the staff member whose /删除 waits in this chat. Anything
    else they send there lets the deletion lapse: it is confirmed by the very next message
    or not at all. While an order summary of theirs waits in the same chat too, its 确认,
    取消 and address line are its own (plugins/ordering) and lapse nothing: plugins load
    in no fixed order, so this probe may be asked before or after the ordering one, and
    must answer alike."""
    deletions = message.runtime.shop.deletions
    if not deletions or deletions.get(message.group_id, message.user_id) is None:
        return None
    word = message.text.strip().lower()
    if word in CONFIRM_DELETE_WORDS:
        return "delete"
    if message.runtime.shop.drafts.get(message.group_id, message.user_id) is not None:
        return None
    if word in KEEP_WORDS:
        return "keep"
    if word in BARE_CONFIRM_WORDS:
        return "delete"
    deletions.pop(message.group_id, message.user_id)
    return None


@dialogue(
    "delete",
    area=AREA,
    usage="确认删除",
    example="确认删除",
    role=Role.STAFF,
    idle_reply=render_error(DeletionNotPending(DeletionLapse.NONE)),
)
async def confirm_delete(ctx: CommandContext) -> Reply:
    if ctx.word.strip().lower() in BARE_CONFIRM_WORDS:
        ref = catalog_admin.pending_deletion(ctx.shop, ctx.caller)
        return Reply(render.deletion_needs_word(ref))
    return Reply(render.deleted(await catalog_admin.confirm_deletion(ctx.shop, ctx.caller)))


@dialogue("keep", area=AREA, usage="取消", example="取消", role=Role.STAFF)
async def keep(ctx: CommandContext) -> Reply:
    return Reply(render.deletion_kept(catalog_admin.cancel_deletion(ctx.shop, ctx.caller)))


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
