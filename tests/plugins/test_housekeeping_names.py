"""Catalog housekeeping over chat, in a private chat and in an enabled group: names with
spaces in quotes (/新品 /规格 /设分类, and the hint when a name was cut at a space),
/改名, and /删除 with its 确认删除 dialogue (who may confirm, where, how long)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_GROUP_ID, OWNER_ID, STAFF_ID
from tests.fake import Says, group, private
from tests.plugins.helpers import add_staff, converse, enable_group, save_address

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime

NO_PERMISSION = "无权限：这是店主/店员命令。发 /帮助 查看你可用的命令。"
HINT = '名称含空格时请用引号括起来，如 "iPhone 15 Pro"。'
NEW_USAGE = '用法：/新品 <名称> <价格> <库存> [分类]，例如 /新品 "iPhone 15 Pro" 5999 10 手机'
VARIANT_USAGE = '用法：/规格 <商品编号> <规格名> <价格> <库存>，例如 /规格 2 "大号 黑色" 69 20'
RENAME_USAGE = '用法：/改名 <商品编号|规格编号> <新名称>，例如 /改名 1-2 "500g 礼盒装"'
DELETE_USAGE = "用法：/删除 <商品编号|规格编号>，例如 /删除 5-3"
NOTHING_WAITING = "没有等待确认的删除。要删除商品或规格，请先发 /删除 <商品编号|规格编号>。"


@pytest.fixture(autouse=True)
def _no_flood_limit(no_flood_limit: None) -> None:
    """Whole conversations in a few milliseconds: the flood guard is not under test."""


def say(chat: str, text: str, user_id: int = OWNER_ID, group_id: int = GROUP_ID) -> Any:
    return private(text, user_id) if chat == "private" else group(text, user_id, group_id)


async def ask(app: App, event: Any, *fragments: str, **kwargs: Any) -> None:
    await converse(app, (event, Says(event, *fragments, **kwargs)))


async def seed_phone(shop: ShopRuntime) -> int:
    """Item 1 `iPhone 15 Pro` with 1-1 默认, 1-2 `256G 黑色`, 1-3 `512G`."""
    from services import catalog

    async with shop.database.write() as session:
        item, _ = await catalog.create_item(session, shop.shop_id, "iPhone 15 Pro", 599900, 10)
        await catalog.add_variant(session, shop.shop_id, item.id or 0, "256G 黑色", 699900, 5)
        await catalog.add_variant(session, shop.shop_id, item.id or 0, "512G", 799900, 2)
    return item.id or 0


async def names(shop: ShopRuntime) -> list[tuple[str, list[tuple[int, str]]]]:
    """Every item's name with its variants' (position, name)."""
    from sqlalchemy import select

    from models.tables import Item, Variant

    async with shop.database.read() as session:
        items = (await session.execute(select(Item).order_by(Item.id))).scalars().all()  # type: ignore[arg-type]
        result = []
        for item in items:
            rows = await session.execute(
                select(Variant.position, Variant.name)
                .where(Variant.item_id == item.id)  # type: ignore[arg-type]
                .order_by(Variant.position)
            )
            result.append((item.name, [(p, n) for p, n in rows]))
        return result


async def category_of(shop: ShopRuntime, item_id: int) -> str | None:
    from services import catalog

    async with shop.database.read() as session:
        detail = await catalog.item_detail(session, shop.shop_id, item_id, include_delisted=True)
    return detail.category


async def order_line_names(shop: ShopRuntime) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from models.tables import OrderLine

    async with shop.database.read() as session:
        rows = await session.execute(select(OrderLine.item_name, OrderLine.variant_name))
        return [(item, variant) for item, variant in rows]


async def place_order(shop: ShopRuntime, position: int = 2) -> str:
    from tests.plugins.helpers import seed_order

    return await seed_order(shop, CUSTOMER_ID, ((1, position, 1),))


# --- names in quotes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "name", "category"),
    [
        ('"iPhone 15 Pro" 5999 10', "iPhone 15 Pro", None),
        ("“iPhone 15 Pro” 5999 10 手机", "iPhone 15 Pro", "手机"),
        ("”iPhone 15 Pro” 5999 10", "iPhone 15 Pro", None),
        ("「Nike Air Max 90」 899 5 “运动 鞋”", "Nike Air Max 90", "运动 鞋"),
        ("『大号 黑色』 1 1", "大号 黑色", None),
        ("＂冷萃  咖啡＂ 39.9 50", "冷萃 咖啡", None),
        ('"「限定」冷萃" 39.9 50', "「限定」冷萃", None),
        ("冷萃咖啡 39.9 50", "冷萃咖啡", None),
    ],
    ids=[
        "straight",
        "curly",
        "curly-right-twice",
        "corner-and-quoted-category",
        "white-corner",
        "full-width-spaces-folded",
        "brackets-inside",
        "no-quotes",
    ],
)
async def test_new_item_with_a_quoted_name(
    app: App, shop: ShopRuntime, chat: str, args: str, name: str, category: str | None
) -> None:
    await ask(app, say(chat, f"/新品 {args}"), f"已上架新品：{name}", "商品编号：1")
    assert await names(shop) == [(name, [(1, "默认")])]
    assert await category_of(shop, 1) == category


async def test_quoted_variant_and_category_names(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_phone(shop)
    variant = say(chat, '/规格 1 "1T 远峰蓝" 9999 1')
    category = say(chat, "/设分类 1 「苹果 手机」")
    browse = say(chat, '/商品 "苹果 手机"', CUSTOMER_ID)
    await converse(
        app,
        (variant, Says(variant, "添加规格 1-4 1T 远峰蓝：¥9999.00，库存 1")),
        (category, Says(category, "归入分类“苹果 手机”")),
        (browse, Says(browse, "iPhone 15 Pro")),
    )
    assert (await names(shop))[0][1][-1] == (4, "1T 远峰蓝")
    assert await category_of(shop, 1) == "苹果 手机"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("/新品 iPhone 15 Pro 5999 10", "库存应是 0 到 1000000 的整数，而不是“Pro”。"),
        (
            "/新品 Nike Air Max 90 899 5",
            "价格应是以元为单位的数字，最多两位小数（如 59.9），而不是“Air”。",
        ),
        (
            "/新品 冷萃 咖啡 39.9 50",
            "价格应是以元为单位的数字，最多两位小数（如 59.9），而不是“咖啡”。",
        ),
        ("/新品 冷萃咖啡 39.9 50 咖啡 豆子", "多余的内容：豆子"),
        ('/新品 "冷萃咖啡" 39.9 50 咖啡 豆子', "多余的内容：豆子"),
    ],
    ids=["stock-word", "price-word", "chinese-words", "category-cut", "quoted-name-category-cut"],
)
async def test_a_name_cut_at_a_space_gets_the_quoting_hint(
    app: App, shop: ShopRuntime, chat: str, text: str, reason: str
) -> None:
    await ask(app, say(chat, text), exact=f"{reason}\n{HINT}\n{NEW_USAGE}")
    assert await names(shop) == []


async def test_a_cut_variant_name_gets_the_hint(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_phone(shop)
    await ask(
        app,
        say(chat, "/规格 1 大号 黑色 69 20"),
        exact=f"价格应是以元为单位的数字，最多两位小数（如 59.9），而不是“黑色”。\n{HINT}\n{VARIANT_USAGE}",
    )
    assert len((await names(shop))[0][1]) == 3


async def test_a_cut_category_name_gets_the_hint(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_phone(shop)
    await ask(app, say(chat, "/设分类 1 苹果 手机"), "多余的内容：手机", HINT)
    assert await category_of(shop, 1) is None


@pytest.mark.parametrize(
    ("args", "reason", "hint"),
    [
        ("冷萃咖啡", "缺少价格。", False),
        ("冷萃咖啡 39.9", "缺少库存。", False),
        ('"冷萃咖啡" abc 50', "而不是“abc”", False),
        ('"iPhone 15 Pro 5999 10', '引号没有配对：“"iPhone 15 Pro 5999 …”。', True),
        ("「iPhone 15 Pro” 5999 10", "引号没有配对", True),
        ('"iPhone 15"Pro 5999 10', '右引号后面要空一格再写下一项：“"iPhone 15"P”。', False),
        ('"" 39.9 50', "商品名称不能为空。", False),
        ("“   ” 39.9 50", "商品名称不能为空。", False),
        ('"' + "长 " * 30 + '长" 39.9 50', "商品名称最多 60 个字。", False),
        ('冷萃 39.9 50 "咖啡 豆', "引号没有配对", True),
    ],
    ids=[
        "missing-price",
        "missing-stock",
        "quoted-then-bad-price",
        "unclosed",
        "mismatched-brackets",
        "no-space-after-quote",
        "empty",
        "blank",
        "too-long",
        "unclosed-category",
    ],
)
async def test_bad_names_and_quoting_are_refused(
    app: App, shop: ShopRuntime, chat: str, args: str, reason: str, hint: bool
) -> None:
    absent = () if hint else (HINT,)
    await ask(app, say(chat, f"/新品 {args}"), reason, NEW_USAGE, absent=absent)
    assert await names(shop) == []


async def test_longest_quoted_name_is_accepted(app: App, shop: ShopRuntime, chat: str) -> None:
    long_name = "长 " * 29 + "长远"  # 60 characters with its spaces
    await ask(app, say(chat, f'/新品 "{long_name}" 1 1'), "商品编号：1")
    assert (await names(shop))[0][0] == long_name


async def test_help_shows_quoting(app: App, shop: ShopRuntime, chat: str) -> None:
    await ask(
        app,
        say(chat, "/帮助 新品"),
        '例如 /新品 "iPhone 15 Pro" 5999 10 手机',
        '名称含空格时用引号括起来，"…"、“…”、「…」都可以',
    )


# --- /改名 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected", "after"),
    [
        (
            "1 iPhone 15 Pro Max",
            "已把商品 1 的名称从“iPhone 15 Pro”改为“iPhone 15 Pro Max”。",
            [("iPhone 15 Pro Max", [(1, "默认"), (2, "256G 黑色"), (3, "512G")])],
        ),
        (
            '1 "iPhone 15  Pro Max"',
            "改为“iPhone 15 Pro Max”",
            [("iPhone 15 Pro Max", [(1, "默认"), (2, "256G 黑色"), (3, "512G")])],
        ),
        (
            "1-2 “256G 午夜黑”",
            "已把商品“iPhone 15 Pro”的规格 1-2 的名称从“256G 黑色”改为“256G 午夜黑”。",
            [("iPhone 15 Pro", [(1, "默认"), (2, "256G 午夜黑"), (3, "512G")])],
        ),
        (
            "１－３ 512G 银色",
            "规格 1-3 的名称从“512G”改为“512G 银色”",
            [("iPhone 15 Pro", [(1, "默认"), (2, "256G 黑色"), (3, "512G 银色")])],
        ),
        (
            "1 「限定」iPhone",
            "改为“「限定」iPhone”",
            [("「限定」iPhone", [(1, "默认"), (2, "256G 黑色"), (3, "512G")])],
        ),
    ],
    ids=["item-unquoted", "item-quoted", "variant-curly", "variant-full-width-ref", "brackets"],
)
async def test_rename(
    app: App, shop: ShopRuntime, chat: str, args: str, expected: str, after: list[Any]
) -> None:
    await seed_phone(shop)
    await ask(app, say(chat, f"/改名 {args}"), expected)
    assert await names(shop) == after


async def test_rename_by_staff_with_the_alias_and_orders_keep_the_old_name(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    await seed_phone(shop)
    await add_staff(shop, STAFF_ID)
    code = await place_order(shop, 2)
    rename_item = say(chat, "/rename 1 iPhone 16", STAFF_ID)
    rename_variant = say(chat, "/改名 1-2 256G 沙漠金", STAFF_ID)
    look = say(chat, f"/订单 {code}", CUSTOMER_ID)
    browse = say(chat, "/详情 1", CUSTOMER_ID)
    await converse(
        app,
        (rename_item, Says(rename_item, "改为“iPhone 16”", "已下的订单保留下单时的名称。")),
        (rename_variant, Says(rename_variant, "改为“256G 沙漠金”")),
        (look, Says(look, "iPhone 15 Pro（256G 黑色）", absent=("iPhone 16", "沙漠金"))),
        (browse, Says(browse, "iPhone 16", "1-2 256G 沙漠金")),
    )
    assert await order_line_names(shop) == [("iPhone 15 Pro", "256G 黑色")]


async def test_rename_to_the_same_name(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_phone(shop)
    await ask(
        app,
        say(chat, "/改名 1-3 512G"),
        exact="商品“iPhone 15 Pro”的规格 1-3 本来就叫“512G”，没有改动。",
    )


@pytest.mark.parametrize(
    ("args", "reply", "usage"),
    [
        ("", "缺少规格编号。", True),
        ("1", "缺少新名称。", True),
        ('1 ""', "商品名称不能为空。", True),
        ("1-2 “ ”", "规格名不能为空。", True),
        ('1 "iPhone 15 Pro', "引号没有配对", True),
        ("1 " + "长" * 61, "商品名称最多 60 个字。", True),
        ("1-2 " + "规" * 31, "规格名最多 30 个字。", True),
        ("1-2 512G", "这个商品已有叫“512G”的规格，请换个名字。", True),
        ("abc 新名字", "规格编号应像 12 或 12-2（商品编号-第几个规格），而不是“abc”。", True),
        ("9 新名字", "没有编号为 9 的", False),
        ("1-7 新名字", "商品 1 没有第 7 个规格（共 3 个）。", False),
    ],
    ids=[
        "nothing",
        "no-name",
        "empty",
        "blank",
        "unclosed",
        "item-61",
        "variant-31",
        "duplicate",
        "bad-ref",
        "unknown-item",
        "unknown-variant",
    ],
)
async def test_rename_refusals(
    app: App, shop: ShopRuntime, chat: str, args: str, reply: str, usage: bool
) -> None:
    await seed_phone(shop)
    before = await names(shop)
    if usage:
        await ask(app, say(chat, f"/改名 {args}".rstrip()), reply, RENAME_USAGE)
    else:
        await ask(app, say(chat, f"/改名 {args}"), reply, absent=("用法",))
    assert await names(shop) == before


async def test_customers_may_not_rename_or_delete(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_phone(shop)
    rename = say(chat, "/改名 1 便宜货", CUSTOMER_ID)
    delete = say(chat, "/删除 1", CUSTOMER_ID)
    confirm = say(chat, "确认删除", CUSTOMER_ID)
    await converse(
        app,
        (rename, Says(rename, exact=NO_PERMISSION)),
        (delete, Says(delete, exact=NO_PERMISSION)),
        # Nothing waits for them: a private chat says so, a group ignores it.
        (confirm, Says(confirm, exact=NOTHING_WAITING) if chat == "private" else None),
    )
    assert len(await names(shop)) == 1
    assert not shop.shop.deletions


# --- /删除 and 确认删除 ----------------------------------------------------------------


async def test_delete_an_item_after_confirming(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_phone(shop)
    await save_address(shop, CUSTOMER_ID)
    from services.actors import Caller
    from services.catalog import VariantRef
    from services.staff import Role
    from services.usecases import buying

    await buying.add_to_cart(
        shop.shop, Caller(CUSTOMER_ID, None, Role.CUSTOMER), VariantRef(1, 2), 1
    )
    ask_ = say(chat, "/删除 1")
    confirm = say(chat, "确认删除")
    await converse(
        app,
        (
            ask_,
            Says(
                ask_,
                "将删除商品 1 iPhone 15 Pro，连同它的 3 个规格：",
                "1-1 默认 ¥5999.00 库存 10",
                "1-2 256G 黑色 ¥6999.00 库存 5",
                "1-3 512G ¥7999.00 库存 2",
                "顾客购物车里的 1 条会一并移出。",
                "从没有人下单过，可以删除；删除后不能恢复。",
                "确认请在 5 分钟内发送：确认删除",
                "发送“取消”或其他任何内容则不删除。",
            ),
        ),
        (
            confirm,
            Says(
                confirm, exact="已删除商品 1 iPhone 15 Pro（3 个规格）。已从顾客购物车移出 1 条。"
            ),
        ),
    )
    assert await names(shop) == []
    assert not shop.shop.deletions
    cart = say(chat, "/购物车", CUSTOMER_ID)
    await ask(app, cart, "购物车是空的")


async def test_delete_a_variant_with_the_alias(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_phone(shop)
    await add_staff(shop, STAFF_ID)
    ask_ = say(chat, "/delete 1-2", STAFF_ID)
    confirm = say(chat, "/确认删除", STAFF_ID)  # a prefix does no harm
    look = say(chat, "/详情 1", CUSTOMER_ID)
    await converse(
        app,
        (
            ask_,
            Says(
                ask_,
                "将删除商品 1 iPhone 15 Pro 的规格：",
                "1-2 256G 黑色 ¥6999.00 库存 5",
                "其余规格的编号不变。",
            ),
        ),
        (
            confirm,
            Says(confirm, exact="已删除规格 1-2 iPhone 15 Pro（256G 黑色），其余规格编号不变。"),
        ),
        (look, Says(look, "1-1 默认", "1-3 512G", absent=("256G",))),
    )
    assert await names(shop) == [("iPhone 15 Pro", [(1, "默认"), (3, "512G")])]


async def test_cancel_keeps_it(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_phone(shop)
    ask_ = say(chat, "/删除 1-3")
    cancel = say(chat, "取消")
    confirm = say(chat, "确认删除")
    await converse(
        app,
        (ask_, Says(ask_, "将删除")),
        (cancel, Says(cancel, exact="好的，没有删除 1-3。")),
        (confirm, Says(confirm, exact=NOTHING_WAITING) if chat == "private" else None),
    )
    assert len((await names(shop))[0][1]) == 3


async def test_any_other_message_lets_the_deletion_lapse(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    await seed_phone(shop)
    ask_ = say(chat, "/删除 1")
    other = say(chat, "/详情 1")
    confirm = say(chat, "确认删除")
    await converse(
        app,
        (ask_, Says(ask_, "将删除")),
        (other, Says(other, "iPhone 15 Pro")),
        (confirm, Says(confirm, exact=NOTHING_WAITING) if chat == "private" else None),
    )
    assert len(await names(shop)) == 1


async def test_chatter_in_the_group_lets_it_lapse(app: App, shop: ShopRuntime) -> None:
    await enable_group(shop)
    await seed_phone(shop)
    ask_ = say("group", "/删除 1")
    chatter = say("group", "等一下")
    confirm = say("group", "确认删除")
    await converse(app, (ask_, Says(ask_, "将删除")), (chatter, None), (confirm, None))
    assert len(await names(shop)) == 1


async def test_a_bare_confirm_says_how_and_keeps_it_waiting(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    await seed_phone(shop)
    ask_ = say(chat, "/删除 1-3")
    bare = say(chat, "确认")
    confirm = say(chat, "确认删除")
    await converse(
        app,
        (ask_, Says(ask_, "将删除")),
        (bare, Says(bare, exact="要删除 1-3请发送：确认删除\n不删除请发送：取消")),
        (confirm, Says(confirm, "已删除规格 1-3")),
    )
    assert len((await names(shop))[0][1]) == 2


async def test_only_the_asker_may_confirm(app: App, shop: ShopRuntime) -> None:
    await enable_group(shop)
    await seed_phone(shop)
    await add_staff(shop, STAFF_ID)
    ask_ = group("/删除 1", STAFF_ID, GROUP_ID)
    by_owner = group("确认删除", OWNER_ID, GROUP_ID)
    by_customer = group("确认删除", CUSTOMER_ID, GROUP_ID)
    by_asker = group("确认删除", STAFF_ID, GROUP_ID)
    await converse(
        app,
        (ask_, Says(ask_, "将删除")),
        (by_owner, None),
        (by_customer, None),
        (by_asker, Says(by_asker, "已删除商品 1")),
    )
    assert await names(shop) == []


async def test_only_in_the_chat_it_was_asked_in(app: App, shop: ShopRuntime) -> None:
    await enable_group(shop)
    await enable_group(shop, OTHER_GROUP_ID)
    await seed_phone(shop)
    ask_ = private("/删除 1-2", OWNER_ID)
    in_group = group("确认删除", OWNER_ID, GROUP_ID)
    in_other_group = group("确认删除", OWNER_ID, OTHER_GROUP_ID)
    in_private = private("确认删除", OWNER_ID)
    await converse(
        app,
        (ask_, Says(ask_, "将删除")),
        (in_group, None),
        (in_other_group, None),
        (in_private, Says(in_private, "已删除规格 1-2")),
    )
    assert len((await names(shop))[0][1]) == 2


async def test_another_user_in_private_has_nothing_waiting(app: App, shop: ShopRuntime) -> None:
    await seed_phone(shop)
    await add_staff(shop, STAFF_ID)
    ask_ = private("/删除 1", OWNER_ID)
    other = private("确认删除", STAFF_ID)
    await converse(app, (ask_, Says(ask_, "将删除")), (other, Says(other, exact=NOTHING_WAITING)))
    assert len(await names(shop)) == 1
    assert shop.shop.deletions.get(None, OWNER_ID) is not None


async def test_a_late_confirmation_deletes_nothing(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_phone(shop)
    shop.settings.confirm_timeout_seconds = 0.05
    ask_ = say(chat, "/删除 1")
    await converse(app, (ask_, Says(ask_, "确认请在 1 分钟内发送")))
    await asyncio.sleep(0.1)
    late = say(chat, "确认删除")
    again = say(chat, "确认删除")
    await converse(
        app,
        (late, Says(late, exact="删除 1 的确认已超时，没有删除。要删除请重新发 /删除 1。")),
        (again, Says(again, exact=NOTHING_WAITING) if chat == "private" else None),
    )
    assert len(await names(shop)) == 1


async def test_an_ordered_item_points_to_delisting(app: App, shop: ShopRuntime, chat: str) -> None:
    await seed_phone(shop)
    await place_order(shop, 2)
    item = say(chat, "/删除 1")
    variant = say(chat, "/删除 1-2")
    confirm = say(chat, "确认删除")
    await converse(
        app,
        (
            item,
            Says(
                item,
                exact="1 已出现在 1 个订单里，不能删除：订单要保留当时买的商品。不想再卖请发 /下架 1。",
            ),
        ),
        (variant, Says(variant, "1-2 已出现在 1 个订单里", "/库存 1-2 0", "/下架 1")),
        (confirm, Says(confirm, exact=NOTHING_WAITING) if chat == "private" else None),
    )
    assert len((await names(shop))[0][1]) == 3


async def test_an_order_placed_before_the_confirmation_stops_it(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    await seed_phone(shop)
    ask_ = say(chat, "/删除 1")
    await converse(app, (ask_, Says(ask_, "将删除")))
    await place_order(shop, 1)
    confirm = say(chat, "确认删除")
    await converse(app, (confirm, Says(confirm, "1 已出现在 1 个订单里", "/下架 1")))
    assert len(await names(shop)) == 1


@pytest.mark.parametrize(
    ("args", "reply", "usage"),
    [
        ("1-1x", "规格编号应像 12 或 12-2", True),
        ("", "缺少规格编号。", True),
        ("1 2", "多余的内容：2", True),
        ("9", "没有编号为 9 的", False),
        ("1-5", "商品 1 没有第 5 个规格（共 3 个）。", False),
        ("2-1", "2-1 是商品 2 唯一的规格，不能单独删除。要删除整个商品请发 /删除 2。", False),
    ],
    ids=["bad-ref", "nothing", "extra", "unknown-item", "unknown-variant", "last-variant"],
)
async def test_delete_refusals(
    app: App, shop: ShopRuntime, chat: str, args: str, reply: str, usage: bool
) -> None:
    await seed_phone(shop)
    from services import catalog

    async with shop.database.write() as session:
        await catalog.create_item(session, shop.shop_id, "冷萃咖啡", 3990, 50)
    expected = (reply, DELETE_USAGE) if usage else (reply,)
    await ask(
        app, say(chat, f"/删除 {args}".rstrip()), *expected, absent=() if usage else ("用法",)
    )
    assert len(await names(shop)) == 2
    assert not shop.shop.deletions


async def test_a_customer_confirming_an_order_blocks_deleting_it(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    await seed_phone(shop)
    await save_address(shop, CUSTOMER_ID)
    buy = say(chat, "/下单 1-2", CUSTOMER_ID)
    delete = say(chat, "/删除 1-2")
    await converse(
        app,
        (buy, Says(buy, "确认")),
        (delete, Says(delete, "有 1 个顾客正在确认含有 1-2 的订单，现在不能删除。", "/下架 1")),
    )
    assert len((await names(shop))[0][1]) == 3


async def test_staff_with_their_own_order_summary(app: App, shop: ShopRuntime, chat: str) -> None:
    """确认删除 deletes; the bare 确认 and 取消 stay the order summary's."""
    await seed_phone(shop)
    await save_address(shop, OWNER_ID)
    buy = say(chat, "/下单 1-1")
    delete = say(chat, "/删除 1-3")
    confirm_delete = say(chat, "确认删除")
    confirm_order = say(chat, "确认")
    await converse(
        app,
        (buy, Says(buy, "确认")),
        (delete, Says(delete, "将删除")),
        (confirm_delete, Says(confirm_delete, "已删除规格 1-3")),
        (confirm_order, Says(confirm_order, "订单号")),
    )
    assert await order_line_names(shop) == [("iPhone 15 Pro", "默认")]
    assert len((await names(shop))[0][1]) == 2


async def test_an_order_confirmation_leaves_a_waiting_deletion_alone(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    """The order summary's 确认 is the summary's: the deletion still waits for its word."""
    await seed_phone(shop)
    await save_address(shop, OWNER_ID)
    buy = say(chat, "/下单 1-1")
    delete = say(chat, "/删除 1-3")
    confirm_order = say(chat, "确认")
    confirm_delete = say(chat, "确认删除")
    await converse(
        app,
        (buy, Says(buy, "确认")),
        (delete, Says(delete, "将删除")),
        (confirm_order, Says(confirm_order, "订单号")),
        (confirm_delete, Says(confirm_delete, "已删除规格 1-3")),
    )
    assert await order_line_names(shop) == [("iPhone 15 Pro", "默认")]
    assert len((await names(shop))[0][1]) == 2
