"""After-sales commands: /售后 /工单 /留言 /退货单号 /撤销 for customers and /工单列表 /回复
/同意 /拒绝 /完成 for staff — in a private chat and in an enabled group; customers get
无权限 for the staff ones and change nothing; another customer's ticket looks like one
that does not exist; notices for a ticket opened in a group go to the group."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID
from tests.fake import Says, group, private
from tests.plugins.helpers import (
    PROXY_VARIABLES,
    Grab,
    add_staff,
    coloured_png,
    converse,
    enable_group,
    get_order_row,
    outbox_rows,
    pay_order,
    rows_of,
    seed_demo,
    seed_order,
    serve_images,
    set_order_fields,
    ship_order,
    stock_of,
)

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime

NO_PERMISSION = "无权限：这是店主/店员命令。发 /帮助 查看你可用的命令。"
MISSING = "23456789AB"  # a well-formed code that no order or ticket has
NEWCOMER_ID = 30005  # a customer with no orders and no tickets
PHONE = "13800001111"  # the phone of the helpers' default address
KNOWN_CARRIERS = "顺丰、中通、圆通、韵达、申通、极兔、邮政、EMS、京东、德邦"
AFTERSALE_USAGE = (
    "用法：/售后 [<订单号> <退款|退货|换货|投诉> <原因>]（可附图片），"
    "例如 /售后 2K7QH9M3XA 退货 杯子有裂纹"
)
MESSAGE_USAGE = "用法：/留言 <工单号> <内容>（可附图片），例如 /留言 7K2M9QH3XA 补充一张照片"
RETURN_USAGE = (
    "用法：/退货单号 <工单号> <快递公司> <运单号>，例如 /退货单号 7K2M9QH3XA 中通 ZT123456789"
)
LIST_USAGE = "用法：/工单列表 [状态]，例如 /工单列表 待处理"
REPLY_USAGE = "用法：/回复 <工单号> <内容>，例如 /回复 7K2M9QH3XA 已安排补发"
APPROVE_USAGE = "用法：/同意 <工单号> [退款金额]，例如 /同意 7K2M9QH3XA 29.9"
REJECT_USAGE = "用法：/拒绝 <工单号> <原因>，例如 /拒绝 7K2M9QH3XA 已超过无理由期限"
KIND_ERROR = "类型应是 退款、退货、换货、投诉、refund、return、exchange、complaint 之一"
NO_REASON = "订单里有不支持七天无理由的商品，不能申请无理由退款/退货；质量问题请选“换货”或“投诉”。"


def ticket_not_found(code: str) -> str:
    return f"没有找到工单 {code}。发 /售后 查看你的工单。"


def ticket_not_found_for_staff(code: str) -> str:
    return f"没有找到工单 {code}。发 /工单列表 查看全部工单。"


def order_not_found(code: str) -> str:
    return f"没有找到订单 {code}。发 /订单 查看你的订单。"


def refused(state: str) -> str:
    return f"工单当前{state}，不能这样操作。"


# --- set-up --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
async def _shop_ready(shop: ShopRuntime) -> None:
    from plugins._common.runtime import FloodGuard

    shop.flood = FloodGuard(10_000, 10.0)
    await seed_demo(shop)
    await add_staff(shop, STAFF_ID)


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def say(chat: str, text: str, user_id: int = CUSTOMER_ID, images: tuple[str, ...] = ()) -> Any:
    if chat == "private":
        return private(text, user_id, images=images)
    return group(text, user_id, GROUP_ID, images=images)


async def ask(app: App, event: Any, *fragments: str, **kwargs: Any) -> None:
    await converse(app, (event, Says(event, *fragments, **kwargs)))


async def exchange(app: App, *steps: tuple[Any, str]) -> None:
    """Each event in order; each reply must be exactly the text."""
    await converse(app, *((event, Says(event, exact=text)) for event, text in steps))


def ticket_code_in(text: str) -> str:
    found = re.search(r"工单号：([0-9A-Z]{10})", text)
    assert found is not None, text
    return found.group(1)


async def paid_order(
    shop: ShopRuntime,
    user_id: int = CUSTOMER_ID,
    lines: tuple[tuple[int, int, int], ...] = ((2, 1, 2),),
    *,
    group_id: int | None = None,
) -> str:
    """A paid order (default: 2 × 冷萃咖啡液, ¥79.80)."""
    code = await seed_order(shop, user_id, lines, group_id=group_id)
    await pay_order(shop, code)
    return code


async def completed_order(shop: ShopRuntime, days_ago: float, **kwargs: Any) -> str:
    from models.types import utcnow

    code = await paid_order(shop, **kwargs)
    await set_order_fields(
        shop, code, status="completed", closed_at=utcnow() - timedelta(days=days_ago)
    )
    return code


def _windows(shop: ShopRuntime) -> Any:
    from services.aftersales import Windows

    return Windows(
        timedelta(days=shop.settings.aftersale_days), timedelta(days=shop.settings.exchange_days)
    )


async def new_ticket(
    shop: ShopRuntime,
    order_code: str,
    kind: str = "退款",
    reason: str = "不想要了",
    *,
    group_id: int | None = None,
    at: Any = None,
) -> str:
    """A ticket opened through the service by the order's customer; returns its code."""
    from models.types import utcnow
    from services import aftersales, orders
    from services.aftersales import KIND_BY_NAME

    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, order_code)
        ticket = await aftersales.open_ticket(
            session,
            order,
            KIND_BY_NAME[kind],
            reason,
            [],
            orders.Actor("customer", order.user_id),
            group_id,
            _windows(shop),
            at or utcnow(),
        )
        return ticket.code


async def _on_ticket(shop: ShopRuntime, code: str, change: Any) -> None:
    from models.types import utcnow
    from services import aftersales

    async with shop.database.write() as session:
        ticket = await aftersales.get_ticket(session, shop.shop_id, code)
        await change(session, ticket, utcnow())


async def approve_ticket(shop: ShopRuntime, code: str, amount_fen: int | None = None) -> None:
    from services import aftersales
    from services.orders import Actor

    async def change(session: Any, ticket: Any, now: Any) -> None:
        await aftersales.approve(session, ticket, amount_fen, Actor("owner", OWNER_ID), "", now)

    await _on_ticket(shop, code, change)


async def reject_ticket(shop: ShopRuntime, code: str) -> None:
    from services import aftersales
    from services.orders import Actor

    async def change(session: Any, ticket: Any, now: Any) -> None:
        await aftersales.reject(session, ticket, Actor("owner", OWNER_ID), "不符合条件", now)

    await _on_ticket(shop, code, change)


