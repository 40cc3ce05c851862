"""/店员 (owner only), what staff may do, /启用本群 /停用本群 and group gating."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_GROUP_ID, OWNER_ID, STAFF_ID
from tests.fake import Says, group, private, v11_bot

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime

NO_PERMISSION = "无权限：这是店主/店员命令。发 /帮助 查看你可用的命令。"
GROUP_ONLY = "这个命令要在群里发送。"
STAFF_USAGE = "用法：/店员 [添加|删除 <QQ号>]，例如 /店员 添加 123456789"
ENABLED = "已在本群启用店铺，群友可以发 /商品 浏览、/帮助 查看命令。"
DISABLED = "已在本群停用店铺，之后本群的命令不再回应（/启用本群 可重新开启）。"

CHATS = ("private", "group")


# --- helpers -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_flood_limit(shop: ShopRuntime) -> None:
    """Some tests send more than the per-user flood limit (8 in 10 s) on purpose."""
    from plugins._common.runtime import FloodGuard

    shop.flood = FloodGuard(10_000, 10.0)


async def enable(shop: ShopRuntime, group_id: int = GROUP_ID) -> None:
    from services import groups

    async with shop.database.write() as session:
        await groups.set_group_enabled(session, shop.shop_id, group_id, True, OWNER_ID)
    shop.access.invalidate()


async def make_staff(shop: ShopRuntime, user_id: int = STAFF_ID) -> None:
    from services import staff

    async with shop.database.write() as session:
        await staff.add_staff(session, shop.shop_id, user_id, OWNER_ID, {OWNER_ID})
    shop.access.invalidate()


async def seed_item(shop: ShopRuntime) -> None:
    from services import catalog

    async with shop.database.write() as session:
        await catalog.create_item(session, shop.shop_id, "冷萃咖啡", 3990, 50, None)


@pytest.fixture(params=CHATS)
async def chat(request: pytest.FixtureRequest, shop: ShopRuntime) -> str:
    if request.param == "group":
        await enable(shop)
    return request.param


def say(chat: str, text: str, user_id: int = OWNER_ID) -> Any:
    return private(text, user_id) if chat == "private" else group(text, user_id, GROUP_ID)


async def exchange(app: App, *steps: tuple[Any, Says | None]) -> None:
    """Each event in order; `None` means the router must ignore it (no reply at all)."""
    async with app.test_matcher() as ctx:
        bot = v11_bot(ctx)
        for event, expected in steps:
            ctx.receive_event(bot, event)
            if expected is None:
                ctx.should_not_pass_rule()
            else:
                ctx.should_call_send(event, expected)


async def ask(app: App, event: Any, *fragments: str, **kwargs: Any) -> None:
    await exchange(app, (event, Says(event, *fragments, **kwargs)))


async def staff_ids(shop: ShopRuntime) -> set[int]:
    from services import staff

    async with shop.database.read() as session:
        return await staff.staff_ids(session, shop.shop_id)


async def enabled_groups(shop: ShopRuntime) -> set[int]:
    from services import groups

    async with shop.database.read() as session:
        return await groups.enabled_group_ids(session, shop.shop_id)


async def snapshot(
    shop: ShopRuntime, ignore: tuple[str, ...] = ()
) -> dict[str, list[dict[str, Any]]]:
    """Every row a merchant command can touch, to prove that nothing changed."""
    from sqlalchemy import select

    from models.tables import Category, Item, ShopGroup, Staff, Variant

    rows: dict[str, list[dict[str, Any]]] = {}
    async with shop.database.read() as session:
        for model in (Item, Variant, Category, Staff, ShopGroup):
            result = await session.execute(select(model).order_by(model.id))  # type: ignore[arg-type]
            rows[model.__name__] = [row.model_dump(exclude=set(ignore)) for row in result.scalars()]
    return rows


# --- /店员 ---------------------------------------------------------------------------


async def test_owner_lists_no_staff(app: App, shop: ShopRuntime, chat: str) -> None:
    await ask(
        app,
        say(chat, "/店员"),
        exact=f"店主：{OWNER_ID}\n还没有店员。\n添加：/店员 添加 <QQ号>；删除：/店员 删除 <QQ号>",
    )


async def test_owner_adds_lists_and_removes_staff(app: App, shop: ShopRuntime, chat: str) -> None:
    add = say(chat, "/店员 添加 20002")
    add_other = say(chat, "/staff add 30004")
    listing = say(chat, "/店员")
    remove = say(chat, "/店员 删除 20002")
    listing_after = say(chat, "/staff")
    await exchange(
        app,
        (add, Says(add, exact="已添加店员 20002，对方现在可以使用店铺管理命令。")),
        (add_other, Says(add_other, "已添加店员 30004")),
        (listing, Says(listing, f"店主：{OWNER_ID}", "店员：20002、30004")),
        (remove, Says(remove, exact="已删除店员 20002。")),
        (listing_after, Says(listing_after, "店员：30004", absent=("20002",))),
    )
    assert await staff_ids(shop) == {30004}


async def test_staff_rights_follow_the_table_at_once(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    before = say(chat, "/新品 冷萃咖啡 39.9 50", STAFF_ID)
    add = say(chat, "/店员 添加 20002")
    works = say(chat, "/新品 冷萃咖啡 39.9 50", STAFF_ID)
    remove = say(chat, "/店员 删除 20002")
    after = say(chat, "/新品 挂耳咖啡 29.9 50", STAFF_ID)
    await exchange(
        app,
        (before, Says(before, exact=NO_PERMISSION)),
        (add, Says(add, "已添加店员 20002")),
        (works, Says(works, "商品编号：1")),
        (remove, Says(remove, "已删除店员 20002")),
        (after, Says(after, exact=NO_PERMISSION)),
    )
    assert len((await snapshot(shop))["Item"]) == 1


@pytest.mark.parametrize(
    "text",
    ["/店员 添加 ２０００２", "/店员 添加 @20002", "/店员 ADD 20002", "/店员 添加  20002 "],
    ids=["full-width", "at-sign", "upper-case", "spaces"],
)
async def test_add_staff_accepted_spellings(
    app: App, shop: ShopRuntime, chat: str, text: str
) -> None:
    await ask(app, say(chat, text), "已添加店员 20002")
    assert await staff_ids(shop) == {STAFF_ID}


async def test_add_owner_as_staff(app: App, shop: ShopRuntime, chat: str) -> None:
    await ask(
        app,
        say(chat, f"/店员 添加 {OWNER_ID}"),
        exact=f"{OWNER_ID} 是店主（SUPERUSERS），不需要添加为店员。",
    )
    assert await staff_ids(shop) == set()


async def test_add_staff_twice(app: App, shop: ShopRuntime, chat: str) -> None:
    await make_staff(shop)
    await ask(app, say(chat, "/店员 添加 20002"), exact="20002 已经是店员了。")
    assert (await snapshot(shop))["Staff"].__len__() == 1


async def test_remove_unknown_staff(app: App, shop: ShopRuntime, chat: str) -> None:
    await make_staff(shop)
    await ask(app, say(chat, "/店员 删除 30003"), exact="30003 不是店员。发 /店员 查看店员列表。")
    assert await staff_ids(shop) == {STAFF_ID}


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ("添加 abc", "QQ号应是 5 到 12 位数字，而不是“abc”。"),
        ("添加 1234", "QQ号应是 5 到 12 位数字，而不是“1234”。"),
        ("添加 1234567890123", "而不是“1234567890123”"),
        ("添加 -20002", "而不是“-20002”"),
        ("添加", "缺少QQ号。"),
        ("删除", "缺少QQ号。"),
        ("修改 20002", "操作应是 添加、删除、add、remove 之一，而不是“修改”。"),
        ("20002", "操作应是 添加、删除、add、remove 之一，而不是“20002”。"),
        ("添加 20002 30004", "多余的内容：30004"),
    ],
    ids=[
        "abc",
        "too-short",
        "too-long",
        "negative",
        "add-no-qq",
        "remove-no-qq",
        "bad-action",
        "no-action",
        "extra",
    ],
)
async def test_staff_command_rejects_bad_input(
    app: App, shop: ShopRuntime, chat: str, args: str, reason: str
) -> None:
    await ask(app, say(chat, f"/店员 {args}"), reason, STAFF_USAGE)
    assert await staff_ids(shop) == set()


@pytest.mark.parametrize("user_id", [STAFF_ID, CUSTOMER_ID], ids=["staff", "customer"])
@pytest.mark.parametrize(
    "text", ["/店员", "/staff", "/店员 添加 30004", "/店员 删除 20002", "/店员 乱写"]
)
async def test_only_owner_manages_staff(
    app: App, shop: ShopRuntime, chat: str, user_id: int, text: str
) -> None:
    await make_staff(shop)
    before = await snapshot(shop)
    await ask(app, say(chat, text, user_id), exact=NO_PERMISSION)
    assert await snapshot(shop) == before


# --- what staff may do ---------------------------------------------------------------


STAFF_EDITS = [
    ("/新品 挂耳咖啡 29.9 100 咖啡", "商品编号：2"),
    ("/规格 1 500g 109 20", "1-2 500g"),
    ("/改价 1 45", "¥39.90 → ¥45.00"),
    ("/库存 1 +5", "50 → 55"),
    ("/下架 1", "已下架"),
    ("/上架 1", "本来就是上架状态"),
    ("/描述 1 中度烘焙", "已更新"),
    ("/设分类 1 咖啡", "归入分类“咖啡”"),
    ("/无理由 1 关", "不支持七天无理由退货"),
    ("/详情 1", "【1】冷萃咖啡"),
]


@pytest.mark.parametrize(
    ("text", "fragment"), STAFF_EDITS, ids=[t.split()[0] for t, _ in STAFF_EDITS]
)
async def test_staff_edits_catalog(
    app: App, shop: ShopRuntime, chat: str, text: str, fragment: str
) -> None:
    await make_staff(shop)
    await seed_item(shop)
    before = await snapshot(shop, ignore=("updated_at",))
    await ask(app, say(chat, text, STAFF_ID), fragment, absent=("无权限",))
    changed = await snapshot(shop, ignore=("updated_at",)) != before
    assert changed is (text.split()[0] not in {"/上架", "/详情"})


async def test_staff_effects_reach_the_database(app: App, shop: ShopRuntime, chat: str) -> None:
    from services import catalog

    await make_staff(shop)
    await seed_item(shop)
    steps = [
        say(chat, "/改价 1 45", STAFF_ID),
        say(chat, "/库存 1 -10", STAFF_ID),
        say(chat, "/设分类 1 咖啡", STAFF_ID),
        say(chat, "/下架 1", STAFF_ID),
    ]
    await exchange(app, *((event, Says(event, absent=("无权限",))) for event in steps))
    async with shop.database.read() as session:
        found = await catalog.item_detail(session, shop.shop_id, 1, include_delisted=True)
    assert found.variants[0].price_fen == 4500
    assert found.variants[0].stock == 40
    assert found.category == "咖啡"
    assert found.item.listed is False


async def test_staff_enables_and_disables_a_group(app: App, shop: ShopRuntime) -> None:
    await make_staff(shop)
    on = group("/启用本群", STAFF_ID, GROUP_ID)
    off = group("/停用本群", STAFF_ID, GROUP_ID)
    await exchange(app, (on, Says(on, exact=ENABLED)), (off, Says(off, exact=DISABLED)))
    assert await enabled_groups(shop) == set()


# --- /启用本群 ------------------------------------------------------------------------


@pytest.mark.parametrize("user_id", [OWNER_ID, STAFF_ID], ids=["owner", "staff"])
@pytest.mark.parametrize("text", ["/启用本群", "/enable", "／启用本群"])
async def test_enable_a_new_group(app: App, shop: ShopRuntime, user_id: int, text: str) -> None:
    await make_staff(shop)
    await seed_item(shop)
    ignored = group("/商品", CUSTOMER_ID, GROUP_ID)
    enable_it = group(text, user_id, GROUP_ID)
    browse = group("/商品", CUSTOMER_ID, GROUP_ID)
    again = group("/启用本群", user_id, GROUP_ID)
    await exchange(
        app,
        (ignored, None),
        (enable_it, Says(enable_it, exact=ENABLED)),
        (browse, Says(browse, "1. 冷萃咖啡")),
        (again, Says(again, exact="本群已经启用了店铺。")),
    )
    assert await enabled_groups(shop) == {GROUP_ID}


async def test_enable_one_group_leaves_others_silent(app: App, shop: ShopRuntime) -> None:
    on = group("/启用本群", OWNER_ID, GROUP_ID)
    elsewhere = group("/商品", CUSTOMER_ID, OTHER_GROUP_ID)
    here = group("/商品", CUSTOMER_ID, GROUP_ID)
    await exchange(
        app,
        (on, Says(on, exact=ENABLED)),
        (elsewhere, None),
        (here, Says(here, "还没有在售商品")),
    )
    assert await enabled_groups(shop) == {GROUP_ID}


@pytest.mark.parametrize("text", ["/启用本群", "/停用本群", "/enable", "/disable"])
@pytest.mark.parametrize("user_id", [OWNER_ID, STAFF_ID], ids=["owner", "staff"])
async def test_group_commands_in_private_chat(
    app: App, shop: ShopRuntime, text: str, user_id: int
) -> None:
    await make_staff(shop)
    await ask(app, private(text, user_id), exact=GROUP_ONLY)
    assert await enabled_groups(shop) == set()
    assert (await snapshot(shop))["ShopGroup"] == []


async def test_customer_cannot_enable(app: App, shop: ShopRuntime) -> None:
    await enable(shop)
    before = await snapshot(shop)
    await ask(app, group("/启用本群", CUSTOMER_ID, GROUP_ID), exact=NO_PERMISSION)
    assert await snapshot(shop) == before


@pytest.mark.parametrize("text", ["/启用本群", "/enable", "/停用本群", "/disable"])
async def test_customer_gets_silence_in_a_group_without_the_shop(
    app: App, shop: ShopRuntime, text: str
) -> None:
    # `/enable` is a common command of other bots: a group that never enabled the shop
    # must not hear 无权限 from it.
    before = await snapshot(shop)
    async with app.test_matcher() as ctx:
        bot = v11_bot(ctx)
        # No expectation: nonebug fails the test on any send.
        ctx.receive_event(bot, group(text, CUSTOMER_ID, GROUP_ID))
    assert await snapshot(shop) == before


async def test_staff_disable_in_a_group_without_the_shop_says_so(
    app: App, shop: ShopRuntime
) -> None:
    await make_staff(shop)
    event = group("/停用本群", STAFF_ID, GROUP_ID)
    await ask(app, event, "本群本来就没有启用店铺")
    assert await enabled_groups(shop) == set()


async def test_enable_with_extra_words(app: App, shop: ShopRuntime) -> None:
    await ask(
        app,
        group("/启用本群 现在", OWNER_ID, GROUP_ID),
        "多余的内容：现在",
        "用法：/启用本群，例如 /启用本群",
    )
    assert await enabled_groups(shop) == set()


async def test_enable_same_event_twice_answers_once(app: App, shop: ShopRuntime) -> None:
    event = group("/启用本群", OWNER_ID, GROUP_ID)
    await exchange(app, (event, Says(event, exact=ENABLED)), (event, None))
    assert len((await snapshot(shop))["ShopGroup"]) == 1


# --- /停用本群 ------------------------------------------------------------------------


async def test_disable_silences_the_group(app: App, shop: ShopRuntime) -> None:
    await enable(shop)
    await enable(shop, OTHER_GROUP_ID)
    await seed_item(shop)
    off = group("/停用本群", OWNER_ID, GROUP_ID)
    browse = group("/商品", CUSTOMER_ID, GROUP_ID)
    owner_browse = group("/商品", OWNER_ID, GROUP_ID)
    owner_new = group("/新品 挂耳咖啡 29.9 100", OWNER_ID, GROUP_ID)
    off_again = group("/disable", OWNER_ID, GROUP_ID)
    other = group("/商品", CUSTOMER_ID, OTHER_GROUP_ID)
    private_still = private("/商品", CUSTOMER_ID)
    await exchange(
        app,
        (off, Says(off, exact=DISABLED)),
        (browse, None),
        (owner_browse, None),
        (owner_new, None),
        # Staff still get an answer here: the group switch is theirs to operate.
        (off_again, Says(off_again, "本群本来就没有启用店铺")),
        (other, Says(other, "1. 冷萃咖啡")),
        (private_still, Says(private_still, "1. 冷萃咖啡")),
    )
    assert await enabled_groups(shop) == {OTHER_GROUP_ID}
    assert len((await snapshot(shop))["Item"]) == 1


async def test_disable_then_enable_again(app: App, shop: ShopRuntime) -> None:
    await enable(shop)
    off = group("/停用本群", OWNER_ID, GROUP_ID)
    on = group("/启用本群", OWNER_ID, GROUP_ID)
    browse = group("/商品", CUSTOMER_ID, GROUP_ID)
    await exchange(
        app,
        (off, Says(off, exact=DISABLED)),
        (on, Says(on, exact=ENABLED)),
        (browse, Says(browse, "还没有在售商品")),
    )
    assert await enabled_groups(shop) == {GROUP_ID}
    assert len((await snapshot(shop))["ShopGroup"]) == 1


async def test_customer_cannot_disable(app: App, shop: ShopRuntime) -> None:
    await enable(shop)
    before = await snapshot(shop)
    await ask(app, group("/停用本群", CUSTOMER_ID, GROUP_ID), exact=NO_PERMISSION)
    assert await snapshot(shop) == before
    assert await enabled_groups(shop) == {GROUP_ID}


# --- group gating ----------------------------------------------------------------------


GATED = [
    "/新品 冷萃咖啡 39.9 50",
    "/new 冷萃咖啡 39.9 50",
    "/规格 1 500g 109 20",
    "/改价 1 1",
    "/库存 1 0",
    "/上架 1",
    "/下架 1",
    "/描述 1 便宜卖了",
    "/设分类 1 清仓",
    "/无理由 1 关",
    "/店员",
    "/店员 添加 30004",
    "/新品",
    "/商品",
    "/详情 1",
]


@pytest.mark.parametrize("text", GATED)
@pytest.mark.parametrize("where", ["never-enabled", "disabled", "other-group-enabled"])
async def test_commands_in_a_group_that_is_not_enabled_get_no_reply(
    app: App, shop: ShopRuntime, text: str, where: str
) -> None:
    await seed_item(shop)
    if where == "disabled":
        from services import groups

        await enable(shop)
        async with shop.database.write() as session:
            await groups.set_group_enabled(session, shop.shop_id, GROUP_ID, False, OWNER_ID)
        shop.access.invalidate()
    elif where == "other-group-enabled":
        await enable(shop, OTHER_GROUP_ID)
    before = await snapshot(shop)
    await exchange(app, (group(text, OWNER_ID, GROUP_ID), None))
    assert await snapshot(shop) == before


@pytest.mark.parametrize(
    "user_id", [OWNER_ID, STAFF_ID, CUSTOMER_ID], ids=["owner", "staff", "customer"]
)
async def test_gated_group_ignores_everyone(app: App, shop: ShopRuntime, user_id: int) -> None:
    await make_staff(shop)
    await exchange(
        app,
        (group("/新品 冷萃咖啡 39.9 50", user_id, GROUP_ID), None),
        (group("/店员", user_id, GROUP_ID), None),
        (group("/没有这个命令", user_id, GROUP_ID), None),
    )
    assert (await snapshot(shop))["Item"] == []


async def test_add_staff_by_real_mention_in_group(app: App, shop: ShopRuntime) -> None:
    from nonebot.adapters.onebot.v11 import Message, MessageSegment

    await enable(shop)
    message = Message([MessageSegment.text("/店员 添加 "), MessageSegment.at(STAFF_ID)])
    event = group("/店员 添加 ", OWNER_ID, GROUP_ID).model_copy(
        update={"message": message, "original_message": message.copy()}
    )
    await ask(app, event, "已添加店员 20002")
    assert await staff_ids(shop) == {STAFF_ID}
