"""/审核 <订单号> <同意|拒绝> [地址|备注|取消] [原因]: staff decide one kind of request or
(without a kind) every pending one, and the reply lists each decided request with what it
changed — in a private chat and in an enabled group (where a new address is masked). Only
the exact words 地址/备注/取消 right after the decision are a kind; a reason may begin with
anything. A kind with nothing pending is refused with what is pending, changing nothing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OWNER_ID, STAFF_ID
from tests.fake import Says, group, private
from tests.plugins.helpers import (
    OFFICE,
    add_staff,
    converse,
    get_order_row,
    outbox_rows,
    pay_order,
    rows_of,
    seed_demo,
    seed_order,
)

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime

NO_PERMISSION = "无权限：这是店主/店员命令。发 /帮助 查看你可用的命令。"
REVIEW_USAGE = (
    "用法：/审核 <订单号> <同意|拒绝> [地址|备注|取消] [原因]，例如 /审核 2K7QH9M3XA 同意 地址"
)


@pytest.fixture(autouse=True)
async def _shop_ready(shop: ShopRuntime) -> None:
    from plugins._common.runtime import FloodGuard

    shop.flood = FloodGuard(10_000, 10.0)
    await seed_demo(shop)
    await add_staff(shop, STAFF_ID)


def say(chat: str, text: str, user_id: int = STAFF_ID) -> Any:
    if chat == "private":
        return private(text, user_id)
    return group(text, user_id, GROUP_ID)


async def exchange(app: App, *steps: tuple[Any, str]) -> None:
    """Each event in order; each reply must be exactly the text."""
    await converse(app, *((event, Says(event, exact=text)) for event, text in steps))


async def paid_order_with_requests(shop: ShopRuntime, *kinds: str) -> str:
    """A paid order (1 × 冷萃咖啡液, ¥39.90, remark 原备注) whose customer asked, in this
    order, for the kinds given: address (to OFFICE), remark (加急), cancel (买重了)."""
    from models.types import utcnow
    from services.addresses import validate
    from services.orders import Actor, amend_address, amend_remark, cancel, get_order

    code = await seed_order(shop, CUSTOMER_ID, remark="原备注")
    await pay_order(shop, code)
    customer = Actor("customer", CUSTOMER_ID)
    async with shop.database.write() as session:
        order = await get_order(session, shop.shop_id, code)
        for kind in kinds:
            if kind == "address":
                await amend_address(session, order, validate(*OFFICE), customer, utcnow())
            elif kind == "remark":
                await amend_remark(session, order, "加急", customer, utcnow())
            else:
                await cancel(session, order, customer, "买重了", utcnow())
    return code


async def requests_of(shop: ShopRuntime) -> list[tuple[str, str, str]]:
    """(kind, status, decision reason) of every request, oldest first."""
    from models.tables import OrderRequest

    return [(r.kind, r.status, r.decision_reason) for r in await rows_of(shop, OrderRequest)]


async def customer_texts(shop: ShopRuntime, code: str) -> list[str]:
    """The texts of the notices queued for the order's customer, oldest first."""
    return [
        "".join(s["data"]["text"] for s in json.loads(r.segments) if s["type"] == "text")
        for r in await outbox_rows(shop)
        if r.dedupe_key.startswith(f"order:{code}:request:")
    ]


async def snapshot(shop: ShopRuntime) -> dict[str, list[dict[str, Any]]]:
    from models.tables import OrderEvent, OrderRequest, OutboxMessage, Refund, ShopOrder, Variant

    tables = (ShopOrder, OrderEvent, OrderRequest, Refund, OutboxMessage, Variant)
    return {
        model.__name__: [row.model_dump() for row in await rows_of(shop, model)] for model in tables
    }


def new_address(chat: str) -> str:
    """OFFICE as the reply shows it: a group sees it masked, down to the city."""
    if chat == "group":
        return "李* 139****2222 江苏省南京市"
    return " ".join(OFFICE)


# --- one kind -------------------------------------------------------------------------


