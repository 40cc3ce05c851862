"""A merchant's housekeeping over the real protocol (issue 17's story): an item and a
variant with spaces in their names, a rename that old orders do not follow, a mistaken
item deleted after 确认删除, a return put back in stock, and staff told once of a
parcel coming back."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import E2E_OWNER, E2E_TOKEN, BotProcess

ORDER = re.compile(r"订单号：([0-9A-Z]{10})")
TICKET = re.compile(r"工单号：([0-9A-Z]{10})")
ITEM = re.compile(r"商品编号：(\d+)")
ADDRESS = "张三 13800001111 浙江省杭州市西湖区文三路 1 号"
STAFF = 20002
CUSTOMER = 80001


@pytest.fixture
def bot_process(tmp_path: Path) -> Iterator[BotProcess]:
    # The whole story is typed in a few seconds: more commands than the flood guard
    # lets one person send, and more notices than the outbox's default pacing sends in
    # the time the test waits; neither is what this test is about.
    env = {"FLOOD_MAX_COMMANDS": "1000", "SEND_INTERVAL_SECONDS": "0", "SEND_PER_MINUTE": "1000"}
    bot = BotProcess(tmp_path, env)
    bot.start()
    yield bot
    bot.stop()
    assert "Traceback" not in bot.log(), bot.log()[-4000:]


@pytest.fixture
async def sim(bot_process: BotProcess) -> AsyncIterator[object]:
    from tools.onebot_sim import OneBotSimulator

    simulator = OneBotSimulator(bot_process.url, access_token=E2E_TOKEN)
    await simulator.connect(timeout=60)
    yield simulator
    await simulator.close()


async def _ordered(sim: Any, customer: int, ref: str) -> str:
    await sim.ask_private(customer, f"/下单 {ref} 1")
    reply = await sim.ask_private(customer, "确认")
    match = ORDER.search(reply.text)
    assert match, reply.text
    return match.group(1)


async def test_names_rename_delete_restock_and_a_parcel_coming_back(sim: Any) -> None:
    reply = await sim.ask_private(E2E_OWNER, '/新品 "iPhone 15 Pro" 5999 10 手机')
    item = int(ITEM.search(reply.text).group(1))  # type: ignore[union-attr]
    assert "iPhone 15 Pro" in reply.text
    reply = await sim.ask_private(E2E_OWNER, f"/规格 {item} “256G 黑色” 6999 5")
    assert f"{item}-2" in reply.text and "256G 黑色" in reply.text

    await sim.ask_private(CUSTOMER, f"/地址 添加 {ADDRESS}")
    order = await _ordered(sim, CUSTOMER, f"{item}-2")

    reply = await sim.ask_private(E2E_OWNER, f"/改名 {item} iPhone 15 Pro Max")
    assert "iPhone 15 Pro Max" in reply.text
    assert "iPhone 15 Pro Max" in (await sim.ask_private(CUSTOMER, f"/详情 {item}")).text
    # The order keeps the name it was bought under.
    bought = await sim.ask_private(CUSTOMER, f"/订单 {order}")
    assert "iPhone 15 Pro" in bought.text and "Max" not in bought.text

    # A mistaken item: asked, confirmed, gone. An item with an order is refused.
    mistake = int(
        ITEM.search((await sim.ask_private(E2E_OWNER, "/新品 错误商品 1 1")).text).group(1)
    )  # type: ignore[union-attr]
    assert "确认删除" in (await sim.ask_private(E2E_OWNER, f"/删除 {mistake}")).text
    assert "已删除" in (await sim.ask_private(E2E_OWNER, "确认删除")).text
    assert "没有" in (await sim.ask_private(CUSTOMER, f"/详情 {mistake}")).text
    assert "/下架" in (await sim.ask_private(E2E_OWNER, f"/删除 {item}")).text

    # The return goes back in stock when staff say 入库.
    await sim.ask_private(E2E_OWNER, f"/收款 {order}")
    await sim.ask_private(E2E_OWNER, f"/发货 {order} 顺丰 SF1234567890")
    await sim.ask_private(CUSTOMER, f"/确认收货 {order}")
    reply = await sim.ask_private(CUSTOMER, f"/售后 {order} 退货 不想要了")
    ticket = TICKET.search(reply.text).group(1)  # type: ignore[union-attr]
    await sim.ask_private(E2E_OWNER, f"/同意 {ticket}")
    await sim.ask_private(CUSTOMER, f"/退货单号 {ticket} 中通 ZT123456789")
    assert "库存 4" in (await sim.ask_private(CUSTOMER, f"/详情 {item}")).text
    reply = await sim.ask_private(E2E_OWNER, f"/完成 {ticket} 入库")
    assert "已放回库存" in reply.text and "现库存 5" in reply.text, reply.text
    assert "库存 5" in (await sim.ask_private(CUSTOMER, f"/详情 {item}")).text

    # A parcel refused by its addressee: the owner hears it once, privately.
    await sim.ask_private(E2E_OWNER, f"/店员 添加 {STAFF}")
    second = await _ordered(sim, CUSTOMER, f"{item}-2")
    await sim.ask_private(E2E_OWNER, f"/收款 {second}")
    await sim.ask_private(STAFF, f"/发货 {second} 顺丰 SF2234567890")
    mark = sim.mark()
    await sim.ask_private(STAFF, f"/物流更新 {second} 【杭州市】收件人拒签，快件退回")
    notice = await sim.wait_for_send(
        lambda m: m.target_id == E2E_OWNER and "包裹退回" in m.text and second in m.text,
        since=mark,
        timeout=15,
    )
    assert notice.target_type == "private"
    await sim.ask_private(STAFF, f"/物流更新 {second} 【杭州市】退件途中")
    await sim.expect_no_reply(("private", E2E_OWNER), within=2.0)
    told = [m for m in sim.sent if m.target_id == E2E_OWNER and "包裹退回" in m.text]
    assert len(told) == 1
