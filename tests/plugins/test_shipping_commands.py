"""Shipping commands: /发货 /物流 /物流更新 /确认收货 /公告 in a private chat and in an
enabled group, and the auto-confirm clock through plugins.clocks.tick()."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import (
    CUSTOMER_ID,
    GROUP_ID,
    OTHER_CUSTOMER_ID,
    OTHER_GROUP_ID,
    OWNER_ID,
    STAFF_ID,
)
from tests.fake import Says, group, private
from tests.plugins.helpers import (
    Grab,
    add_staff,
    add_tracking_event,
    converse,
    enable_group,
    get_order_row,
    outbox_rows,
    pay_order,
    rows_of,
    seed_demo,
    seed_order,
    set_order_fields,
    ship_order,
    shipment_of_order,
    tracking_events_of,
)

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime

NO_PERMISSION = "无权限：这是店主/店员命令。发 /帮助 查看你可用的命令。"
SHIP_USAGE = "用法：/发货 <订单号> <快递公司> <运单号>，例如 /发货 2K7QH9M3XA 顺丰 SF1234567890"
TRACK_UPDATE_USAGE = (
    "用法：/物流更新 <订单号> <描述> [签收]，例如 /物流更新 2K7QH9M3XA 已到达杭州转运中心"
)
ANNOUNCE_USAGE = "用法：/公告 <内容>，例如 /公告 今晚 8 点上新，限量 20 份"
KNOWN_CARRIERS = "顺丰、中通、圆通、韵达、申通、极兔、邮政、EMS、京东、德邦"
THIRD_GROUP_ID = 777000
MISSING = "23456789AB"


# --- set-up --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
async def _shop_ready(shop: ShopRuntime) -> None:
    from plugins._common.runtime import FloodGuard

    shop.flood = FloodGuard(10_000, 10.0)
    await seed_demo(shop)
    await add_staff(shop, STAFF_ID)


def say(chat: str, text: str, user_id: int = OWNER_ID) -> Any:
    if chat == "private":
        return private(text, user_id)
    return group(text, user_id, GROUP_ID)


async def ask(app: App, event: Any, *fragments: str, **kwargs: Any) -> None:
    await converse(app, (event, Says(event, *fragments, **kwargs)))


async def paid_order(shop: ShopRuntime, user_id: int = CUSTOMER_ID, **kwargs: Any) -> str:
    code = await seed_order(shop, user_id, **kwargs)
    await pay_order(shop, code)
    return code


async def shipped_order(shop: ShopRuntime, user_id: int = CUSTOMER_ID, **kwargs: Any) -> str:
    code = await paid_order(shop, user_id, **kwargs)
    await ship_order(shop, code)
    return code


async def customer_notices(shop: ShopRuntime, code: str) -> list[tuple[str, str, int, list[Any]]]:
    """(key after `order:<code>:`, target type, target id, segments) for the customer."""
    prefix = f"order:{code}:"
    return [
        (r.dedupe_key.removeprefix(prefix), r.target_type, r.target_id, json.loads(r.segments))
        for r in await outbox_rows(shop)
        if r.dedupe_key.startswith(prefix) and ":staff:" not in r.dedupe_key
    ]


async def snapshot(shop: ShopRuntime) -> dict[str, list[dict[str, Any]]]:
    """Every row a shipping command can touch."""
    from models.tables import OrderEvent, OutboxMessage, Shipment, ShopOrder, TrackingEventRow

    tables = (ShopOrder, OrderEvent, Shipment, TrackingEventRow, OutboxMessage)
    return {
        model.__name__: [row.model_dump() for row in await rows_of(shop, model)] for model in tables
    }


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- /发货 -----------------------------------------------------------------------------


def manual_tracking(code: str) -> str:
    """The end of /发货's answer with TRACKING_PROVIDER=manual: nothing tracks by itself."""
    return f"物流动态请用 /物流更新 {code} <描述> 记录。"


