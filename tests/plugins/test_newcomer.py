"""A newcomer's first minutes (issue 14, points 8–14), over nonebug: a private chat
answers what it does not understand (rate-limited; groups stay silent); quantities are
numbers, Chinese numerals or a clear refusal, never a remark; /帮助 agrees with the
commands about permissions; usage errors carry their usage line; examples use the demo
shop's ids; manual tracking promises nothing automatic; staff are pointed to their own
lists; friend requests are approved through the paced outbox; a disabled group's 确认
places no order."""

from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID
from tests.fake import SELF_ID, Says, group, private, v11_bot
from tests.plugins.helpers import (
    Grab,
    add_staff,
    converse,
    enable_group,
    order_code_in,
    orders_of,
    outbox_rows,
    pay_order,
    rows_of,
    save_address,
    seed_demo,
    seed_order,
)

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime

CHATS = ("private", "group")
NO_PERMISSION = "无权限：这是店主/店员命令。发 /帮助 查看你可用的命令。"
BUY_USAGE = "用法：/下单 <规格编号> [数量] [备注]，例如 /下单 1-2 3"


@pytest.fixture(autouse=True)
async def _shop_ready(shop: ShopRuntime) -> None:
    from plugins._common.runtime import FloodGuard

    shop.flood = FloodGuard(10_000, 10.0)
    await seed_demo(shop)
    await add_staff(shop, STAFF_ID)
    await enable_group(shop)


def say(chat: str, text: str, user_id: int = CUSTOMER_ID) -> Any:
    return private(text, user_id) if chat == "private" else group(text, user_id, GROUP_ID)


def says(chat: str, text: str, *fragments: str, user_id: int = CUSTOMER_ID, **kwargs: Any) -> Any:
    event = say(chat, text, user_id)
    return event, Says(event, *fragments, **kwargs)


# --- 8. a private chat answers what it does not understand ---------------------------------


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("商平", "商品"),
        ("下蛋 5-1", "下单"),
        ("hlep", "帮助"),
        ("下单6-1", "下单"),
        ("ITMES", "商品"),
    ],
    ids=["typo", "typo-with-args", "swapped", "no-space", "alias"],
)
async def test_a_private_typo_gets_a_hint_naming_the_close_command(
    app: App, text: str, meant: str
) -> None:
    word = text.split()[0]
    await converse(
        app,
        says("private", text, exact=f"没看懂“{word}”。是不是想发 /{meant}？发 /帮助 查看命令。"),
    )


async def test_a_greeting_gets_the_short_hint(app: App) -> None:
    await converse(app, says("private", "你好", exact="没看懂这句话。发 /帮助 查看命令。"))


async def test_an_unknown_prefixed_word_names_the_close_command_too(app: App) -> None:
    await converse(
        app,
        says(
            "private",
            "/商平",
            exact="没有“商平”这个命令。是不是想发 /商品？发 /帮助 查看可用的命令。",
        ),
        says("private", "/飞翔", exact="没有“飞翔”这个命令。发 /帮助 查看可用的命令。"),
    )


async def test_suggestions_name_only_commands_the_asker_may_use(app: App) -> None:
    # 收宽 is a typo of the staff command 收款: a customer is not sent towards it.
    await converse(
        app,
        says("private", "收宽", exact="没看懂这句话。发 /帮助 查看命令。"),
        says("private", "收宽", "是不是想发 /收款？", user_id=STAFF_ID),
    )


async def test_hints_come_at_most_once_a_minute_per_user(app: App, shop: ShopRuntime) -> None:
    from plugins._common.runtime import HINT_WINDOW_SECONDS

    assert HINT_WINDOW_SECONDS == 60
    await converse(
        app,
        says("private", "你好", "没看懂"),
        (private("在吗", CUSTOMER_ID), None),  # within the minute: not even taken
        (private("商平", CUSTOMER_ID), None),
        says("private", "你好", "没看懂", user_id=OTHER_CUSTOMER_ID),  # others are not held up
        # Commands are answered as ever, hints or not.
        says("private", "分类", "商品分类："),
        says("private", "/商平", "没有“商平”这个命令"),
    )


