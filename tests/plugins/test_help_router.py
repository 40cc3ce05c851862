"""/帮助, and the router's rules: prefixes, group gating, duplicates, floods, unknown words."""

from __future__ import annotations

from typing import Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_GROUP_ID, OWNER_ID, STAFF_ID
from tests.fake import Says, group, private, v11_bot
from tests.plugins.helpers import add_staff, enable_group, seed_demo


async def ask(app: App, event: Any, *fragments: str, **kwargs: Any) -> None:
    async with app.test_matcher() as ctx:
        bot = v11_bot(ctx)
        ctx.receive_event(bot, event)
        ctx.should_call_send(event, Says(event, *fragments, **kwargs))


async def silent(app: App, event: Any) -> None:
    async with app.test_matcher() as ctx:
        bot = v11_bot(ctx)
        ctx.receive_event(bot, event)
        ctx.should_not_pass_rule()


MERCHANT_USAGES = ("/新品 <名称> <价格> <库存> [分类]", "/店员 [添加|删除 <QQ号>]", "/启用本群")


@pytest.mark.parametrize("chat", ["private", "group"])
async def test_help_for_customer_hides_merchant_commands(app: App, shop: Any, chat: str) -> None:
    await enable_group(shop)
    event = (
        private("/帮助", CUSTOMER_ID)
        if chat == "private"
        else group("/帮助", CUSTOMER_ID, GROUP_ID)
    )
    await ask(
        app,
        event,
        "测试小店 可用命令",
        "【商品】",
        "/详情 <商品编号>",
        "/帮助 <命令>",
        absent=MERCHANT_USAGES,
    )


async def test_help_for_staff_and_owner(app: App, shop: Any) -> None:
    await add_staff(shop, STAFF_ID)
    await ask(
        app,
        private("/help", STAFF_ID),
        "【店铺管理】",
        "/新品 <名称> <价格> <库存> [分类]",
        absent=("/店员",),
    )
    await ask(
        app, private("帮助", OWNER_ID), "/店员 [添加|删除 <QQ号>]", "私聊时命令前的 / 可以省略"
    )


async def test_help_for_one_command(app: App, shop: Any) -> None:
    await ask(
        app,
        private("/帮助 详情", CUSTOMER_ID),
        "/详情：商品描述、图片、各规格价格和库存",
        "用法：/详情 <商品编号>，例如 /详情 1",
        "也可以用：/item",
    )
    await ask(app, private("/帮助 /item", CUSTOMER_ID), "/详情：")


async def test_help_unknown_or_forbidden_command(app: App, shop: Any) -> None:
    await ask(app, private("/帮助 飞翔", CUSTOMER_ID), "没有“飞翔”这个命令")
    # It exists, as /店员 itself answers: not for this asker.
    await ask(app, private("/帮助 店员", CUSTOMER_ID), "无权限：/店员 是店主命令")


async def test_private_chat_prefix_optional_group_prefix_required(app: App, shop: Any) -> None:
    await seed_demo(shop)
    await enable_group(shop)
    await ask(app, private("分类", CUSTOMER_ID), "商品分类：")
    await silent(app, group("分类", CUSTOMER_ID, GROUP_ID))
    await silent(app, group("我的订单呢", CUSTOMER_ID, GROUP_ID))


async def test_disabled_group_is_silent_even_for_owner(app: App, shop: Any) -> None:
    await seed_demo(shop)
    await enable_group(shop, GROUP_ID)
    await silent(app, group("/商品", CUSTOMER_ID, OTHER_GROUP_ID))
    await silent(app, group("/新品 茶 1 1", OWNER_ID, OTHER_GROUP_ID))
    await ask(app, group("/商品", CUSTOMER_ID, GROUP_ID), "在售商品")


async def test_unknown_command(app: App, shop: Any) -> None:
    await enable_group(shop)
    await ask(app, private("/飞翔", CUSTOMER_ID), "没有“飞翔”这个命令", "/帮助")
    # A sentence in a private chat gets a hint (tests/plugins/test_newcomer.py), in a
    # group nothing.
    await ask(app, private("随便聊聊", CUSTOMER_ID), exact="没看懂这句话。发 /帮助 查看命令。")
    await silent(app, group("随便聊聊", CUSTOMER_ID, GROUP_ID))
    # Another bot's command in a shared group is not ours to answer.
    await silent(app, group("/roll 100", CUSTOMER_ID, GROUP_ID))


async def test_english_aliases_are_case_insensitive(app: App, shop: Any) -> None:
    await ask(app, private("/HELP", CUSTOMER_ID), "可用命令")


async def test_duplicate_delivery_answered_once(app: App, shop: Any) -> None:
    event = private("/分类", CUSTOMER_ID)
    async with app.test_matcher() as ctx:
        bot = v11_bot(ctx)
        ctx.receive_event(bot, event)
        ctx.should_call_send(event, Says(event, "还没有商品分类"))
        ctx.receive_event(bot, event)
        ctx.should_not_pass_rule()


async def test_flood_is_slowed_down_politely_once(app: App, shop: Any) -> None:
    limit = shop.settings.flood_max_commands
    async with app.test_matcher() as ctx:
        bot = v11_bot(ctx)
        for _ in range(limit):
            event = private("/分类", CUSTOMER_ID)
            ctx.receive_event(bot, event)
            ctx.should_call_send(event, Says(event, "还没有商品分类"))
        event = private("/分类", CUSTOMER_ID)
        ctx.receive_event(bot, event)
        ctx.should_call_send(event, Says(event, "操作太频繁"))
        # Further commands in the same window get no answer at all.
        ctx.receive_event(bot, private("/分类", CUSTOMER_ID))
        # Other users are not affected.
        event = private("/分类", OWNER_ID)
        ctx.receive_event(bot, event)
        ctx.should_call_send(event, Says(event, "还没有商品分类"))


