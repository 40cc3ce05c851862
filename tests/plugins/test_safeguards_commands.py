"""Merchant safeguards and the export over nonebug: /拉黑 /解除拉黑 /黑名单 /限购 /预警
/导出, in a private chat and in an enabled group, with their error paths; the one short
refusal a banned customer meets, the unpaid-order cap, and the file /导出 sends through
OneBot's upload_private_file (or where it was saved, when the implementation lacks it)."""

from __future__ import annotations

import base64
import csv
import io
from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID
from tests.fake import Says, group, private, v11_bot
from tests.plugins.helpers import (
    add_staff,
    converse,
    enable_group,
    orders_of,
    pay_order,
    rows_of,
    save_address,
    seed_demo,
    seed_order,
)

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime

NO_PERMISSION = "无权限：这是店主/店员命令。发 /帮助 查看你可用的命令。"
BANNED = "你已被本店限制下单、付款和售后，如有疑问请联系店主。"
BANNED_MEANS = "TA 仍可浏览商品，但不能加购、下单、付款、修改订单或申请售后。"
BAN_USAGE = "用法：/拉黑 <QQ号> [原因]，例如 /拉黑 123456789 恶意占库存"
LIMIT_USAGE = "用法：/限购 <规格编号> <数量|0>，例如 /限购 1-2 2"
ALERT_USAGE = "用法：/预警 <规格编号> <数量|0>，例如 /预警 1-2 5"
EXPORT_USAGE = "用法：/导出 [今日|7天|30天|全部]，例如 /导出 7天"


@pytest.fixture(autouse=True)
async def _shop_ready(shop: ShopRuntime) -> None:
    from plugins._common.runtime import FloodGuard

    shop.flood = FloodGuard(10_000, 10.0)
    await seed_demo(shop)
    await add_staff(shop, STAFF_ID)
    await save_address(shop, CUSTOMER_ID)


def say(chat: str, text: str, user_id: int = STAFF_ID) -> Any:
    return private(text, user_id) if chat == "private" else group(text, user_id, GROUP_ID)


def says(chat: str, text: str, *fragments: str, user_id: int = STAFF_ID, **kw: Any) -> Any:
    event = say(chat, text, user_id)
    return event, Says(event, *fragments, **kw)


# --- the blacklist --------------------------------------------------------------------


async def test_ban_list_and_unban(app: App, shop: ShopRuntime, chat: str) -> None:
    from models.tables import BanEvent

    await converse(
        app,
        says(chat, f"/拉黑 {CUSTOMER_ID} 恶意占库存", f"已拉黑 {CUSTOMER_ID}，原因：恶意占库存。"),
        says(chat, "/bans", "黑名单（1 人）：", f"{CUSTOMER_ID}  ", f"由 {STAFF_ID} 拉黑"),
        says(chat, f"/ban {CUSTOMER_ID}", f"{CUSTOMER_ID} 已在黑名单中。", user_id=OWNER_ID),
        says(chat, f"/解除拉黑 {CUSTOMER_ID}", f"已解除 {CUSTOMER_ID} 的拉黑", "原因：恶意占库存"),
        says(chat, f"/unban {CUSTOMER_ID}", f"{CUSTOMER_ID} 不在黑名单中。"),
        says(chat, "/黑名单", exact="黑名单是空的。拉黑：/拉黑 <QQ号> [原因]"),
    )
    events = await rows_of(shop, BanEvent)
    assert [(e.action, e.actor_id, e.reason) for e in events] == [
        ("banned", STAFF_ID, "恶意占库存"),
        ("unbanned", STAFF_ID, ""),
    ]


async def test_ban_shows_the_unpaid_orders_left(app: App, shop: ShopRuntime, chat: str) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await converse(
        app,
        says(
            chat,
            f"/拉黑 {CUSTOMER_ID}",
            BANNED_MEANS,
            f"TA 还有 1 个未付款订单（{code}），超时未付款会自动取消并释放库存。",
            f"解除：/解除拉黑 {CUSTOMER_ID}",
        ),
    )


async def test_ban_refusals(app: App, shop: ShopRuntime, chat: str) -> None:
    await converse(
        app,
        says(chat, f"/拉黑 {OWNER_ID}", exact=f"{OWNER_ID} 是店主，不能拉黑。"),
        says(chat, f"/拉黑 {STAFF_ID}", f"{STAFF_ID} 是店员，不能拉黑", user_id=OWNER_ID),
        says(chat, "/拉黑 小王", "QQ号应是 5 到 12 位数字", BAN_USAGE),
        says(chat, "/拉黑", "缺少QQ号。", BAN_USAGE),
        says(chat, f"/解除拉黑 {CUSTOMER_ID} 多余", "多余的内容：多余"),
        says(chat, f"/拉黑 {OTHER_CUSTOMER_ID}", exact=NO_PERMISSION, user_id=CUSTOMER_ID),
        says(chat, "/黑名单", exact=NO_PERMISSION, user_id=CUSTOMER_ID),
    )