def test_the_hint_cooldown_lets_a_user_through_again_after_the_window() -> None:
    from plugins._common.runtime import Cooldown

    cooldown = Cooldown(60.0, size=2)
    assert cooldown.allow(1, now=0.0)
    assert not cooldown.allow(1, now=59.9)
    assert cooldown.allow(2, now=10.0)
    assert cooldown.allow(1, now=60.0)
    assert cooldown.allow(3, now=61.0)  # remembers 2 users: user 2 is forgotten
    assert cooldown.allow(2, now=62.0)


@pytest.mark.parametrize("text", ["商平", "你好", "/商平", "下蛋 5-1", "hlep"])
async def test_group_chatter_and_typos_stay_silent(app: App, text: str) -> None:
    await converse(app, (group(text, CUSTOMER_ID, GROUP_ID), None))


async def test_an_address_line_while_a_summary_waits_is_the_dialogue_not_a_typo(
    app: App, shop: ShopRuntime
) -> None:
    await converse(
        app,
        says("private", "/下单 2", "你还没有收货地址"),
        says("private", "张三 13800001111 浙江省杭州市西湖区文三路 1 号", "请确认订单："),
        says("private", "确认", "订单号："),
    )
    assert len(await orders_of(shop, CUSTOMER_ID)) == 1


def test_suggest_and_edit_distance() -> None:
    from plugins._common.dispatch import edit_distance, suggest
    from plugins._common.registry import registry
    from services.staff import Role

    assert edit_distance("hlep", "help") == 1
    assert edit_distance("商平", "商品") == 1
    assert edit_distance("你好", "商品") == 2
    customer = registry.visible_to(Role.CUSTOMER)
    assert suggest("下蛋", customer).name == "下单"  # type: ignore[union-attr]
    assert suggest("你好", customer) is None
    assert suggest("很" * 10_000, customer) is None  # a sentence, not a word
    assert suggest("收宽", customer) is None
    assert suggest("收宽", registry.visible_to(Role.STAFF)).name == "收款"  # type: ignore[union-attr]


# --- 9. quantities -----------------------------------------------------------------------------


@pytest.mark.parametrize("chat", CHATS)
@pytest.mark.parametrize(
    ("words", "quantity", "remark"),
    [
        ("两", 2, ""),
        ("三个", 3, ""),
        ("十二 周末送", 12, "周末送"),
        ("２", 2, ""),
        ("3个 周末送", 3, "周末送"),
        ("一定要新鲜", 1, "一定要新鲜"),
    ],
    ids=["liang", "san-ge", "shi-er-remark", "full-width", "digit-ge", "remark"],
)
async def test_buy_reads_chinese_numerals_and_full_width_digits_as_quantities(
    app: App, shop: ShopRuntime, chat: str, words: str, quantity: int, remark: str
) -> None:
    await save_address(shop, CUSTOMER_ID)
    await converse(
        app,
        says(chat, f"/下单 2 {words}", f"冷萃咖啡液 ¥39.90 × {quantity} ="),
        says(chat, "确认", "订单号："),
    )
    [order] = await orders_of(shop, CUSTOMER_ID)
    assert order.remark == remark


@pytest.mark.parametrize("chat", CHATS)
@pytest.mark.parametrize("word", ["-1", "0", "3.5", "3x", "一百五", "两打", "1000", "百"])
async def test_a_mistyped_quantity_is_refused_never_a_remark(
    app: App, shop: ShopRuntime, chat: str, word: str
) -> None:
    await save_address(shop, CUSTOMER_ID)
    await converse(
        app,
        says(
            chat,
            f"/下单 2 {word} 周末送",
            f"数量应是 1 到 999 的整数，而不是“{word}”。\n{BUY_USAGE}",
            absent=("请确认订单",),
        ),
    )
    assert shop.drafts.get(GROUP_ID if chat == "group" else None, CUSTOMER_ID) is None


