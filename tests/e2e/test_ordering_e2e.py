"""Ordering over the real protocol: browse → order (with 确认) → pay → amend/cancel,
a restart in the middle, and a flash sale where 50 buyers race for 10 units."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tests.e2e.conftest import E2E_OWNER, E2E_TOKEN, BotProcess

CODE = re.compile(r"订单号：([0-9A-Z]{10})")
ADDRESS = "张三 13800001111 浙江省杭州市西湖区文三路 1 号"
GROUP = 777000


def code_in(text: str) -> str:
    match = CODE.search(text)
    assert match, text
    return match.group(1)


async def test_customer_orders_pays_and_staff_see_it(sim: Any) -> None:
    customer = 40001
    reply = await sim.ask_private(customer, "/下单 5-2 2 周末送")
    assert "你还没有收货地址" in reply.text
    reply = await sim.ask_private(customer, ADDRESS)
    assert (
        "请确认订单" in reply.text
        and "¥111.80" in reply.text
        and '回复"确认"提交订单' in reply.text
    )
    mark = sim.mark()
    reply = await sim.ask_private(customer, "确认")
    code = code_in(reply.text)
    assert "下单成功" in reply.text and f"/付款 {code}" in reply.text
    # Staff hear of the new order through the outbox.
    notice = await sim.wait_for_send(
        lambda m: m.target_id == E2E_OWNER and code in m.text, since=mark, timeout=15
    )
    assert "新订单" in notice.text
    reply = await sim.ask_private(customer, f"/修改 {code.lower()} 数量 5-2 3")
    assert "数量 2 → 3" in reply.text and "¥167.70" in reply.text
    reply = await sim.ask_private(E2E_OWNER, f"/收款 {code}")
    assert "已确认收款" in reply.text
    paid_notice = await sim.wait_for_send(
        lambda m: m.target_id == customer and "已确认收款" in m.text, timeout=15
    )
    assert code in paid_notice.text
    reply = await sim.ask_private(customer, f"/订单 {code}")
    assert "状态：待发货" in reply.text and "确认收款（店主）" in reply.text
    # Another customer typing the number learns nothing.
    reply = await sim.ask_private(40002, f"/订单 {code}")
    assert reply.text == f"没有找到订单 {code}。发 /订单 查看你的订单。"


async def test_group_order_never_shows_phone_or_street(sim: Any) -> None:
    customer = 40003
    await sim.ask_group(GROUP, E2E_OWNER, "/启用本群", role="owner")
    await sim.ask_private(customer, f"/地址 添加 {ADDRESS}")
    reply = await sim.ask_group(GROUP, customer, "/下单 2")
    assert "138****1111" in reply.text and "浙江省杭州市" in reply.text
    assert "13800001111" not in reply.text and "文三路" not in reply.text
    reply = await sim.ask_group(GROUP, customer, "确认")
    code = code_in(reply.text)
    reply = await sim.ask_group(GROUP, customer, f"/订单 {code}")
    assert "13800001111" not in reply.text and "文三路" not in reply.text


async def test_restart_keeps_orders_and_pending_summaries(bot_process: BotProcess) -> None:
    from tools.onebot_sim import OneBotSimulator

    customer = 40004
    async with OneBotSimulator(bot_process.url, access_token=E2E_TOKEN) as sim:
        await sim.ask_private(customer, f"/地址 添加 {ADDRESS}")
        reply = await sim.ask_private(customer, "/下单 1-1 2")
        assert "请确认订单" in reply.text
        await sim.ask_private(40005, f"/地址 添加 {ADDRESS}")
        await sim.ask_private(40005, "/下单 2 1")
        code = code_in((await sim.ask_private(40005, "确认")).text)

    bot_process.stop()
    bot_process.start()

    async with OneBotSimulator(bot_process.url, access_token=E2E_TOKEN) as sim:
        # The summary survived the restart: a bare 确认 still places the order.
        reply = await sim.ask_private(customer, "确认")
        assert "下单成功" in reply.text
        reply = await sim.ask_private(40005, f"/订单 {code}")
        assert "状态：待付款" in reply.text and "下单（顾客）" in reply.text


async def test_notice_queued_while_disconnected_arrives_once_after_restart(tmp_path: Any) -> None:
    """The order expires while no OneBot implementation is connected; the bot restarts;
    the expiry notice reaches the customer exactly once after reconnecting."""
    from tools.onebot_sim import OneBotSimulator

    bot = BotProcess(
        tmp_path,
        extra_env={
            "UNPAID_TIMEOUT_MINUTES": "0.05",
            "CLOCK_TICK_SECONDS": "0.5",
            "SEND_INTERVAL_SECONDS": "0.1",
        },
    )
    bot.start()
    try:
        customer = 40006
        async with OneBotSimulator(bot.url, access_token=E2E_TOKEN) as sim:
            await sim.ask_private(customer, f"/地址 添加 {ADDRESS}")
            await sim.ask_private(customer, "/下单 2 1")
            code = code_in((await sim.ask_private(customer, "确认")).text)
        await asyncio.sleep(5)  # expires (3 s) and is queued while nobody is connected
        bot.stop()
        bot.start()
        async with OneBotSimulator(bot.url, access_token=E2E_TOKEN) as sim:
            notice = await sim.wait_for_send(
                lambda m: m.target_id == customer and "超时未付款" in m.text, timeout=20
            )
            assert code in notice.text
            await asyncio.sleep(2)
            assert [m.text for m in sim.sent if "超时未付款" in m.text] == [notice.text]
            reply = await sim.ask_private(customer, f"/订单 {code}")
            assert "状态：已取消" in reply.text and "超时未付款，自动取消（系统）" in reply.text
    finally:
        bot.stop()
    assert "Traceback" not in bot.log()


async def test_flash_sale_fifty_buyers_ten_units(sim: Any) -> None:
    """50 customers confirm at once for a variant with 10 units: exactly 10 orders,
    the other 40 are told 库存不足, and stock ends at 0."""
    reply = await sim.ask_private(E2E_OWNER, "/新品 限量手冲壶 199 10")
    item_id = int(reply.text.split("商品编号：")[1].split()[0])
    buyers = list(range(50001, 50051))
    for buyer in buyers:  # addresses and summaries first (sequential: cheap)
        await sim.ask_private(buyer, f"/地址 添加 {ADDRESS}")
        summary = await sim.ask_private(buyer, f"/下单 {item_id}")
        assert "请确认订单" in summary.text
    replies = await asyncio.gather(
        *(sim.ask_private(buyer, "确认", timeout=60) for buyer in buyers)
    )
    won = [r for r in replies if "下单成功" in r.text]
    lost = [r for r in replies if "库存不足" in r.text]
    assert len(won) == 10 and len(lost) == 40, [
        r.text for r in replies if r not in won and r not in lost
    ]
    assert len({code_in(r.text) for r in won}) == 10
    reply = await sim.ask_private(E2E_OWNER, f"/详情 {item_id}")
    assert f"{item_id}-1 默认 ¥199.00 售罄" in reply.text