async def ship_back(shop: ShopRuntime, code: str) -> None:
    from services import aftersales
    from services.orders import Actor

    async def change(session: Any, ticket: Any, now: Any) -> None:
        await aftersales.return_shipped(
            session, ticket, "中通", "ZT123456789", Actor("customer", ticket.user_id), now
        )

    await _on_ticket(shop, code, change)


async def ticket_row(shop: ShopRuntime, code: str) -> Any:
    from models.tables import Ticket

    [row] = [t for t in await rows_of(shop, Ticket) if t.code == code]
    return row


async def messages_of(shop: ShopRuntime, code: str) -> list[Any]:
    from models.tables import TicketMessage

    ticket = await ticket_row(shop, code)
    return [m for m in await rows_of(shop, TicketMessage) if m.ticket_id == ticket.id]


async def ticket_notices(
    shop: ShopRuntime, code: str, *, staff: bool = False
) -> list[tuple[str, int, list[dict[str, Any]]]]:
    """(target type, target id, segments) of the outbox rows about a ticket, for its
    customer (default) or for the staff."""
    return [
        (r.target_type, r.target_id, json.loads(r.segments))
        for r in await outbox_rows(shop)
        if r.dedupe_key.startswith(f"ticket:{code}:") and (":staff:" in r.dedupe_key) == staff
    ]


def text_of(segments: list[dict[str, Any]]) -> str:
    return "".join(s["data"]["text"] for s in segments if s["type"] == "text")


async def staff_texts(shop: ShopRuntime, code: str) -> list[tuple[int, str]]:
    """(recipient, text) of the staff notices about a ticket; always private chats."""
    notices = await ticket_notices(shop, code, staff=True)
    assert {kind for kind, _, _ in notices} <= {"private"}
    return sorted((target, text_of(segments)) for _, target, segments in notices)


async def customer_texts(shop: ShopRuntime, code: str) -> list[str]:
    return [text_of(segments) for _, _, segments in await ticket_notices(shop, code)]


async def snapshot(shop: ShopRuntime) -> dict[str, list[dict[str, Any]]]:
    """Every row an after-sales command can touch."""
    from models.tables import (
        OrderEvent,
        OutboxMessage,
        Refund,
        ShopOrder,
        Ticket,
        TicketEvent,
        TicketMessage,
        Variant,
    )

    tables = (
        Ticket,
        TicketMessage,
        TicketEvent,
        ShopOrder,
        OrderEvent,
        Refund,
        OutboxMessage,
        Variant,
    )
    return {
        model.__name__: [row.model_dump() for row in await rows_of(shop, model)] for model in tables
    }


# --- /售后: opening a ticket ------------------------------------------------------------


async def test_open_ticket_on_a_paid_order_notifies_staff(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await paid_order(shop)
    event = say(chat, f"/售后 {code.lower()} 退款 买多了")
    reply = Grab(event, "已提交退款申请。", "工单号：", f"订单号：{code}")
    await converse(app, (event, reply))
    ticket = ticket_code_in(reply.text)
    assert reply.text == (
        f"已提交退款申请。\n工单号：{ticket}\n订单号：{code}\n"
        f"店家处理后会通知你；补充说明：/留言 {ticket} <内容>"
    )
    row = await ticket_row(shop, ticket)
    assert (row.kind, row.status, row.user_id, row.reason, row.refund_fen) == (
        "refund",
        "open",
        CUSTOMER_ID,
        "买多了",
        0,
    )
    assert row.group_id == (GROUP_ID if chat == "group" else None)
    notice = f"新售后 工单号：{ticket}（退款，订单号：{code}，顾客 {CUSTOMER_ID}）：买多了"
    assert await staff_texts(shop, ticket) == [(OWNER_ID, notice), (STAFF_ID, notice)]
    assert await ticket_notices(shop, ticket) == []
    [message] = await messages_of(shop, ticket)
    assert (message.author, message.author_id, message.text, message.images) == (
        "customer",
        CUSTOMER_ID,
        "买多了",
        "[]",
    )
    order = await get_order_row(shop, code)
    assert (order.status, order.refunded_fen) == ("paid", 0)


async def test_open_ticket_keeps_two_attached_images(
    app: App, shop: ShopRuntime, chat: str, no_proxy: None
) -> None:
    code = await paid_order(shop)
    bodies = {"crack.png": coloured_png(255, 0, 0), "box.png": coloured_png(0, 0, 255)}
    with serve_images(bodies) as urls:
        event = say(
            chat, f"/售后 {code} 退货 杯子有裂纹", images=(urls["crack.png"], urls["box.png"])
        )
        reply = Grab(event, "已提交退货申请，已保存 2 张图片。", "工单号：", f"订单号：{code}")
        await converse(app, (event, reply))
    ticket = ticket_code_in(reply.text)
    media = shop.shop.data_dir / "media"
    stored = sorted(media.iterdir())
    assert len(stored) == 2
    assert sorted(path.read_bytes() for path in stored) == sorted(bodies.values())
    [message] = await messages_of(shop, ticket)
    paths = json.loads(message.images)
    assert [(shop.shop.data_dir / path).read_bytes() for path in paths] == [
        bodies["crack.png"],
        bodies["box.png"],
    ]
    assert all(path.startswith("media/") for path in paths)
    # The images themselves come along in private; a group gets a pointer to private chat.
    in_private = chat == "private"
    await ask(
        app,
        say(chat, f"/工单 {ticket}"),
        "顾客：杯子有裂纹 [图片 2 张]",
        *(() if in_private else (f"图片不在群里显示，请私聊我发 /工单 {ticket} 查看。",)),
        image=in_private,
    )


async def test_more_than_five_images_are_refused_before_any_download(
    app: App, shop: ShopRuntime, chat: str, no_proxy: None
) -> None:
    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, "退货", "杯子有裂纹")
    bodies = {f"{n}.png": coloured_png(n, n, n) for n in range(6)}
    with serve_images(bodies) as urls:
        opening = say(chat, f"/售后 {code} 换货 六张照片", images=tuple(urls.values()))
        message = say(chat, f"/留言 {ticket} 六张照片", images=tuple(urls.values()))
        await converse(
            app,
            (opening, Says(opening, exact=f"一次附带的图片数不能超过 5。\n{AFTERSALE_USAGE}")),
            (message, Says(message, exact=f"一次附带的图片数不能超过 5。\n{MESSAGE_USAGE}")),
        )
    assert not (shop.shop.data_dir / "media").exists() or not any(
        (shop.shop.data_dir / "media").iterdir()
    )
    assert [m.text for m in await messages_of(shop, ticket)] == ["杯子有裂纹"]


