"""Every reply text of the merchant plugin."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from models.tables import Item, Staff, Variant
from plugins._common.views import item_summary_line, local_time
from services.catalog import ItemPage, StockChange, VariantRef
from services.limits import ORDER_PAGE_SIZE
from services.money import format_fen
from services.order_rules import REQUEST_NAMES, status_name
from services.stats import ShopStats
from services.usecases.order_admin import OrderListing, PaymentInfo, RefundOutcome, RequestsDecided
from services.usecases.payments import PaymentOutcome

_STOCK_VERBS = {"add": "增加", "sub": "减少", "set": "设为"}


def item_created(item: Item, variant: Variant, category: str | None) -> str:
    lines = [
        f"已上架新品：{item.name}",
        f"商品编号：{item.id}",
        f"价格 {format_fen(variant.price_fen)}，库存 {variant.stock}",
    ]
    if category:
        lines.append(f"分类：{category}")
    lines.append(
        f"加规格：/规格 {item.id} <规格名> <价格> <库存>；加描述和图片：/描述 {item.id} <文字>"
    )
    return "\n".join(lines)


def variant_added(item: Item, variant: Variant) -> str:
    ref = VariantRef(item.id or 0, variant.position)
    return (
        f"已为“{item.name}”添加规格 {ref} {variant.name}："
        f"{format_fen(variant.price_fen)}，库存 {variant.stock}"
    )


def price_changed(item: Item, variant: Variant, old_price: int) -> str:
    ref = VariantRef(item.id or 0, variant.position)
    return (
        f"{ref} {item.name}（{variant.name}）价格：{format_fen(old_price)} → "
        f"{format_fen(variant.price_fen)}。已下的订单按原价不变。"
    )


def stock_changed(item: Item, variant: Variant, change: StockChange, old_stock: int) -> str:
    ref = VariantRef(item.id or 0, variant.position)
    verb = _STOCK_VERBS[change.mode]
    return (
        f"{ref} {item.name}（{variant.name}）库存{verb} {change.amount}："
        f"{old_stock} → {variant.stock}"
    )


def shelf_changed(item: Item, changed: bool) -> str:
    state = "上架" if item.listed else "下架"
    if not changed:
        return f"“{item.name}”（{item.id}）本来就是{state}状态。"
    if item.listed:
        return f"已上架“{item.name}”（{item.id}），顾客现在可以看到并下单。"
    return f"已下架“{item.name}”（{item.id}）。顾客看不到也不能再下单，已有订单不受影响。"


def description_set(item: Item, *, text_changed: bool, image_saved: bool) -> str:
    what = "描述和图片" if text_changed and image_saved else "图片" if image_saved else "描述"
    return f"已更新“{item.name}”（{item.id}）的{what}。发 /详情 {item.id} 查看效果。"


def category_set(item: Item, category: str) -> str:
    return f"已把“{item.name}”（{item.id}）归入分类“{category}”。"


def no_reason_set(item: Item) -> str:
    state = "支持" if item.no_reason_return else "不支持"
    return f"“{item.name}”（{item.id}）现在{state}七天无理由退货。"


def staff_list(rows: list[Staff], owners: frozenset[int]) -> str:
    lines = ["店主：" + ("、".join(str(o) for o in sorted(owners)) or "未设置（SUPERUSERS）")]
    if rows:
        lines.append("店员：" + "、".join(str(s.user_id) for s in rows))
    else:
        lines.append("还没有店员。")
    lines.append("添加：/店员 添加 <QQ号>；删除：/店员 删除 <QQ号>")
    return "\n".join(lines)


def staff_added(user_id: int) -> str:
    return f"已添加店员 {user_id}，对方现在可以使用店铺管理命令。"


def staff_removed(user_id: int) -> str:
    return f"已删除店员 {user_id}。"


def group_enabled(changed: bool) -> str:
    if not changed:
        return "本群已经启用了店铺。"
    return "已在本群启用店铺，群友可以发 /商品 浏览、/帮助 查看命令。"


def group_disabled(changed: bool) -> str:
    if not changed:
        return "本群本来就没有启用店铺。"
    return "已在本群停用店铺，之后本群的命令不再回应（/启用本群 可重新开启）。"


# --- orders -------------------------------------------------------------------------


def order_list(listing: OrderListing, zone: ZoneInfo) -> str:
    rows, total, page, status = listing.rows, listing.total, listing.page, listing.status
    title = f"订单（{status_name(status)}）" if status else "全部订单"
    if not rows:
        return f"{title}：没有订单。" if page == 1 else f"{title}：第 {page} 页没有订单。"
    pages = max(1, -(-total // ORDER_PAGE_SIZE))
    lines = [f"{title}（第 {page}/{pages} 页，共 {total} 个）："]
    for order, order_lines in rows:
        count = sum(line.quantity for line in order_lines)
        lines.append(
            f"订单号：{order.code} {status_name(order.status)} {format_fen(order.total_fen)} {count}件 "
            f"顾客 {order.user_id} {local_time(order.created_at, zone)}"
        )
    lines.append("发 /订单 <订单号> 查看详情")
    return "\n".join(lines)


def payment_recorded(outcome: PaymentOutcome) -> str:
    order = outcome.order
    if not outcome.recorded:
        return f"订单号：{order.code} 已经记录过收款，没有重复记录。"
    if outcome.revived:
        return (
            f"已确认收款：订单号：{order.code}，{format_fen(order.paid_fen)}。订单曾超时取消，"
            "现已恢复为待发货，库存已重新占用。已通知顾客，请尽快发货。"
        )
    return (
        f"已确认收款：订单号：{order.code}，{format_fen(order.paid_fen)}。已通知顾客，请尽快发货。"
    )


def requests_decided(decided: RequestsDecided) -> str:
    order = decided.order
    names = "、".join(REQUEST_NAMES[r.kind] for r in decided.requests)
    verdict = "已同意" if decided.approved else "已拒绝"
    text = f"订单号：{order.code} {verdict}：{names}。已通知顾客。"
    if decided.approved and any(r.kind == "cancel" for r in decided.requests):
        text += f"已全额退款 {format_fen(order.refunded_fen)}，库存已退回。"
    return text


def refund_done(outcome: RefundOutcome) -> str:
    order = outcome.order
    text = f"订单号：{order.code} 已退款 {format_fen(outcome.refunded_fen)}（累计 {format_fen(order.refunded_fen)}）。"
    return text + (
        "订单已关闭为已退款。"
        if outcome.fully
        else f"还可退 {format_fen(order.paid_fen - order.refunded_fen)}。"
    )


def payinfo_set(info: PaymentInfo) -> str:
    qr = "，收款码已保存" if info.has_qr else "，未设置收款码（发送时附一张图片即可）"
    return f"付款说明已更新{qr}。顾客发 /付款 <订单号> 时会看到：\n{info.text}"


def stats(result: ShopStats, zone: ZoneInfo) -> str:
    lines = [
        f"{result.label}统计（自 {local_time(result.since, zone)} 起）：",
        f"新订单 {result.orders} 个；付款 {result.paid_orders} 单，收入 {format_fen(result.revenue_fen)}",
        f"退款 {format_fen(result.refunds_fen)}；实收 {format_fen(result.revenue_fen - result.refunds_fen)}",
    ]
    if result.best_sellers:
        lines.append("热销：" + "，".join(f"{name} ×{sold}" for name, sold in result.best_sellers))
    lines.append(
        f"待发货 {result.to_ship} 单；待审核申请 {result.pending_requests} 个；处理中的售后工单 {result.open_tickets} 个"
    )
    return "\n".join(lines)


def delisted_page(page: ItemPage) -> str:
    if not page.items:
        if page.total and page.page > page.pages:
            return f"已下架商品只有 {page.pages} 页。发 /已下架 查看第 1 页。"
        return "没有已下架的商品。"
    lines = [f"已下架商品（第 {page.page}/{page.pages} 页，共 {page.total} 件）"]
    lines += [item_summary_line(item) for item in page.items]
    hint = "发 /上架 <商品编号> 重新上架，/详情 <商品编号> 查看规格和库存"
    if page.page < page.pages:
        hint += f"；发 /已下架 {page.page + 1} 看下一页"
    lines.append(hint)
    return "\n".join(lines)