async def test_internal_error_never_leaks_a_traceback(
    app: App, shop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services import catalog

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(catalog, "list_categories", broken)
    await ask(
        app, private("/分类", CUSTOMER_ID), "系统开小差了", absent=("database on fire", "Traceback")
    )


async def test_group_reply_quotes_the_asker(app: App, shop: Any) -> None:
    await enable_group(shop)
    event = group("/分类", CUSTOMER_ID, GROUP_ID)
    # Says checks that the first segment is a reply to this event's message id.
    await ask(app, event, "还没有商品分类")


def test_every_command_has_usage_example_and_english_alias() -> None:
    import plugins.catalog
    import plugins.help
    import plugins.merchant  # noqa: F401
    from plugins._common.registry import registry

    names = {c.name for c in registry.commands}
    for expected in (
        "帮助",
        "商品",
        "分类",
        "搜索",
        "详情",
        "新品",
        "规格",
        "改价",
        "库存",
        "上架",
        "下架",
        "描述",
        "设分类",
        "无理由",
        "店员",
        "启用本群",
        "停用本群",
    ):
        assert expected in names
    for command in registry.commands:
        assert command.usage.split()[0] == command.name
        assert command.example.split()[0] == command.name
        assert any(alias.isascii() for alias in command.aliases), command.name


def test_registry_refuses_a_word_twice() -> None:
    from plugins._common.registry import Command, Registry
    from services.staff import Role

    async def handler(ctx: Any) -> Any:
        return None

    registry = Registry()
    registry.add(Command("甲", ("a",), handler, Role.CUSTOMER, "甲", "甲", "", ""))
    with pytest.raises(ValueError):
        registry.add(Command("乙", ("A",), handler, Role.CUSTOMER, "乙", "乙", "", ""))


async def test_customer_sentence_that_starts_like_a_merchant_command_is_ignored(
    app: App, shop: Any
) -> None:
    # "新品什么时候到" typed privately is a question to the shop, not a command.
    async with app.test_matcher() as ctx:
        bot = v11_bot(ctx)
        ctx.receive_event(bot, private("新品 什么时候到", CUSTOMER_ID))
        ctx.receive_event(bot, private("库存 还有吗", CUSTOMER_ID))
    # With the prefix it is clearly a command attempt, and the answer says why not.
    await ask(app, private("/新品 什么时候到", CUSTOMER_ID), "无权限")


async def test_staff_are_not_slowed_down(app: App, shop: Any) -> None:
    async with app.test_matcher() as ctx:
        bot = v11_bot(ctx)
        for _ in range(shop.settings.flood_max_commands + 3):
            event = private("/分类", OWNER_ID)
            ctx.receive_event(bot, event)
            ctx.should_call_send(event, Says(event, "还没有商品分类"))


def test_every_registered_area_is_in_the_help_order() -> None:
    from plugins._common.registry import AREA_ORDER, registry

    areas = {c.area for c in registry.commands} | {c.area for c in registry.dialogues.values()}
    assert areas - set(AREA_ORDER) == set()
    assert len(AREA_ORDER) == len(set(AREA_ORDER))


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_help_sections_do_not_depend_on_registration_order(seed: int) -> None:
    import random

    from plugins._common.registry import AREA_ORDER, Registry, registry
    from plugins.help import render
    from services.staff import Role

    def overview(reg: Registry, role: Role) -> str:
        return render.overview(reg.visible_to(role), ("/",), "测试小店", in_group=False)

    commands = list(registry.commands)
    random.Random(seed).shuffle(commands)
    shuffled = Registry()
    for command in commands:
        shuffled.add(command)
    for role in Role:
        assert overview(shuffled, role) == overview(registry, role)

    headers = [
        line[1:-1] for line in overview(shuffled, Role.OWNER).splitlines() if line.startswith("【")
    ]
    assert headers == [area for area in AREA_ORDER if area in headers]
    assert headers[:5] == ["商品", "下单", "售后", "帮助", "店铺管理"]
    assert set(headers) == {c.area for c in registry.commands}


def test_plugin_usage_lists_exactly_the_plugins_commands() -> None:
    import nonebot

    from plugins._common.registry import registry

    owned: set[str] = set()
    for plugin in nonebot.get_loaded_plugins():
        module = plugin.module_name
        own = [
            c
            for c in registry.commands
            if c.handler.__module__ == module or c.handler.__module__.startswith(module + ".")
        ]
        if not own:
            continue
        assert plugin.metadata is not None, module
        listed = [
            line.split("  ")[0]
            for line in plugin.metadata.usage.splitlines()
            if line.startswith("/")
        ]
        assert sorted(listed) == sorted(f"/{c.usage}" for c in own), module
        sections = {line[1:-1] for line in plugin.metadata.usage.splitlines() if line[0] == "【"}
        assert sections == {c.area for c in own}, module
        owned |= {c.name for c in own}
    # Every command is listed by the plugin that defines it.
    assert owned == {c.name for c in registry.commands}


def test_plugin_metadata_must_come_after_the_commands() -> None:
    from plugins._common.registry import plugin_metadata

    with pytest.raises(RuntimeError):
        plugin_metadata("plugins.nowhere", name="无", description="无")