async def test_an_image_that_cannot_be_downloaded_opens_no_ticket(
    app: App, shop: ShopRuntime, chat: str, no_proxy: None
) -> None:
    from models.tables import Ticket

    code = await paid_order(shop)
    with serve_images({"crack.png": coloured_png(1, 2, 3)}) as urls:
        gone = urls["crack.png"].replace("crack.png", "gone.png")
        event = say(chat, f"/售后 {code} 退货 杯子有裂纹", images=(gone,))
        await ask(app, event, exact="图片下载失败，请稍后重新发送一次。")
    assert await rows_of(shop, Ticket) == []


async def test_english_alias_and_kind_names(app: App, shop: ShopRuntime, chat: str) -> None:
    first = await paid_order(shop)
    second = await paid_order(shop)
    exchange_event = say(chat, f"/aftersale {first} exchange 尺寸不对")
    complaint_event = say(chat, f"/AFTERSALE {second} Complaint 客服态度差")
    exchange_reply = Grab(exchange_event, "已提交换货申请。", f"订单号：{first}")
    complaint_reply = Grab(complaint_event, "已提交投诉申请。", f"订单号：{second}")
    await converse(app, (exchange_event, exchange_reply), (complaint_event, complaint_reply))
    assert (await ticket_row(shop, ticket_code_in(exchange_reply.text))).kind == "exchange"
    assert (await ticket_row(shop, ticket_code_in(complaint_reply.text))).kind == "complaint"


async def test_open_ticket_refusals(app: App, shop: ShopRuntime, chat: str) -> None:
    from models.tables import Ticket
    from services.catalog import set_no_reason_return

    unpaid = await seed_order(shop, CUSTOMER_ID)
    paid = await paid_order(shop)
    existing = await new_ticket(shop, paid, "退款")
    late = await completed_order(shop, 8)
    no_reason = await completed_order(shop, 1, lines=((3, 1, 1),))
    async with shop.database.write() as session:
        await set_no_reason_return(session, shop.shop_id, 3, False)
    others = await paid_order(shop, OTHER_CUSTOMER_ID)
    before = await snapshot(shop)
    steps = [
        (f"/售后 {paid} 退钱 不想要了", f"{KIND_ERROR}，而不是“退钱”。\n{AFTERSALE_USAGE}"),
        (f"/售后 {paid} 退货", f"缺少原因。\n{AFTERSALE_USAGE}"),
        (f"/售后 {paid}", f"缺少类型。\n{AFTERSALE_USAGE}"),
        (
            "/售后 12345 退款 不想要了",
            "订单号是 10 位字母和数字（下单回复里的“订单号：…”），而不是“12345”。\n"
            + AFTERSALE_USAGE,
        ),
        (f"/售后 {unpaid} 退款 不想要了", "这个订单还没付款或已关闭，不能申请售后。"),
        (f"/售后 {paid} 退款 再申请一次", "这个订单已有一个处理中的退款工单，发 /售后 查看。"),
        (f"/售后 {late} 退款 不想要了", "订单完成已超过 7 天，超出售后期限。如有问题请联系店主。"),
        (f"/售后 {late} 退货 不想要了", "订单完成已超过 7 天，超出售后期限。如有问题请联系店主。"),
        (f"/售后 {no_reason} 退货 不想要了", NO_REASON),
        (f"/售后 {no_reason} 退款 不想要了", NO_REASON),
        (f"/售后 {others} 退款 不想要了", order_not_found(others)),
        (f"/售后 {MISSING} 退款 不想要了", order_not_found(MISSING)),
    ]
    await exchange(app, *((say(chat, text), answer) for text, answer in steps))
    assert [t.code for t in await rows_of(shop, Ticket)] == [existing]
    assert await snapshot(shop) == before


async def test_the_usage_lists_the_four_kinds(app: App, shop: ShopRuntime, chat: str) -> None:
    code = await paid_order(shop)
    await ask(
        app,
        say(chat, f"/售后 {code} 维修 坏了"),
        "类型应是 退款、退货、换货、投诉",
        "而不是“维修”",
        "用法：/售后 [<订单号> <退款|退货|换货|投诉> <原因>]（可附图片）",
    )


async def test_windows_after_completion(app: App, shop: ShopRuntime, chat: str) -> None:
    from services.catalog import set_no_reason_return

    recent = await completed_order(shop, 6)
    eight_days = await completed_order(shop, 8)
    sixteen_days = await completed_order(shop, 16)
    no_reason = await completed_order(shop, 1, lines=((3, 1, 1),))
    async with shop.database.write() as session:
        await set_no_reason_return(session, shop.shop_id, 3, False)
    refund = say(chat, f"/售后 {recent} 退款 不喜欢")
    late_exchange = say(chat, f"/售后 {eight_days} 换货 有划痕")
    too_late = say(chat, f"/售后 {sixteen_days} 投诉 质量差")
    quality = say(chat, f"/售后 {no_reason} 换货 有裂纹")
    await converse(
        app,
        (refund, Says(refund, "已提交退款申请。", f"订单号：{recent}")),
        (late_exchange, Says(late_exchange, "已提交换货申请。", f"订单号：{eight_days}")),
        (
            too_late,
            Says(too_late, exact="订单完成已超过 15 天，超出售后期限。如有问题请联系店主。"),
        ),
        (quality, Says(quality, "已提交换货申请。", f"订单号：{no_reason}")),
    )


