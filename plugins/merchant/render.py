"""Every reply text of the merchant plugin."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from models.tables import Item, Staff, Variant
from plugins._common.views import item_summary_line, local_time
from services.catalog import ItemPage, StockChange, VariantRef, line_name
from services.limits import ORDER_PAGE_SIZE
from services.money import format_fen
from services.order_rules import status_name
from services.stats import ShopStats
from services.usecases.card_keys import KeysCleared, KeysImported, KeyStock, VirtualSwitched
from services.usecases.catalog_admin import Deleted, DeletionAsked, Renamed
from services.usecases.epay import AlertReason, CheckResult, PaymentCheck
from services.usecases.order_admin import (
    OrderListing,
    PaymentInfo,
    Reconciliation,
    RefundOutcome,
)
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


def renamed(result: Renamed) -> str:
    item = result.item
    if result.variant is None:
        what = f"商品 {item.id}"
    else:
        what = f"商品“{item.name}”的规格 {VariantRef(item.id or 0, result.variant.position)}"
    if not result.changed:
        return f"{what} 本来就叫“{result.new_name}”，没有改动。"
    return (
        f"已把{what} 的名称从“{result.old_name}”改为“{result.new_name}”。"
        "已下的订单保留下单时的名称。"
    )


def _variant_line(item: Item, variant: Variant) -> str:
    ref = VariantRef(item.id or 0, variant.position)
    return f"{ref} {variant.name} {format_fen(variant.price_fen)} 库存 {variant.stock}"


def deletion_asked(asked: DeletionAsked, minutes: int) -> str:
    plan = asked.plan
    item = plan.item
    shelf = "" if item.listed else "（已下架）"
    if plan.whole_item:
        lines = [f"将删除商品 {item.id} {item.name}{shelf}，连同它的 {len(plan.variants)} 个规格："]
        lines += [_variant_line(item, variant) for variant in plan.variants]
    else:
        lines = [
            f"将删除商品 {item.id} {item.name}{shelf} 的规格：",
            _variant_line(item, plan.variants[0]),
            "其余规格的编号不变。",
        ]
    if plan.cart_lines:
        lines.append(f"顾客购物车里的 {plan.cart_lines} 条会一并移出。")
    if plan.guards:
        lines.append("它的限购和库存预警设置一并删除。")
    lines.append("从没有人下单过，可以删除；删除后不能恢复。")
    lines.append(f"确认请在 {minutes} 分钟内发送：确认删除\n发送“取消”或其他任何内容则不删除。")
    return "\n".join(lines)


def deleted(result: Deleted) -> str:
    plan = result.plan
    item = plan.item
    if plan.whole_item:
        text = f"已删除商品 {item.id} {item.name}（{len(plan.variants)} 个规格）。"
    else:
        variant = plan.variants[0]
        ref = VariantRef(item.id or 0, variant.position)
        text = f"已删除规格 {ref} {line_name(item.name, variant.name)}，其余规格编号不变。"
    if plan.cart_lines:
        text += f"已从顾客购物车移出 {plan.cart_lines} 条。"
    return text


def deletion_needs_word(ref: VariantRef | None) -> str:
    what = f" {ref}" if ref is not None else ""
    return f"要删除{what}请发送：确认删除\n不删除请发送：取消"


def deletion_kept(ref: VariantRef | None) -> str:
    if ref is None:
        return "没有等待确认的删除。"
    return f"好的，没有删除 {ref}。"


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
    if outcome.keys_delivered:
        return (
            f"已确认收款：订单号：{order.code}，{format_fen(order.paid_fen)}。"
            "卡密已自动私聊发给顾客，订单已完成，无需发货。"
        )
    if outcome.revived:
        return (
            f"已确认收款：订单号：{order.code}，{format_fen(order.paid_fen)}。订单曾超时取消，"
            "现已恢复为待发货，库存已重新占用。已通知顾客，请尽快发货。"
        )
    return (
        f"已确认收款：订单号：{order.code}，{format_fen(order.paid_fen)}。已通知顾客，请尽快发货。"
    )


_CHECK_RESULTS = {
    CheckResult.RECORDED: "已到账并记录",
    CheckResult.DUPLICATE: "已到账（之前已记录）",
    CheckResult.ALERTED: "已提醒店员",
    CheckResult.NOT_PAID: "未付款",
    CheckResult.EXPIRED: "未付款，已停止自动查询",
    CheckResult.UNREACHABLE: "网关无法访问",
    CheckResult.REJECTED: "网关拒绝",
}
_ALERT_REASONS = {
    AlertReason.UNKNOWN: "找不到对应订单",
    AlertReason.VOIDED: "订单付款后已改过数量",
    AlertReason.MISMATCH: "金额不符",
    AlertReason.ALREADY_PAID: "订单已付过款",
    AlertReason.CLOSED: "订单已关闭",
    AlertReason.STOCK_GONE: "超时取消后库存已售出，需手动退款",
}
RECONCILE_LINES_SHOWN = 20  # a clock-sized batch would flood the chat


def _check_line(check: PaymentCheck) -> str:
    outcome = _CHECK_RESULTS[check.result]
    if check.alert is not None:
        outcome += f"（{_ALERT_REASONS[check.alert]}）"
    if check.revived:
        outcome += "（订单曾超时取消，已恢复）"
    code = check.order_code or "未知"
    return f"订单号：{code}（付款单 {check.out_trade_no}）：{outcome}"


def reconciled(result: Reconciliation, every_minutes: float) -> str:
    if not result.automatic:
        return (
            "自动对账需要在线支付：设置 PAYMENT_PROVIDER=epay 并配置易支付网关。"
            "现在是手动收款，到账后请用 /收款 <订单号> 确认。"
        )
    checks = result.report.checks
    if not checks:
        if result.order_code is not None:
            return f"订单号：{result.order_code} 没有可查询的在线付款（顾客还没有发 /付款，或付款已处理完）。"
        return (
            "现在没有等待付款的在线付款单。"
            f"（平时每 {every_minutes:g} 分钟自动查询一次；已过期的付款单可用 /对账 <订单号> 再查）"
        )
    counts: dict[str, int] = {}
    for check in checks:
        name = _CHECK_RESULTS[check.result]
        counts[name] = counts.get(name, 0) + 1
    summary = "，".join(f"{name} {count} 笔" for name, count in counts.items())
    lines = [f"对账完成：查询了 {len(checks)} 笔付款：{summary}。"]
    lines += [_check_line(check) for check in checks[:RECONCILE_LINES_SHOWN]]
    if len(checks) > RECONCILE_LINES_SHOWN:
        lines.append(f"……另有 {len(checks) - RECONCILE_LINES_SHOWN} 笔未列出")
    return "\n".join(lines)


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


# --- virtual goods (card keys): /虚拟 /卡密 --------------------------------------------
# Keys themselves never appear here: staff see counts and masked samples only.


def virtual_set(result: VirtualSwitched) -> str:
    item = result.item
    if item.virtual:
        state = "已设为虚拟商品（卡密）" if result.changed else "本来就是虚拟商品（卡密）"
        return (
            f"商品 {item.id} {item.name} {state}：下单无需地址、无需发货，付款后卡密自动私聊发给顾客；"
            "库存就是未售出的卡密数。\n"
            f"导入卡密（仅私聊）：/卡密 导入 <规格编号>，换行后每行一个卡密。/详情 {item.id} 查看规格编号。"
        )
    state = "已改回实物商品" if result.changed else "本来就是实物商品"
    return f"商品 {item.id} {item.name} {state}。用 /库存 <规格编号> <数量> 设置库存。"


def keys_import_private_only() -> str:
    return (
        "卡密只能在私聊里导入，群里不会读取这条消息。"
        "发在群里的卡密可能已被别人看到，建议不要再出售这些卡密。"
    )


def keys_imported(result: KeysImported) -> str:
    name = line_name(result.item.name, result.variant.name)
    return (
        f"{result.ref} {name}：导入 {result.imported} 个卡密，跳过重复 {result.duplicates} 个，"
        f"现有库存 {result.stock}。"
    )


def key_stock(result: KeyStock) -> str:
    counts = result.counts
    name = line_name(result.item.name, result.variant.name)
    unused = counts.on_sale + counts.held
    lines = [f"{result.ref} {name} 的卡密："]
    held = f"（其中 {counts.held} 个被未付款订单占用）" if counts.held else ""
    lines.append(f"未售出 {unused} 个{held}，已售出 {counts.sold} 个，可售库存 {counts.on_sale}。")
    if counts.samples:
        lines.append("未售出的卡密（打码）：" + "、".join(counts.samples))
    else:
        lines.append(
            f"没有未售出的卡密。导入（仅私聊）：/卡密 导入 {result.ref}，换行后每行一个卡密。"
        )
    return "\n".join(lines)


def keys_cleared(result: KeysCleared) -> str:
    name = line_name(result.item.name, result.variant.name)
    text = f"{result.ref} {name}：已清空 {result.removed} 个未售出的卡密，可售库存为 0。已售出的卡密不受影响。"
    if result.held:
        text += f"另有 {result.held} 个被未付款订单占用，保留（订单超时取消后可再清空）。"
    return text
