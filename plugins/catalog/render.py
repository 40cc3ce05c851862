"""Every reply text of the catalog plugin."""

from __future__ import annotations

from collections.abc import Sequence

from plugins._common.views import item_summary_line, shown_in
from services.catalog import ItemDetail, ItemPage, ItemSummary
from services.limits import quote
from services.money import format_fen
from services.reports import BestSeller, TogetherItem
from services.reviews import ItemRating


def item_page(page: ItemPage, shop_name: str) -> str:
    title = f"{shop_name} · {page.category}" if page.category else shop_name
    if not page.items:
        if page.total and page.page > page.pages:
            return f"{title}：只有 {page.pages} 页商品。发 /商品 查看第 1 页。"
        return f"{title}：还没有在售商品。"
    lines = [f"{title} · 在售商品（第 {page.page}/{page.pages} 页，共 {page.total} 件）"]
    lines += [item_summary_line(item) for item in page.items]
    hint = "发 /详情 <商品编号> 查看规格和库存"
    if page.page < page.pages:
        category = f"{page.category} " if page.category else ""
        hint += f"；发 /商品 {category}{page.page + 1} 看下一页"
    lines.append(hint)
    return "\n".join(lines)


def categories(rows: list[tuple[str, int]]) -> str:
    if not rows:
        return "还没有商品分类。发 /商品 查看全部在售商品。"
    lines = ["商品分类："]
    lines += [f"{name}（{count} 件）" for name, count in rows]
    lines.append("发 /商品 <分类> 查看该分类的商品")
    return "\n".join(lines)


def search_results(query: str, items: list[ItemSummary]) -> str:
    if not items:
        return f"没有找到包含{quote(query)}的在售商品。换个关键词试试，或发 /商品 浏览全部。"
    lines = [f"搜索{quote(query)}找到 {len(items)} 件："]
    lines += [item_summary_line(item) for item in items]
    lines.append("发 /详情 <商品编号> 查看规格和库存")
    return "\n".join(lines)


def _rating_line(sold: int, rating: ItemRating | None) -> str:
    if rating is None or rating.count == 0 or rating.average is None:
        return f"已售 {sold} 件 · 暂无评价"
    return f"已售 {sold} 件 · 评分 {rating.average:.1f}/5（{rating.count} 条评价）"


def item_detail(
    detail: ItemDetail,
    *,
    show_shelf_state: bool,
    rating: ItemRating | None = None,
    in_group: bool = False,
    together: Sequence[TogetherItem] = (),
) -> str:
    item = detail.item
    header = f"【{item.id}】{item.name}"
    if show_shelf_state and not item.listed:
        header += "（已下架）"
    lines = [header]
    if detail.category:
        lines.append(f"分类：{detail.category}")
    if item.description:
        lines.append(item.description)
    lines.append("规格（规格编号 名称 价格 库存）：")
    for variant in detail.variants:
        stock = f"库存 {variant.stock}" if variant.stock > 0 else "售罄"
        lines.append(
            f"{detail.ref(variant)} {variant.name} {format_fen(variant.price_fen)} {stock}"
        )
    lines.append(_rating_line(detail.sold, rating))
    for review in rating.latest if rating else []:
        lines.append(f"  {'★' * review.rating} {shown_in(review.text, in_group=in_group)}")
    if item.virtual:
        # Card keys are sent on payment and cannot come back: no 退货/换货 (see
        # services.aftersales.check_eligible), so the 七天无理由退货 line would mislead.
        lines.append("虚拟商品：付款后自动发卡密，不支持退货/换货")
    else:
        lines.append("支持七天无理由退货" if item.no_reason_return else "不支持七天无理由退货")
    first = detail.variants[0] if detail.variants else None
    if first is not None and item.listed:
        lines.append(f"下单：/下单 {detail.ref(first)} [数量]")
    if together:
        lines.append("常一起买：" + "、".join(f"【{t.item_id}】{t.name}" for t in together))
    return "\n".join(lines)


def best_sellers(rows: Sequence[BestSeller], category: str | None, days: int) -> str:
    where = f"“{category}”分类" if category else ""
    if not rows:
        return f"近 {days} 天{where}还没有卖出的商品。发 /商品 逛逛。"
    lines = [f"近 {days} 天{where}热销："]
    for rank, row in enumerate(rows, 1):
        price = format_fen(row.min_price_fen) + ("起" if row.variant_count > 1 else "")
        sold_out = "  售罄" if row.stock <= 0 else ""
        lines.append(f"{rank}. 【{row.item_id}】{row.name}  {price}  售出 {row.sold} 件{sold_out}")
    lines.append("发 /详情 <商品编号> 查看规格和库存")
    return "\n".join(lines)
