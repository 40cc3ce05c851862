"""The text of every notice the shop sends on its own (through the outbox), and who
gets it. Group notices @-mention the customer and never carry phone or address."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import (
    DEFAULT_SHOP_ID,
    OrderRequest,
    ShopOrder,
    Ticket,
    TicketKind,
    TicketStatus,
)

from . import groups, outbox, staff
from .aftersales import KIND_NAMES, RETURN_SHIP_DAYS
from .card_keys import CARD_KEYS_SEGMENT, LineKeys
from .catalog import line_name
from .money import format_fen
from .order_rules import REQUEST_NAMES
from .outbox import Segment, Target
from .privacy import courier_text_for_group, mask_phones_in
from .reports import REPORT_LOW_STOCK_LINES, DailyReport
from .safeguards import GuardView
from .tracking import FailureKind, state_name


def chat_target(user_id: int, group_id: int | None) -> Target:
    """Where a customer hears about an order or ticket: the chat it came from."""
    return Target.group(group_id) if group_id else Target.private(user_id)


def chat_segments(user_id: int, group_id: int | None, body: str) -> list[Segment]:
    if group_id:
        # Anything bound for a group @-mentions the customer and passes the phone mask
        # (tracking texts and staff replies may carry one).
        return [outbox.at(user_id), outbox.text(" " + mask_phones_in(body))]
    return [outbox.text(body)]


async def customer_group(session: AsyncSession, shop_id: int, group_id: int | None) -> int | None:
    """The group a customer's notice about an order or ticket goes to, None for a private
    message: the group it came from, unless the shop has since been switched off there
    (/停用本群). That group no longer hears the shop, so the customer hears it privately.
    Decided when the notice is queued, so it follows the group's state of the moment."""
    if group_id and await groups.group_disabled(session, shop_id, group_id):
        return None
    return group_id


async def to_chat(
    session: AsyncSession,
    user_id: int,
    group_id: int | None,
    body: str,
    key: str,
    now: datetime,
    *,
    shop_id: int = DEFAULT_SHOP_ID,
) -> bool:
    """To the customer in `group_id` (or privately), see `customer_group`."""
    group_id = await customer_group(session, shop_id, group_id)
    return await outbox.enqueue(
        session, chat_target(user_id, group_id), chat_segments(user_id, group_id, body), key, now
    )


async def to_customer(
    session: AsyncSession, order: ShopOrder, body: str, key: str, now: datetime
) -> bool:
    return await to_chat(
        session,
        order.user_id,
        order.group_id,
        body,
        f"order:{order.code}:{key}",
        now,
        shop_id=order.shop_id,
    )


