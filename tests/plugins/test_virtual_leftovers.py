"""Card-key (virtual) goods over the chat door, the parts outside /卡密: /售后 refuses 退货
and 换货 on a card-key order (退款 and 投诉 still open), a physical order still may, and
/详情 of a card-key item says how it is delivered instead of the 七天无理由退货 line. In
private chats and groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OWNER_ID
from tests.fake import Says, group, private
from tests.plugins.helpers import converse, pay_order, seed_demo, seed_order

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime

VIRTUAL_REFUSAL = "虚拟商品（卡密）不支持退货/换货，如有问题请选 退款 或 投诉。"
VIRTUAL_LINE = "虚拟商品：付款后自动发卡密，不支持退货/换货"


@pytest.fixture(autouse=True)
def _no_flood_limit(no_flood_limit: None) -> None:
    """Whole conversations in a few milliseconds: the flood guard is not under test."""


def say(chat: str, text: str, user_id: int = CUSTOMER_ID) -> Any:
    return private(text, user_id) if chat == "private" else group(text, user_id, GROUP_ID)


async def _virtual_item(shop: ShopRuntime, keys: tuple[str, ...]) -> int:
    from services.actors import Caller
    from services.catalog import VariantRef, create_item
    from services.staff import Role
    from services.usecases import card_keys

    async with shop.database.write() as session:
        item, _ = await create_item(session, shop.shop_id, "视频会员月卡", 1500, 0)
    item_id = item.id or 0
    owner = Caller(OWNER_ID, None, Role.OWNER)
    await card_keys.set_virtual(shop.shop, owner, item_id, True)
    await card_keys.import_keys(shop.shop, owner, VariantRef(item_id), "\n".join(keys))
    return item_id


async def _paid_virtual_order(shop: ShopRuntime, item_id: int, group_id: int | None) -> str:
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


async def test_return_and_exchange_of_card_keys_are_refused(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    item_id = await _virtual_item(shop, ("GIFT-0001", "GIFT-0002"))
    code = await _paid_virtual_order(shop, item_id, GROUP_ID if chat == "group" else None)
    ret, swap, refund, complain = (
        say(chat, f"/售后 {code} 退货 卡密用不了"),
        say(chat, f"/售后 {code} 换货 想换一张"),
        say(chat, f"/售后 {code} 退款 卡密用不了"),
        say(chat, f"/售后 {code} 投诉 卡密用不了"),
    )
    await converse(
        app,
        (ret, Says(ret, exact=VIRTUAL_REFUSAL)),
        (swap, Says(swap, exact=VIRTUAL_REFUSAL)),
        (refund, Says(refund, "已提交退款申请。", "工单号：")),
        (complain, Says(complain, "已提交投诉申请。", "工单号：")),
    )


async def test_return_of_physical_goods_still_opens(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_demo(shop)
    code = await seed_order(shop, CUSTOMER_ID, group_id=GROUP_ID if chat == "group" else None)
    await pay_order(shop, code)
    ret, swap = say(chat, f"/售后 {code} 退货 杯子有裂纹"), say(chat, f"/售后 {code} 换货 换个颜色")
    await converse(
        app,
        (ret, Says(ret, "已提交退货申请。", "工单号：", absent=("虚拟商品",))),
        (swap, Says(swap, "已提交换货申请。", "工单号：", absent=("虚拟商品",))),
    )


async def test_detail_of_a_card_key_item_says_how_it_is_delivered(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    await seed_demo(shop)
    item_id = await _virtual_item(shop, ("GIFT-0001", "GIFT-0002"))
    virtual, physical = say(chat, f"/详情 {item_id}"), say(chat, "/详情 5")
    await converse(
        app,
        (
            virtual,
            Says(
                virtual,
                f"【{item_id}】视频会员月卡",
                f"{item_id}-1 默认 ¥15.00 库存 2",
                VIRTUAL_LINE,
                absent=("七天无理由",),
            ),
        ),
        (physical, Says(physical, "【5】挂耳咖啡", "支持七天无理由退货", absent=(VIRTUAL_LINE,))),
    )
