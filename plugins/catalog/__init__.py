"""Browsing the catalog: /商品 /分类 /搜索 /详情."""

from __future__ import annotations

from nonebot.plugin import PluginMetadata

from plugins._common.args import is_integer_word
from plugins._common.context import CommandContext, Reply
from plugins._common.registry import command
from services import catalog, reviews
from services.media import load_image

from . import render

__plugin_meta__ = PluginMetadata(
    name="商品浏览",
    description="浏览、搜索在售商品，查看详情",
    usage="/商品 [分类] [页码]\n/分类\n/搜索 <关键词>\n/详情 <商品编号>",
)

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
    async with ctx.runtime.database.read() as session:
        result = await catalog.list_items(session, ctx.shop_id, category, page)
    return Reply(render.item_page(result, ctx.runtime.settings.shop_name))


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
    async with ctx.runtime.database.read() as session:
        rows = await catalog.list_categories(session, ctx.shop_id)
    return Reply(render.categories(rows))


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
    async with ctx.runtime.database.read() as session:
        items = await catalog.search_items(session, ctx.shop_id, query)
    return Reply(render.search_results(query.strip(), items))


@command(
    "详情",
    aliases=("item",),
    usage="详情 <商品编号>",
    example="详情 12",
    summary="商品描述、图片、各规格价格和库存",
    area=AREA,
)
async def item_detail(ctx: CommandContext) -> Reply:
    item_id = ctx.args.item_id()
    ctx.args.end()
    async with ctx.runtime.database.read() as session:
        detail = await catalog.item_detail(
            session, ctx.shop_id, item_id, include_delisted=ctx.is_staff
        )
        rating = await reviews.item_rating(session, item_id)
    image = (
        load_image(detail.item.image_path, ctx.shop.data_dir) if detail.item.image_path else None
    )
    return Reply(
        render.item_detail(
            detail, show_shelf_state=ctx.is_staff, rating=rating, in_group=ctx.in_group
        ),
        image=image,
    )
