"""Merchant order commands: /订单列表 /收款 /对账 /审核 /退款 /设置收款 — in a private chat
and in an enabled group; customers get 无权限 and change nothing. /对账 asks the fake EPay
gateway over real HTTP."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID
from tests.fake import Says, group, private
from tests.plugins.helpers import (
    OFFICE,
    PROXY_VARIABLES,
    Grab,
    add_staff,
    attempts_of,
    converse,
    get_order_row,
    outbox_rows,
    pay_order,
    png_bytes,
    rows_of,
    save_address,
    seed_demo,
    seed_order,
    serve_png,
    set_order_fields,
    set_stock,
    stock_of,
)
from tools.bot_process import free_port
from tools.fake_epay import KEY, PID, FakeEpay, NotifyMode

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime

NO_PERMISSION = "无权限：这是店主/店员命令。发 /帮助 查看你可用的命令。"
PAYINFO_USAGE = (
    "用法：/设置收款 <文字>（可附收款码图片），例如 /设置收款 微信转账 wxid_shop，备注订单号"
)
REFUND_USAGE = "用法：/退款 <订单号> [金额] [原因]，例如 /退款 2K7QH9M3XA 10 少发一件"
REVIEW_USAGE = (
    "用法：/审核 <订单号> <同意|拒绝> [地址|备注|取消] [原因]，例如 /审核 2K7QH9M3XA 同意 地址"
)


# --- set-up --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
async def _shop_ready(shop: ShopRuntime) -> None:
    from plugins._common.runtime import FloodGuard

    shop.flood = FloodGuard(10_000, 10.0)
    await seed_demo(shop)
    await add_staff(shop, STAFF_ID)


def say(chat: str, text: str, user_id: int = OWNER_ID, images: tuple[str, ...] = ()) -> Any:
    if chat == "private":
        return private(text, user_id, images=images)
    return group(text, user_id, GROUP_ID, images=images)


async def ask(app: App, event: Any, *fragments: str, **kwargs: Any) -> None:
    await converse(app, (event, Says(event, *fragments, **kwargs)))


async def customer_notices(
    shop: ShopRuntime, code: str
) -> list[tuple[str, int, list[dict[str, Any]]]]:
    """(target type, target id, segments) of the outbox rows about an order for its customer."""
    return [
        (r.target_type, r.target_id, json.loads(r.segments))
        for r in await outbox_rows(shop)
        if r.dedupe_key.startswith(f"order:{code}:") and ":staff:" not in r.dedupe_key
    ]


def text_of(segments: list[dict[str, Any]]) -> str:
    return "".join(s["data"]["text"] for s in segments if s["type"] == "text")


async def snapshot(shop: ShopRuntime) -> dict[str, list[dict[str, Any]]]:
    """Every row a merchant order command can touch."""
    from models.tables import (
        OrderEvent,
        OrderLine,
        OrderRequest,
        OutboxMessage,
        Payment,
        Refund,
        Shop,
        ShopOrder,
        Variant,
    )

    tables = (
        ShopOrder,
        OrderLine,
        OrderEvent,
        OrderRequest,
        Payment,
        Refund,
        OutboxMessage,
        Shop,
        Variant,
    )
    return {
        model.__name__: [row.model_dump() for row in await rows_of(shop, model)] for model in tables
    }


# --- customers are refused ---------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "/订单列表",
        "/allorders 待付款",
        "/收款 {paid_later}",
        "/paid {unpaid}",
        "/审核 {requested} 同意",
        "/review-change {requested} 拒绝 不行",
        "/退款 {paid}",
        "/refund {paid} 10 少发",
        "/设置收款 转账到 6222 0000",
        "/payinfo 改成我的收款码",
        "/对账",
        "/reconcile {unpaid}",
    ],
)
async def test_customers_get_no_permission_and_nothing_changes(
    app: App, shop: ShopRuntime, chat: str, command: str
) -> None:
    from models.types import utcnow
    from services.orders import Actor, cancel, get_order

    codes = {
        "unpaid": await seed_order(shop, CUSTOMER_ID),
        "paid_later": await seed_order(shop, CUSTOMER_ID),
        "paid": await seed_order(shop, CUSTOMER_ID),
        "requested": await seed_order(shop, CUSTOMER_ID),
    }
    await pay_order(shop, codes["paid"])
    await pay_order(shop, codes["requested"])
    async with shop.database.write() as session:
        order = await get_order(session, shop.shop_id, codes["requested"])
        await cancel(session, order, Actor("customer", CUSTOMER_ID), "", utcnow())
    before = await snapshot(shop)
    event = say(chat, command.format(**codes), CUSTOMER_ID)
    await ask(app, event, exact=NO_PERMISSION)
    assert await snapshot(shop) == before


# --- /订单列表 ------------------------------------------------------------------------


async def test_order_list_shows_every_customer_newest_first_with_pages(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    from models.types import utcnow

    now = utcnow()
    codes = []
    for n in range(12):
        user = CUSTOMER_ID if n % 2 else OTHER_CUSTOMER_ID
        codes.append(await seed_order(shop, user, at=now - timedelta(minutes=60 - n)))
    await pay_order(shop, codes[3])
    page_event = say(chat, "/allorders 2", STAFF_ID)
    first_event = say(chat, "/订单列表")
    first = Grab(first_event, "全部订单（第 1/2 页，共 12 个）：", "发 /订单 <订单号> 查看详情")
    paid = say(chat, "/订单列表 待发货")
    paid_page = say(chat, "/订单列表 待付款 2")
    none = say(chat, "/订单列表 已取消")
    far = say(chat, "/订单列表 9")
    bad = say(chat, "/订单列表 待定")
    await converse(
        app,
        (first_event, first),
        (
            page_event,
            Says(
                page_event,
                "全部订单（第 2/2 页，共 12 个）：",
                f"订单号：{codes[0]} 待付款 ¥39.90 1件 顾客 {OTHER_CUSTOMER_ID}",
            ),
        ),
        (
            paid,
            Says(
                paid,
                "订单（待发货）（第 1/1 页，共 1 个）：",
                f"订单号：{codes[3]} 待发货 ¥39.90 1件 顾客 {CUSTOMER_ID}",
            ),
        ),
        (paid_page, Says(paid_page, "订单（待付款）（第 2/2 页，共 11 个）：", codes[0])),
        (none, Says(none, exact="订单（已取消）：没有订单。")),
        (far, Says(far, exact="全部订单：第 9 页没有订单。")),
        (
            bad,
            Says(
                bad,
                "状态应是 待付款、待发货、已发货、已签收、已完成、已取消、已退款 之一，而不是“待定”。",
                "用法：/订单列表 [状态] [页码]",
            ),
        ),
    )
    positions = [first.text.index(code) for code in reversed(codes[2:])]
    assert positions == sorted(positions)
    assert codes[0] not in first.text and codes[1] not in first.text
    assert f"顾客 {CUSTOMER_ID}" in first.text and f"顾客 {OTHER_CUSTOMER_ID}" in first.text
    assert "13800001111" not in first.text


async def test_staff_see_any_order_in_detail(app: App, shop: ShopRuntime, chat: str) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    detail = say(chat, f"/订单 {code}", STAFF_ID)
    if chat == "private":
        await ask(
            app, detail, f"订单号：{code}", "收货：张三 13800001111 浙江省杭州市西湖区文三路 1 号"
        )
    else:
        await ask(
            app,
            detail,
            f"订单号：{code}",
            "收货：张* 138****1111 浙江省杭州市",
            absent=("13800001111",),
        )


# --- /收款 ----------------------------------------------------------------------------


@pytest.mark.parametrize(("merchant", "label"), [(OWNER_ID, "店主"), (STAFF_ID, "店员")])
async def test_record_payment_notifies_the_customer_once(
    app: App, shop: ShopRuntime, chat: str, merchant: int, label: str
) -> None:
    code = await seed_order(shop, CUSTOMER_ID, ((1, 2, 2),))
    paid = say(chat, f"/收款 {code.lower()}", merchant)
    again = say(chat, f"/paid {code}", merchant)
    await converse(
        app,
        (paid, Says(paid, exact=f"已确认收款：订单号：{code}，¥218.00。已通知顾客，请尽快发货。")),
        (again, Says(again, exact=f"订单号：{code} 已经记录过收款，没有重复记录。")),
    )
    order = await get_order_row(shop, code)
    assert (order.status, order.paid_fen, order.expires_at) == ("paid", 21800, None)
    from models.tables import Payment

    assert [(p.amount_fen, p.recorded_by) for p in await rows_of(shop, Payment)] == [
        (21800, merchant)
    ]
    assert await customer_notices(shop, code) == [
        (
            "private",
            CUSTOMER_ID,
            [
                {
                    "type": "text",
                    "data": {"text": f"订单号：{code} 已确认收款 ¥218.00，我们会尽快发货。"},
                }
            ],
        )
    ]
    await ask(app, private(f"/订单 {code}", CUSTOMER_ID), "状态：待发货", f"确认收款（{label}）")


async def test_payment_notice_for_a_group_order_goes_to_the_group_with_a_mention(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await seed_order(shop, CUSTOMER_ID, group_id=GROUP_ID)
    await ask(app, say(chat, f"/收款 {code}"), "已确认收款")
    [(kind, target, segments)] = await customer_notices(shop, code)
    assert (kind, target) == ("group", GROUP_ID)
    assert segments == [
        {"type": "at", "data": {"qq": str(CUSTOMER_ID)}},
        {"type": "text", "data": {"text": f" 订单号：{code} 已确认收款 ¥39.90，我们会尽快发货。"}},
    ]
    assert "13800001111" not in text_of(segments)


async def test_record_payment_refusals(app: App, shop: ShopRuntime, chat: str) -> None:
    cancelled = await seed_order(shop, CUSTOMER_ID)
    await set_order_fields(shop, cancelled, status="cancelled")
    missing = "23456789AB"
    steps = [
        (say(chat, f"/收款 {cancelled}"), "订单已取消，不能收款。"),
        (say(chat, f"/收款 {missing}"), f"没有找到订单 {missing}。发 /订单列表 查看全部订单。"),
        (
            say(chat, "/收款 1234"),
            "订单号是 10 位字母和数字（下单回复里的“订单号：…”），而不是“1234”。\n用法：/收款 <订单号>，例如 /收款 2K7QH9M3XA",
        ),
    ]
    await converse(app, *((e, Says(e, exact=text)) for e, text in steps))
    order = await get_order_row(shop, cancelled)
    assert (order.status, order.paid_fen) == ("cancelled", 0)
    assert await customer_notices(shop, cancelled) == []


async def _expire_order(shop: ShopRuntime, code: str) -> None:
    from models.types import utcnow
    from services import orders

    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, code)
        await orders.cancel(
            session, order, orders.Actor.system(), "超时未付款", utcnow(), action="expired"
        )


async def test_late_payment_revives_an_expired_order(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await seed_order(shop, CUSTOMER_ID, ((1, 2, 2),))
    await _expire_order(shop, code)
    stock = await stock_of(shop, 1, 2)
    paid = say(chat, f"/收款 {code}")
    await ask(
        app,
        paid,
        exact=(
            f"已确认收款：订单号：{code}，¥218.00。订单曾超时取消，现已恢复为待发货，库存已重新占用。"
            "已通知顾客，请尽快发货。"
        ),
    )
    order = await get_order_row(shop, code)
    assert (order.status, order.paid_fen, order.closed_at) == ("paid", 21800, None)
    assert await stock_of(shop, 1, 2) == stock - 2
    [(_, _, segments)] = await customer_notices(shop, code)
    assert (
        text_of(segments)
        == f"订单号：{code} 超时取消后收到了你的付款 ¥218.00，订单已恢复，我们会尽快发货。"
    )
    await ask(
        app, private(f"/订单 {code}", CUSTOMER_ID), "状态：待发货", "超时取消后收到付款，订单恢复"
    )


async def test_late_payment_with_the_stock_sold_is_refused_with_what_to_do(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await seed_order(shop, CUSTOMER_ID, ((1, 2, 2),))
    await _expire_order(shop, code)
    await set_stock(shop, 1, 2, 1)
    await ask(
        app,
        say(chat, f"/收款 {code}"),
        exact=(
            f"订单号：{code} 已超时取消，“云南小粒咖啡豆（500g）”现在只剩 1 件，无法恢复订单。"
            f"请把货款退给顾客，或先补库存（/库存）再 /收款 {code}。"
        ),
    )
    order = await get_order_row(shop, code)
    assert (order.status, order.paid_fen) == ("cancelled", 0)
    assert await stock_of(shop, 1, 2) == 1
    assert await customer_notices(shop, code) == []


# --- /审核 ----------------------------------------------------------------------------


async def test_approve_address_change(app: App, shop: ShopRuntime, chat: str) -> None:
    await save_address(shop, CUSTOMER_ID)
    await save_address(shop, CUSTOMER_ID, OFFICE)
    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    request = private(f"/修改 {code} 地址 2", CUSTOMER_ID)
    approve = say(chat, f"/审核 {code} 同意")
    twice = say(chat, f"/审核 {code} 同意")
    # A group sees the new address masked, as everywhere in groups.
    name, phone, detail = OFFICE
    where = "李* 139****2222 江苏省南京市" if chat == "group" else f"{name} {phone} {detail}"
    moved = f"· 修改地址：收货信息已改为 {where}"
    await converse(
        app,
        (request, Says(request, "修改地址申请已提交")),
        (approve, Says(approve, exact=f"订单号：{code} 已同意 1 个申请，已通知顾客：\n{moved}")),
        (twice, Says(twice, exact=f"订单 {code} 没有待审核的申请。")),
    )
    order = await get_order_row(shop, code)
    assert (order.receiver_name, order.receiver_phone, order.receiver_address) == OFFICE
    assert order.status == "paid"
    texts = [text_of(s) for _, _, s in await customer_notices(shop, code)]
    assert f"订单号：{code} 的修改地址申请已同意。" in texts


async def test_reject_remark_change_with_reason(app: App, shop: ShopRuntime, chat: str) -> None:
    from models.tables import OrderRequest

    code = await seed_order(shop, CUSTOMER_ID, remark="原备注")
    await pay_order(shop, code)
    request = private(f"/修改 {code} 备注 加急", CUSTOMER_ID)
    reject = say(chat, f"/review-change {code} 拒绝 已经打包好了", STAFF_ID)
    await converse(
        app,
        (request, Says(request, "修改备注申请已提交")),
        (
            reject,
            Says(
                reject,
                exact=f"订单号：{code} 已拒绝 1 个申请，已通知顾客：\n"
                f"· 修改备注：未同意，订单不变\n说明：已经打包好了",
            ),
        ),
    )
    assert (await get_order_row(shop, code)).remark == "原备注"
    [row] = await rows_of(shop, OrderRequest)
    assert (row.status, row.decided_by, row.decision_reason) == (
        "rejected",
        STAFF_ID,
        "已经打包好了",
    )
    texts = [text_of(s) for _, _, s in await customer_notices(shop, code)]
    assert f"订单号：{code} 的修改备注申请未通过。说明：已经打包好了" in texts


async def test_approve_cancellation_refunds_and_restocks(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    from models.tables import Refund, Variant

    code = await seed_order(shop, CUSTOMER_ID, ((3, 1, 2),))
    await pay_order(shop, code)
    assert await stock_of(shop, 3) == 6
    request = private(f"/取消 {code} 买重了", CUSTOMER_ID)
    approve = say(chat, f"/审核 {code} 同意")
    await converse(
        app,
        (request, Says(request, "取消申请已提交")),
        (
            approve,
            Says(
                approve,
                exact=f"订单号：{code} 已同意 1 个申请，已通知顾客：\n"
                "· 取消订单：已全额退款 ¥256.00，库存已退回",
            ),
        ),
    )
    order = await get_order_row(shop, code)
    assert (order.status, order.refunded_fen) == ("refunded", 25600)
    assert await stock_of(shop, 3) == 8
    assert [v.sold for v in await rows_of(shop, Variant) if v.item_id == 3] == [0]
    assert [(r.amount_fen, r.reason) for r in await rows_of(shop, Refund)] == [(25600, "买重了")]
    texts = [text_of(s) for _, _, s in await customer_notices(shop, code)]
    assert f"订单号：{code} 的取消订单申请已同意。已全额退款 ¥256.00。" in texts
    await ask(app, private(f"/订单 {code}", CUSTOMER_ID), "状态：已退款", "同意取消并退款（店主）")


async def test_review_refusals(app: App, shop: ShopRuntime, chat: str) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    steps = [
        (say(chat, f"/审核 {code} 同意"), f"订单 {code} 没有待审核的申请。"),
        (
            say(chat, f"/审核 {code} 可以"),
            f"决定应是 同意、拒绝、approve、reject 之一，而不是“可以”。\n{REVIEW_USAGE}",
        ),
        (say(chat, f"/审核 {code}"), f"缺少决定。\n{REVIEW_USAGE}"),
        (
            say(chat, "/审核 23456789AB 同意"),
            "没有找到订单 23456789AB。发 /订单列表 查看全部订单。",
        ),
    ]
    await converse(app, *((e, Says(e, exact=text)) for e, text in steps))


async def test_approve_when_a_cancellation_precedes_an_address_request(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    """Regression: the cancel (asked first) refunded the order, the later address request
    then raised and the whole approval rolled back with a wrong 订单已退款关闭 message."""
    await save_address(shop, CUSTOMER_ID)
    await save_address(shop, CUSTOMER_ID, OFFICE)
    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    cancel = private(f"/取消 {code} 不要了", CUSTOMER_ID)
    address = private(f"/修改 {code} 地址 2", CUSTOMER_ID)
    approve = say(chat, f"/审核 {code} 同意")
    reply = Grab(approve)
    await converse(
        app,
        (cancel, Says(cancel, "取消申请已提交")),
        (address, Says(address, "修改地址申请已提交")),
        (approve, reply),
    )
    order = await get_order_row(shop, code)
    assert "已全额退款 ¥39.90" in reply.text, reply.text
    assert order.status == "refunded"
    assert await stock_of(shop, 2) == 50
    from models.tables import OrderRequest

    # The address change is applied first, the cancellation last (it closes the order).
    assert sorted((r.kind, r.status) for r in await rows_of(shop, OrderRequest)) == [
        ("address", "approved"),
        ("cancel", "approved"),
    ]


# --- /退款 ----------------------------------------------------------------------------


async def test_partial_then_full_refund(app: App, shop: ShopRuntime, chat: str) -> None:
    from models.tables import Refund

    code = await seed_order(shop, CUSTOMER_ID, ((2, 1, 2),))
    await pay_order(shop, code)
    partial = say(chat, f"/退款 {code} 10 少发一件")
    too_much = say(chat, f"/refund {code} 100")
    rest = say(chat, f"/退款 {code}")
    await converse(
        app,
        (
            partial,
            Says(partial, exact=f"订单号：{code} 已退款 ¥10.00（累计 ¥10.00）。还可退 ¥69.80。"),
        ),
        (too_much, Says(too_much, exact="退款金额 ¥100.00 超过可退金额 ¥69.80。")),
        (
            rest,
            Says(rest, exact=f"订单号：{code} 已退款 ¥69.80（累计 ¥79.80）。订单已关闭为已退款。"),
        ),
    )
    order = await get_order_row(shop, code)
    assert (order.status, order.paid_fen, order.refunded_fen) == ("refunded", 7980, 7980)
    assert [(r.amount_fen, r.reason) for r in await rows_of(shop, Refund)] == [
        (1000, "少发一件"),
        (6980, ""),
    ]
    assert await stock_of(shop, 2) == 50  # unshipped: back on the shelf
    texts = sorted(text_of(s) for _, _, s in await customer_notices(shop, code))
    assert texts == sorted(
        [
            f"订单号：{code} 已退款 ¥10.00。",
            f"订单号：{code} 已退款 ¥69.80，订单已关闭。",
        ]
    )


async def test_partial_refund_keeps_the_order_open(app: App, shop: ShopRuntime, chat: str) -> None:
    code = await seed_order(shop, CUSTOMER_ID, ((2, 1, 2),))
    await pay_order(shop, code)
    await ask(app, say(chat, f"/退款 {code} 10"), "已退款 ¥10.00")
    order = await get_order_row(shop, code)
    assert (order.status, order.refunded_fen) == ("paid", 1000)
    assert await stock_of(shop, 2) == 48
    await ask(
        app,
        private(f"/订单 {code}", CUSTOMER_ID),
        "合计：¥79.80，已付 ¥79.80，已退 ¥10.00",
        "部分退款（店主）",
    )


async def test_refund_with_only_a_reason_is_a_full_refund(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    from models.tables import Refund

    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    await ask(
        app,
        say(chat, f"/退款 {code} 少发一件"),
        exact=f"订单号：{code} 已退款 ¥39.90（累计 ¥39.90）。订单已关闭为已退款。",
    )
    assert [(r.amount_fen, r.reason) for r in await rows_of(shop, Refund)] == [(3990, "少发一件")]
    assert (await get_order_row(shop, code)).status == "refunded"


async def test_full_refund_of_a_shipped_order_keeps_stock_out(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await seed_order(shop, CUSTOMER_ID, ((3, 1, 1),))
    await pay_order(shop, code)
    await set_order_fields(shop, code, status="shipped")
    await ask(app, say(chat, f"/退款 {code} 包裹丢了"), "订单已关闭为已退款")
    assert (await get_order_row(shop, code)).status == "refunded"
    assert await stock_of(shop, 3) == 7  # the goods left the shop


async def test_refund_refusals(app: App, shop: ShopRuntime, chat: str) -> None:
    unpaid = await seed_order(shop, CUSTOMER_ID)
    closed = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, closed)
    await set_order_fields(shop, closed, status="refunded", refunded_fen=3990)
    paid = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, paid)
    steps = [
        (say(chat, f"/退款 {unpaid}"), "订单还没付款，不能退款。"),
        (say(chat, f"/退款 {closed} 1"), "订单已退款关闭，不能退款。"),
        (say(chat, f"/退款 {paid} 39.91"), "退款金额 ¥39.91 超过可退金额 ¥39.90。"),
        (say(chat, f"/退款 {paid} 0"), f"金额至少 0.01 元。\n{REFUND_USAGE}"),
        # A mistyped amount is refused, never read as a reason (that would refund everything).
        (
            say(chat, f"/退款 {paid} 1.234"),
            f"金额应是以元为单位的数字，最多两位小数（如 10 或 9.9），而不是“1.234”。\n{REFUND_USAGE}",
        ),
        (say(chat, "/退款"), f"缺少订单号。\n{REFUND_USAGE}"),
    ]
    await converse(app, *((e, Says(e, exact=text)) for e, text in steps))
    from models.tables import Refund

    assert await rows_of(shop, Refund) == []
    assert (await get_order_row(shop, paid)).refunded_fen == 0


# --- /设置收款 ------------------------------------------------------------------------


async def test_set_payment_text(app: App, shop: ShopRuntime, chat: str) -> None:
    setting = say(chat, "/设置收款 微信转账 wxid_shop，备注订单号", STAFF_ID)
    empty = say(chat, "/payinfo")
    await converse(
        app,
        (
            setting,
            Says(
                setting,
                exact=(
                    "付款说明已更新，未设置收款码（发送时附一张图片即可）。顾客发 /付款 <订单号> 时会看到：\n"
                    "微信转账 wxid_shop，备注订单号"
                ),
            ),
        ),
        (empty, Says(empty, exact=f"缺少付款说明。\n{PAYINFO_USAGE}")),
    )
    code = await seed_order(shop, CUSTOMER_ID)
    await ask(
        app, private(f"/付款 {code}", CUSTOMER_ID), "微信转账 wxid_shop，备注订单号", image=False
    )


async def test_set_payment_qr_image(
    app: App, shop: ShopRuntime, chat: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from models.tables import Shop

    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with serve_png() as url:
        text = say(chat, "/设置收款 支付宝 shop@example.com")
        image = say(chat, "/设置收款", images=(url,))
        await converse(
            app,
            (text, Says(text, "付款说明已更新，未设置收款码")),
            (image, Says(image, "付款说明已更新，收款码已保存。", "支付宝 shop@example.com")),
        )
    [row] = await rows_of(shop, Shop)
    assert row.payment_text == "支付宝 shop@example.com"
    assert row.payment_qr_path
    assert (Path(shop.settings.data_dir) / row.payment_qr_path).read_bytes() == png_bytes()
    code = await seed_order(shop, CUSTOMER_ID)
    await ask(
        app,
        say(chat, f"/付款 {code}", CUSTOMER_ID),
        "支付宝 shop@example.com",
        image=True,
    )


async def test_set_payment_image_that_cannot_be_downloaded(
    app: App, shop: ShopRuntime, chat: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.tables import Shop

    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with serve_png() as url:
        missing = say(chat, "/设置收款 转账", images=(url.replace("qr.png", "gone.png"),))
        await ask(app, missing, exact="图片下载失败，请稍后重新发送一次。")
    [row] = await rows_of(shop, Shop)
    assert (row.payment_text, row.payment_qr_path) == ("", None)


async def test_full_refund_closes_a_pending_cancellation_request(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    """Regression: a refunded order kept showing 待店家审核：取消订单."""
    from models.tables import OrderRequest

    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    request = private(f"/取消 {code} 不要了", CUSTOMER_ID)
    refund = say(chat, f"/退款 {code}")
    detail = private(f"/订单 {code}", CUSTOMER_ID)
    await converse(
        app,
        (request, Says(request, "取消申请已提交")),
        (refund, Says(refund, "订单已关闭为已退款")),
        (detail, Says(detail, "状态：已退款", absent=("待店家审核",))),
    )
    assert [(r.kind, r.status) for r in await rows_of(shop, OrderRequest)] == [
        ("cancel", "approved")
    ]


# --- /对账 ----------------------------------------------------------------------------

RECONCILE_USAGE = "用法：/对账 [订单号]，例如 /对账 2K7QH9M3XA"


async def started_payment(shop: ShopRuntime, code: str) -> str:
    """The customer asked /付款 for the order: its out_trade_no at the gateway."""
    from services.actors import Caller
    from services.staff import Role
    from services.usecases import buying
    from services.usecases.epay import PaymentLink

    link = await buying.pay_order(shop.shop, Caller(CUSTOMER_ID, None, Role.CUSTOMER), code)
    assert isinstance(link, PaymentLink)
    return link.out_trade_no


async def attempts_due_now(shop: ShopRuntime) -> None:
    """Moves every live attempt's next check into the past."""
    from sqlalchemy import update

    from models.tables import PaymentAttempt
    from models.types import utcnow

    async with shop.database.write() as session:
        await session.execute(
            update(PaymentAttempt)
            .where(PaymentAttempt.state == "live")  # type: ignore[arg-type]
            .values(next_check_at=utcnow() - timedelta(seconds=1))
        )


