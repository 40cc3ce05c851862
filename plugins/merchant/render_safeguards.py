"""Every reply text of the merchant's safeguard and export commands (safeguards.py)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from models.tables import Ban
from plugins._common.views import local_time, shown_in
from services.catalog import line_name
from services.safeguards import GuardView
from services.usecases.reports import OrderExport
from services.usecases.safeguards import BanOutcome, SafeguardsOverview

BANNED_MEANS = "TA 仍可浏览商品，但不能加购、下单、付款、修改订单或申请售后。"
_PERIOD_NAMES = {1: "今日", 7: "近 7 天", 30: "近 30 天", None: "全部"}
_UNPAID_SHOWN = 5


def _variant(view: GuardView) -> str:
    return f"{view.item_id}-{view.position} {line_name(view.item_name, view.variant_name)}"


def _reason(reason: str, *, in_group: bool) -> str:
    return f"，原因：{shown_in(reason, in_group=in_group)}" if reason else ""


def banned(outcome: BanOutcome, *, in_group: bool) -> str:
    ban = outcome.ban
    lines = [f"已拉黑 {ban.user_id}{_reason(ban.reason, in_group=in_group)}。{BANNED_MEANS}"]
    if outcome.unpaid_orders:
        codes = "、".join(outcome.unpaid_orders[:_UNPAID_SHOWN])
        more = " 等" if len(outcome.unpaid_orders) > _UNPAID_SHOWN else ""
        lines.append(
            f"TA 还有 {len(outcome.unpaid_orders)} 个未付款订单（{codes}{more}），"
            "超时未付款会自动取消并释放库存。"
        )
    lines.append(f"解除：/解除拉黑 {ban.user_id}")
    return "\n".join(lines)


def unbanned(ban: Ban, zone: ZoneInfo, *, in_group: bool) -> str:
    return (
        f"已解除 {ban.user_id} 的拉黑（{local_time(ban.banned_at, zone)} 由 {ban.banned_by} "
        f"拉黑{_reason(ban.reason, in_group=in_group)}）。TA 现在可以正常下单了。"
    )


def ban_list(bans: list[Ban], zone: ZoneInfo, *, in_group: bool) -> str:
    if not bans:
        return "黑名单是空的。拉黑：/拉黑 <QQ号> [原因]"
    lines = [f"黑名单（{len(bans)} 人）："]
    lines += [
        f"{ban.user_id}  {local_time(ban.banned_at, zone)} 由 {ban.banned_by} 拉黑"
        + _reason(ban.reason, in_group=in_group)
        for ban in bans
    ]
    lines.append("解除：/解除拉黑 <QQ号>")
    return "\n".join(lines)


def limit_set(view: GuardView) -> str:
    if view.purchase_limit is None:
        return f"已取消 {_variant(view)} 的限购。"
    return (
        f"已设置：{_variant(view)} 每人限购 {view.purchase_limit} 件"
        "（未取消、未退款的订单合计）。取消：/限购 "
        f"{view.item_id}-{view.position} 0"
    )


def alert_set(view: GuardView, shop_threshold: int) -> str:
    if view.own_threshold is None:
        fallback = (
            f"按全店预警线 {shop_threshold} 件提醒。"
            if shop_threshold > 0
            else "不再提醒（全店预警线未设置）。"
        )
        return f"已取消 {_variant(view)} 自己的预警线，{fallback}"
    text = (
        f"已设置库存预警：{_variant(view)} 库存降到 {view.own_threshold} 件或以下时，"
        "提醒店主和店员一次；补货超过后重新生效。"
    )
    if view.stock <= view.own_threshold:
        text += f"\n当前库存 {view.stock}，已在预警线以下（这次不再提醒）。"
    return text


def limits_overview(overview: SafeguardsOverview) -> str:
    cap = overview.max_unpaid_orders
    lines = [
        f"每人最多 {cap} 个未付款订单。" if cap else "未付款订单数：不限。",
    ]
    limited = [view for view in overview.guarded if view.purchase_limit is not None]
    if limited:
        lines.append("限购（每人，未取消、未退款的订单合计）：")
        lines += [f"{_variant(view)}  限 {view.purchase_limit} 件" for view in limited]
    else:
        lines.append("还没有限购的规格。")
    lines.append("设置：/限购 <规格编号> <数量>；取消：/限购 <规格编号> 0")
    return "\n".join(lines)


def _stock_state(view: GuardView) -> str:
    if view.stock <= 0:
        return "已售罄"
    text = f"只剩 {view.stock} 件"
    return text + (f"（预警线 {view.threshold}）" if view.threshold > 0 else "")


def alerts_overview(overview: SafeguardsOverview) -> str:
    shop_threshold = overview.shop_threshold
    lines = [
        f"全店预警线：{shop_threshold} 件（LOW_STOCK_THRESHOLD）"
        if shop_threshold
        else "全店预警线：未设置（LOW_STOCK_THRESHOLD=0）"
    ]
    own = [view for view in overview.guarded if view.own_threshold is not None]
    if own:
        lines.append("单独设置的预警线：")
        lines += [f"{_variant(view)}  {view.own_threshold} 件（库存 {view.stock}）" for view in own]
    if overview.low_stock:
        lines.append(f"库存不足（{len(overview.low_stock)} 个规格）：")
        lines += [f"{_variant(view)}  {_stock_state(view)}" for view in overview.low_stock]
    else:
        lines.append("没有售罄或低于预警线的规格。")
    lines.append("设置：/预警 <规格编号> <数量>；取消：/预警 <规格编号> 0")
    return "\n".join(lines)


def nothing_to_export(days: int | None) -> str:
    return f"{_PERIOD_NAMES[days]}还没有订单，没有可导出的内容。"


def export_sent(export: OrderExport) -> str:
    return (
        f"已发送{_PERIOD_NAMES[export.days]}的订单导出：{export.filename}"
        f"（{export.orders} 个订单），用 Excel 或 WPS 打开即可。"
    )


def export_saved(export: OrderExport) -> str:
    return (
        f"{_PERIOD_NAMES[export.days]}的订单已导出（{export.orders} 个订单），"
        "但当前 QQ 机器人端（OneBot 实现）不支持发送文件。\n"
        f"文件保存在机器人所在电脑：{export.saved_as}"
    )