async def test_a_banned_customer_browses_and_is_refused_the_rest(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    unpaid = await seed_order(shop, CUSTOMER_ID)
    paid = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, paid)
    await converse(app, says(chat, f"/拉黑 {CUSTOMER_ID}", "已拉黑"))

    def refused(text: str) -> Any:
        return says(chat, text, exact=BANNED, user_id=CUSTOMER_ID)

    await converse(
        app,
        refused("/下单 2"),
        refused("/加购 2 2"),
        refused("/结算"),
        refused(f"/付款 {unpaid}"),
        refused(f"/修改 {unpaid} 数量 2 3"),
        refused(f"/售后 {paid} 投诉 太慢了"),
        says(chat, "/商品", "在售商品", user_id=CUSTOMER_ID),
        says(chat, "/详情 2", "冷萃咖啡液", user_id=CUSTOMER_ID),
        says(chat, "/订单", unpaid, user_id=CUSTOMER_ID),
    )
    assert len(await orders_of(shop, CUSTOMER_ID)) == 2


# --- the unpaid-order cap -------------------------------------------------------------


async def test_a_fourth_unpaid_order_is_refused(app: App, shop: ShopRuntime, chat: str) -> None:
    codes = [await seed_order(shop, CUSTOMER_ID) for _ in range(3)]
    await converse(
        app,
        says(
            chat,
            "/下单 2",
            f"你已有 3 个未付款订单（{'、'.join(codes)}），每人最多 3 个。",
            "请先付款（/付款 <订单号>）或取消（/取消 <订单号>）后再下单。",
            user_id=CUSTOMER_ID,
        ),
    )
    await pay_order(shop, codes[0])
    await converse(app, says(chat, "/下单 2", "确认", user_id=CUSTOMER_ID))


# --- /限购 ------------------------------------------------------------------------------