@pytest.mark.parametrize("merchant", [OWNER_ID, STAFF_ID], ids=["owner", "staff"])
async def test_ship_marks_shipped_and_tells_the_customer(
    app: App, shop: ShopRuntime, chat: str, merchant: int
) -> None:
    code = await paid_order(shop)
    shop.shop.notices_committed.clear()
    event = say(chat, f"/发货 {code.lower()} 顺丰 sf1234567890", merchant)
    await ask(
        app,
        event,
        exact=f"已发货：订单号：{code}，顺丰 SF1234567890。已通知顾客，{manual_tracking(code)}",
    )
    order = await get_order_row(shop, code)
    assert order.status == "shipped"
    shipment = await shipment_of_order(shop, code)
    assert (shipment.carrier_name, shipment.carrier_code, shipment.number, shipment.in_transit) == (
        "顺丰",
        "shunfeng",
        "SF1234567890",
        True,
    )
    assert shipment.next_poll_at == shipment.shipped_at
    assert [(k, t, i) for k, t, i, _ in await customer_notices(shop, code)][-1] == (
        "shipped",
        "private",
        CUSTOMER_ID,
    )
    [*_, (_, _, _, segments)] = await customer_notices(shop, code)
    assert segments == [
        {
            "type": "text",
            "data": {
                "text": f"订单号：{code} 已发货：顺丰 SF1234567890。发 /物流 {code} 查看物流。"
            },
        }
    ]
    assert shop.shop.notices_committed.is_set()
    from models.tables import OrderEvent

    [shipped] = [e for e in await rows_of(shop, OrderEvent) if e.action == "shipped"]
    assert (shipped.actor_id, shipped.detail) == (merchant, "顺丰 SF1234567890")


@pytest.mark.parametrize(
    ("spelling", "name", "code"),
    [("SF", "顺丰", "shunfeng"), ("中通快递", "中通", "zhongtong"), ("ＪＤ", "京东", "jd")],
)
async def test_ship_accepts_carrier_spellings(
    app: App, shop: ShopRuntime, chat: str, spelling: str, name: str, code: str
) -> None:
    order_code = await paid_order(shop)
    event = say(chat, f"/ship {order_code} {spelling} ＹＴ１２３４５６７８", STAFF_ID)
    await ask(
        app,
        event,
        exact=f"已发货：订单号：{order_code}，{name} YT12345678。已通知顾客，{manual_tracking(order_code)}",
    )
    shipment = await shipment_of_order(shop, order_code)
    assert (shipment.carrier_name, shipment.carrier_code, shipment.number) == (
        name,
        code,
        "YT12345678",
    )