async def test_a_different_kind_or_a_closed_ticket_allows_a_new_one(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await paid_order(shop)
    await new_ticket(shop, code, "退款")
    rejected = await new_ticket(shop, code, "投诉")
    await reject_ticket(shop, rejected)
    other_kind = say(chat, f"/售后 {code} 换货 颜色不对")
    again = say(chat, f"/售后 {code} 投诉 还是不满意")
    await converse(
        app,
        (other_kind, Says(other_kind, "已提交换货申请。")),
        (again, Says(again, "已提交投诉申请。")),
    )


# --- /售后 without arguments ----------------------------------------------------------------


async def test_list_shows_only_my_tickets_newest_first(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    from models.types import utcnow

    now = utcnow()
    first = await paid_order(shop)
    second = await paid_order(shop)
    others = await paid_order(shop, OTHER_CUSTOMER_ID)
    older = await new_ticket(shop, first, "退款", at=now - timedelta(hours=2))
    newer = await new_ticket(shop, second, "换货", at=now - timedelta(hours=1))
    theirs = await new_ticket(shop, others, "退款")
    await reject_ticket(shop, older)
    mine = say(chat, "/售后")
    reply = Grab(
        mine,
        "你的售后工单：",
        f"工单号：{older} 退款 已拒绝 订单 {first}",
        f"工单号：{newer} 换货 待处理 订单 {second}",
        "发 /工单 <工单号> 查看详情",
        absent=(theirs, others, "顾客"),
    )
    alias = say(chat, "/aftersale", NEWCOMER_ID)
    await converse(
        app,
        (mine, reply),
        (
            alias,
            Says(
                alias,
                exact="你还没有售后工单。申请：/售后 <订单号> <退款|退货|换货|投诉> <原因>",
            ),
        ),
    )
    assert reply.text.index(newer) < reply.text.index(older)


# --- /工单 ------------------------------------------------------------------------------


async def test_ticket_detail_with_messages_and_history(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, "退货", "杯子有裂纹")
    answer = private(f"/回复 {ticket} 请拍张照片", STAFF_ID)
    message = say(chat, f"/留言 {ticket} 照片晚点发")
    await converse(
        app,
        (answer, Says(answer, "已发送给顾客")),
        (message, Says(message, "已发送给店家")),
    )
    detail = say(chat, f"/工单 {ticket.lower()}")
    reply = Grab(
        detail,
        f"工单号：{ticket}\n退货 · 待处理 · 订单号：{code}\n留言：\n",
        "顾客：杯子有裂纹",
        "店员：请拍张照片",
        "顾客：照片晚点发",
        "\n记录：\n",
        "提交（顾客）",
        absent=("退款金额", PHONE),
    )
    await converse(app, (detail, reply))
    text = reply.text
    positions = [
        text.index(p) for p in ("杯子有裂纹", "请拍张照片", "照片晚点发", "记录：", "提交")
    ]
    assert positions == sorted(positions)

    await approve_ticket(shop, ticket)
    await ship_back(shop, ticket)
    await ask(
        app,
        say(chat, f"/ticket {ticket}"),
        "退货 · 退货中 · 订单号：",
        "退款金额：¥79.80",
        "退货物流：中通 ZT123456789",
        "同意（店主）",
        "等待退货（店主）",
        "寄回（顾客） 中通 ZT123456789",
    )


async def test_another_customers_ticket_looks_like_an_unknown_one(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, "退货")
    approved = await new_ticket(shop, await paid_order(shop), "换货")
    await approve_ticket(shop, approved)
    before = await snapshot(shop)
    steps = [
        (f"/工单 {ticket}", ticket_not_found(ticket)),
        (f"/工单 {MISSING}", ticket_not_found(MISSING)),
        (f"/留言 {ticket} 我也要退", ticket_not_found(ticket)),
        (f"/退货单号 {approved} 中通 ZT123456789", ticket_not_found(approved)),
        (f"/撤销 {ticket}", ticket_not_found(ticket)),
        (f"/撤销 {MISSING}", ticket_not_found(MISSING)),
    ]
    await exchange(app, *((say(chat, text, OTHER_CUSTOMER_ID), answer) for text, answer in steps))
    assert await snapshot(shop) == before


@pytest.mark.parametrize("merchant", [OWNER_ID, STAFF_ID])
async def test_staff_can_view_any_ticket(
    app: App, shop: ShopRuntime, chat: str, merchant: int
) -> None:
    code = await paid_order(shop, OTHER_CUSTOMER_ID)
    ticket = await new_ticket(shop, code, "投诉", "发货太慢")
    await ask(
        app,
        say(chat, f"/工单 {ticket}", merchant),
        f"工单号：{ticket}",
        f"投诉 · 待处理 · 订单号：{code}",
        "顾客：发货太慢",
    )


# --- /留言 ------------------------------------------------------------------------------


async def test_customer_message_notifies_staff(app: App, shop: ShopRuntime, chat: str) -> None:
    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, "退货", "杯子有裂纹")
    message = say(chat, f"/留言 {ticket} 杯底也有裂 纹路很长")
    empty = say(chat, f"/reply {ticket}")
    await converse(
        app,
        (message, Says(message, exact=f"已发送给店家。工单号：{ticket}")),
        (empty, Says(empty, exact=f"缺少内容。\n{MESSAGE_USAGE}")),
    )
    messages = await messages_of(shop, ticket)
    assert [(m.author, m.author_id, m.text) for m in messages] == [
        ("customer", CUSTOMER_ID, "杯子有裂纹"),
        ("customer", CUSTOMER_ID, "杯底也有裂 纹路很长"),
    ]
    notice = f"工单号：{ticket} 顾客留言：杯底也有裂 纹路很长"
    texts = await staff_texts(shop, ticket)
    assert (OWNER_ID, notice) in texts and (STAFF_ID, notice) in texts
    assert len([t for t in texts if "顾客留言" in t[1]]) == 2


async def test_customer_message_on_an_ended_ticket_is_refused(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, "退款", "不想要了")
    await reject_ticket(shop, ticket)
    before = await staff_texts(shop, ticket)
    message = say(chat, f"/留言 {ticket} 为什么拒绝")
    await ask(
        app,
        message,
        exact="这个工单已结束（已拒绝），不能再留言。还有问题请重新申请：/售后 <订单号> <类型> <原因>。",
    )
    assert [m.text for m in await messages_of(shop, ticket)] == ["不想要了"]
    assert await staff_texts(shop, ticket) == before


async def test_customer_message_with_only_an_image(
    app: App, shop: ShopRuntime, chat: str, no_proxy: None
) -> None:
    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, "退货", "杯子有裂纹")
    body = coloured_png(9, 9, 9)
    with serve_images({"more.png": body}) as urls:
        event = say(chat, f"/留言 {ticket}", images=(urls["more.png"],))
        await ask(app, event, exact=f"已发送给店家。工单号：{ticket}")
    last = (await messages_of(shop, ticket))[-1]
    [path] = json.loads(last.images)
    assert last.text == "" and (shop.shop.data_dir / path).read_bytes() == body
    assert (OWNER_ID, f"工单号：{ticket} 顾客留言：[图片]") in await staff_texts(shop, ticket)


# --- /退货单号 ---------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "state"), [("退货", "退货中"), ("换货", "退货中")])
async def test_return_parcel_of_an_approved_return(
    app: App, shop: ShopRuntime, chat: str, kind: str, state: str
) -> None:
    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, kind)
    await approve_ticket(shop, ticket)
    parcel = say(chat, f"/退货单号 {ticket} 中通快递 zt123456789")
    again = say(chat, f"/return {ticket} 顺丰 SF1234567890")
    await converse(
        app,
        (
            parcel,
            Says(
                parcel,
                exact=f"已记录退货物流 中通 ZT123456789。工单号：{ticket} 店家收到后处理。",
            ),
        ),
        (again, Says(again, exact=refused(state))),
    )
    row = await ticket_row(shop, ticket)
    assert (row.status, row.return_carrier, row.return_number) == (
        "return_shipped",
        "中通",
        "ZT123456789",
    )
    notice = f"工单号：{ticket} 顾客已寄回：中通 ZT123456789"
    assert [t for t in await staff_texts(shop, ticket) if "寄回" in t[1]] == [
        (OWNER_ID, notice),
        (STAFF_ID, notice),
    ]
    await ask(app, say(chat, f"/工单 {ticket}"), f"{kind} · 退货中", "退货物流：中通 ZT123456789")