async def test_reconcile_finds_a_lost_notify_and_records_the_payment(
    app: App, shop: ShopRuntime, chat: str, epay: FakeEpay
) -> None:
    from models.tables import Payment

    code = await seed_order(shop, CUSTOMER_ID)
    out_trade_no = await started_payment(shop, code)
    epay.pay(out_trade_no, NotifyMode.DROP)  # paid, but the notify never arrives
    ask_now = say(chat, f"/对账 {code.lower()}", STAFF_ID)
    again = say(chat, f"/reconcile {code}")
    await converse(
        app,
        (
            ask_now,
            Says(
                ask_now,
                exact=f"对账完成：查询了 1 笔付款：已到账并记录 1 笔。\n"
                f"订单号：{code}（付款单 {out_trade_no}）：已到账并记录",
            ),
        ),
        (
            again,
            Says(
                again,
                exact=f"订单号：{code} 没有可查询的在线付款（顾客还没有发 /付款，或付款已处理完）。",
            ),
        ),
    )
    order = await get_order_row(shop, code)
    assert (order.status, order.paid_fen) == ("paid", 3990)
    [payment] = await rows_of(shop, Payment)
    assert (payment.provider, payment.reference) == ("epay", epay.payments[out_trade_no].trade_no)
    # The customer hears that the money arrived, staff that there is an order to ship.
    assert await customer_notices(shop, code) == [
        (
            "private",
            CUSTOMER_ID,
            [
                {
                    "type": "text",
                    "data": {"text": f"订单号：{code} 已确认收款 ¥39.90，我们会尽快发货。"},
                }
            ],
        )
    ]
    staff_rows = [
        r for r in await outbox_rows(shop) if r.dedupe_key.startswith(f"order:{code}:paid:staff:")
    ]
    assert sorted(r.target_id for r in staff_rows) == [OWNER_ID, STAFF_ID]
    assert all(f"/发货 {code}" in text_of(json.loads(r.segments)) for r in staff_rows)