async def test_ship_of_a_group_order_notifies_the_group_with_a_mention(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await paid_order(shop, group_id=GROUP_ID)
    await ask(app, say(chat, f"/发货 {code} 圆通 YT0000000001"), "已发货")
    [*_, (key, kind, target, segments)] = await customer_notices(shop, code)
    assert (key, kind, target) == ("shipped", "group", GROUP_ID)
    assert segments[0] == {"type": "at", "data": {"qq": str(CUSTOMER_ID)}}
    assert (
        segments[1]["data"]["text"]
        == f" 订单号：{code} 已发货：圆通 YT0000000001。发 /物流 {code} 查看物流。"
    )
    assert "13800001111" not in json.dumps(segments, ensure_ascii=False)


async def test_ship_refusals(app: App, shop: ShopRuntime, chat: str) -> None:
    code = await paid_order(shop)
    shipped = await shipped_order(shop)
    steps = [
        (
            say(chat, f"/发货 {code} 火星快递 SF1234567890"),
            f"不认识快递公司“火星快递”。可用：{KNOWN_CARRIERS}。\n{SHIP_USAGE}",
        ),
        (
            say(chat, f"/发货 {code} 顺丰 12345"),
            f"运单号应是 6 到 30 位字母或数字，而不是“12345”。\n{SHIP_USAGE}",
        ),
        (
            say(chat, f"/发货 {code} 顺丰 SF-123456"),
            f"运单号应是 6 到 30 位字母或数字，而不是“SF-123456”。\n{SHIP_USAGE}",
        ),
        (say(chat, f"/发货 {code} 顺丰"), f"缺少运单号。\n{SHIP_USAGE}"),
        (say(chat, f"/发货 {code}"), f"缺少快递公司。\n{SHIP_USAGE}"),
        (say(chat, f"/发货 {code} 顺丰 SF1234567890 多余"), f"多余的内容：多余\n{SHIP_USAGE}"),
        (
            say(chat, f"/发货 {MISSING} 顺丰 SF1234567890"),
            f"没有找到订单 {MISSING}。发 /订单列表 查看全部订单。",
        ),
        (say(chat, f"/发货 {shipped} 中通 ZT1234567890"), "订单已发货，只有待发货的订单能发货。"),
    ]
    before = await snapshot(shop)
    await converse(app, *((e, Says(e, exact=text)) for e, text in steps))
    assert await snapshot(shop) == before
    assert (await get_order_row(shop, code)).status == "paid"
    assert (await shipment_of_order(shop, shipped)).number == "SF1234567890"


@pytest.mark.parametrize("state", ["pending_payment", "cancelled"])
async def test_ship_refuses_an_order_that_is_not_paid(
    app: App, shop: ShopRuntime, chat: str, state: str
) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await set_order_fields(shop, code, status=state)
    before = await snapshot(shop)
    hint = {"pending_payment": "订单还没付款", "cancelled": "订单已取消"}[state]
    await ask(app, say(chat, f"/发货 {code} 顺丰 SF1234567890"), hint, absent=("已发货：",))
    assert await snapshot(shop) == before
    assert await shipment_of_order(shop, code) is None


async def test_ship_of_an_unpaid_order_says_only_paid_orders_ship(
    app: App, shop: ShopRuntime
) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await ask(
        app,
        private(f"/发货 {code} 顺丰 SF1234567890", OWNER_ID),
        exact="订单还没付款，只有待发货的订单能发货。",
    )


@pytest.mark.parametrize(
    "command",
    [
        "/发货 {paid} 顺丰 SF1234567890",
        "/ship {paid} SF SF1234567890",
        "/物流更新 {shipped} 已到达杭州",
        "/trackupdate {shipped} 签收",
        "/公告 全场五折",
        "/announce 全场五折",
    ],
)
async def test_customers_get_no_permission_and_nothing_changes(
    app: App, shop: ShopRuntime, chat: str, command: str
) -> None:
    codes = {"paid": await paid_order(shop), "shipped": await shipped_order(shop)}
    before = await snapshot(shop)
    await ask(app, say(chat, command.format(**codes), CUSTOMER_ID), exact=NO_PERMISSION)
    assert await snapshot(shop) == before


# --- /物流 -----------------------------------------------------------------------------


async def test_track_before_shipping(app: App, shop: ShopRuntime, chat: str) -> None:
    unpaid = await seed_order(shop, CUSTOMER_ID)
    paid = await paid_order(shop)
    steps = [
        (say(chat, f"/物流 {paid}", CUSTOMER_ID), f"订单号：{paid} 待发货，还没有发货。"),
        (
            say(chat, f"/track {unpaid.lower()}", CUSTOMER_ID),
            f"订单号：{unpaid} 待付款，还没有发货。",
        ),
    ]
    await converse(app, *((e, Says(e, exact=text)) for e, text in steps))


async def test_track_a_shipped_order_newest_event_first(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await paid_order(shop)
    await ship_order(shop, code, "中通快递", "ZT1234567890", at=utc(2026, 11, 22, 9, 0))
    fresh = say(chat, f"/物流 {code}", CUSTOMER_ID)
    await ask(
        app,
        fresh,
        exact=f"订单号：{code} 已发货\n中通 ZT1234567890\n暂无物流信息。",
    )
    # Entered out of order on purpose: the reply sorts by time, newest first.
    await add_tracking_event(shop, code, "已到达杭州转运中心", at=utc(2026, 11, 23, 2, 0))
    await add_tracking_event(shop, code, "已揽收", at=utc(2026, 11, 22, 10, 30))
    await add_tracking_event(shop, code, "派送中", at=utc(2026, 11, 24, 0, 5))
    event = say(chat, f"/物流 {code}", CUSTOMER_ID)
    # A group sees each event's state and city only (courier texts carry personal data).
    events = (
        "11-24 08:05 派送中\n11-23 10:00 已到达杭州转运中心\n11-22 18:30 已揽收"
        if chat == "private"
        else "11-24 08:05 派件\n11-23 10:00 在途 · 杭州\n11-22 18:30 揽收"
    )
    await ask(app, event, exact=f"订单号：{code} 已发货\n中通 ZT1234567890\n{events}")
    await add_tracking_event(shop, code, "本人签收", signed=True, at=utc(2026, 11, 24, 3, 42))
    signed = say(chat, f"/物流 {code}", CUSTOMER_ID)
    last = "本人签收" if chat == "private" else "签收"
    await ask(
        app,
        signed,
        exact=f"订单号：{code} 已签收\n中通 ZT1234567890\n当前：签收\n11-24 11:42 {last}\n{events}",
    )


async def test_track_shows_only_the_latest_ten_events(app: App, shop: ShopRuntime) -> None:
    code = await shipped_order(shop)
    for n in range(12):
        await add_tracking_event(shop, code, f"第{n + 1}站", at=utc(2026, 11, 23, n, 0))
    grab = Grab(private(f"/物流 {code}", CUSTOMER_ID), "第12站")
    await converse(app, (private(f"/物流 {code}", CUSTOMER_ID), grab))
    lines = grab.text.split("\n")
    assert [line.split(" ", 2)[-1] for line in lines[2:]] == [f"第{n}站" for n in range(12, 2, -1)]


async def test_another_customers_order_looks_like_an_unknown_code(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    theirs = await shipped_order(shop, OTHER_CUSTOMER_ID)
    await add_tracking_event(shop, theirs, "已到达杭州转运中心")
    other = say(chat, f"/物流 {theirs}", CUSTOMER_ID)
    unknown = say(chat, f"/物流 {MISSING}", CUSTOMER_ID)
    await converse(
        app,
        (other, Says(other, exact=f"没有找到订单 {theirs}。发 /订单 查看你的订单。")),
        (unknown, Says(unknown, exact=f"没有找到订单 {MISSING}。发 /订单 查看你的订单。")),
    )


@pytest.mark.parametrize("merchant", [OWNER_ID, STAFF_ID], ids=["owner", "staff"])
async def test_staff_track_any_order(app: App, shop: ShopRuntime, chat: str, merchant: int) -> None:
    code = await shipped_order(shop, OTHER_CUSTOMER_ID)
    await add_tracking_event(shop, code, "已到达杭州转运中心")
    await ask(
        app,
        say(chat, f"/物流 {code}", merchant),
        f"订单号：{code} 已发货\n顺丰 SF1234567890\n",
        "已到达杭州转运中心" if chat == "private" else "在途 · 杭州",
    )


COURIER_TEXT = "派送至 四川省成都市武侯区天府大道北段1700号，收件人 孙悟空，电话 13912345678"
COURIER_SECRETS = ("孙悟空", "天府大道", "1700", "武侯区", "139")


async def test_track_in_a_group_shows_state_and_city_only_private_shows_all(
    app: App, shop: ShopRuntime
) -> None:
    await enable_group(shop)
    code = await shipped_order(shop)
    await add_tracking_event(shop, code, "已放入丰巢柜，收件人电话 13800001111，取件码 123456")
    await add_tracking_event(shop, code, COURIER_TEXT)
    in_group = group(f"/物流 {code}", CUSTOMER_ID, GROUP_ID)
    in_private = private(f"/物流 {code}", CUSTOMER_ID)
    await converse(
        app,
        (
            in_group,
            Says(
                in_group,
                " 派件 · 成都市\n",
                absent=(*COURIER_SECRETS, "丰巢", "1111", "取件码"),
            ),
        ),
        (in_private, Says(in_private, COURIER_TEXT, "收件人电话 13800001111，取件码 123456")),
    )


async def test_order_detail_latest_tracking_line_in_a_group_is_state_and_city_only(
    app: App, shop: ShopRuntime
) -> None:
    await enable_group(shop)
    code = await shipped_order(shop)
    await add_tracking_event(shop, code, COURIER_TEXT)
    in_group = group(f"/订单 {code}", CUSTOMER_ID, GROUP_ID)
    in_private = private(f"/订单 {code}", CUSTOMER_ID)
    await converse(
        app,
        (in_group, Says(in_group, "，最新：派件 · 成都市（/物流", absent=COURIER_SECRETS)),
        (in_private, Says(in_private, f"，最新：{COURIER_TEXT}（/物流")),
    )


async def test_track_usage(app: App, shop: ShopRuntime, chat: str) -> None:
    steps = [
        (
            say(chat, "/物流", CUSTOMER_ID),
            "缺少订单号。\n用法：/物流 <订单号>，例如 /物流 2K7QH9M3XA",
        ),
        (
            say(chat, "/物流 12", CUSTOMER_ID),
            "订单号是 10 位字母和数字（下单回复里的“订单号：…”），而不是“12”。\n"
            "用法：/物流 <订单号>，例如 /物流 2K7QH9M3XA",
        ),
    ]
    await converse(app, *((e, Says(e, exact=text)) for e, text in steps))


# --- /物流更新 ---------------------------------------------------------------------------


@pytest.mark.parametrize("merchant", [OWNER_ID, STAFF_ID], ids=["owner", "staff"])
async def test_track_update_adds_an_event_and_tells_the_customer(
    app: App, shop: ShopRuntime, chat: str, merchant: int
) -> None:
    code = await shipped_order(shop)
    event = say(chat, f"/物流更新 {code.lower()} 已到达 杭州转运中心", merchant)
    # A group sees what its /物流 would show: the state and the city, never more.
    echoed = "已到达 杭州转运中心" if chat == "private" else "在途 · 杭州"
    await ask(app, event, exact=f"订单号：{code} 已添加物流：{echoed}。已通知顾客。")
    [row] = await tracking_events_of(shop, code)
    assert (row.text, row.state, row.source) == ("已到达 杭州转运中心", "", "manual")
    assert (await get_order_row(shop, code)).status == "shipped"
    [*_, (key, kind, target, segments)] = await customer_notices(shop, code)
    assert key == f"track:{row.key}"
    assert (kind, target) == ("private", CUSTOMER_ID)
    assert segments == [
        {"type": "text", "data": {"text": f"订单号：{code} 物流更新：已到达 杭州转运中心"}}
    ]
    shown = "已到达 杭州转运中心" if chat == "private" else "在途 · 杭州"
    await ask(app, say(chat, f"/物流 {code}", CUSTOMER_ID), shown)


@pytest.mark.parametrize(
    ("text", "stored"),
    [("已放门口快递柜 签收", "已放门口快递柜"), ("签收", "签收")],
)
async def test_track_update_with_signed_delivers(
    app: App, shop: ShopRuntime, chat: str, text: str, stored: str
) -> None:
    code = await shipped_order(shop)
    await ask(
        app,
        say(chat, f"/trackupdate {code} {text}", STAFF_ID),
        exact=f"订单号：{code} 已标记签收，已通知顾客。",
    )
    assert (await get_order_row(shop, code)).status == "delivered"
    shipment = await shipment_of_order(shop, code)
    assert (shipment.in_transit, shipment.state) == (False, "signed")
    assert shipment.delivered_at is not None
    [row] = await tracking_events_of(shop, code)
    assert (row.text, row.state) == (stored, "signed")
    keys = [k for k, *_ in await customer_notices(shop, code)]
    assert keys == ["shipped", "delivered"]
    [*_, (_, _, _, segments)] = await customer_notices(shop, code)
    assert segments[-1]["data"]["text"] == (
        f"订单号：{code} 已签收。收到货没问题请发 /确认收货 {code}；有问题可发 /售后。"
    )


async def test_track_update_with_full_width_spaces_parses_the_code(
    app: App, shop: ShopRuntime
) -> None:
    code = await shipped_order(shop)
    await ask(
        app,
        private(f"/物流更新\u3000{code}\u3000已到达杭州", STAFF_ID),
        exact=f"订单号：{code} 已添加物流：已到达杭州。已通知顾客。",
    )


async def test_track_update_signed_after_a_full_width_space(app: App, shop: ShopRuntime) -> None:
    code = await shipped_order(shop)
    await ask(
        app,
        private(f"/物流更新 {code} 已放门口快递柜\u3000签收", STAFF_ID),
        exact=f"订单号：{code} 已标记签收，已通知顾客。",
    )
    assert (await get_order_row(shop, code)).status == "delivered"
    [row] = await tracking_events_of(shop, code)
    assert row.text == "已放门口快递柜"


async def test_track_update_refusals(app: App, shop: ShopRuntime, chat: str) -> None:
    paid = await paid_order(shop)
    shipped = await shipped_order(shop)
    delivered = await shipped_order(shop)
    await add_tracking_event(shop, delivered, "签收", signed=True)
    steps = [
        (say(chat, f"/物流更新 {shipped}"), f"缺少描述。\n{TRACK_UPDATE_USAGE}"),
        (
            say(chat, f"/物流更新 {shipped} {'很' * 101}"),
            f"物流描述最多 100 个字。\n{TRACK_UPDATE_USAGE}",
        ),
        (
            say(chat, f"/物流更新 {paid} 已到达杭州"),
            "订单已付款，只有已发货、未签收的订单能更新物流。",
        ),
        (
            say(chat, f"/物流更新 {delivered} 又到了"),
            "订单已签收，只有已发货、未签收的订单能更新物流。",
        ),
        (
            say(chat, f"/物流更新 {MISSING} 已到达杭州"),
            f"没有找到订单 {MISSING}。发 /订单列表 查看全部订单。",
        ),
    ]
    before = await snapshot(shop)
    await converse(app, *((e, Says(e, exact=text)) for e, text in steps))
    assert await snapshot(shop) == before


# --- /确认收货 ----------------------------------------------------------------------------


@pytest.mark.parametrize("delivered", [True, False], ids=["delivered", "shipped"])
async def test_customer_confirms_receipt(
    app: App, shop: ShopRuntime, chat: str, delivered: bool
) -> None:
    code = await shipped_order(shop)
    if delivered:
        await add_tracking_event(shop, code, "签收", signed=True)
    event = say(chat, f"/received {code.lower()}", CUSTOMER_ID)
    await ask(app, event, exact=f"订单号：{code} 已确认收货，订单完成。感谢惠顾！")
    order = await get_order_row(shop, code)
    assert order.status == "completed" and order.closed_at is not None
    assert (await shipment_of_order(shop, code)).in_transit is False
    from models.tables import OrderEvent

    [done] = [e for e in await rows_of(shop, OrderEvent) if e.to_status == "completed"]
    assert (done.action, done.actor, done.actor_id) == ("completed", "customer", CUSTOMER_ID)
    again = say(chat, f"/确认收货 {code}", CUSTOMER_ID)
    await ask(app, again, exact="订单已完成，还不能确认收货。")


async def test_confirm_receipt_refusals(app: App, shop: ShopRuntime, chat: str) -> None:
    paid = await paid_order(shop)
    unpaid = await seed_order(shop, CUSTOMER_ID)
    theirs = await shipped_order(shop, OTHER_CUSTOMER_ID)
    await add_tracking_event(shop, theirs, "签收", signed=True)
    steps = [
        (say(chat, f"/确认收货 {paid}", CUSTOMER_ID), "订单已付款，还不能确认收货。"),
        (say(chat, f"/确认收货 {unpaid}", CUSTOMER_ID), "订单还没付款，还不能确认收货。"),
        (
            say(chat, f"/确认收货 {theirs}", CUSTOMER_ID),
            f"没有找到订单 {theirs}。发 /订单 查看你的订单。",
        ),
        (
            say(chat, f"/确认收货 {MISSING}", CUSTOMER_ID),
            f"没有找到订单 {MISSING}。发 /订单 查看你的订单。",
        ),
    ]
    before = await snapshot(shop)
    await converse(app, *((e, Says(e, exact=text)) for e, text in steps))
    assert await snapshot(shop) == before
    assert (await get_order_row(shop, theirs)).status == "delivered"


# --- /公告 ------------------------------------------------------------------------------


async def _groups(shop: ShopRuntime) -> None:
    """GROUP_ID and OTHER_GROUP_ID enabled; THIRD_GROUP_ID enabled once, then disabled."""
    from services.groups import set_group_enabled

    for group_id in (GROUP_ID, OTHER_GROUP_ID, THIRD_GROUP_ID):
        await enable_group(shop, group_id)
    async with shop.database.write() as session:
        await set_group_enabled(session, shop.shop_id, THIRD_GROUP_ID, False, OWNER_ID)
    shop.access.invalidate()


async def announcements(shop: ShopRuntime) -> list[tuple[str, int, list[Any]]]:
    return [
        (r.target_type, r.target_id, json.loads(r.segments))
        for r in await outbox_rows(shop)
        if r.dedupe_key.startswith("announce:")
    ]


@pytest.mark.parametrize("merchant", [OWNER_ID, STAFF_ID], ids=["owner", "staff"])
async def test_announce_queues_one_message_per_enabled_group(
    app: App, shop: ShopRuntime, chat: str, merchant: int
) -> None:
    await _groups(shop)
    shop.shop.notices_committed.clear()
    event = say(chat, "/公告 今晚 8 点上新，限量 20 份", merchant)
    await ask(app, event, exact="公告已排队，将按节奏发到 2 个群（每条间隔几秒，保护账号）。")
    body = [{"type": "text", "data": {"text": "【测试小店 公告】今晚 8 点上新，限量 20 份"}}]
    assert await announcements(shop) == [("group", GROUP_ID, body), ("group", OTHER_GROUP_ID, body)]
    assert all(r.sent_at is None for r in await outbox_rows(shop))
    assert shop.shop.notices_committed.is_set()


async def test_announce_keeps_cq_codes_as_literal_text(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    await _groups(shop)
    text = "[CQ:at,qq=all] 今晚上新 [CQ:image,file=http://evil.example/x.png]"
    await ask(app, say(chat, f"/announce {text}"), "公告已排队", "2 个群")
    rows = await announcements(shop)
    assert len(rows) == 2
    for _, _, segments in rows:
        assert segments == [{"type": "text", "data": {"text": f"【测试小店 公告】{text}"}}]


async def test_announce_without_enabled_groups(app: App, shop: ShopRuntime) -> None:
    from services.groups import set_group_enabled

    await enable_group(shop, OTHER_GROUP_ID)
    async with shop.database.write() as session:
        await set_group_enabled(session, shop.shop_id, OTHER_GROUP_ID, False, OWNER_ID)
    shop.access.invalidate()
    await ask(
        app,
        private("/公告 全场五折", OWNER_ID),
        exact="还没有启用店铺的群，公告没有发出。先在群里发 /启用本群。",
    )
    assert await outbox_rows(shop) == []


async def test_announce_length_and_usage(app: App, shop: ShopRuntime, chat: str) -> None:
    await _groups(shop)
    steps = [
        (say(chat, f"/公告 {'好' * 501}"), f"公告最多 500 个字。\n{ANNOUNCE_USAGE}"),
        (say(chat, "/公告"), f"缺少内容。\n{ANNOUNCE_USAGE}"),
    ]
    await converse(app, *((e, Says(e, exact=text)) for e, text in steps))
    assert await announcements(shop) == []
    await ask(app, say(chat, f"/公告 {'好' * 500}"), "2 个群")
    rows = await announcements(shop)
    assert [r[2][0]["data"]["text"] for r in rows] == ["【测试小店 公告】" + "好" * 500] * 2


# --- the auto-confirm clock ------------------------------------------------------------


async def test_tick_completes_old_deliveries_with_manual_tracking(shop: ShopRuntime) -> None:
    from models.types import utcnow
    from plugins.clocks import tick

    assert shop.settings.tracking_provider == "manual"
    days = shop.settings.auto_confirm_days
    now = utcnow()
    old = await paid_order(shop)
    await ship_order(shop, old, at=now - timedelta(days=days + 2))
    await add_tracking_event(
        shop, old, "签收", signed=True, at=now - timedelta(days=days, minutes=1)
    )
    recent = await paid_order(shop)
    await ship_order(shop, recent, at=now - timedelta(days=days + 2))
    await add_tracking_event(shop, recent, "签收", signed=True, at=now - timedelta(days=days - 1))
    in_transit = await paid_order(shop)
    await ship_order(shop, in_transit, at=now - timedelta(days=1))
    polled_at = (await shipment_of_order(shop, in_transit)).next_poll_at

    await tick()
    await tick()

    order = await get_order_row(shop, old)
    assert order.status == "completed"
    completed = [k for k, *_ in await customer_notices(shop, old) if k == "completed"]
    assert completed == ["completed"]
    [*_, (_, _, _, segments)] = await customer_notices(shop, old)
    assert segments[0]["data"]["text"].startswith(f"订单号：{old} 已自动确认收货，订单完成。")
    assert (await get_order_row(shop, recent)).status == "delivered"
    assert (await get_order_row(shop, in_transit)).status == "shipped"
    # The manual provider never polls: the shipment is untouched.
    shipment = await shipment_of_order(shop, in_transit)
    assert (shipment.next_poll_at, shipment.poll_failures, shipment.in_transit) == (
        polled_at,
        0,
        True,
    )
    assert await tracking_events_of(shop, in_transit) == []