async def test_return_parcel_refusals(app: App, shop: ShopRuntime, chat: str) -> None:
    open_return = await new_ticket(shop, await paid_order(shop), "退货")
    approved = await new_ticket(shop, await paid_order(shop), "退货")
    await approve_ticket(shop, approved)
    refunded = await new_ticket(shop, await paid_order(shop), "退款")
    await approve_ticket(shop, refunded)
    complaint = await new_ticket(shop, await paid_order(shop), "投诉")
    await approve_ticket(shop, complaint)
    before = await snapshot(shop)
    steps = [
        (f"/退货单号 {open_return} 顺丰 SF1234567890", refused("待处理")),
        (
            f"/退货单号 {approved} 火星快递 HX123456789",
            f"不认识快递公司“火星快递”。可用：{KNOWN_CARRIERS}。\n{RETURN_USAGE}",
        ),
        (
            f"/退货单号 {approved} 中通 12",
            f"运单号应是 6 到 30 位字母或数字，而不是“12”。\n{RETURN_USAGE}",
        ),
        (f"/退货单号 {approved} 中通", f"缺少运单号。\n{RETURN_USAGE}"),
        (f"/退货单号 {refunded} 中通 ZT123456789", refused("已退款")),
        (f"/退货单号 {complaint} 中通 ZT123456789", refused("已同意")),
    ]
    await exchange(app, *((say(chat, text), answer) for text, answer in steps))
    assert await snapshot(shop) == before


# --- /撤销 ------------------------------------------------------------------------------


async def test_withdraw_an_open_ticket(app: App, shop: ShopRuntime, chat: str) -> None:
    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, "退款")
    withdraw = say(chat, f"/撤销 {ticket.lower()}")
    twice = say(chat, f"/withdraw {ticket}")
    await converse(
        app,
        (withdraw, Says(withdraw, exact=f"已撤销工单号：{ticket}。")),
        (twice, Says(twice, exact=refused("已撤销"))),
    )
    row = await ticket_row(shop, ticket)
    assert row.status == "withdrawn" and row.closed_at is not None
    await ask(app, say(chat, f"/工单 {ticket}"), "退款 · 已撤销", "撤销（顾客）")
    await ask(app, say(chat, f"/售后 {code} 退款 还是想退"), "已提交退款申请。")


async def test_withdraw_after_a_decision_is_refused(app: App, shop: ShopRuntime, chat: str) -> None:
    ticket = await new_ticket(shop, await paid_order(shop), "换货")
    await approve_ticket(shop, ticket)
    await ask(app, say(chat, f"/撤销 {ticket}"), exact=refused("待退货"))
    assert (await ticket_row(shop, ticket)).status == "awaiting_return"


# --- staff: /工单列表 -------------------------------------------------------------------


async def test_ticket_queue_open_first_oldest_first(app: App, shop: ShopRuntime, chat: str) -> None:
    from models.types import utcnow

    now = utcnow()
    decided = await new_ticket(shop, await paid_order(shop), "退款", at=now - timedelta(hours=3))
    await reject_ticket(shop, decided)
    older_code = await paid_order(shop)
    older = await new_ticket(shop, older_code, "退货", at=now - timedelta(hours=2))
    newer = await new_ticket(
        shop, await paid_order(shop, OTHER_CUSTOMER_ID), "换货", at=now - timedelta(hours=1)
    )
    everything = say(chat, "/工单列表", STAFF_ID)
    queue = Grab(
        everything,
        "售后工单（待处理的在前）：",
        f"工单号：{older} 退货 待处理 订单 {older_code} 顾客 {CUSTOMER_ID}",
        f"工单号：{newer} 换货 待处理",
        f"顾客 {OTHER_CUSTOMER_ID}",
        f"工单号：{decided} 退款 已拒绝",
        "发 /工单 <工单号> 查看详情",
    )
    pending = say(chat, "/tickets 待处理", OWNER_ID)
    only_open = Grab(pending, older, newer, absent=(decided,))
    none = say(chat, "/工单列表 已撤销", STAFF_ID)
    bad = say(chat, "/工单列表 待定", OWNER_ID)
    await converse(
        app,
        (everything, queue),
        (pending, only_open),
        (none, Says(none, exact="没有售后工单。")),
        (
            bad,
            Says(
                bad,
                exact=(
                    "状态应是 待处理、已同意、待退货、退货中、已退款、已完成、已拒绝、已撤销 之一，"
                    f"而不是“待定”。\n{LIST_USAGE}"
                ),
            ),
        ),
    )
    positions = [queue.text.index(code) for code in (older, newer, decided)]
    assert positions == sorted(positions)
    assert only_open.text.index(older) < only_open.text.index(newer)


# --- staff: /回复 ------------------------------------------------------------------------


async def test_staff_reply_reaches_the_customer(app: App, shop: ShopRuntime, chat: str) -> None:
    ticket = await new_ticket(shop, await paid_order(shop), "换货")
    answer = say(chat, f"/回复 {ticket} 已安排补发 明天到", STAFF_ID)
    empty = say(chat, f"/answer {ticket}", STAFF_ID)
    unknown = say(chat, f"/回复 {MISSING} 你好", OWNER_ID)
    await converse(
        app,
        (answer, Says(answer, exact=f"已发送给顾客。工单号：{ticket}")),
        (empty, Says(empty, exact=f"缺少内容。\n{REPLY_USAGE}")),
        (unknown, Says(unknown, exact=ticket_not_found_for_staff(MISSING))),
    )
    assert await ticket_notices(shop, ticket) == [
        (
            "private",
            CUSTOMER_ID,
            [{"type": "text", "data": {"text": f"工单号：{ticket} 店家回复：已安排补发 明天到"}}],
        )
    ]
    last = (await messages_of(shop, ticket))[-1]
    assert (last.author, last.author_id, last.text) == ("staff", STAFF_ID, "已安排补发 明天到")
    assert (await ticket_row(shop, ticket)).status == "open"


# --- staff: /同意 ------------------------------------------------------------------------