async def test_deciding_one_kind_leaves_the_others_waiting(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await paid_order_with_requests(shop, "address", "remark", "cancel")
    remark = say(chat, f"/审核 {code} 同意 备注 好的")
    address = say(chat, f"/review-change {code} approve 地址")
    await exchange(
        app,
        (
            remark,
            f"订单号：{code} 已同意 1 个申请，已通知顾客：\n"
            "· 修改备注：备注已改为“加急”\n"
            "说明：好的\n"
            f"还在等待审核：修改地址（/审核 {code} <同意|拒绝> 地址）、"
            f"取消订单（/审核 {code} <同意|拒绝> 取消）",
        ),
        (
            address,
            f"订单号：{code} 已同意 1 个申请，已通知顾客：\n"
            f"· 修改地址：收货信息已改为 {new_address(chat)}\n"
            f"还在等待审核：取消订单（/审核 {code} <同意|拒绝> 取消）",
        ),
    )
    assert await requests_of(shop) == [
        ("address", "approved", ""),
        ("remark", "approved", "好的"),
        ("cancel", "pending", ""),
    ]
    order = await get_order_row(shop, code)
    assert (order.status, order.remark, order.receiver_name) == ("paid", "加急", "李四")
    # One notice per decided request, none for the one still waiting.
    assert await customer_texts(shop, code) == [
        f"订单号：{code} 的修改备注申请已同意。说明：好的",
        f"订单号：{code} 的修改地址申请已同意。",
    ]


async def test_rejecting_one_kind_with_a_reason(app: App, shop: ShopRuntime, chat: str) -> None:
    code = await paid_order_with_requests(shop, "remark", "cancel")
    reject = say(chat, f"/审核 {code} 拒绝 取消 已经发出了", OWNER_ID)
    await exchange(
        app,
        (
            reject,
            f"订单号：{code} 已拒绝 1 个申请，已通知顾客：\n"
            "· 取消订单：未同意，订单不变\n"
            "说明：已经发出了\n"
            f"还在等待审核：修改备注（/审核 {code} <同意|拒绝> 备注）",
        ),
    )
    assert await requests_of(shop) == [
        ("remark", "pending", ""),
        ("cancel", "rejected", "已经发出了"),
    ]
    assert (await get_order_row(shop, code)).status == "paid"
    assert await customer_texts(shop, code) == [
        f"订单号：{code} 的取消订单申请未通过。说明：已经发出了"
    ]


async def test_approving_the_cancellation_alone_voids_the_rest(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await paid_order_with_requests(shop, "address", "cancel")
    approve = say(chat, f"/审核 {code} 同意 取消")
    await exchange(
        app,
        (
            approve,
            f"订单号：{code} 已同意 1 个申请，已通知顾客：\n"
            "· 取消订单：已全额退款 ¥39.90，库存已退回\n"
            "订单已全额退款，其余申请随之作废：修改地址。",
        ),
    )
    assert [(kind, status) for kind, status, _ in await requests_of(shop)] == [
        ("address", "superseded"),
        ("cancel", "approved"),
    ]
    assert (await get_order_row(shop, code)).status == "refunded"


# --- every pending request --------------------------------------------------------------


async def test_without_a_kind_every_request_is_listed(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await paid_order_with_requests(shop, "cancel", "address", "remark")
    approve = say(chat, f"/审核 {code} 同意")
    await exchange(
        app,
        (
            approve,
            # The cancellation last: once it refunds the order nothing else could change.
            f"订单号：{code} 已同意 3 个申请，已通知顾客：\n"
            f"· 修改地址：收货信息已改为 {new_address(chat)}\n"
            "· 修改备注：备注已改为“加急”\n"
            "· 取消订单：已全额退款 ¥39.90，库存已退回",
        ),
    )
    assert sorted((kind, status) for kind, status, _ in await requests_of(shop)) == [
        ("address", "approved"),
        ("cancel", "approved"),
        ("remark", "approved"),
    ]
    assert len(await customer_texts(shop, code)) == 3


async def test_a_reason_may_begin_with_any_word(app: App, shop: ShopRuntime, chat: str) -> None:
    """Only the exact words 地址/备注/取消 name a kind: 地址不对 begins the reason, and
    everything pending is decided; the kind word first lets a reason start with 备注."""
    first = await paid_order_with_requests(shop, "address", "remark")
    second = await paid_order_with_requests(shop, "address", "remark")
    everything = say(chat, f"/审核 {first} 拒绝 地址不对 备注也不行")
    one = say(chat, f"/审核 {second} 拒绝 备注 备注 已打印")
    await exchange(
        app,
        (
            everything,
            f"订单号：{first} 已拒绝 2 个申请，已通知顾客：\n"
            "· 修改地址：未同意，订单不变\n"
            "· 修改备注：未同意，订单不变\n"
            "说明：地址不对 备注也不行",
        ),
        (
            one,
            f"订单号：{second} 已拒绝 1 个申请，已通知顾客：\n"
            "· 修改备注：未同意，订单不变\n"
            "说明：备注 已打印\n"
            f"还在等待审核：修改地址（/审核 {second} <同意|拒绝> 地址）",
        ),
    )
    assert await requests_of(shop) == [
        ("address", "rejected", "地址不对 备注也不行"),
        ("remark", "rejected", "地址不对 备注也不行"),
        ("address", "pending", ""),
        ("remark", "rejected", "备注 已打印"),
    ]


# --- refusals ---------------------------------------------------------------------------


async def test_a_kind_with_nothing_pending_is_refused_with_what_is(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await paid_order_with_requests(shop, "remark", "cancel")
    quiet = await paid_order_with_requests(shop)
    before = await snapshot(shop)
    await exchange(
        app,
        (
            say(chat, f"/审核 {code} 同意 地址"),
            f"订单 {code} 没有待审核的修改地址申请，待审核的是：修改备注、取消订单。"
            f"请发 /审核 {code} <同意|拒绝> [地址|备注|取消] [原因]。",
        ),
        (say(chat, f"/审核 {quiet} 拒绝 备注 太晚了"), f"订单 {quiet} 没有待审核的申请。"),
        (
            say(chat, f"/审核 {code} 地址 同意"),
            f"决定应是 同意、拒绝、approve、reject 之一，而不是“地址”。\n{REVIEW_USAGE}",
        ),
    )
    assert await snapshot(shop) == before


async def test_customers_get_no_permission(app: App, shop: ShopRuntime, chat: str) -> None:
    code = await paid_order_with_requests(shop, "remark")
    before = await snapshot(shop)
    event = say(chat, f"/审核 {code} 同意 备注", CUSTOMER_ID)
    await exchange(app, (event, NO_PERMISSION))
    assert await snapshot(shop) == before
