"""Over the chat: /物流更新 with words of a parcel going back (拒签, 退回…) in a private
chat and in a group, and a shipping notice after /停用本群 (the customer then hears it
privately)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OWNER_ID, STAFF_ID
from tests.fake import Says, group, private
from tests.plugins.helpers import (
    add_staff,
    converse,
    enable_group,
    get_order_row,
    outbox_rows,
    pay_order,
    seed_demo,
    seed_order,
    ship_order,
    shipment_of_order,
    tracking_events_of,
)

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime

# What staff typed: the receiver's phone, as couriers and customers write it.
REFUSED = "顾客拒签（电话 13800001111），快件在杭州市"
DISABLED = "已在本群停用店铺，之后本群的命令不再回应（/启用本群 可重新开启）。"


@pytest.fixture(autouse=True)
async def _shop_ready(shop: ShopRuntime) -> None:
    from plugins._common.runtime import FloodGuard

    shop.flood = FloodGuard(10_000, 10.0)
    await seed_demo(shop)
    await add_staff(shop, STAFF_ID)


async def ask(app: App, event: Any, *fragments: str, **kwargs: Any) -> None:
    await converse(app, (event, Says(event, *fragments, **kwargs)))


async def shipped_order(shop: ShopRuntime, **kwargs: Any) -> str:
    code = await seed_order(shop, CUSTOMER_ID, **kwargs)
    await pay_order(shop, code)
    await ship_order(shop, code)
    return code


async def keyed(shop: ShopRuntime, prefix: str) -> list[tuple[str, str, int, list[Any]]]:
    return [
        (r.dedupe_key, r.target_type, r.target_id, json.loads(r.segments))
        for r in await outbox_rows(shop)
        if r.dedupe_key.startswith(prefix)
    ]


def back_reply(code: str, shown: str) -> str:
    return (
        f"订单号：{code} 已添加物流：{shown}。已通知顾客。\n"
        f"包裹在退回，订单不会自动完成：请联系顾客重新发货或 /退款 {code}"
        "（其他店主和店员也收到了私聊提醒）。"
    )


# --- /物流更新 with a parcel going back ---------------------------------------------------


async def test_refused_in_private_tells_the_other_merchants(app: App, shop: ShopRuntime) -> None:
    code = await shipped_order(shop)
    shipment = await shipment_of_order(shop, code)
    await ask(
        app, private(f"/物流更新 {code} {REFUSED}", STAFF_ID), exact=back_reply(code, REFUSED)
    )

    assert (await shipment_of_order(shop, code)).state == "rejected"
    [row] = await tracking_events_of(shop, code)
    assert (row.text, row.state, row.source) == (REFUSED, "rejected", "manual")
    # The owner hears it privately, with the whole text; the staff member who typed it not.
    [(key, kind, target, segments)] = await keyed(shop, "parcel-back:")
    assert (key, kind, target) == (
        f"parcel-back:{shipment.id}:staff:{OWNER_ID}",
        "private",
        OWNER_ID,
    )
    assert segments == [
        {
            "type": "text",
            "data": {
                "text": f"【包裹退回】订单号：{code}（顾客 {CUSTOMER_ID}）顺丰 SF1234567890 拒签："
                f"{REFUSED}\n包裹不会送到顾客手里，订单也不会自动完成。请联系顾客，重新发货或 /退款 {code}。"
            },
        }
    ]
    assert (await get_order_row(shop, code)).status == "shipped"


async def test_refused_in_a_group_shows_the_group_state_and_city_only(
    app: App, shop: ShopRuntime
) -> None:
    await enable_group(shop)
    code = await shipped_order(shop, group_id=GROUP_ID)
    event = group(f"/物流更新 {code} {REFUSED}", OWNER_ID, GROUP_ID)
    await ask(app, event, exact=back_reply(code, "拒签 · 杭州市"))

    # Staff hear it privately, the phone included; the group never sees it.
    [(_, kind, target, segments)] = await keyed(shop, "parcel-back:")
    assert (kind, target) == ("private", STAFF_ID)
    assert REFUSED in segments[0]["data"]["text"]
    group_rows = [r for r in await outbox_rows(shop) if r.target_type == "group"]
    assert group_rows, "the customer's group hears the new state"
    for row in group_rows:
        assert "13800001111" not in row.segments
    [*_, (_, kind, target, segments)] = await keyed(shop, f"order:{code}:track:")
    assert (kind, target) == ("group", GROUP_ID)
    assert segments[1] == {
        "type": "text",
        "data": {"text": f" 订单号：{code} 物流更新：拒签 · 杭州市"},
    }


@pytest.mark.parametrize("chat", ["private", "group"])
async def test_an_ordinary_update_tells_no_merchant(app: App, shop: ShopRuntime, chat: str) -> None:
    await enable_group(shop)
    code = await shipped_order(shop)
    text = f"/物流更新 {code} 已到达杭州市转运中心"
    event = private(text, STAFF_ID) if chat == "private" else group(text, STAFF_ID, GROUP_ID)
    shown = "已到达杭州市转运中心" if chat == "private" else "在途 · 杭州市"
    await ask(app, event, exact=f"订单号：{code} 已添加物流：{shown}。已通知顾客。")
    assert await keyed(shop, "parcel-back:") == []
    assert (await shipment_of_order(shop, code)).state == ""


async def test_refused_on_an_order_not_shipped_changes_nothing(app: App, shop: ShopRuntime) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    before = [r.dedupe_key for r in await outbox_rows(shop)]
    await ask(
        app,
        private(f"/物流更新 {code} 顾客拒签", STAFF_ID),
        exact="订单已付款，只有已发货、未签收的订单能更新物流。",
    )
    assert [r.dedupe_key for r in await outbox_rows(shop)] == before


async def test_a_customer_cannot_report_a_refusal(app: App, shop: ShopRuntime) -> None:
    code = await shipped_order(shop)
    await ask(
        app,
        private(f"/物流更新 {code} 顾客拒签", CUSTOMER_ID),
        exact="无权限：这是店主/店员命令。发 /帮助 查看你可用的命令。",
    )
    assert await keyed(shop, "parcel-back:") == []
    assert (await shipment_of_order(shop, code)).state == ""


# --- /停用本群, then a shipping notice -----------------------------------------------------


async def test_after_the_group_is_disabled_the_customer_hears_privately(
    app: App, shop: ShopRuntime
) -> None:
    await enable_group(shop)
    code = await seed_order(shop, CUSTOMER_ID, group_id=GROUP_ID)
    await pay_order(shop, code)
    off = group("/停用本群", OWNER_ID, GROUP_ID)
    await ask(app, off, exact=DISABLED)

    ship = private(f"/发货 {code} 顺丰 SF1234567890", STAFF_ID)
    await ask(app, ship, f"已发货：订单号：{code}，顺丰 SF1234567890。已通知顾客")
    [(_, kind, target, segments)] = await keyed(shop, f"order:{code}:shipped")
    assert (kind, target) == ("private", CUSTOMER_ID)
    assert segments == [
        {
            "type": "text",
            "data": {
                "text": f"订单号：{code} 已发货：顺丰 SF1234567890。发 /物流 {code} 查看物流。"
            },
        }
    ]

    # Switched on again: the group hears the next one, with the customer @-mentioned.
    on = group("/启用本群", OWNER_ID, GROUP_ID)
    await ask(app, on, "已在本群启用店铺")
    await ask(app, private(f"/物流更新 {code} 已放门口 签收", STAFF_ID), "已标记签收")
    [(_, kind, target, segments)] = await keyed(shop, f"order:{code}:delivered")
    assert (kind, target) == ("group", GROUP_ID)
    assert segments[0] == {"type": "at", "data": {"qq": str(CUSTOMER_ID)}}