async def test_add_to_cart_takes_a_chinese_numeral(app: App, shop: ShopRuntime) -> None:
    from models.tables import CartLine

    await converse(app, says("private", "/加购 1-2 两", "现有 2 件"))
    assert [(r.user_id, r.quantity) for r in await rows_of(shop, CartLine)] == [(CUSTOMER_ID, 2)]


def test_chinese_numbers() -> None:
    from plugins._common.args import chinese_number, looks_like_quantity, quantity_value

    expected = {"一": 1, "两": 2, "十": 10, "十二": 12, "二十": 20, "九十九": 99, "两百": 200}
    expected |= {"一百零五": 105, "三百二十": 320, "零": 0}
    assert {text: chinese_number(text) for text in expected} == expected
    for text in ("一百五", "二零", "百", "一定", "", "两打"):
        assert chinese_number(text) is None, text
    assert quantity_value("３个") == 3 and quantity_value("五件") == 5
    assert looks_like_quantity("两打") and looks_like_quantity("-1")
    assert not looks_like_quantity("一定要新鲜") and not looks_like_quantity("周末送")


# --- 10. consistency -----------------------------------------------------------------------------


@pytest.mark.parametrize("chat", CHATS)
async def test_help_and_the_command_agree_on_a_merchant_command(app: App, chat: str) -> None:
    await converse(
        app,
        says(chat, "/收款 23456789AB", exact=NO_PERMISSION),
        says(
            chat, "/帮助 收款", exact="无权限：/收款 是店主/店员命令。发 /帮助 查看你可用的命令。"
        ),
        says(
            chat,
            "/帮助 店员",
            exact="无权限：/店员 是店主命令。发 /帮助 查看你可用的命令。",
            user_id=STAFF_ID,
        ),
        says(chat, "/帮助 收款", "/收款：", "用法：/收款 <订单号>", user_id=STAFF_ID),
        says(chat, "/帮助 商平", "没有“商平”这个命令。是不是想看 /帮助 商品？"),
    )


def _required_argument(command: Any) -> bool:
    words = command.usage.split()
    return len(words) > 1 and words[1].startswith("<")


async def test_every_usage_error_carries_the_usage_line_with_an_example(app: App) -> None:
    """Every command that needs an argument, sent without one (by the owner, privately):
    an answer saying what is missing carries `用法：… 例如 …` (a few commands list
    something when given nothing, which is no error)."""
    from plugins._common.context import usage_line
    from plugins._common.registry import registry

    commands = [c for c in registry.commands if _required_argument(c)]
    assert len(commands) > 30
    events = [private(f"/{command.name}", OWNER_ID) for command in commands]
    replies = [(command, Grab(event)) for command, event in zip(commands, events, strict=True)]
    await converse(app, *zip(events, (reply for _, reply in replies), strict=True))
    missing = [
        command.name
        for command, reply in replies
        if "缺少" in reply.text and usage_line(command, ("/",)) not in reply.text
    ]
    assert missing == []
    assert sum("缺少" in reply.text for _, reply in replies) > 25


