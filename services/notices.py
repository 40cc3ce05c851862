"""The text of every notice the shop sends on its own (through the outbox), and who
gets it. Group notices @-mention the customer and never carry phone or address."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import ShopOrder

from . import groups, outbox, staff
from .limits import FIELD_ANNOUNCEMENT, MAX_ANNOUNCEMENT, check_text
from .money import format_fen
from .order_rules import REQUEST_NAMES
from .outbox import Segment, Target
from .privacy import mask_phones_in


def chat_target(user_id: int, group_id: int | None) -> Target:
    """Where a customer hears about an order or ticket: the chat it came from."""
    return Target.group(group_id) if group_id else Target.private(user_id)


def chat_segments(user_id: int, group_id: int | None, body: str) -> list[Segment]:
    if group_id:
        # Anything bound for a group @-mentions the customer and passes the phone mask
        # (tracking texts and staff replies may carry one).
        return [outbox.at(user_id), outbox.text(" " + mask_phones_in(body))]
    return [outbox.text(body)]


async def to_chat(
    session: AsyncSession, user_id: int, group_id: int | None, body: str, key: str, now: datetime
) -> bool:
    return await outbox.enqueue(
        session, chat_target(user_id, group_id), chat_segments(user_id, group_id, body), key, now
    )


async def to_customer(
    session: AsyncSession, order: ShopOrder, body: str, key: str, now: datetime
) -> bool:
    return await to_chat(
        session, order.user_id, order.group_id, body, f"order:{order.code}:{key}", now
    )


async def to_staff(
    session: AsyncSession, shop_id: int, owners: frozenset[int], body: str, key: str, now: datetime
) -> None:
    """Privately to every owner and staff member, once per key and person."""
    for user_id in sorted(owners | await staff.staff_ids(session, shop_id)):
        await outbox.enqueue(
            session, Target.private(user_id), [outbox.text(body)], f"{key}:staff:{user_id}", now
        )


def order_expired(order: ShopOrder) -> str:
    return f"订单号：{order.code} 超时未付款，已自动取消，库存已释放。需要的话请重新下单。"


def payment_reminder(order: ShopOrder, minutes_left: int) -> str:
    return (
        f"订单号：{order.code} 还未付款（{format_fen(order.total_fen)}），约 {minutes_left} 分钟后自动取消。"
        f"付款方式：/付款 {order.code}"
    )


def payment_received(order: ShopOrder, *, revived: bool = False) -> str:
    if revived:
        return f"订单号：{order.code} 超时取消后收到了你的付款 {format_fen(order.paid_fen)}，订单已恢复，我们会尽快发货。"
    return f"订单号：{order.code} 已确认收款 {format_fen(order.paid_fen)}，我们会尽快发货。"


def request_decided(order: ShopOrder, kind: str, approved: bool, reason: str) -> str:
    what = REQUEST_NAMES[kind]
    verdict = "已同意" if approved else "未通过"
    text = f"订单号：{order.code} 的{what}申请{verdict}。"
    if approved and kind == "cancel":
        text += f"已全额退款 {format_fen(order.refunded_fen)}。"
    if reason:
        text += f"说明：{reason}"
    return text


def refunded(order: ShopOrder, amount_fen: int, fully: bool) -> str:
    text = f"订单号：{order.code} 已退款 {format_fen(amount_fen)}"
    return text + ("，订单已关闭。" if fully else "。")


def new_order_for_staff(order: ShopOrder) -> str:
    where = f"群 {order.group_id}" if order.group_id else "私聊"
    return f"新订单 订单号：{order.code}，{format_fen(order.total_fen)}，顾客 {order.user_id}（{where}），待付款。"


def request_for_staff(order: ShopOrder, kind: str, reason: str) -> str:
    what = REQUEST_NAMES[kind] + ("（已付款）" if kind == "cancel" else "")
    text = f"订单号：{order.code} 顾客申请{what}"
    text += f"，原因：{reason}" if reason else ""
    return text + f"。处理：/审核 {order.code} 同意 或 /审核 {order.code} 拒绝 <原因>"


def shipped(order: ShopOrder, carrier: str, number: str) -> str:
    return f"订单号：{order.code} 已发货：{carrier} {number}。发 /物流 {order.code} 查看物流。"


def tracking_update(order: ShopOrder, text: str) -> str:
    return f"订单号：{order.code} 物流更新：{text}"


def delivered(order: ShopOrder) -> str:
    return (
        f"订单号：{order.code} 已签收。收到货没问题请发 /确认收货 {order.code}；有问题可发 /售后。"
    )


def auto_completed(order: ShopOrder) -> str:
    return f"订单号：{order.code} 已自动确认收货，订单完成。感谢惠顾！欢迎 /评价 {order.code} <1-5> 说说感受。"


async def announce(
    session: AsyncSession, shop_id: int, shop_name: str, text: str, now: datetime
) -> int:
    """Queues the announcement for every enabled group of the shop (the outbox paces
    them); returns how many groups. The text goes out as plain text, CQ codes and all."""
    body = announcement(shop_name, check_text(FIELD_ANNOUNCEMENT, text, MAX_ANNOUNCEMENT))
    targets = sorted(await groups.enabled_group_ids(session, shop_id))
    for group_id in targets:
        await outbox.enqueue(
            session,
            Target.group(group_id),
            [outbox.text(body)],
            f"announce:{now.timestamp()}:{group_id}",
            now,
        )
    return len(targets)


def announcement(shop_name: str, text: str) -> str:
    return f"【{shop_name} 公告】{text}"