async def test_approve_refund_in_full(app: App, shop: ShopRuntime, chat: str) -> None:
    from models.tables import Refund

    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, "退款")
    approve = say(chat, f"/同意 {ticket}", STAFF_ID)
    twice = say(chat, f"/同意 {ticket}", STAFF_ID)
    await converse(
        app,
        (approve, Says(approve, exact=f"已同意并退款 ¥79.80。工单号：{ticket}")),
        (twice, Says(twice, exact=refused("已退款"))),
    )
    order = await get_order_row(shop, code)
    assert (order.status, order.refunded_fen) == ("refunded", 7980)
    row = await ticket_row(shop, ticket)
    assert (row.status, row.refund_fen) == ("refunded", 7980)
    assert [(r.amount_fen, r.reason) for r in await rows_of(shop, Refund)] == [
        (7980, f"售后退款 {ticket}")
    ]
    assert await stock_of(shop, 2) == 50  # never shipped: back on the shelf
    assert await customer_texts(shop, ticket) == [f"工单号：{ticket}（退款）已同意并退款 ¥79.80。"]


async def test_approve_refund_with_an_amount(app: App, shop: ShopRuntime, chat: str) -> None:
    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, "退款")
    await ask(
        app,
        say(chat, f"/approve {ticket} 10", OWNER_ID),
        exact=f"已同意并退款 ¥10.00。工单号：{ticket}",
    )
    order = await get_order_row(shop, code)
    assert (order.status, order.refunded_fen) == ("paid", 1000)
    assert ((await ticket_row(shop, ticket)).status) == "refunded"
    assert await customer_texts(shop, ticket) == [f"工单号：{ticket}（退款）已同意并退款 ¥10.00。"]


async def test_approve_refund_over_the_cap_changes_nothing(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    from models.types import utcnow
    from services.orders import Actor, get_order, refund

    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, "退款")
    before = await snapshot(shop)
    steps = [
        (f"/同意 {ticket} 79.81", "退款金额 ¥79.81 超过可退金额 ¥79.80。"),
        (f"/同意 {ticket} 0", f"金额至少 0.01 元。\n{APPROVE_USAGE}"),
        (
            f"/同意 {ticket} 1.234",
            f"金额应是以元为单位的数字，最多两位小数（如 10 或 9.9），而不是“1.234”。\n{APPROVE_USAGE}",
        ),
        (f"/同意 {MISSING}", ticket_not_found_for_staff(MISSING)),
    ]
    await exchange(app, *((say(chat, text, OWNER_ID), answer) for text, answer in steps))
    assert await snapshot(shop) == before

    async with shop.database.write() as session:
        order = await get_order(session, shop.shop_id, code)
        await refund(session, order, 1000, "少发一件", Actor("owner", OWNER_ID), utcnow())
    over = say(chat, f"/同意 {ticket} 70", OWNER_ID)
    rest = say(chat, f"/同意 {ticket}", OWNER_ID)
    await converse(
        app,
        (over, Says(over, exact="退款金额 ¥70.00 超过可退金额 ¥69.80。")),
        (rest, Says(rest, exact=f"已同意并退款 ¥69.80。工单号：{ticket}")),
    )
    order_row = await get_order_row(shop, code)
    assert (order_row.status, order_row.refunded_fen) == ("refunded", 7980)


@pytest.mark.parametrize(
    ("amount", "shown", "fen"), [("", "¥79.80", 7980), (" 50", "¥50.00", 5000)]
)
async def test_approve_return_waits_for_the_parcel(
    app: App, shop: ShopRuntime, chat: str, amount: str, shown: str, fen: int
) -> None:
    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, "退货")
    await ask(
        app,
        say(chat, f"/同意 {ticket}{amount}", STAFF_ID),
        exact=f"已同意，等待顾客寄回，收到退货后退款 {shown}。工单号：{ticket}",
    )
    row = await ticket_row(shop, ticket)
    assert (row.status, row.refund_fen) == ("awaiting_return", fen)
    order = await get_order_row(shop, code)
    assert (order.status, order.refunded_fen) == ("paid", 0)
    assert await customer_texts(shop, ticket) == [
        f"工单号：{ticket}（退货）已同意，请按店家说明寄回，并发 /退货单号 <工单号> <快递公司> <运单号>。"
    ]


async def test_approve_exchange_refuses_an_amount(app: App, shop: ShopRuntime, chat: str) -> None:
    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, "换货")
    with_amount = say(chat, f"/同意 {ticket} 10", STAFF_ID)
    plain = say(chat, f"/同意 {ticket}", STAFF_ID)
    await converse(
        app,
        (with_amount, Says(with_amount, exact="换货和投诉不涉及退款金额，直接 /同意 <工单号>。")),
        (plain, Says(plain, exact=f"已同意，等待顾客寄回。工单号：{ticket}")),
    )
    row = await ticket_row(shop, ticket)
    assert (row.status, row.refund_fen) == ("awaiting_return", 0)
    assert (await get_order_row(shop, code)).refunded_fen == 0
    assert len(await customer_texts(shop, ticket)) == 1


async def test_approve_and_complete_a_complaint(app: App, shop: ShopRuntime, chat: str) -> None:
    ticket = await new_ticket(shop, await paid_order(shop), "投诉", "客服态度差")
    approve = say(chat, f"/同意 {ticket}", STAFF_ID)
    close = say(chat, f"/close {ticket}", STAFF_ID)
    await converse(
        app,
        (approve, Says(approve, exact=f"已同意。工单号：{ticket}，处理完请 /完成 {ticket}")),
        (close, Says(close, exact=f"工单号：{ticket} 已完成。")),
    )
    assert (await ticket_row(shop, ticket)).status == "closed"
    assert await customer_texts(shop, ticket) == [
        f"工单号：{ticket}（投诉）已同意。",
        f"工单号：{ticket}（投诉）已完成。",
    ]


# --- staff: /拒绝 ------------------------------------------------------------------------


async def test_reject_needs_a_reason_and_notifies(app: App, shop: ShopRuntime, chat: str) -> None:
    from models.tables import TicketEvent

    ticket = await new_ticket(shop, await paid_order(shop), "退款")
    bare = say(chat, f"/拒绝 {ticket}", STAFF_ID)
    reject = say(chat, f"/reject {ticket} 已超过无理由期限", STAFF_ID)
    twice = say(chat, f"/拒绝 {ticket} 再拒一次", STAFF_ID)
    close = say(chat, f"/完成 {ticket}", STAFF_ID)
    await converse(
        app,
        (bare, Says(bare, exact=f"缺少原因。\n{REJECT_USAGE}")),
        (reject, Says(reject, exact=f"已拒绝。工单号：{ticket}")),
        (twice, Says(twice, exact=refused("已拒绝"))),
        (close, Says(close, exact=refused("已拒绝"))),
    )
    row = await ticket_row(shop, ticket)
    assert row.status == "rejected" and row.closed_at is not None
    events = [e for e in await rows_of(shop, TicketEvent) if e.ticket_id == row.id]
    assert [(e.action, e.actor, e.actor_id, e.reason) for e in events][-1] == (
        "rejected",
        "staff",
        STAFF_ID,
        "已超过无理由期限",
    )
    assert await customer_texts(shop, ticket) == [
        f"工单号：{ticket}（退款）未通过。说明：已超过无理由期限"
    ]