@pytest.mark.parametrize("chat", CHATS)
async def test_tracking_number_and_carrier_errors_show_the_usage(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    usage = "用法：/发货 <订单号> <快递公司> <运单号>，例如 /发货 2K7QH9M3XA 顺丰 SF1234567890"
    await converse(
        app,
        says(
            chat,
            f"/发货 {code} 顺丰 12",
            "运单号应是 6 到 30 位字母或数字",
            usage,
            user_id=STAFF_ID,
        ),
        says(
            chat, f"/发货 {code} 飞鸽 SF1234567890", "不认识快递公司“飞鸽”", usage, user_id=STAFF_ID
        ),
    )


_VARIANT_REF = re.compile(r"^\d{1,9}-\d{1,3}$")


def _example_ids(command: Any) -> tuple[list[int], list[str]]:
    """The item ids and variant refs an example uses: its first argument where the usage
    starts with <商品编号> or <规格编号>, and every `12-2`-shaped word."""
    arguments = command.example.split()[1:]
    usage = command.usage.split()[1:]
    items: list[int] = []
    refs = [word for word in arguments if _VARIANT_REF.match(word)]
    if arguments and usage:
        if usage[0] == "<商品编号>":
            items.append(int(arguments[0]))
        elif usage[0] == "<规格编号>" and arguments[0] not in refs:
            refs.append(arguments[0])
    return items, refs


async def test_every_example_uses_ids_of_the_demo_shop(shop: ShopRuntime) -> None:
    from plugins._common.args import ArgReader
    from plugins._common.registry import registry
    from services import catalog

    checked = 0
    async with shop.database.read() as session:
        for command in registry.commands:
            items, refs = _example_ids(command)
            if "<商品编号>" in command.usage or "<规格编号>" in command.usage:
                assert items or refs, f"/{command.name}: no id found in {command.example!r}"
            for item_id in items:
                await catalog.get_item(session, shop.shop_id, item_id)
            for ref in refs:
                variant = ArgReader(ref).variant_ref()
                await catalog.resolve_variant(session, shop.shop_id, variant)
            checked += len(items) + len(refs)
    assert checked >= 15


@pytest.mark.parametrize("chat", CHATS)
async def test_manual_tracking_promises_nothing_automatic(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    code = await seed_order(shop, CUSTOMER_ID, group_id=GROUP_ID if chat == "group" else None)
    await pay_order(shop, code)
    assert shop.settings.tracking_provider == "manual"
    await converse(
        app,
        says(
            chat,
            f"/发货 {code} 顺丰 SF1234567890",
            exact=f"已发货：订单号：{code}，顺丰 SF1234567890。已通知顾客，"
            f"物流动态请用 /物流更新 {code} <描述> 记录。",
            user_id=STAFF_ID,
        ),
        says(chat, f"/物流 {code}", "暂无物流信息。", absent=("自动",)),
        says(chat, "/帮助 发货", "/发货：", absent=("之后自动跟踪",), user_id=STAFF_ID),
    )


@pytest.mark.parametrize("chat", CHATS)
async def test_staff_are_pointed_to_their_own_lists(app: App, chat: str) -> None:
    missing = "23456789AB"
    await converse(
        app,
        says(
            chat,
            f"/订单 {missing}",
            exact=f"没有找到订单 {missing}。发 /订单列表 查看全部订单。",
            user_id=STAFF_ID,
        ),
        says(
            chat,
            f"/收款 {missing}",
            exact=f"没有找到订单 {missing}。发 /订单列表 查看全部订单。",
            user_id=OWNER_ID,
        ),
        says(
            chat,
            f"/工单 {missing}",
            exact=f"没有找到工单 {missing}。发 /工单列表 查看全部工单。",
            user_id=STAFF_ID,
        ),
        says(chat, f"/订单 {missing}", exact=f"没有找到订单 {missing}。发 /订单 查看你的订单。"),
    )


async def test_the_order_list_writes_one_line_of_two_as_times_two(
    app: App, shop: ShopRuntime
) -> None:
    await seed_order(shop, CUSTOMER_ID, ((2, 1, 2),))
    await seed_order(shop, CUSTOMER_ID, ((1, 2, 1), (2, 1, 2)))
    await converse(
        app,
        says(
            "private",
            "/订单",
            "冷萃咖啡液×2",
            "云南小粒咖啡豆（500g）等3件",
            absent=("冷萃咖啡液等2件",),
        ),
    )


# --- 13. friend requests ------------------------------------------------------------------------


def _friend_request(user_id: int, flag: str) -> Any:
    from nonebot.adapters.onebot.v11 import FriendRequestEvent

    return FriendRequestEvent(
        time=1_700_000_000,
        self_id=SELF_ID,
        post_type="request",
        request_type="friend",
        user_id=user_id,
        comment="想买咖啡",
        flag=flag,
    )


@asynccontextmanager
async def fake_bot(app: App) -> Any:
    from nonebot.adapters.onebot.v11 import Adapter, Bot

    async with app.test_api() as ctx:
        adapter = ctx.create_adapter(base=Adapter)
        yield ctx, ctx.create_bot(base=Bot, adapter=adapter, self_id=str(SELF_ID))


async def _receive(app: App, event: Any) -> None:
    async with app.test_matcher() as ctx:
        ctx.receive_event(v11_bot(ctx), event)


def test_the_shop_has_one_matcher_for_messages_and_friend_requests() -> None:
    """NoneBot starts a task per matcher on every event before comparing its type: a
    second matcher, even for request events only, would cost every group message."""
    from nonebot.matcher import matchers

    shop = [m for group in matchers.values() for m in group if m.module_name.startswith("plugins.")]
    assert [(m.module_name, m.type) for m in shop] == [("plugins.router", "")]


async def test_a_friend_request_is_approved_through_the_paced_outbox(
    app: App, shop: ShopRuntime
) -> None:
    from plugins.clocks import dispatch_once
    from services.outbox import Pacer, TargetKind

    await _receive(app, _friend_request(OTHER_CUSTOMER_ID, "flag-7"))
    await _receive(app, _friend_request(OTHER_CUSTOMER_ID, "flag-7"))  # delivered twice
    approval, welcome = await outbox_rows(shop)
    assert (approval.target_type, approval.target_id) == (
        TargetKind.FRIEND_REQUEST,
        OTHER_CUSTOMER_ID,
    )
    assert json.loads(approval.segments) == [{"type": "friend_request", "data": {"flag": "flag-7"}}]
    assert (welcome.target_type, welcome.target_id) == ("private", OTHER_CUSTOMER_ID)
    async with fake_bot(app) as (ctx, bot):
        ctx.should_call_api(
            "set_friend_add_request", {"flag": "flag-7", "approve": True}, result=None
        )
        ctx.should_call_api(
            "send_private_msg",
            {
                "user_id": OTHER_CUSTOMER_ID,
                "message": [
                    {
                        "type": "text",
                        "data": {
                            "text": "你好，我是测试小店的店铺助手。私聊里命令前的 / 可以省略："
                            "发 商品 看在售商品，发 帮助 查看全部命令。"
                        },
                    }
                ],
            },
            result={"message_id": 1},
        )
        assert await dispatch_once(shop, Pacer(0, 1000), bot) == 2
    assert all(row.sent_at is not None for row in await outbox_rows(shop))


async def test_friend_requests_ignored_when_so_set(app: App, shop: ShopRuntime) -> None:
    from config import FriendRequests

    shop.shop.settings = shop.settings.model_copy(update={"friend_requests": FriendRequests.IGNORE})
    await _receive(app, _friend_request(OTHER_CUSTOMER_ID, "flag-8"))
    assert await outbox_rows(shop) == []


# --- 14. a group disabled after the summary was shown ------------------------------------------


async def test_a_bare_confirm_in_a_group_disabled_after_the_summary_places_no_order(
    app: App, shop: ShopRuntime
) -> None:
    await save_address(shop, CUSTOMER_ID)
    summary = Grab(event := group("/下单 2", CUSTOMER_ID, GROUP_ID), "请确认订单：")
    await converse(
        app,
        (event, summary),
        says("group", "/停用本群", "已在本群停用店铺", user_id=OWNER_ID),
        (group("确认", CUSTOMER_ID, GROUP_ID), None),
        (group("/确认", CUSTOMER_ID, GROUP_ID), None),
    )
    assert await orders_of(shop) == []
    # The summary still waits: enabled again, the same 确认 places the order.
    await enable_group(shop)
    reply = Grab(event := group("确认", CUSTOMER_ID, GROUP_ID), "订单号：")
    await converse(app, (event, reply))
    assert [order.code for order in await orders_of(shop)] == [order_code_in(reply.text)]
