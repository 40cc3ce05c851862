"""Privacy and echoes over the real protocol (issue 14): the real bot process and the
OneBot simulator. A courier text carrying the receiver's name, street and phone reaches a
group (the tracking push, /物流, /订单) as its state and city only, while the private chat
shows it whole; a 100,000-character argument comes back as at most 20 characters, in a
capped answer; a private typo gets a hint, group chatter nothing; a friend request is
approved through the outbox, then welcomed."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tests.e2e.conftest import E2E_OWNER

CODE = re.compile(r"订单号：([0-9A-Z]{10})")
ADDRESS = "张三 13800001111 浙江省杭州市西湖区文三路 1 号"
GROUP = 888000
COURIER_TEXT = (
    "【成都市】派送至 四川省成都市武侯区天府大道北段1700号环球中心，"
    "收件人 孙悟空，电话 13912345678，派件员 猪八戒 15800001111"
)
# What a group may never see of it: names, the street, any part of the phones (the
# customer's own phone shows masked, 138****1111, in the group's /订单).
SECRETS = ("孙悟空", "猪八戒", "天府大道", "1700号", "环球中心", "武侯区")
SECRETS += ("13912345678", "1391", "5678", "15800001111", "1580")
HUGE = "很" * 50_000 + "x" * 50_000
MAX_REPLY_CHARS = 3000  # plugins/_common/dispatch.py


def code_in(text: str) -> str:
    match = CODE.search(text)
    assert match, text
    return match.group(1)


def shows_none_of_the_secrets(text: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text]
    assert leaked == [], text


async def _shipped_group_order(sim: Any, customer: int) -> str:
    await sim.ask_group(GROUP, E2E_OWNER, "/启用本群", role="owner")
    assert "已保存地址" in (await sim.ask_private(customer, f"/地址 添加 {ADDRESS}")).text
    assert "请确认订单" in (await sim.ask_group(GROUP, customer, "/下单 2")).text
    code = code_in((await sim.ask_group(GROUP, customer, "确认")).text)
    assert "已确认收款" in (await sim.ask_private(E2E_OWNER, f"/收款 {code}")).text
    shipped = await sim.ask_private(E2E_OWNER, f"/发货 {code} 顺丰 SF2024000999")
    assert "已发货" in shipped.text
    return code


async def test_a_courier_text_reaches_a_group_as_state_and_city_only(sim: Any) -> None:
    customer = 70001
    code = await _shipped_group_order(sim, customer)
    mark = sim.mark()
    added = await sim.ask_private(E2E_OWNER, f"/物流更新 {code} {COURIER_TEXT}")
    assert "已添加物流" in added.text  # staff, privately, see what they typed
    push = await sim.wait_for_send(
        lambda m: m.target_type == "group" and m.target_id == GROUP and "物流更新" in m.text,
        since=mark,
        timeout=20,
    )
    assert code in push.text and str(customer) in push.mentions
    assert "派件" in push.text and "成都市" in push.text
    shows_none_of_the_secrets(push.text)

    tracking = await sim.ask_group(GROUP, customer, f"/物流 {code}")
    assert code in tracking.text and "成都市" in tracking.text
    shows_none_of_the_secrets(tracking.text)
    order = await sim.ask_group(GROUP, customer, f"/订单 {code}")
    assert code in order.text
    shows_none_of_the_secrets(order.text)
    listing = await sim.ask_group(GROUP, E2E_OWNER, "/订单列表", role="owner")
    shows_none_of_the_secrets(listing.text)

    # The customer's private chat shows the courier's text whole.
    private = await sim.ask_private(customer, f"/物流 {code}")
    assert "孙悟空" in private.text and "13912345678" in private.text


async def test_a_huge_argument_is_echoed_twenty_characters_long_in_a_capped_answer(
    sim: Any,
) -> None:
    customer = 70002
    await sim.ask_group(GROUP, E2E_OWNER, "/启用本群", role="owner")
    for ask in (
        lambda text: sim.ask_group(GROUP, customer, text),
        lambda text: sim.ask_private(customer, text),
    ):
        detail = await ask(f"/详情 {HUGE}")
        assert "商品编号应是 1 到 9 位数字" in detail.text
        assert "“" + "很" * 20 + "…”" in detail.text
        assert "很" * 21 not in detail.text and "x" not in detail.text
        assert len(detail.text) < 300
        helped = await ask(f"/帮助 {HUGE}")
        assert "“" + "很" * 20 + "…”" in helped.text and len(helped.text) < 300
    unknown = await sim.ask_private(customer, "/" + HUGE)
    assert unknown.text == "没有“" + "很" * 20 + "…”这个命令。发 /帮助 查看可用的命令。"
    # The longest answer there is, an owner's /帮助, stays under the cap.
    overview = await sim.ask_private(E2E_OWNER, "/帮助")
    assert "【店铺管理】" in overview.text and len(overview.text) <= MAX_REPLY_CHARS


async def test_a_private_typo_is_answered_and_group_chatter_is_not(sim: Any) -> None:
    customer = 70003
    await sim.ask_group(GROUP, E2E_OWNER, "/启用本群", role="owner")
    hint = await sim.ask_private(customer, "商平")
    assert hint.text == "没看懂“商平”。是不是想发 /商品？发 /帮助 查看命令。"
    mark = sim.mark()
    await sim.send_group(GROUP, customer, "商平")
    await sim.send_group(GROUP, customer, "/商平")
    await sim.expect_no_reply(("group", GROUP), within=1.5, since=mark)


async def test_a_friend_request_is_approved_then_welcomed(sim: Any) -> None:
    newcomer = 70004
    mark = sim.mark()
    await sim.send_event(
        {
            "post_type": "request",
            "request_type": "friend",
            "user_id": newcomer,
            "comment": "想买咖啡",
            "flag": "e2e-flag-1",
        }
    )
    welcome = await sim.wait_for_send(lambda m: m.target_id == newcomer, since=mark, timeout=20)
    assert welcome.action == "send_private_msg" and "发 帮助 查看全部命令" in welcome.text
    approvals = [c for c in sim.api_calls if c.action == "set_friend_add_request"]
    assert [c.params for c in approvals] == [{"flag": "e2e-flag-1", "approve": True}]
    assert sim.api_calls.index(approvals[0]) < next(
        n for n, c in enumerate(sim.api_calls) if c.sent is welcome
    )
    await asyncio.sleep(0.5)
    assert len([m for m in sim.sent if m.target_id == newcomer]) == 1
