"""Virtual goods over the chat door: /虚拟, /卡密 (stock, 导入, 清空), buying card keys in a
group without an address, /收款 delivering them privately, /发货 refusing, /提货 — in
private chats and groups, with their error paths; and keys kept out of NoneBot's log."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID
from tests.fake import Says, group, private
from tests.plugins.helpers import (
    Grab,
    add_staff,
    converse,
    enable_group,
    get_order_row,
    order_code_in,
    outbox_rows,
    save_address,
)

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime

KEYS_USAGE = "用法：/卡密 [导入|清空] <规格编号>，例如 /卡密 导入 4-1"
NO_PERMISSION = "无权限：这是店主/店员命令。发 /帮助 查看你可用的命令。"
PRIVATE_ONLY = "卡密只在私聊里处理，群里不显示"


@pytest.fixture(autouse=True)
def _no_flood_limit(no_flood_limit: None) -> None:
    """Whole conversations in a few milliseconds: the flood guard is not under test."""


def say(chat: str, text: str, user_id: int = OWNER_ID) -> Any:
    return private(text, user_id) if chat == "private" else group(text, user_id, GROUP_ID)


async def _item(shop: ShopRuntime, stock: int = 0, name: str = "视频会员月卡") -> int:
    from services.catalog import create_item

    async with shop.database.write() as session:
        item, _ = await create_item(session, shop.shop_id, name, 1500, stock)
    return item.id or 0


async def _virtual_item(shop: ShopRuntime, keys: tuple[str, ...] = ()) -> int:
    """A virtual item (through the use cases) with `keys` imported."""
    from services.actors import Caller
    from services.catalog import VariantRef
    from services.staff import Role
    from services.usecases import card_keys

    item_id = await _item(shop)
    owner = Caller(OWNER_ID, None, Role.OWNER)
    await card_keys.set_virtual(shop.shop, owner, item_id, True)
    if keys:
        await card_keys.import_keys(shop.shop, owner, VariantRef(item_id), "\n".join(keys))
    return item_id


async def _paid_order(shop: ShopRuntime, item_id: int, *, group_id: int | None = None) -> str:
    from services.actors import Actor, Caller
    from services.catalog import VariantRef
    from services.staff import Role
    from services.usecases import buying
    from services.usecases.payments import manual_reference, record_payment

    buyer = Caller(CUSTOMER_ID, group_id, Role.CUSTOMER)
    await buying.buy_now(shop.shop, buyer, VariantRef(item_id), 1)
    placed = await buying.confirm_summary(shop.shop, buyer)
    assert isinstance(placed, buying.OrderPlaced)
    code = placed.order.code
    await record_payment(
        shop.shop,
        Actor("owner", OWNER_ID),
        code,
        provider="manual",
        reference=manual_reference(code),
        amount_fen=None,
    )
    return code


# --- /虚拟 ---------------------------------------------------------------------------------


async def test_virtual_switches_an_item_on_and_off(app: App, shop: ShopRuntime, chat: str) -> None:
    item_id = await _item(shop)
    on, again, off = (
        say(chat, f"/虚拟 {item_id} 开"),
        say(chat, f"/virtual {item_id} on"),
        say(chat, f"/虚拟 {item_id} 关"),
    )
    await converse(
        app,
        (on, Says(on, f"商品 {item_id} 视频会员月卡 已设为虚拟商品（卡密）", "/卡密 导入")),
        (again, Says(again, "本来就是虚拟商品")),
        (off, Says(off, "已改回实物商品")),
    )


async def test_virtual_refusals(app: App, shop: ShopRuntime, chat: str) -> None:
    stocked = await _item(shop, stock=5)
    await save_address(shop, CUSTOMER_ID)
    with_orders = await _item(shop, stock=5, name="充值卡")
    from tests.plugins.helpers import seed_order, set_stock

    code = await seed_order(shop, CUSTOMER_ID, ((with_orders, 1, 1),))
    await set_stock(shop, with_orders, 1, 0)
    keyed = await _virtual_item(shop, ("K1",))
    steps = [
        (f"/虚拟 {stocked} 开", ("还有 5 件实物库存", "/库存 <规格编号> 0")),
        (f"/虚拟 {with_orders} 开", ("1 个未完成的订单", code, "处理完")),
        (f"/虚拟 {keyed} 关", ("1 个未售出的卡密", "/卡密 清空")),
        ("/虚拟 12", ("缺少开关", "用法：/虚拟 <商品编号> <开|关>")),
        ("/虚拟 999 开", ("没有编号为 999",)),
    ]
    events = [(say(chat, text), fragments) for text, fragments in steps]
    await converse(app, *((event, Says(event, *fragments)) for event, fragments in events))
    customer = say(chat, f"/虚拟 {stocked} 开", CUSTOMER_ID)
    await converse(app, (customer, Says(customer, NO_PERMISSION)))


# --- /卡密 -----------------------------------------------------------------------------------


async def test_import_keys_in_private(app: App, shop: ShopRuntime) -> None:
    await add_staff(shop, STAFF_ID)
    item_id = await _virtual_item(shop)
    first = private(f"/卡密 导入 {item_id}\nGIFT-0001\n\n  GIFT-0002  \nGIFT-0001", STAFF_ID)
    second = private(f"keys-import {item_id}-1\nGIFT-0002\nGIFT-0003", STAFF_ID)
    await converse(
        app,
        (
            first,
            Says(
                first,
                f"{item_id}-1 视频会员月卡：导入 2 个卡密，跳过重复 1 个，现有库存 2。",
                absent=("GIFT",),
            ),
        ),
        (second, Says(second, "导入 1 个卡密，跳过重复 1 个，现有库存 3", absent=("GIFT",))),
    )


async def test_import_is_refused_in_a_group_and_reads_nothing(app: App, shop: ShopRuntime) -> None:
    await enable_group(shop)
    item_id = await _virtual_item(shop)
    event = group(f"/卡密 导入 {item_id}\nLEAKED-0001", OWNER_ID, GROUP_ID)
    await converse(app, (event, Says(event, "只能在私聊里导入", absent=("LEAKED",))))
    from services.actors import Caller
    from services.catalog import VariantRef
    from services.staff import Role
    from services.usecases import card_keys

    owner = Caller(OWNER_ID, None, Role.OWNER)
    stock = await card_keys.key_stock(shop.shop, owner, VariantRef(item_id))
    assert stock.counts.on_sale == 0


async def test_import_errors(app: App, shop: ShopRuntime) -> None:
    goods = await _item(shop, stock=3, name="咖啡豆")
    item_id = await _virtual_item(shop)
    steps = [
        (f"/卡密 导入 {goods}\nK1", ("不是虚拟商品", f"/虚拟 {goods} 开")),
        (f"/卡密 导入 {item_id}", ("没有读到卡密", "每行写一个卡密")),
        (f"/卡密 导入 {item_id}\nOK\n" + "x" * 501, ("第 2 个卡密超过 500 个字", "没有导入")),
        (
            "/卡密 导入 " + str(item_id) + "\n" + "\n".join(f"K{n}" for n in range(501)),
            ("一次最多导入 500 个",),
        ),
        ("/卡密 导入 abc", ("规格编号应像 12 或 12-2", KEYS_USAGE)),
    ]
    events = [(private(text, OWNER_ID), fragments) for text, fragments in steps]
    await converse(app, *((event, Says(event, *fragments)) for event, fragments in events))


async def test_key_stock_shows_counts_and_masked_keys_only(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    item_id = await _virtual_item(shop, ("ABCD-0001-WXYZ", "ABCD-0002-WXYZ", "ABCD-0003-WXYZ"))
    await _paid_order(shop, item_id)
    stock, alias, pasted = (
        say(chat, f"/卡密 {item_id}"),
        say(chat, f"/keys-stock {item_id}-1"),
        say(chat, f"/卡密 {item_id} ABCD-0009-WXYZ"),
    )
    await converse(
        app,
        (
            stock,
            Says(
                stock,
                "未售出 2 个，已售出 1 个，可售库存 2",
                "AB****YZ、AB****YZ",
                absent=("ABCD-",),
            ),
        ),
        (alias, Says(alias, "未售出 2 个", absent=("ABCD-",))),
        (pasted, Says(pasted, "规格编号后面不要有别的内容", absent=("ABCD-",))),
    )


async def test_clear_keys(app: App, shop: ShopRuntime, chat: str) -> None:
    item_id = await _virtual_item(shop, ("K1", "K2", "K3"))
    await _paid_order(shop, item_id)
    clear, alias, stock = (
        say(chat, f"/卡密 清空 {item_id}"),
        say(chat, f"/keys-clear {item_id}"),
        say(chat, f"/卡密 {item_id}"),
    )
    await converse(
        app,
        (clear, Says(clear, "已清空 2 个未售出的卡密", "已售出的卡密不受影响")),
        (alias, Says(alias, "已清空 0 个")),
        (stock, Says(stock, "未售出 0 个，已售出 1 个", "没有未售出的卡密")),
    )


async def test_key_commands_are_for_staff_and_virtual_stock_is_keys_only(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    item_id = await _virtual_item(shop, ("K1",))
    customer = say(chat, f"/卡密 {item_id}", CUSTOMER_ID)
    stock = say(chat, f"/库存 {item_id} +5")
    variant = say(chat, f"/规格 {item_id} 年卡 99 5")
    await converse(
        app,
        (customer, Says(customer, NO_PERMISSION)),
        (stock, Says(stock, "是虚拟商品，库存就是未售出的卡密数", f"/卡密 导入 {item_id}")),
        (variant, Says(variant, "是虚拟商品，库存就是未售出的卡密数")),
    )


# --- buying, paying, shipping --------------------------------------------------------------


async def test_buying_card_keys_in_a_group_without_an_address(app: App, shop: ShopRuntime) -> None:
    await enable_group(shop)
    item_id = await _virtual_item(shop, ("GIFT-CCCC-0001",))
    buy = group(f"/下单 {item_id}", CUSTOMER_ID, GROUP_ID)
    confirm = group("确认", CUSTOMER_ID, GROUP_ID)
    placed = Grab(confirm, "下单成功")
    await converse(
        app,
        (buy, Says(buy, "请确认订单", "无需收货地址", absent=("收货：",))),
        (confirm, placed),
    )
    code = order_code_in(placed.text)
    paid = private(f"/收款 {code}", OWNER_ID)
    ship = private(f"/发货 {code} 顺丰 SF1234567890", OWNER_ID)
    detail = group(f"/订单 {code}", CUSTOMER_ID, GROUP_ID)
    listing = private("/订单列表", OWNER_ID)
    await converse(
        app,
        (paid, Says(paid, f"已确认收款：订单号：{code}", "卡密已自动私聊发给顾客", "无需发货")),
        (ship, Says(ship, "是虚拟商品订单", "无需发货")),
        (detail, Says(detail, "已完成", "无需地址", "卡密已私聊发送", absent=("GIFT",))),
        (listing, Says(listing, code, absent=("GIFT",))),
    )
    order = await get_order_row(shop, code)
    assert order.status == "completed"
    rows = {row.dedupe_key: row for row in await outbox_rows(shop)}
    keys_row = rows[f"order:{code}:keys"]
    assert (keys_row.target_type, keys_row.target_id) == ("private", CUSTOMER_ID)
    group_row = rows[f"order:{code}:keys_sent"]
    assert (group_row.target_type, group_row.target_id) == ("group", GROUP_ID)
    assert f"/提货 {code}" in json.loads(group_row.segments)[1]["data"]["text"]
    assert all("GIFT" not in row.segments for row in rows.values())


async def test_mixed_cart_is_refused(app: App, shop: ShopRuntime) -> None:
    await save_address(shop, CUSTOMER_ID)
    keys = await _virtual_item(shop, ("K1",))
    goods = await _item(shop, stock=3, name="咖啡豆")
    steps = [f"/加购 {keys}", f"/加购 {goods}", "/结算"]
    events = [private(text, CUSTOMER_ID) for text in steps]
    await converse(
        app,
        (events[0], Says(events[0], "已加入购物车")),
        (events[1], Says(events[1], "已加入购物车")),
        (events[2], Says(events[2], "要和实物商品分开下单")),
    )


# --- /提货 ---------------------------------------------------------------------------------


async def test_keys_again_in_private_only_and_only_for_the_buyer(
    app: App, shop: ShopRuntime
) -> None:
    await enable_group(shop)
    await add_staff(shop, STAFF_ID)
    item_id = await _virtual_item(shop, ("GIFT-DDDD-0001", "GIFT-DDDD-0002"))
    code = await _paid_order(shop, item_id, group_id=GROUP_ID)
    mine = private(f"/提货 {code.lower()}", CUSTOMER_ID)
    alias = private(f"keys {code}", CUSTOMER_ID)
    in_group = group(f"/提货 {code}", CUSTOMER_ID, GROUP_ID)
    unknown_in_group = group("/提货 ZZZZZZZZZZ", OTHER_CUSTOMER_ID, GROUP_ID)
    other = private(f"/提货 {code}", OTHER_CUSTOMER_ID)
    staff = private(f"/提货 {code}", STAFF_ID)
    await converse(
        app,
        (mine, Says(mine, f"订单号：{code} 的卡密", "GIFT-DDDD-0001", absent=("GIFT-DDDD-0002",))),
        (alias, Says(alias, "GIFT-DDDD-0001")),
        (in_group, Says(in_group, PRIVATE_ONLY, absent=("GIFT",))),
        (unknown_in_group, Says(unknown_in_group, PRIVATE_ONLY)),
        (other, Says(other, f"没有找到订单 {code}", absent=("GIFT",))),
        (staff, Says(staff, "已打码", "GI****01", absent=("GIFT-",))),
    )


async def test_keys_of_an_unpaid_or_physical_order(app: App, shop: ShopRuntime) -> None:
    await save_address(shop, CUSTOMER_ID)
    from tests.plugins.helpers import seed_order

    goods = await _item(shop, stock=3, name="咖啡豆")
    code = await seed_order(shop, CUSTOMER_ID, ((goods, 1, 1),))
    event, bad = private(f"/提货 {code}", CUSTOMER_ID), private("/提货 123", CUSTOMER_ID)
    await converse(
        app,
        (event, Says(event, f"订单号：{code} 没有卡密")),
        (bad, Says(bad, "订单号是 10 位字母和数字", "用法：/提货 <订单号> [页码]")),
    )


async def test_many_keys_come_a_page_at_a_time(app: App, shop: ShopRuntime) -> None:
    keys = tuple(f"PAGE-{n}-" + "y" * 480 for n in range(5))
    item_id = await _virtual_item(shop, keys)
    from services.actors import Actor, Caller
    from services.catalog import VariantRef
    from services.staff import Role
    from services.usecases import buying
    from services.usecases.payments import manual_reference, record_payment

    buyer = Caller(CUSTOMER_ID, None, Role.CUSTOMER)
    await buying.buy_now(shop.shop, buyer, VariantRef(item_id), 5)
    placed = await buying.confirm_summary(shop.shop, buyer)
    assert isinstance(placed, buying.OrderPlaced)
    code = placed.order.code
    owner = Actor("owner", OWNER_ID)
    reference = manual_reference(code)
    await record_payment(
        shop.shop, owner, code, provider="manual", reference=reference, amount_fen=None
    )
    first, second, past = (
        private(f"/提货 {code}", CUSTOMER_ID),
        private(f"/提货 {code} 2", CUSTOMER_ID),
        private(f"/提货 {code} 9", CUSTOMER_ID),
    )
    await converse(
        app,
        (first, Says(first, "第 1/2 页", *keys[:4], f"下一页：/提货 {code} 2")),
        (second, Says(second, "第 2/2 页", keys[4], absent=(keys[0], "下一页"))),
        (past, Says(past, "页码不能超过 2")),
    )


# --- the log -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "/卡密 导入 12-1\nSECRET-1",
        "卡密 导入 12\nSECRET-1",
        "／keys-import 12\nSECRET-1",
        "/卡密 12 SECRET-1",
    ],
)
def test_card_key_messages_are_not_logged(text: str) -> None:
    from plugins.merchant.card_keys import is_card_key_command

    assert is_card_key_command(text)
    for event in (private(text, OWNER_ID), group(text, OWNER_ID, GROUP_ID)):
        line = event.get_log_string()
        assert "SECRET" not in line and "不记入日志" in line, line


def test_other_messages_are_logged_as_before() -> None:
    from plugins.merchant.card_keys import is_card_key_command

    assert not is_card_key_command("/卡密多少钱")
    event = group("/下单 12 卡密", CUSTOMER_ID, GROUP_ID)
    assert "/下单 12 卡密" in event.get_log_string()


async def test_an_unprefixed_key_message_in_a_group_is_not_a_command(
    app: App, shop: ShopRuntime
) -> None:
    await enable_group(shop)
    event = group("卡密 导入 12\nK1", OWNER_ID, GROUP_ID)
    await converse(app, (event, None))