async def to_staff(
    session: AsyncSession,
    shop_id: int,
    owners: frozenset[int],
    body: str,
    key: str,
    now: datetime,
    images: Sequence[str] = (),
    *,
    except_user: int | None = None,
    staff_ids: Collection[int] | None = None,
) -> None:
    """Privately to every owner and staff member, once per key and person; `images`
    (paths under DATA_DIR, e.g. a ticket's evidence) follow the text. `except_user`: the
    staff member whose own action this reports, who needs no message about it.
    `staff_ids`: the staff as the caller already knows them (the 确认 hot path passes
    `shop.access.staff_ids()`, saving a query); None reads them here."""
    segments = [outbox.text(body), *(outbox.image_file(path) for path in images)]
    if staff_ids is None:
        staff_ids = await staff.staff_ids(session, shop_id)
    for user_id in sorted(owners | set(staff_ids)):
        if user_id == except_user:
            continue
        await outbox.enqueue(
            session, Target.private(user_id), segments, f"{key}:staff:{user_id}", now
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


async def tell_requests_decided(
    session: AsyncSession,
    order: ShopOrder,
    decided: Sequence[OrderRequest],
    approved: bool,
    reason: str,
    now: datetime,
) -> None:
    """The customer hears about each decided request once (staff's /审核 or the clock)."""
    for request in decided:
        await to_customer(
            session,
            order,
            request_decided(order, request.kind, approved, reason),
            f"request:{request.id}",
            now,
        )


def refunded(order: ShopOrder, amount_fen: int, fully: bool) -> str:
    text = f"订单号：{order.code} 已退款 {format_fen(amount_fen)}"
    return text + ("，订单已关闭。" if fully else "。")


# --- merchant order administration (staff side) ---------------------------------------


def paid_order_for_staff(order: ShopOrder) -> str:
    """A payment that staff did not record themselves (gateway, reconciliation)."""
    return (
        f"订单号：{order.code} 已付款 {format_fen(order.paid_fen)}，顾客 {order.user_id}，"
        f"请尽快发货：/发货 {order.code} <快递公司> <运单号>"
    )


def new_order_for_staff(order: ShopOrder) -> str:
    where = f"群 {order.group_id}" if order.group_id else "私聊"
    return f"新订单 订单号：{order.code}，{format_fen(order.total_fen)}，顾客 {order.user_id}（{where}），待付款。"


def request_for_staff(order: ShopOrder, kind: str, reason: str) -> str:
    what = REQUEST_NAMES[kind] + ("（已付款）" if kind == "cancel" else "")
    text = f"订单号：{order.code} 顾客申请{what}"
    text += f"，原因：{reason}" if reason else ""
    return text + f"。处理：/审核 {order.code} 同意 或 /审核 {order.code} 拒绝 <原因>"


# --- shipping (services/usecases/fulfilment.py, the clocks) ----------------------------


def shipped(order: ShopOrder, carrier: str, number: str) -> str:
    return f"订单号：{order.code} 已发货：{carrier} {number}。发 /物流 {order.code} 查看物流。"


def tracking_update(order: ShopOrder, text: str, state: str | None = None) -> str:
    """A courier's (or staff's) event text in full in private chats, `state` (a
    TrackingState value) named before it when the provider gave one; a group gets the
    state and the city only, whatever the text says (name, address, phone)."""
    if order.group_id:
        return f"订单号：{order.code} 物流更新：{courier_text_for_group(text, state)}"
    shown = f"{state_name(state)}：{text}" if state else text
    return f"订单号：{order.code} 物流更新：{shown}"


def parcel_back_for_staff(
    order: ShopOrder, carrier: str, number: str, state: str, text: str
) -> str:
    """A parcel going back to the shop (退回, 退签, 拒签): privately to staff, the courier's
    text in full."""
    return (
        f"【包裹退回】订单号：{order.code}（顾客 {order.user_id}）{carrier} {number} "
        f"{state_name(state)}：{text}\n包裹不会送到顾客手里，订单也不会自动完成。"
        f"请联系顾客，重新发货或 /退款 {order.code}。"
    )


_TRACKING_SETUP = "修好之前物流不会自动更新，可用 /物流更新 手动记录。"


def tracking_settings_failed_for_staff(kind: FailureKind, message: str) -> str:
    """The tracking provider refuses every query (`kind`: one of SETTINGS_FAILURES);
    `message` is the provider's own word, never the key."""
    said = f"（{message[:60]}）" if message else ""
    match kind:
        case FailureKind.BAD_KEY:
            head = f"快递100 密钥无效{said}：请检查 KUAIDI100_CUSTOMER 和 KUAIDI100_KEY。"
        case FailureKind.QUOTA:
            head = f"快递100 额度用完或密钥已过期{said}：请到快递100 后台充值或续期。"
        case _:
            head = f"物流查询设置有误{said}：请检查 TRACKING_PROVIDER 和快递100 的设置。"
    return f"【物流查询失败】{head}{_TRACKING_SETUP}"


def tracking_unavailable_for_staff(failures: int) -> str:
    return (
        f"【物流查询失败】快递100 已连续 {failures} 次查询失败（网络或快递100 服务暂时不可用），"
        "物流暂时不会自动更新，会继续自动重试。一直这样的话请检查网络。"
    )


def tracking_rejected_for_staff(
    order: ShopOrder, carrier: str, number: str, code: str, message: str
) -> str:
    """kuaidi100 refuses this one shipment for good: polling it stopped."""
    said = f"（{message[:60]}）" if message else ""
    match code:
        case "408":
            why = f"快递100 要求核对收件人手机号，查询被拒{said}"
        case "400":
            why = f"快递100 不认识这个快递公司或单号{said}"
        case _:
            why = f"快递100 拒绝查询{said}"
    return (
        f"【物流查询失败】订单号：{order.code} {carrier} {number}：{why}，已停止自动查询。"
        f"请核对快递公司和单号，之后用 /物流更新 {order.code} <描述> 手动记录。"
    )


def delivered(order: ShopOrder) -> str:
    return (
        f"订单号：{order.code} 已签收。收到货没问题请发 /确认收货 {order.code}；有问题可发 /售后。"
    )


def auto_completed(order: ShopOrder) -> str:
    return f"订单号：{order.code} 已自动确认收货，订单完成。感谢惠顾！欢迎 /评价 {order.code} <1-5> 说说感受。"


# --- announcements (services/usecases/announcements.py) -------------------------------


def announcement(shop_name: str, text: str) -> str:
    return f"【{shop_name} 公告】{text}"


# --- after-sales tickets (services/usecases/tickets.py, aftersales.run_ticket_clocks) ---


async def ticket_to_customer(
    session: AsyncSession, ticket: Ticket, body: str, key: str, now: datetime
) -> bool:
    """To the chat the ticket was opened in (privately once that group is switched off)."""
    return await to_chat(
        session,
        ticket.user_id,
        ticket.group_id,
        body,
        f"ticket:{ticket.code}:{key}",
        now,
        shop_id=ticket.shop_id,
    )


async def ticket_to_staff(
    session: AsyncSession,
    ticket: Ticket,
    owners: frozenset[int],
    body: str,
    key: str,
    now: datetime,
    images: Sequence[str] = (),
) -> None:
    """Privately to owners and staff, with the customer's evidence images (stored copies)."""
    await to_staff(
        session, ticket.shop_id, owners, body, f"ticket:{ticket.code}:{key}", now, images
    )


async def ticket_to_owners(
    session: AsyncSession,
    ticket: Ticket,
    owners: frozenset[int],
    body: str,
    key: str,
    now: datetime,
) -> None:
    """Privately to each owner only (staff were reminded already), once per key and owner."""
    for owner in sorted(owners):
        await outbox.enqueue(
            session,
            Target.private(owner),
            [outbox.text(body)],
            f"ticket:{ticket.code}:{key}:{owner}",
            now,
        )


def _ticket_kind(ticket: Ticket) -> str:
    return KIND_NAMES[TicketKind(ticket.kind)]


def new_ticket_for_staff(ticket: Ticket, order_code: str) -> str:
    return f"新售后 工单号：{ticket.code}（{_ticket_kind(ticket)}，订单号：{order_code}，顾客 {ticket.user_id}）：{ticket.reason}"


def ticket_message_for_staff(ticket: Ticket, text: str) -> str:
    return f"工单号：{ticket.code} 顾客留言：{text}"


def return_shipped_for_staff(ticket: Ticket, carrier: str, number: str) -> str:
    return f"工单号：{ticket.code} 顾客已寄回：{carrier} {number}"


def ticket_reply(ticket: Ticket, text: str) -> str:
    return f"工单号：{ticket.code} 店家回复：{text}"


def _ticket_decision(ticket: Ticket, verdict: str, reason: str) -> str:
    text = f"工单号：{ticket.code}（{_ticket_kind(ticket)}）{verdict}"
    return text + (f"。说明：{reason}" if reason else "。")


def ticket_approved(ticket: Ticket, amount_fen: int, refunded: bool) -> str:
    if refunded:
        verdict = f"已同意并退款 {format_fen(amount_fen)}"
    elif TicketStatus(ticket.status) is TicketStatus.AWAITING_RETURN:
        verdict = "已同意，请按店家说明寄回，并发 /退货单号 <工单号> <快递公司> <运单号>"
    else:
        verdict = "已同意"
    return _ticket_decision(ticket, verdict, "")


def ticket_rejected(ticket: Ticket, reason: str) -> str:
    return _ticket_decision(ticket, "未通过", reason)


def ticket_completed(ticket: Ticket, amount_fen: int, refunded: bool) -> str:
    verdict = f"已完成，退款 {format_fen(amount_fen)}" if refunded else "已完成"
    return _ticket_decision(ticket, verdict, "")


def ticket_reminder_for_staff(ticket: Ticket) -> str:
    return f"工单号：{ticket.code}（{_ticket_kind(ticket)}）已等待处理超过时限，请尽快 /同意 或 /拒绝。"


def ticket_escalation(ticket: Ticket) -> str:
    return f"【升级】工单号：{ticket.code}（{_ticket_kind(ticket)}）长时间无人处理，顾客 {ticket.user_id}。"


def ticket_return_expired(ticket: Ticket) -> str:
    return f"工单号：{ticket.code} 同意退换后 {RETURN_SHIP_DAYS} 天内没有收到退货单号，工单已关闭。如仍需处理请重新发 /售后。"


# --- EPay (services/usecases/epay.py): money the gateway took that pays no order -------
# To staff, once per payment and reason. `money` is the gateway's own amount ("10.00").

_EPAY_CHECK = "请到支付平台后台核对这笔交易"


def epay_unknown_payment(out_trade_no: str, trade_no: str, money: str) -> str:
    return (
        f"【支付异常】收到一笔付款 ¥{money}（商户单号 {out_trade_no}，平台单号 {trade_no}），"
        f"但找不到对应的订单。{_EPAY_CHECK}，必要时手动退款。"
    )


def epay_voided_payment(order_code: str, out_trade_no: str, trade_no: str, money: str) -> str:
    return (
        f"【支付异常】订单号：{order_code} 改过数量后，顾客仍按旧金额付了 ¥{money}"
        f"（商户单号 {out_trade_no}，平台单号 {trade_no}），订单没有改动。"
        f"{_EPAY_CHECK}，退款或补差价后用 /收款 {order_code} 手动确认。"
    )


def epay_amount_mismatch(
    order_code: str, out_trade_no: str, trade_no: str, money: str, expected_fen: int
) -> str:
    return (
        f"【支付异常】订单号：{order_code} 收到 ¥{money}，应付 {format_fen(expected_fen)}"
        f"（商户单号 {out_trade_no}，平台单号 {trade_no}），金额不符，订单没有改动。"
        f"{_EPAY_CHECK}，处理后可用 /收款 {order_code} 手动确认。"
    )


def epay_second_payment(order_code: str, out_trade_no: str, trade_no: str, money: str) -> str:
    return (
        f"【重复付款】订单号：{order_code} 已付过款，又收到一笔 ¥{money}"
        f"（商户单号 {out_trade_no}，平台单号 {trade_no}）。{_EPAY_CHECK}，并把多付的钱退给顾客。"
    )


def epay_closed_order_paid(
    order_code: str, status_name: str, out_trade_no: str, trade_no: str, money: str
) -> str:
    return (
        f"【支付异常】订单号：{order_code} 已{status_name}，却收到一笔付款 ¥{money}"
        f"（商户单号 {out_trade_no}，平台单号 {trade_no}），订单没有改动。{_EPAY_CHECK}，并手动退款。"
    )


def epay_late_payment_stock_gone(
    order_code: str, item_name: str, available: int, out_trade_no: str, trade_no: str, money: str
) -> str:
    return (
        f"【需要退款】订单号：{order_code} 超时取消后才收到付款 ¥{money}"
        f"（商户单号 {out_trade_no}，平台单号 {trade_no}），但“{item_name}”只剩 {available} 件，"
        f"订单无法恢复。请在支付平台后台手动退款给顾客，或补库存后 /收款 {order_code}。"
    )


# --- card keys (services/usecases/card_keys.py; delivered inside record_payment) --------
# Keys go to their buyer by private message only. The outbox row holds a reference
# segment, never a key: the dispatcher renders `card_keys_for_buyer` when it sends it.


def card_keys_segment(order: ShopOrder, page: int = 1) -> Segment:
    return {"type": CARD_KEYS_SEGMENT, "data": {"order": order.code, "page": page}}


async def card_keys_to_buyer(
    session: AsyncSession, order: ShopOrder, pages: int, now: datetime
) -> None:
    """The order's keys, privately to its buyer (whichever chat the order came from), one
    message per page (services/card_keys.paginate)."""
    for page in range(1, max(1, pages) + 1):
        suffix = "" if page == 1 else f":{page}"
        await outbox.enqueue(
            session,
            Target.private(order.user_id),
            [card_keys_segment(order, page)],
            f"order:{order.code}:keys{suffix}",
            now,
        )


def card_keys_for_buyer(order: ShopOrder, lines: list[LineKeys], page: int, pages: int) -> str:
    if page == 1:
        head = (
            f"订单号：{order.code} 已确认收款 {format_fen(order.paid_fen)}，"
            "你购买的卡密如下（请妥善保存，不要发到群里）："
        )
    else:
        head = f"订单号：{order.code} 的卡密（续）："
    out = [head + (f"（第 {page}/{pages} 条）" if pages > 1 else "")]
    for line in lines:
        out.append(f"【{line.name}】")
        out.extend(line.keys)
    out.append(f"需要再次查看，请私聊我发送 /提货 {order.code}")
    return "\n".join(out)


def card_keys_sent_privately(order: ShopOrder) -> str:
    """To the group an order came from: never the keys themselves."""
    return (
        f"订单号：{order.code} 已确认收款，卡密已私聊发送，请查收。"
        f"没收到的话，请先加我为好友，再私聊我发送 /提货 {order.code}"
    )


def card_keys_paid_for_staff(order: ShopOrder) -> str:
    return (
        f"订单号：{order.code} 已付款 {format_fen(order.paid_fen)}，顾客 {order.user_id}，"
        "卡密已自动私聊发放，订单已完成，无需发货。"
    )


# --- safeguards and reports (services/safeguards.py, services/usecases/reports.py) ------


def owner_keys(key: str, owners: frozenset[int]) -> list[str]:
    """The dedupe keys `to_owners` gives each owner's copy of `key`."""
    return [f"{key}:owner:{owner}" for owner in sorted(owners)]


async def to_owners(
    session: AsyncSession, owners: frozenset[int], body: str, key: str, now: datetime
) -> None:
    """Privately to each owner (SUPERUSERS), once per key and owner."""
    for owner, owner_key in zip(sorted(owners), owner_keys(key, owners), strict=True):
        await outbox.enqueue(session, Target.private(owner), [outbox.text(body)], owner_key, now)


def _stock_state(view: GuardView) -> str:
    if view.stock <= 0:
        return "已售罄"
    shown = f"只剩 {view.stock} 件"
    return shown + (f"（预警线 {view.threshold}）" if view.threshold > 0 else "")


def _variant_ref(view: GuardView) -> str:
    return f"{view.item_id}-{view.position} {line_name(view.item_name, view.variant_name)}"


def low_stock_for_staff(view: GuardView) -> str:
    return (
        f"库存预警：{_variant_ref(view)} {_stock_state(view)}。"
        f"补货：/库存 {view.item_id}-{view.position} +<数量>"
    )


def daily_report(report: DailyReport, zone: ZoneInfo) -> str:
    since = report.since.astimezone(zone).strftime("%m-%d %H:%M")
    until = report.until.astimezone(zone).strftime("%m-%d %H:%M")
    lines = [
        f"【日报】{report.day.isoformat()}（{since} 至 {until}）",
        f"新订单 {report.orders} 个",
        f"收款 {report.paid_orders} 笔，共 {format_fen(report.revenue_fen)}",
        f"退款 {report.refunds} 笔，共 {format_fen(report.refunded_fen)}",
        f"售后工单：新开 {report.new_tickets} 个，未结束 {report.open_tickets} 个",
    ]
    if not report.low_stock:
        lines.append("库存：没有售罄或低于预警线的规格")
    else:
        lines.append(f"库存不足（{len(report.low_stock)} 个规格）：")
        shown = report.low_stock[:REPORT_LOW_STOCK_LINES]
        lines += [f"  {_variant_ref(view)} {_stock_state(view)}" for view in shown]
        if len(report.low_stock) > len(shown):
            lines.append(f"  …还有 {len(report.low_stock) - len(shown)} 个，发 /预警 查看全部")
    lines.append("导出订单明细：私聊发送 /导出 今日")
    return "\n".join(lines)


# --- friends (services/usecases/friends.py) ----------------------------------------------


def welcome_friend(shop_name: str) -> str:
    """The first private message to a customer whose friend request the shop approved."""
    return (
        f"你好，我是{shop_name}的店铺助手。私聊里命令前的 / 可以省略："
        "发 商品 看在售商品，发 帮助 查看全部命令。"
    )