# --- staff: /完成 ------------------------------------------------------------------------


async def test_complete_a_returned_parcel_refunds(app: App, shop: ShopRuntime, chat: str) -> None:
    from models.tables import Refund

    code = await paid_order(shop)
    await set_order_fields(shop, code, status="shipped")
    ticket = await new_ticket(shop, code, "退货", "杯子有裂纹")
    await approve_ticket(shop, ticket)
    await ship_back(shop, ticket)
    close = say(chat, f"/完成 {ticket}", STAFF_ID)
    twice = say(chat, f"/完成 {ticket}", STAFF_ID)
    await converse(
        app,
        (
            close,
            Says(
                close,
                exact=f"已完成并退款 ¥79.80。工单号：{ticket}\n"
                f"库存未变；如需把退回的商品放回库存，请发 /完成 {ticket} 入库",
            ),
        ),
        (twice, Says(twice, exact=refused("已退款"))),
    )
    assert await stock_of(shop, 2) == 48  # not restocked without 入库
    order = await get_order_row(shop, code)
    assert (order.status, order.refunded_fen) == ("refunded", 7980)
    assert (await ticket_row(shop, ticket)).status == "refunded"
    assert [(r.amount_fen, r.reason) for r in await rows_of(shop, Refund)] == [
        (7980, f"退货退款 {ticket}")
    ]
    assert f"工单号：{ticket}（退货）已完成，退款 ¥79.80。" in await customer_texts(shop, ticket)
    await ask(app, private(f"/订单 {code}", CUSTOMER_ID), "状态：已退款")


async def test_complete_refusals(app: App, shop: ShopRuntime, chat: str) -> None:
    open_return = await new_ticket(shop, await paid_order(shop), "退货")
    refunded = await new_ticket(shop, await paid_order(shop), "退款")
    await approve_ticket(shop, refunded)
    withdrawn = await new_ticket(shop, await paid_order(shop), "换货")
    await _on_ticket(shop, withdrawn, _withdraw)
    before = await snapshot(shop)
    steps = [
        (f"/完成 {open_return}", refused("待处理")),
        (f"/完成 {refunded}", refused("已退款")),
        (f"/完成 {withdrawn}", refused("已撤销")),
        (f"/完成 {MISSING}", ticket_not_found_for_staff(MISSING)),
    ]
    await exchange(app, *((say(chat, text, OWNER_ID), answer) for text, answer in steps))
    assert await snapshot(shop) == before


# --- staff: /完成 <工单号> 入库 ----------------------------------------------------------


async def returned_parcel(shop: ShopRuntime) -> tuple[str, str]:
    """A shipped order of 2 × 冷萃咖啡液 (stock 50 → 48) with an approved 退货 whose parcel
    is on its way back: (order code, ticket code)."""
    code = await paid_order(shop)
    await ship_order(shop, code)
    ticket = await new_ticket(shop, code, "退货", "杯子有裂纹")
    await approve_ticket(shop, ticket)
    await ship_back(shop, ticket)
    return code, ticket


async def test_complete_with_restock_puts_the_goods_back(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    from models.tables import OrderEvent, Variant

    code, ticket = await returned_parcel(shop)
    assert await stock_of(shop, 2) == 48
    close = say(chat, f"/完成 {ticket} 入库", STAFF_ID)
    twice = say(chat, f"/完成 {ticket} 入库", STAFF_ID)
    detail = say(chat, f"/工单 {ticket}", STAFF_ID)
    await converse(
        app,
        (
            close,
            Says(
                close,
                exact=f"已完成并退款 ¥79.80。工单号：{ticket}\n已放回库存：\n"
                "冷萃咖啡液 ×2（现库存 50）\n只退回了部分商品的，请用 /库存 调整。",
            ),
        ),
        (
            twice,
            Says(
                twice,
                exact=f"工单 {ticket} 的订单商品已经入库过了，不能重复入库。"
                f"工单还没完成的话，请发 /完成 {ticket}。",
            ),
        ),
        (detail, Says(detail, "退回商品入库（店员） 冷萃咖啡液 ×2")),
    )
    assert await stock_of(shop, 2) == 50
    [variant] = [v for v in await rows_of(shop, Variant) if v.item_id == 2]
    assert variant.sold == 0
    order = await get_order_row(shop, code)
    [event] = [
        e
        for e in await rows_of(shop, OrderEvent)
        if e.order_id == order.id and e.action == "restocked"
    ]
    assert (event.actor, event.actor_id, event.detail, event.reason) == (
        "staff",
        STAFF_ID,
        "退货入库：冷萃咖啡液 ×2",
        f"退货 {ticket}",
    )
    # The customer hears of the completion once, the same as without 入库.
    assert f"工单号：{ticket}（退货）已完成，退款 ¥79.80。" in await customer_texts(shop, ticket)
    await ask(
        app, private(f"/订单 {code}", CUSTOMER_ID), f"退回商品入库（店员） 原因：退货 {ticket}"
    )


async def test_restock_after_completing_without_it(app: App, shop: ShopRuntime, chat: str) -> None:
    _, ticket = await returned_parcel(shop)
    close = say(chat, f"/完成 {ticket}", OWNER_ID)
    restock = say(chat, f"/close {ticket} restock", OWNER_ID)
    await converse(
        app,
        (close, Says(close, f"如需把退回的商品放回库存，请发 /完成 {ticket} 入库")),
        (
            restock,
            Says(
                restock,
                exact=f"工单号：{ticket} 退回的商品已入库。\n已放回库存：\n"
                "冷萃咖啡液 ×2（现库存 50）\n只退回了部分商品的，请用 /库存 调整。",
            ),
        ),
    )
    assert await stock_of(shop, 2) == 50
    assert (await ticket_row(shop, ticket)).status == "refunded"


async def test_restock_refusals_change_nothing(app: App, shop: ShopRuntime, chat: str) -> None:
    exchange_code = await paid_order(shop)
    await ship_order(shop, exchange_code)
    swap = await new_ticket(shop, exchange_code, "换货", "尺寸不对")
    await approve_ticket(shop, swap)
    never_shipped = await new_ticket(shop, await paid_order(shop), "退货", "不想要了")
    await approve_ticket(shop, never_shipped)
    _, waiting = await returned_parcel(shop)
    shipped = await paid_order(shop)
    await ship_order(shop, shipped)
    opened = await new_ticket(shop, shipped, "退货", "不想要了")
    before = await snapshot(shop)
    usage = "用法：/完成 <工单号> [入库]，例如 /完成 7K2M9QH3XA 入库"
    steps = [
        (
            f"/完成 {swap} 入库",
            f"工单 {swap} 不是退货工单，没有寄回的商品可以入库。完成请发 /完成 {swap}。",
        ),
        (
            f"/完成 {never_shipped} 入库",
            f"工单 {never_shipped} 的订单没有发过货，商品一直在店里（全额退款时库存已自动退回），"
            f"不用入库。完成请发 /完成 {never_shipped}。",
        ),
        (f"/完成 {opened} 入库", refused("待处理")),
        (f"/完成 {waiting} 入口", f"选项应是 入库、restock 之一，而不是“入口”。\n{usage}"),
        (f"/完成 {waiting} 入库 全部", f"多余的内容：全部\n{usage}"),
        (f"/完成 {MISSING} 入库", ticket_not_found_for_staff(MISSING)),
    ]
    await exchange(app, *((say(chat, text, STAFF_ID), answer) for text, answer in steps))
    assert await snapshot(shop) == before


async def _withdraw(session: Any, ticket: Any, now: Any) -> None:
    from services import aftersales
    from services.orders import Actor

    await aftersales.withdraw(session, ticket, Actor("customer", ticket.user_id), now)


# --- customers are refused the staff commands ----------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "/工单列表",
        "/tickets 待处理",
        "/回复 {open} 我自己回复",
        "/answer {open} 我自己回复",
        "/同意 {open}",
        "/approve {open} 10",
        "/拒绝 {open} 不想要",
        "/reject {open} 不想要",
        "/完成 {back}",
        "/close {back}",
        "/完成 {back} 入库",
    ],
)
async def test_customers_get_no_permission_and_nothing_changes(
    app: App, shop: ShopRuntime, chat: str, command: str
) -> None:
    codes = {
        "open": await new_ticket(shop, await paid_order(shop), "退款"),
        "back": await new_ticket(shop, await paid_order(shop), "退货"),
    }
    await approve_ticket(shop, codes["back"])
    await ship_back(shop, codes["back"])
    before = await snapshot(shop)
    await ask(app, say(chat, command.format(**codes)), exact=NO_PERMISSION)
    assert await snapshot(shop) == before


