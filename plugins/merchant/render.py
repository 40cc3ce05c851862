"""Every reply text of the merchant plugin."""

from __future__ import annotations

from models.tables import Item, Staff, Variant
from services.catalog import StockChange, VariantRef
from services.money import format_fen

_STOCK_VERBS = {"add": "增加", "sub": "减少", "set": "设为"}


def item_created(item: Item, variant: Variant, category: str | None) -> str:
    lines = [
        f"已上架新品：{item.name}",
        f"商品编号：{item.id}",
        f"价格 {format_fen(variant.price_fen)}，库存 {variant.stock}",
    ]
    if category:
        lines.append(f"分类：{category}")
    lines.append(f"加规格：/规格 {item.id} <规格名> <价格> <库存>；加描述和图片：/描述 {item.id} <文字>")
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