async def test_reconcile_without_an_order_asks_about_every_live_payment_now(
    app: App, shop: ShopRuntime, chat: str, epay: FakeEpay
) -> None:
    nothing_live = say(chat, "/对账")
    await ask(
        app,
        nothing_live,
        exact="现在没有等待付款的在线付款单。（平时每 2 分钟自动查询一次；已过期的付款单可用 /对账 <订单号> 再查）",
    )
    code = await seed_order(shop, CUSTOMER_ID)
    out_trade_no = await started_payment(shop, code)
    # Not yet due for the clock's check: staff asking still asks the gateway now.
    unpaid = say(chat, "/对账")
    await ask(
        app,
        unpaid,
        exact=f"对账完成：查询了 1 笔付款：未付款 1 笔。\n订单号：{code}（付款单 {out_trade_no}）：未付款",
    )
    [attempt] = await attempts_of(shop, code)
    assert attempt.state == "live" and attempt.checked_at is not None
    # The gateway cannot be reached: said so, and the attempt is asked about again later.
    from services.epay import EpayGateway

    await attempts_due_now(shop)
    live = shop.shop.payment_gateway
    dead = EpayGateway(f"http://127.0.0.1:{free_port()}/", PID, KEY, timeout=2.0)
    shop.shop.payment_gateway = dead
    try:
        down = say(chat, "/对账")
        await ask(
            app,
            down,
            exact=f"对账完成：查询了 1 笔付款：网关无法访问 1 笔。\n"
            f"订单号：{code}（付款单 {out_trade_no}）：网关无法访问",
        )
    finally:
        shop.shop.payment_gateway = live
        await dead.aclose()
    assert (await get_order_row(shop, code)).status == "pending_payment"
    assert [a.state for a in await attempts_of(shop, code)] == ["live"]


async def test_reconcile_refusals(app: App, shop: ShopRuntime, chat: str, epay: FakeEpay) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await started_payment(shop, code)
    steps = [
        (say(chat, f"/对账 {code}", CUSTOMER_ID), NO_PERMISSION),
        (say(chat, "/对账 2K7QH9M3XA"), "没有找到订单 2K7QH9M3XA。发 /订单列表 查看全部订单。"),
        (
            say(chat, "/对账 abc"),
            f"订单号是 10 位字母和数字（下单回复里的“订单号：…”），而不是“ABC”。\n{RECONCILE_USAGE}",
        ),
    ]
    await converse(app, *((e, Says(e, exact=text)) for e, text in steps))
    assert (await get_order_row(shop, code)).status == "pending_payment"


async def test_reconcile_with_the_manual_provider_says_what_it_needs(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    before = await snapshot(shop)
    event = say(chat, "/对账")
    await ask(
        app,
        event,
        exact="自动对账需要在线支付：设置 PAYMENT_PROVIDER=epay 并配置易支付网关。"
        "现在是手动收款，到账后请用 /收款 <订单号> 确认。",
    )
    assert await snapshot(shop) == before