# --- privacy: a ticket opened in a group ------------------------------------------------


async def test_notices_for_a_group_ticket_go_to_the_group_with_a_mention(
    app: App, shop: ShopRuntime
) -> None:
    await enable_group(shop)
    code = await paid_order(shop)  # ordered in a private chat, the ticket opened in the group
    opened = group(f"/售后 {code} 退款 不想要了", CUSTOMER_ID, GROUP_ID)
    reply = Grab(opened, "已提交退款申请。", absent=(PHONE,))
    await converse(app, (opened, reply))
    ticket = ticket_code_in(reply.text)
    assert (await ticket_row(shop, ticket)).group_id == GROUP_ID
    await ask(app, private(f"/同意 {ticket}", STAFF_ID), "已同意并退款 ¥79.80")
    [(kind, target, segments)] = await ticket_notices(shop, ticket)
    assert (kind, target) == ("group", GROUP_ID)
    assert segments == [
        {"type": "at", "data": {"qq": str(CUSTOMER_ID)}},
        {"type": "text", "data": {"text": f" 工单号：{ticket}（退款）已同意并退款 ¥79.80。"}},
    ]
    assert not re.search(r"1[3-9]\d{9}|\d{3}\*{4}\d{4}", text_of(segments))
    # Staff are still told privately, never in the group.
    assert {target for target, _ in await staff_texts(shop, ticket)} == {OWNER_ID, STAFF_ID}


async def test_staff_reply_to_a_group_ticket_goes_to_the_group(app: App, shop: ShopRuntime) -> None:
    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, "换货", group_id=GROUP_ID)
    await ask(app, private(f"/回复 {ticket} 已安排补发", OWNER_ID), "已发送给顾客")
    assert await ticket_notices(shop, ticket) == [
        (
            "group",
            GROUP_ID,
            [
                {"type": "at", "data": {"qq": str(CUSTOMER_ID)}},
                {"type": "text", "data": {"text": f" 工单号：{ticket} 店家回复：已安排补发"}},
            ],
        )
    ]


@pytest.mark.parametrize(
    "command", ["/回复 {ticket} 已按 {phone} 联系你", "/拒绝 {ticket} 已按 {phone} 电话核实"]
)
async def test_phone_numbers_in_staff_text_are_masked_in_group_notices(
    app: App, shop: ShopRuntime, command: str
) -> None:
    ticket = await new_ticket(shop, await paid_order(shop), "退款", group_id=GROUP_ID)
    await ask(
        app, private(command.format(ticket=ticket, phone=PHONE), STAFF_ID), f"工单号：{ticket}"
    )
    [(kind, _, segments)] = await ticket_notices(shop, ticket)
    assert kind == "group"
    text = text_of(segments)
    assert PHONE not in text and "138****1111" in text, text


async def test_ticket_detail_in_a_group_masks_phone_numbers(app: App, shop: ShopRuntime) -> None:
    await enable_group(shop)
    ticket = await new_ticket(shop, await paid_order(shop), "换货")
    answer = private(f"/回复 {ticket} 已按 {PHONE} 联系你", STAFF_ID)
    detail = group(f"/工单 {ticket}", CUSTOMER_ID, GROUP_ID)
    await converse(
        app,
        (answer, Says(answer, "已发送给顾客")),
        (detail, Says(detail, "店员：已按 138****1111 联系你", absent=(PHONE,))),
    )


async def test_approve_refund_with_nothing_left_to_refund(app: App, shop: ShopRuntime) -> None:
    from models.types import utcnow
    from services.orders import Actor, get_order, refund

    code = await paid_order(shop)
    ticket = await new_ticket(shop, code, "退款")
    async with shop.database.write() as session:
        order = await get_order(session, shop.shop_id, code)
        await refund(session, order, None, "整单退款", Actor("owner", OWNER_ID), utcnow())
    before = await snapshot(shop)
    await ask(
        app,
        private(f"/同意 {ticket}", OWNER_ID),
        exact="这个订单已经全额退款，没有可退的金额了。售后工单请用 /拒绝 <工单号> <原因> 说明。",
    )
    assert await snapshot(shop) == before
