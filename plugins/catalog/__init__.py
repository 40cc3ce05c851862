"""Browsing the catalog: /商品 /分类 /搜索 /详情."""

from __future__ import annotations

from plugins._common.args import is_integer_word
from plugins._common.context import CommandContext, Reply
from plugins._common.registry import command, plugin_metadata
from services.usecases import catalog, reports

from . import render

AREA = "商品"


@command(
    "商品",
    aliases=("items",),
    usage="商品 [分类] [页码]",
    example="商品 咖啡 2",
    summary="在售商品，每页 10 件",
    area=AREA,
)
async def list_items(ctx: CommandContext) -> Reply:
    category = None
    if ctx.args.has_more() and not is_integer_word(ctx.args.peek()):
        category = ctx.args.word("分类")
    page = ctx.args.page() if ctx.args.has_more() else 1
    ctx.args.end()
    result = await catalog.list_items(ctx.shop, category, page)
    return Reply(render.item_page(result, ctx.shop.settings.shop_name))


@command(
    "分类",
    aliases=("categories",),
    usage="分类",
    example="分类",
    summary="商品分类和每类的件数",
    area=AREA,
)
async def list_categories(ctx: CommandContext) -> Reply:
    ctx.args.end()
    return Reply(render.categories(await catalog.list_categories(ctx.shop)))


@command(
    "搜索",
    aliases=("search",),
    usage="搜索 <关键词>",
    example="搜索 咖啡豆",
    summary="按名称或描述搜索商品",
    area=AREA,
)
async def search(ctx: CommandContext) -> Reply:
    query = ctx.args.rest("关键词")
    items = await catalog.search_items(ctx.shop, query)
    return Reply(render.search_results(query.strip(), items))


@command(
    "详情",
    aliases=("item",),
    usage="详情 <商品编号>",
    example="详情 1",
    summary="商品描述、图片、各规格价格和库存",
    area=AREA,
)
async def item_detail(ctx: CommandContext) -> Reply:
    item_id = ctx.args.item_id()
    ctx.args.end()
    view = await catalog.item_detail(ctx.shop, ctx.caller, item_id)
    return Reply(
        render.item_detail(
            view.detail,
            show_shelf_state=ctx.is_staff,
            rating=view.rating,
            in_group=ctx.in_group,
            together=view.together,
        ),
        image=view.image,
    )


@command(
    "热销",
    aliases=("top",),
    usage="热销 [分类]",
    example="热销 咖啡",
    summary="近 30 天卖得最多的商品",
    area=AREA,
)
async def best_sellers(ctx: CommandContext) -> Reply:
    category = ctx.args.word("分类") if ctx.args.has_more() else None
    ctx.args.end()
    result = await reports.best_sellers(ctx.shop, category)
    return Reply(render.best_sellers(result.rows, result.category, result.days))


# Last, after every @command above has registered: NoneBot reads it once the module ran.
__plugin_meta__ = plugin_metadata(
    __name__, name="商品浏览", description="浏览、搜索在售商品，查看详情"
)