async def test_purchase_limit_set_shown_enforced_and_removed(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    await converse(
        app,
        says(
            chat,
            "/限购 1-2 2",
            exact="已设置：1-2 云南小粒咖啡豆（500g） 每人限购 2 件（未取消、未退款的订单合计）。"
            "取消：/限购 1-2 0",
        ),
        says(
            chat,
            "/下单 1-2 3",
            exact="“云南小粒咖啡豆（500g）”每人限购 2 件，你的订单里已有 0 件，这次最多还能买 2 件。",
            user_id=CUSTOMER_ID,
        ),
        says(
            chat,
            "/limit",
            "每人最多 3 个未付款订单。",
            "1-2 云南小粒咖啡豆（500g）  限 2 件",
            user_id=OWNER_ID,
        ),
        says(chat, "/限购 1-2 0", exact="已取消 1-2 云南小粒咖啡豆（500g） 的限购。"),
        says(chat, "/限购", "还没有限购的规格。"),
        says(chat, "/下单 1-2 3", "确认", user_id=CUSTOMER_ID),
    )


async def test_purchase_limit_errors(app: App, shop: ShopRuntime, chat: str) -> None:
    await converse(
        app,
        says(chat, "/限购 1-2", "缺少数量。", LIMIT_USAGE),
        says(chat, "/限购 1-2 两打", "数量应是 0 到 999 的整数", LIMIT_USAGE),
        says(chat, "/限购 1 2", "商品 1 有 2 个规格，请写明规格编号"),
        says(chat, "/限购 99-1 2", "没有编号为 99 的在售商品。"),
        says(chat, "/限购 1-2 2 3", "多余的内容：3", LIMIT_USAGE),
        says(chat, "/限购 1-2 2", exact=NO_PERMISSION, user_id=CUSTOMER_ID),
    )


# --- /预警 ------------------------------------------------------------------------------


async def test_low_stock_alert_set_shown_and_removed(
    app: App, shop: ShopRuntime, chat: str
) -> None:
    await converse(
        app,
        says(
            chat,
            "/预警 1-2 5",
            "已设置库存预警：1-2 云南小粒咖啡豆（500g） 库存降到 5 件或以下时，提醒店主和店员一次",
            absent=("已在预警线以下",),
        ),
        says(chat, "/预警 3 10", "当前库存 8，已在预警线以下（这次不再提醒）。"),
        says(
            chat,
            "/alert",
            "全店预警线：未设置（LOW_STOCK_THRESHOLD=0）",
            "1-2 云南小粒咖啡豆（500g）  5 件（库存 12）",
            "库存不足（2 个规格）：",
            "4-1 玻璃分享壶  已售罄",
            "3-1 手冲滤杯套装  只剩 8 件（预警线 10）",
        ),
        says(
            chat,
            "/预警 1-2 0",
            exact="已取消 1-2 云南小粒咖啡豆（500g） 自己的预警线，不再提醒（全店预警线未设置）。",
        ),
        says(chat, "/预警 1-2", "缺少数量。", ALERT_USAGE),
        says(chat, "/预警 x 5", "规格编号应像 12 或 12-2", ALERT_USAGE),
        says(chat, "/预警 1-9 5", "商品 1 没有第 9 个规格（共 2 个）。"),
        says(chat, "/预警 1-2 5", exact=NO_PERMISSION, user_id=CUSTOMER_ID),
    )


async def test_a_crossing_tells_owner_and_staff(app: App, shop: ShopRuntime, chat: str) -> None:
    from tests.plugins.helpers import outbox_rows, outbox_texts

    confirm = say(chat, "确认", CUSTOMER_ID)
    await converse(
        app,
        says(chat, "/预警 3 6", "已设置库存预警"),
        says(chat, "/下单 3 2", "确认", user_id=CUSTOMER_ID),
        (confirm, Says(confirm, "订单号：")),
    )
    rows = [r for r in await outbox_rows(shop) if r.dedupe_key.startswith("lowstock:")]
    assert sorted(r.target_id for r in rows) == [OWNER_ID, STAFF_ID]
    assert set(outbox_texts(rows)) == {
        "库存预警：3-1 手冲滤杯套装 只剩 6 件（预警线 6）。补货：/库存 3-1 +<数量>"
    }


# --- /导出 ------------------------------------------------------------------------------


class Base64Csv:
    """Matches upload_private_file's `file`: base64:// and a CSV with these order codes."""

    def __init__(self, *codes: str) -> None:
        self.codes = codes
        self.rows: list[list[str]] = []

    def __eq__(self, value: object) -> bool:
        if not isinstance(value, str) or not value.startswith("base64://"):
            return False
        content = base64.b64decode(value.removeprefix("base64://"))
        if not content.startswith(b"\xef\xbb\xbf"):
            return False
        self.rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
        return [row[0] for row in self.rows[1:]] == list(self.codes)

    __hash__ = object.__hash__


class FileName:
    def __init__(self, period: str) -> None:
        self.period = period

    def __eq__(self, value: object) -> bool:
        return (
            isinstance(value, str)
            and value.startswith(f"订单导出-{self.period}-")
            and value.endswith(".csv")
        )

    __hash__ = object.__hash__


async def test_export_sends_the_csv_privately(app: App, shop: ShopRuntime) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    event = private("/导出", STAFF_ID)
    file = Base64Csv(code)
    async with app.test_matcher() as ctx:
        bot = v11_bot(ctx)
        ctx.receive_event(bot, event)
        ctx.should_call_api(
            "upload_private_file",
            {"user_id": STAFF_ID, "file": file, "name": FileName("今日")},
            result=None,
        )
        ctx.should_call_send(
            event,
            Says(
                event,
                "已发送今日的订单导出：订单导出-今日-",
                "（1 个订单），用 Excel 或 WPS 打开即可。",
            ),
        )
    assert file.rows[1][2:5] == ["待付款", str(CUSTOMER_ID), "冷萃咖啡液 ×1 @39.90"]


async def test_export_without_file_support_says_where_the_file_is(
    app: App, shop: ShopRuntime
) -> None:
    from nonebot.adapters.onebot.v11 import ActionFailed

    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    event = private("/export 全部", OWNER_ID)
    exports = f"{shop.settings.data_dir}/exports/订单导出-全部-"
    async with app.test_matcher() as ctx:
        bot = v11_bot(ctx)
        ctx.receive_event(bot, event)
        ctx.should_call_api(
            "upload_private_file",
            {"user_id": OWNER_ID, "file": Base64Csv(code), "name": FileName("全部")},
            exception=ActionFailed(retcode=1404, msg="不支持的Api"),
        )
        ctx.should_call_send(
            event,
            Says(
                event,
                "全部的订单已导出（1 个订单），但当前 QQ 机器人端（OneBot 实现）不支持发送文件。",
                f"文件保存在机器人所在电脑：{exports}",
            ),
        )


async def test_export_refusals(app: App, shop: ShopRuntime) -> None:
    await enable_group(shop)
    await converse(
        app,
        says("private", "/导出", exact="今日还没有订单，没有可导出的内容。"),
        says("private", "/导出 7天", exact="近 7 天还没有订单，没有可导出的内容。"),
        says(
            "private", "/导出 昨天", "时间范围应是 今日、今天、7天、30天、全部 之一", EXPORT_USAGE
        ),
        says("private", "/导出 全部 多余", "多余的内容：多余", EXPORT_USAGE),
        says("group", "/导出", exact="导出文件包含所有顾客的订单，请私聊我发送 /导出。"),
        says("private", "/导出", exact=NO_PERMISSION, user_id=CUSTOMER_ID),
        says("group", "/导出", exact=NO_PERMISSION, user_id=CUSTOMER_ID),
    )
